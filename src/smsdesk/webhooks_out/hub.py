"""The event sink that turns events into webhook deliveries, one per subscriber.

`emit` runs inside the transaction that caused the event (see `smsdesk.events`), for every
status change of every SMS, so it must cost next to nothing when nobody subscribes: the active
subscriptions are kept in memory, read again from the database at most every `refresh_seconds`
(2 s), and dropped at once when this process changes a subscription. A subscription added or
changed by another process (another `serve`, or the CLI) is therefore seen here within about
2 seconds; events emitted in that window follow the old list.

After a transaction that queued deliveries commits, `notify` (the deliverer's `wake`) is
called so they go out at once; a deliverer in another process finds them at its next poll.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.engine import Engine

from smsdesk.crypto import SecretBox
from smsdesk.domain.ids import new_id
from smsdesk.domain.webhook_settings import Network
from smsdesk.store import webhooks as webhook_db
from smsdesk.webhooks_out.subscriptions import WebhookStore, envelope


class WebhookHub:
    """An `EventSink` queueing a delivery per payload per active subscriber of its type."""

    def __init__(
        self,
        engine: Engine,
        box: SecretBox,
        clock: Callable[[], float] = time.time,
        *,
        refresh_seconds: float = 2.0,
        monotonic: Callable[[], float] = time.monotonic,
        allowed: Callable[[], Sequence[Network]] = tuple,
    ) -> None:
        self.engine = engine
        self.clock = clock
        self.refresh_seconds = refresh_seconds
        self.monotonic = monotonic
        self.notify: Callable[[], None] | None = None
        self.store = WebhookStore(
            engine, box, clock, on_change=self.invalidate, on_queued=self._notify, allowed=allowed
        )
        self._subscribers: dict[str, tuple[str, ...]] = {}
        self._loaded_at: float | None = None
        self._generation = 0
        self._queued = threading.Event()
        self.refreshes = 0  # how often the cache was read from the database (for tests)
        webhook_db.listen_commits(engine, self._after_commit)

    def close(self) -> None:
        webhook_db.stop_listening_commits(self.engine, self._after_commit)

    def invalidate(self) -> None:
        """Forget the cached subscriptions: the next event reads them again."""
        self._generation += 1
        self._loaded_at = None

    def subscribers(self, conn: Connection, event_type: str) -> tuple[str, ...]:
        """Ids of the active subscriptions to `event_type` (from the cache when fresh)."""
        loaded_at = self._loaded_at
        if loaded_at is None or self.monotonic() - loaded_at >= self.refresh_seconds:
            self._refresh(conn)
        return self._subscribers.get(event_type, ())

    def wants(self, conn: Connection, event_type: str) -> bool:
        """Whether anyone subscribes to `event_type` (so building payloads is worth it)."""
        return bool(self.subscribers(conn, event_type))

    def emit(self, conn: Connection, event_type: str, payloads: Sequence[dict[str, Any]]) -> None:
        if not payloads:
            return
        targets = self.subscribers(conn, event_type)
        if not targets:
            return
        now = self.clock()
        rows: list[dict[str, Any]] = []
        for data in payloads:
            event_id = new_id()
            body = envelope(event_id, event_type, now, data)
            rows.extend(
                webhook_db.delivery_row(target, event_type, event_id, body, now)
                for target in targets
            )
        webhook_db.insert_deliveries(conn, rows)
        self._queued.set()

    def _refresh(self, conn: Connection) -> None:
        started, generation = self.monotonic(), self._generation
        by_type: dict[str, list[str]] = {}
        for sub_id, events in webhook_db.active_subscription_events(conn):
            for event_type in events.split(","):
                by_type.setdefault(event_type, []).append(sub_id)
        self._subscribers = {key: tuple(ids) for key, ids in by_type.items()}
        # A change made while reading may be missing from what was read: read again next time.
        self._loaded_at = started if generation == self._generation else None
        self.refreshes += 1

    def _after_commit(self, _conn: Any) -> None:
        # Cheap for every other commit: one flag test.
        if self._queued.is_set():
            self._queued.clear()
            self._notify()

    def _notify(self) -> None:
        notify = self.notify
        if notify is not None:
            notify()
