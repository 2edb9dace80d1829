"""The per-module token bucket, on a fake clock."""

from __future__ import annotations

from smsdesk.outbox.ratelimit import TokenBucket
from smsdesk.testing import FakeClock


def test_rate_is_respected_over_time() -> None:
    """Over 10 simulated seconds at 50 msg/s, about 500 messages may go (plus the burst)."""
    clock = FakeClock()
    bucket = TokenBucket(50, clock)
    sent = 0
    for _ in range(1000):
        n = bucket.available(100)
        bucket.take(n)
        sent += n
        clock.advance(0.01)
    assert 495 <= sent <= 500 + bucket.capacity


def test_unlimited_bucket_never_holds_back() -> None:
    """Rate 0 means no limit."""
    bucket = TokenBucket(0, FakeClock())
    assert bucket.available(10_000) == 10_000


def test_pause_stops_sending_until_it_ends() -> None:
    """A throttling answer pauses the module for the time asked."""
    clock = FakeClock()
    bucket = TokenBucket(0, clock)
    bucket.pause(5)
    assert bucket.available(10) == 0
    assert bucket.wait_time() == 5
    clock.advance(5)
    assert bucket.available(10) == 10
