"""A message's timeline lines and the message.status events published with them.

Shared by the writes of `store.messages` (sends, operator actions, expiry) and
`store.reports` (delivery reports), so every status change leaves the same trace and
other systems hear about the same statuses whatever caused the change.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy import Connection

from smsdesk.domain.message import Status
from smsdesk.domain.times import iso
from smsdesk.events import MESSAGE_STATUS, EventSink
from smsdesk.store.bulk import insert_tuples
from smsdesk.store.tables import message_events, messages

m = messages


class Event(NamedTuple):
    """One line of a message's timeline (a named tuple: several are made for every message,
    and a frozen dataclass costs several times as much to build)."""

    message_id: str
    at: float
    status: str
    source: str
    code: str | None = None
    detail: str | None = None
    applied: bool = True
    connection_id: str | None = None  # the connection the line is about, where there is one


FAILOVER_SOURCE = "failover"


def failover_event(
    message_id: str, at: float, to_connection: str, reason: str, from_connection: str | None
) -> Event:
    """The line saying a message moved to another connection of its plan, and why.

    `reason` is a code of `outbox.failover` (not_taken, connection_refused, circuit_open,
    plan_exhausted) and the detail the connection it left; the line's connection is the new one.
    """
    return Event(
        message_id,
        at,
        Status.QUEUED.value,
        FAILOVER_SOURCE,
        reason,
        from_connection,
        connection_id=to_connection,
    )


def insert_events(conn: Connection, events: Iterable[Event]) -> None:
    """Add timeline lines (nothing for an empty iterable), at the driver's speed on SQLite."""
    insert_tuples(conn, message_events, Event._fields, list(events))


# Statuses other systems hear about (message.status events); not the queued/sending churn.
PUBLISHED_STATUSES = frozenset(
    s.value
    for s in (
        Status.SENT,
        Status.DELIVERED,
        Status.UNDELIVERED,
        Status.FAILED,
        Status.EXPIRED,
        Status.CANCELLED,
    )
)
# The columns a message.status event's payload is built from.
EVENT_COLUMNS = (m.c.id, m.c.module, m.c.recipient, m.c.reference, m.c.request_id)


def emit_status_events(
    conn: Connection,
    events: EventSink | None,
    changes: Iterable[tuple[Any, str, str | None]],
    now: float,
) -> None:
    """A message.status event per (row, new status, provider code) with a published status.

    `changes` is only iterated when someone subscribes (a sink's optional `wants`), so it may
    be a lazy generator.
    """
    if events is None:
        return
    wants = getattr(events, "wants", None)
    if wants is not None and not wants(conn, MESSAGE_STATUS):
        return
    at = iso(now)
    payloads = [
        {
            "message_id": row.id,
            "status": status,
            "code": code,
            "module": row.module,
            "recipient": row.recipient,
            "reference": row.reference,
            "request_id": row.request_id,
            "at": at,
        }
        for row, status, code in changes
        if status in PUBLISHED_STATUSES
    ]
    if payloads:
        events.emit(conn, MESSAGE_STATUS, payloads)


def event_rows(conn: Connection, ids: Sequence[str]) -> Iterator[Any]:
    """The `EVENT_COLUMNS` of these messages, read when iterated."""
    yield from conn.execute(sa.select(*EVENT_COLUMNS).where(m.c.id.in_(ids)))
