"""The opt-out list in memory, for the accept path: no database round trip per message.

Accepting an SMS must not cost a query: with one per request the API answered half as many
requests per second. The list is held as a set and looked at again when it may have changed:
at once (for a second, until the writer has committed) after a change made by this process,
and otherwise at most once a second, by a cheap fingerprint (row count and newest entry) that
a change made by another process alters. A send accepted in that second is still stopped: the
dispatcher checks the list in the database before anything goes out.

A list larger than `max_cached` numbers is not held in memory; each check then asks the
database, as before.

Opt-outs of erased customers are held as keyed hashes of their numbers (`store.optouts`); they
are cached beside the numbers, and a recipient is hashed (once) only when there are any.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable

from sqlalchemy.engine import Engine

from smsdesk.store import optouts
from smsdesk.store.hash_key import keyed_hash

Fingerprint = tuple[int, float | None, int, float | None]


class OptOutCache:
    def __init__(
        self,
        engine: Engine,
        *,
        ttl: float = 1.0,
        max_cached: int = 200_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.engine = engine
        self.ttl = ttl
        self.max_cached = max_cached
        self.clock = clock
        self.reloads = 0  # how often the whole list was read (for tests)
        self._lock = threading.Lock()
        self._numbers: frozenset[str] | None = None
        self._erased: frozenset[str] = frozenset()
        self._fingerprint: Fingerprint | None = None
        self._checked_at = float("-inf")
        self._seen_changes = optouts.changes_in_process
        self._recheck_until = float("-inf")

    def opted_out(self, numbers: Iterable[str]) -> set[str]:
        """Those of `numbers` on the list (may block briefly: call from a thread)."""
        wanted = set(numbers)
        if not wanted:
            return set()
        with self._lock:
            cached = self._current()
            erased = self._erased
        if cached is None:
            with self.engine.connect() as conn:
                return optouts.opted_out(conn, wanted)
        found = wanted & cached
        if erased and len(found) < len(wanted):
            key = optouts.hash_key_of(self.engine)
            if key is not None:
                found.update(n for n in wanted - found if keyed_hash(key, n) in erased)
        return found

    def refresh(self) -> None:
        """Look at the database now if the numbers in memory are stale (call from a thread)."""
        with self._lock:
            self._current()

    def opted_out_in_memory(self, numbers: Iterable[str]) -> set[str] | None:
        """Those of `numbers` on the list if memory can answer now, else None (then call
        `opted_out` from a thread). Never blocks, so the event loop may call it: a hop to a
        thread per accepted SMS cost more than the check itself."""
        wanted = set(numbers)
        if not wanted:
            return set()
        if not self._lock.acquire(blocking=False):
            return None  # another caller is reading the database
        try:
            fresh = self._fresh(self.clock())
            cached, erased = self._numbers, self._erased
        finally:
            self._lock.release()
        if not fresh or cached is None or erased:
            return None  # stale, too large to hold, or needing the hash key of erased numbers
        return wanted & cached

    def _fresh(self, now: float) -> bool:
        """Whether the numbers in memory may answer without a look at the database."""
        if optouts.changes_in_process != self._seen_changes:
            self._seen_changes = optouts.changes_in_process
            self._recheck_until = now + self.ttl
        return now < self._checked_at + self.ttl and now > self._recheck_until

    def _current(self) -> frozenset[str] | None:
        now = self.clock()
        if self._fresh(now):
            return self._numbers
        with self.engine.connect() as conn:
            fingerprint = optouts.opt_out_fingerprint(conn)
            if fingerprint != self._fingerprint:
                small = fingerprint[0] + fingerprint[2] <= self.max_cached
                self._numbers = optouts.all_opted_out(conn) if small else None
                self._erased = optouts.all_erased_hashes(conn) if small else frozenset()
                self._fingerprint = fingerprint
                self.reloads += 1
        self._checked_at = now
        return self._numbers
