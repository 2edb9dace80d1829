"""When a notification that could not be sent is tried again: a pure function of attempts.

30 s after the first failure, then doubling up to one hour; after `max_attempts` failures the
notification is dead, kept with its last error.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class NotifyPolicy:
    first_delay: float = 30.0
    max_delay: float = 3600.0
    max_attempts: int = 8


def next_attempt_at(attempts: int, now: float, policy: NotifyPolicy) -> float | None:
    """When to try again after the `attempts`-th failure (1 for the first); None: dead."""
    if attempts >= policy.max_attempts:
        return None
    return now + min(policy.first_delay * 2.0 ** max(0, attempts - 1), policy.max_delay)
