"""The retry policy: a pure function from (error, attempts, now, expiry) to a decision."""

from __future__ import annotations

import random
from dataclasses import dataclass

from smsdesk.domain.message import Status
from smsdesk.providers.base import (
    AuthenticationError,
    PermanentError,
    ProviderError,
    RateLimitedError,
)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff with full jitter, bounded by `cap`."""

    base: float = 1.0
    factor: float = 2.0
    cap: float = 300.0
    auth_delay: float = 60.0

    def backoff(self, attempts: int, rng: random.Random) -> float:
        """Seconds to wait before attempt `attempts + 1` (attempts counts tries so far)."""
        ceiling = min(self.cap, self.base * self.factor ** max(attempts - 1, 0))
        return ceiling / 2 + rng.uniform(0, ceiling / 2)


@dataclass(frozen=True, slots=True)
class Decision:
    """Either retry at `retry_at`, or stop with a final `status`."""

    status: Status
    retry_at: float | None = None
    reason: str = ""


def decide(
    error: ProviderError,
    attempts: int,
    now: float,
    expires_at: float,
    policy: RetryPolicy = RetryPolicy(),
    rng: random.Random | None = None,
) -> Decision:
    """What to do after a failed send: retry later, fail for good, or expire."""
    rng = rng or random.Random()
    if isinstance(error, PermanentError):
        return Decision(Status.FAILED, reason=error.message)
    retry_at = now + delay_for(error, attempts, policy, rng)
    if retry_at >= expires_at:
        return Decision(
            Status.EXPIRED,
            reason=f"validity period ends before the next try (last error: {error.message})",
        )
    return Decision(Status.QUEUED, retry_at=retry_at, reason=error.message)


def delay_for(
    error: ProviderError, attempts: int, policy: RetryPolicy, rng: random.Random
) -> float:
    """Seconds to wait before trying again after `error`, `attempts` tries so far."""
    if isinstance(error, RateLimitedError) and error.retry_after is not None:
        return error.retry_after
    if isinstance(error, AuthenticationError):
        return max(policy.auth_delay, policy.backoff(attempts, rng))
    return policy.backoff(attempts, rng)
