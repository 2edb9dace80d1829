"""One poller per process hands new rows, as updates, to every open live connection.

While at least one page is connected, the poller asks the database every `interval` seconds
for the highest ids of the rows that record changes (`store.live.latest`, one cheap query) and
reads the new rows only when one moved. Changes made by any process on the same database reach
every process's pages this way; with no page connected it asks nothing.

An id taken by a transaction that commits after a higher one was read would be passed over:
ids skipped over are asked for again for `gap_seconds`.

Each connection has a `Subscription`: a list of updates its page asked for, bounded; one that
falls too far behind gets a single `refresh` instead and the page reloads what it shows. A
subscription opened by a logged-in session ends when that session does (logout, revocation,
expiry, in any process): the poller checks its subscribers' sessions every `session_check`
seconds, in one query.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine

from smsdesk.live.updates import Interest, LiveUpdate, cursor_text, refresh, updates_from
from smsdesk.store import live as store
from smsdesk.store.live import Changes, Cursor
from smsdesk.store.live_sessions import live_tokens
from smsdesk.store.writer import Writer

log = logging.getLogger(__name__)

READ_LIMIT = 500
MAX_GAPS = 200


class Subscription:
    """The updates waiting for one connection."""

    def __init__(self, interest: Interest, limit: int = 100, session: str | None = None) -> None:
        self.interest = interest
        self.limit = limit
        self.session = session  # the cookie token of the session that opened it
        self.start = Cursor()
        self._pending: list[LiveUpdate] = []
        self._ready = asyncio.Event()
        self._overflow: Cursor | None = None
        self.closed = False

    def offer(self, update: LiveUpdate) -> None:
        if self.closed or not self.interest.wants(update):
            return
        if self._overflow is not None or len(self._pending) >= self.limit:
            self._pending.clear()
            self._overflow = update.cursor
        else:
            self._pending.append(update)
        self._ready.set()

    def put_first(self, updates: list[LiveUpdate]) -> None:
        """Updates that happened before those waiting (a resumed stream's catch-up)."""
        wanted = [update for update in updates if self.interest.wants(update)]
        if wanted and self._overflow is None:
            self._pending[:0] = wanted
            if len(self._pending) > self.limit:
                self._overflow = self._pending[-1].cursor
                self._pending.clear()
            self._ready.set()

    def close(self) -> None:
        self.closed = True
        self._ready.set()

    async def next(self, timeout: float) -> list[LiveUpdate] | None:
        """The waiting updates ([] when none came within `timeout`); None once closed."""
        if not self._pending and self._overflow is None and not self.closed:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._ready.wait(), timeout)
        self._ready.clear()
        if self.closed:
            return None
        if self._overflow is not None:
            cursor, self._overflow = self._overflow, None
            self._pending.clear()
            return [refresh(cursor)]
        taken, self._pending = self._pending, []
        return taken


