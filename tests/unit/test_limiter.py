"""The limits of one process (SQLite): when a held-back connection may go again."""

from __future__ import annotations

import pytest

from smsdesk.domain.connections import Connection
from smsdesk.outbox.limiter import Claim, Limits
from smsdesk.outbox.ratelimit import TokenBucket
from smsdesk.testing import FakeClock

LIMITED = Connection(id="c", name="c", module="kannel", rate_limit=20)


def test_burst_is_a_tenth_of_a_second() -> None:
    """At 20/s two messages may go at once, then one every 50 ms."""
    clock = FakeClock()
    limits = Limits(clock, shared=False)
    assert limits.allowance(LIMITED, 100) == 2
    limits.settle(LIMITED, Claim(rows=[object(), object()]))  # type: ignore[list-item]
    assert limits.allowance(LIMITED, 100) == 0
    assert limits.wait() == pytest.approx(0.05)


def test_nothing_held_means_no_hurry() -> None:
    """A connection that was never held back gives no reason to wake before the poll."""
    limits = Limits(FakeClock(), shared=False)
    assert limits.allowance(LIMITED, 1) == 1
    assert limits.wait() is None


def test_a_token_that_came_meanwhile_means_scan_now() -> None:
    clock = FakeClock()
    limits = Limits(clock, shared=False)
    limits.settle(LIMITED, Claim(rows=[object(), object()]))  # type: ignore[list-item]
    assert limits.allowance(LIMITED, 1) == 0
    clock.advance(0.06)
    assert limits.wait() == 0


def test_a_shared_bucket_from_a_clock_ahead_does_not_go_negative() -> None:
    """Another process's clock 2 s ahead: its refill time does not cost this process tokens."""
    clock = FakeClock()
    bucket = TokenBucket(20, clock, burst=2)
    bucket.adopt(1.0, clock() + 2.0, 0.0)
    assert bucket.available(5) == 1
