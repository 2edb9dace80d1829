"""How many messages of a connection the dispatcher may claim now, by the connection's limits.

What the limits mean:

- `rate_limit`: messages per second handed to the provider through the connection, by the
  whole installation; bursts are at most a tenth of a second's worth in one process and a
  quarter on PostgreSQL (at least 1), so no 1-second window carries more than 1.25x the
  rate. 0 means no limit.
- `concurrency`: provider requests at once. In a process, at most `concurrency` send requests
  run at once. On PostgreSQL a claim also takes at most `concurrency` x the module's
  `max_batch` messages minus those leased for sending through the connection by any process,
  counted while holding the connection's bucket row: for modules that send one message per
  request (most) that is exactly requests at once across the cluster; batch modules count
  messages, so there it is a bound on messages under way.
- A throttling answer (`RateLimitedError`) pauses the connection for its Retry-After (1 s
  without one) in every process.

On SQLite one process sends, and its in-memory `TokenBucket` is the limit. On PostgreSQL the
bucket is a row shared by every process (`store/rate_limits.py`): tokens are taken in the
claim's own transaction, as many as the claim took, so a process never holds tokens it does
not use; its in-memory bucket is only its view of the row, to know when to try again without
asking the database.

A connection that had work but was stopped by its limit (no token yet, a pause, the row busy
in another process, the cluster at its concurrency) is *held*: `wait()` tells the dispatcher
how long until the first held connection may go, so it sleeps until the next token rather
than a whole poll interval.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Row

from smsdesk.domain.connections import Connection as SmsConnection
from smsdesk.outbox.ratelimit import TokenBucket
from smsdesk.store import messages
from smsdesk.store import rate_limits as store

log = logging.getLogger(__name__)

BUSY_RETRY = 0.01  # seconds before trying again when another process holds the bucket row
FULL_RETRY = 0.05  # ... and when the cluster is at the connection's concurrency
_EPSILON = 1e-6

Rows = list[Row[Any]]
Take = Callable[[int], tuple[Rows, Rows]]  # claim up to n messages -> (claimed, opted out)
Submit = Callable[[Callable[[Connection], None]], Future[None]]


@dataclass
class Claim:
    """What one claim took, and the shared bucket as the claim left it."""

    rows: Rows = field(default_factory=list)
    blocked: Rows = field(default_factory=list)  # claimed, but to numbers that opted out
    bucket: store.Bucket | None = None
    retry_in: float = 0.0  # the row was busy, or the cluster full: try again after this

    @property
    def used(self) -> int:
        return len(self.rows) - len(self.blocked)


def _log_failure(done: Future[None]) -> None:
    if done.exception() is not None:
        log.error("could not pause the connection for other processes", exc_info=done.exception())


def burst_of(rate: float, shared: bool) -> float:
    """A tenth of a second's worth in one process; a quarter on PostgreSQL, where a worker
    late by scheduling or a busy database would otherwise lose the tokens it was due (at
    20/s with a tenth: 18.9/s reached one worker's provider, with a quarter 19.7/s)."""
    return max(1.0, rate / 4 if shared else rate / 10)


class Limits:
    """Every connection's rate and concurrency limit as this process applies them."""

    def __init__(self, clock: Callable[[], float], *, shared: bool) -> None:
        self.clock = clock
        self.shared = shared
        self._buckets: dict[str, TokenBucket] = {}
        self._retry_at: dict[str, float] = {}
        self.held: set[str] = set()

    def bucket(self, connection: SmsConnection) -> TokenBucket:
        rate = connection.rate_limit
        bucket = self._buckets.get(connection.id)
        if bucket is None or bucket.rate != rate:
            burst = burst_of(rate, self.shared)
            bucket = self._buckets[connection.id] = TokenBucket(rate, self.clock, burst)
        return bucket

    def allowance(self, connection: SmsConnection, wanted: int) -> int:
        """How many of `wanted` messages to try to claim now; 0 holds the connection back."""
        if self._retry_at.get(connection.id, 0.0) > self.clock():
            self.held.add(connection.id)
            return 0
        allowed = self.bucket(connection).available(wanted)
        if allowed <= 0:
            self.held.add(connection.id)
        return allowed

    def claim(
        self,
        conn: Connection,
        connection: SmsConnection,
        wanted: int,
        now: float,
        max_batch: int,
        take: Take,
        unassigned: str | None = None,
    ) -> Claim:
        """Claim with `take` as many messages as the limits allow, in the claim's transaction.

        On PostgreSQL the bucket row is locked only when something is due (`unassigned`: the
        module whose messages without a connection the claim also takes): the stand-ins of
        unused modules, served every scan, cost one read each, and get no row."""
        if not self.shared:
            rows, blocked = take(wanted)
            return Claim(rows, blocked)
        if not messages.waiting_on(conn, connection.id, now, 1, module=unassigned):
            return Claim()
        rate, burst = connection.rate_limit, burst_of(connection.rate_limit, shared=True)
        bucket = store.lock(conn, connection.id, rate=rate, burst=burst, now=now)
        if bucket is None:
            return Claim(retry_in=BUSY_RETRY)
        room = connection.concurrency * max_batch - store.sending(conn, connection.id, now)
        tokens = wanted if rate <= 0 else int(bucket.tokens + _EPSILON)
        if now < bucket.paused_until:
            tokens = 0
        limit = min(wanted, tokens, room)
        if limit <= 0:
            return Claim(bucket=bucket, retry_in=FULL_RETRY if room <= 0 else 0.0)
        rows, blocked = take(limit)
        result = Claim(rows, blocked, bucket)
        if result.used:
            result.bucket = store.spend(
                conn, connection.id, bucket, result.used, rate=rate, burst=burst
            )
        return result

    def settle(self, connection: SmsConnection, claim: Claim) -> None:
        """After the claim committed: take its tokens here (one process), or adopt the shared
        bucket as the claim left it; a claim stopped by the limits holds the connection."""
        local = self.bucket(connection)
        if not self.shared:
            local.take(claim.used)
            return
        if claim.bucket is not None:
            local.adopt(claim.bucket.tokens, claim.bucket.at, claim.bucket.paused_until)
        if claim.retry_in:
            self._retry_at[connection.id] = self.clock() + claim.retry_in
        if not claim.rows and (claim.retry_in or local.wait_time() > 0):
            self.held.add(connection.id)

    def pause(self, connection_id: str, seconds: float, submit: Submit) -> None:
        """The provider asked us to wait: pause here at once, and on PostgreSQL write the pause
        (through `submit`, the writer) so every other process stops too."""
        now = self.clock()
        until = now + seconds
        bucket = self._buckets.get(connection_id)
        if bucket is not None:
            if until <= bucket.paused_until + BUSY_RETRY:
                return  # this batch's other answers repeat the pause already under way
            bucket.pause(seconds)
        if self.shared:
            done = submit(lambda conn: store.pause(conn, connection_id, until, now))
            done.add_done_callback(_log_failure)

    def wait(self) -> float | None:
        """Seconds until the first held connection may try again (0 included); None when none
        is held."""
        now = self.clock()
        waits = [
            max(self._retry_at.get(key, 0.0) - now, self._buckets[key].wait_time(), 0.0)
            for key in self.held
            if key in self._buckets
        ]
        return min(waits) if waits else None
