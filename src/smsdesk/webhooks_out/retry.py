"""When a failed delivery is tried again: a pure function of attempts, times and chance.

10 s after the first failure, then doubling (20 s, 40 s, ...) up to one hour between
attempts, each delay varied by ±20 % so that a receiver coming back up is not hit by every
waiting delivery in the same second. A last attempt is made when the event is 24 hours old;
if that fails too, the delivery is dead (kept, listed, and replayable by hand).
"""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class DeliveryPolicy:
    first_delay: float = 10.0
    max_delay: float = 3600.0
    max_age: float = 24 * 3600.0
    jitter: float = 0.2


def backoff(attempts: int, policy: DeliveryPolicy, rng: random.Random) -> float:
    """The wait after the `attempts`-th failed attempt (1 for the first)."""
    base = min(policy.first_delay * 2.0 ** max(0, attempts - 1), policy.max_delay)
    return base * rng.uniform(1 - policy.jitter, 1 + policy.jitter)


def next_attempt_at(
    attempts: int, now: float, created_at: float, policy: DeliveryPolicy, rng: random.Random
) -> float | None:
    """When to try again after a failed attempt, or None when the delivery is now dead."""
    deadline = created_at + policy.max_age
    if now >= deadline:
        return None
    return min(now + backoff(attempts, policy, rng), deadline)
