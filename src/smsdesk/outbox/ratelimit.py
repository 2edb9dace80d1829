"""A token bucket per connection: at most `rate` messages per second, with a short burst.

The burst (the bucket's capacity) is a tenth of a second's worth in one process and a quarter
on PostgreSQL (at least one message), so no 1-second window carries more than the rate plus
that burst. In one process (SQLite) the bucket is the limit itself; on PostgreSQL it is this
process's view of the shared bucket (`outbox/limiter.py`), brought up to date from the
database row at each claim.
"""

from __future__ import annotations

from collections.abc import Callable

# Refills computed from large timestamps are inexact (0.1 s at 10/s can give 0.999999 tokens).
_EPSILON = 1e-6


class TokenBucket:
    """Tokens refill continuously; a send takes one token per message."""

    def __init__(self, rate: float, clock: Callable[[], float], burst: float | None = None) -> None:
        self.rate = rate
        self.clock = clock
        self.capacity = burst if burst is not None else max(1.0, rate / 10)
        self.tokens = self.capacity
        self.updated = clock()
        self.paused_until = 0.0

    @property
    def unlimited(self) -> bool:
        return self.rate <= 0

    def _refill(self) -> float:
        now = self.clock()
        if not self.unlimited:
            elapsed = max(0.0, now - self.updated)  # another process's clock may be ahead
            self.tokens = min(self.capacity, self.tokens + elapsed * self.rate)
        self.updated = max(self.updated, now)
        return now

    def available(self, wanted: int) -> int:
        """How many of `wanted` messages may go now (without taking them)."""
        now = self._refill()
        if now < self.paused_until:
            return 0
        if self.unlimited:
            return wanted
        return min(wanted, int(self.tokens + _EPSILON))

    def take(self, count: int) -> None:
        self._refill()
        if not self.unlimited:
            self.tokens -= count

    def give_back(self, count: int) -> None:
        if not self.unlimited:
            self.tokens = min(self.capacity, self.tokens + count)

    def adopt(self, tokens: float, at: float, paused_until: float) -> None:
        """Take on the shared bucket as the database holds it (a pause of ours stays)."""
        self.tokens = min(self.capacity, tokens)
        self.updated = at
        self.paused_until = max(self.paused_until, paused_until)

    def pause(self, seconds: float) -> None:
        """The provider asked us to wait: send nothing through this connection for a while."""
        self.paused_until = max(self.paused_until, self.clock() + seconds)

    def wait_time(self) -> float:
        """Seconds until at least one message may go."""
        now = self._refill()
        if now < self.paused_until:
            return self.paused_until - now
        if self.unlimited or self.tokens + _EPSILON >= 1:
            return 0.0
        return (1 - self.tokens) / self.rate
