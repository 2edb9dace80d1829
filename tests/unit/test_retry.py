"""The retry policy."""

from __future__ import annotations

import random

from hypothesis import given
from hypothesis import strategies as st

from smsdesk.domain.message import Status
from smsdesk.outbox.retry import RetryPolicy, decide
from smsdesk.providers.base import (
    AuthenticationError,
    PermanentError,
    RateLimitedError,
    TemporaryError,
)

NOW = 1_000_000.0


def test_permanent_errors_fail_at_once_with_the_reason() -> None:
    """A permanent refusal is never retried and keeps the provider's words."""
    decision = decide(PermanentError("number blocked", code="402"), 1, NOW, NOW + 3600)
    assert decision.status is Status.FAILED
    assert decision.reason == "number blocked"


def test_temporary_errors_back_off_exponentially() -> None:
    """Each further attempt waits longer (on average), capped."""
    policy = RetryPolicy(base=1, factor=2, cap=60)
    rng = random.Random(1)
    retry_times = [
        decide(TemporaryError("503"), n, NOW, NOW + 10**6, policy, rng).retry_at
        for n in (1, 2, 3, 4, 5, 6, 7, 8, 9, 10)
    ]
    waits = [at - NOW for at in retry_times if at is not None]
    assert len(waits) == 10
    assert 0.5 <= waits[0] <= 1
    assert 4 <= waits[3] <= 8
    assert all(30 <= w <= 60 for w in waits[6:])


@given(st.integers(1, 60), st.integers(0, 2**32))
def test_backoff_stays_within_its_band(attempts: int, seed: int) -> None:
    """Jitter keeps each wait between half the ceiling and the ceiling."""
    policy = RetryPolicy(base=2, factor=3, cap=500)
    wait = policy.backoff(attempts, random.Random(seed))
    ceiling = min(500, 2 * 3 ** (attempts - 1))
    assert ceiling / 2 <= wait <= ceiling


def test_rate_limited_waits_what_the_provider_asked() -> None:
    """Retry-After from the provider is honoured exactly."""
    decision = decide(RateLimitedError("slow down", retry_after=7.5), 3, NOW, NOW + 3600)
    assert decision.status is Status.QUEUED
    assert decision.retry_at == NOW + 7.5


def test_retry_past_validity_expires() -> None:
    """When the next try would fall after the validity period, the message expires."""
    decision = decide(TemporaryError("timeout"), 1, NOW, NOW + 0.1)
    assert decision.status is Status.EXPIRED
    assert "timeout" in decision.reason


def test_authentication_errors_wait_long_enough_for_an_admin() -> None:
    """Wrong credentials keep the message queued but do not hammer the provider."""
    decision = decide(AuthenticationError("bad password"), 1, NOW, NOW + 86400)
    assert decision.status is Status.QUEUED
    assert decision.retry_at is not None and decision.retry_at - NOW >= 60