class LiveFeed:
    """The process's poller and its subscribers."""

    def __init__(
        self,
        engine: Engine,
        writer: Writer,
        clock: Callable[[], float] = time.time,
        *,
        interval: float = 0.5,
        keep_seconds: float = store.KEEP_SECONDS,
        purge_every: float = 60.0,
        gap_seconds: float = 5.0,
        heartbeat: float = 15.0,
        session_check: float = 1.0,
    ) -> None:
        self.engine = engine
        self.writer = writer
        self.clock = clock
        self.interval = interval
        self.keep_seconds = keep_seconds
        self.purge_every = purge_every
        self.gap_seconds = gap_seconds
        self.heartbeat = heartbeat  # seconds between comments on an idle stream
        self.session_check = session_check  # seconds between checks of subscribers' sessions
        self._next_session_check = 0.0
        self.cursor = Cursor()
        self.polls = 0
        self._subscribers: set[Subscription] = set()
        self._task: asyncio.Task[None] | None = None
        self._ending: set[asyncio.Task[None]] = set()
        self._lock = asyncio.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._gaps: tuple[dict[int, float], dict[int, float], dict[int, float]] = ({}, {}, {})
        self._next_purge = 0.0

    @property
    def subscribers(self) -> int:
        return len(self._subscribers)

    @property
    def polling(self) -> bool:
        """Whether the poller runs (only while a page is connected)."""
        return self._task is not None

    def page_cursor(self) -> str:
        """The cursor a page rendered now resumes from: never ahead of what the page shows
        (the poller's last position if it runs, else the database's newest rows)."""
        if self.polling:
            return cursor_text(self.cursor)
        with self.engine.connect() as conn:
            return cursor_text(store.latest(conn))

    async def _read(self, work: Callable[[Any], Any]) -> Any:
        def run() -> Any:
            with self.engine.connect() as conn:
                return work(conn)

        return await asyncio.get_running_loop().run_in_executor(None, run)

    async def subscribe(
        self, interest: Interest, resume: Cursor | None = None, *, session: str | None = None
    ) -> Subscription:
        """A connection's subscription from now; with `resume`, what it missed comes first.
        With `session` (its cookie token) it ends when that session is no longer logged in."""
        subscription = Subscription(interest, session=session)
        async with self._lock:
            self._loop = asyncio.get_running_loop()
            if self._task is None:
                self.cursor = await self._read(store.latest)
                self._gaps = ({}, {}, {})
                self._task = asyncio.create_task(self._run(), name="smsdesk-live-feed")
            self._subscribers.add(subscription)
            subscription.start = self.cursor
        if resume is not None and _behind(resume, subscription.start):
            found: Changes = await self._read(
                lambda conn: store.changes(conn, resume, upto=subscription.start, limit=READ_LIMIT)
            )
            updates, _ = updates_from(found, resume)
            if found.full:
                updates = [refresh(subscription.start)]
            subscription.put_first(updates)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        subscription.close()
        self._subscribers.discard(subscription)

    async def poll(
        self, after: Cursor | None, interest: Interest
    ) -> tuple[list[LiveUpdate], Cursor]:
        """For pages that cannot keep a stream open: what changed after `after`, and the
        cursor to ask from next (without `after`: none, and the cursor of now)."""
        if after is None:
            return [], await self._read(store.latest)
        found: Changes = await self._read(lambda conn: store.changes(conn, after, limit=READ_LIMIT))
        updates, cursor = updates_from(found, after)
        if found.full:
            return [refresh(cursor)], cursor
        return [update for update in updates if interest.wants(update)], cursor

    async def _run(self) -> None:
        while True:
            if not self._subscribers:
                self._task = None  # in the same step as the check: a new subscriber restarts
                return
            try:
                await self._tick()
                await self._end_logged_out()
                await self._purge()
            except asyncio.CancelledError:
                raise
            except Exception:  # a database hiccup must not end live updates for good
                log.exception("live feed: reading changes failed")
            await asyncio.sleep(self.interval)

    def _wanted_gaps(self) -> tuple[list[int], list[int], list[int]]:
        now = time.monotonic()
        for gaps in self._gaps:
            for gap_id in [i for i, until in gaps.items() if until < now]:
                del gaps[gap_id]
        return (list(self._gaps[0]), list(self._gaps[1]), list(self._gaps[2]))

    async def _tick(self) -> None:
        start = self.cursor
        missing = self._wanted_gaps()

        def read(conn: Any) -> Changes | None:
            latest = store.latest(conn)
            if not any(missing) and not _behind(start, latest):
                return None
            return store.changes(conn, start, missing=missing, limit=READ_LIMIT)

        self.polls += 1
        found: Changes | None = await self._read(read)
        if found is None:
            return
        updates, self.cursor = updates_from(found, start)
        self._note_gaps(start, found)
        for update in updates:
            for subscription in list(self._subscribers):
                subscription.offer(update)

    def _note_gaps(self, start: Cursor, found: Changes) -> None:
        until = time.monotonic() + self.gap_seconds
        kinds = (
            (start.timeline, [row.id for row in found.timeline]),
            (start.conversation, [row.id for row in found.conversation]),
            (start.live, [row.id for row in found.live]),
        )
        for gaps, (after, ids) in zip(self._gaps, kinds, strict=True):
            for seen in ids:
                gaps.pop(seen, None)
            new = [i for i in ids if i > after]
            if not new:
                continue
            skipped = max(new) - after - len(new)
            if 0 < skipped <= MAX_GAPS:
                seen_ids = set(new)
                for gap_id in range(after + 1, max(new)):
                    if gap_id not in seen_ids:
                        gaps.setdefault(gap_id, until)

    def end_session(self, token: str) -> int:
        """End this process's streams of a session now (e.g. it just logged out); how many."""
        ended = [s for s in self._subscribers if s.session == token]
        for subscription in ended:
            self.unsubscribe(subscription)
        return len(ended)

    async def _end_logged_out(self) -> None:
        """End the streams whose session logged out, was revoked or expired meanwhile."""
        now = time.monotonic()
        if now < self._next_session_check:
            return
        self._next_session_check = now + self.session_check
        tokens = {s.session for s in self._subscribers if s.session is not None}
        if not tokens:
            return
        at = self.clock()
        alive: set[str] = await self._read(lambda conn: live_tokens(conn, tokens, at))
        for token in tokens - alive:
            self.end_session(token)

    async def _purge(self) -> None:
        now = self.clock()
        if now < self._next_purge:
            return
        self._next_purge = now + self.purge_every
        cutoff = now - self.keep_seconds
        await self.writer.run(lambda conn: store.purge_before(conn, cutoff))

    def close(self) -> None:
        """End every open stream (their pages reconnect, or fall back to polling)."""
        for subscription in list(self._subscribers):
            self.unsubscribe(subscription)
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            self._ending.add(task)
            task.add_done_callback(self._ending.discard)

    def close_soon(self) -> None:
        """`close` from a signal handler or another thread."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(self.close)

    async def stop(self) -> None:
        self.close()
        for task in list(self._ending):
            with contextlib.suppress(asyncio.CancelledError):
                await task


def _behind(cursor: Cursor, other: Cursor) -> bool:
    """Whether `other` has rows `cursor` has not seen."""
    return (
        cursor.timeline < other.timeline
        or cursor.conversation < other.conversation
        or cursor.live < other.live
    )
