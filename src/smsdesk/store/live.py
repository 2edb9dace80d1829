"""What the screens show live: the newest rows of the tables that record changes.

Most changes already leave a row with an increasing id: a message's status change a timeline
line (`message_events`), an SMS joining a conversation an entry (`request_messages`). Changes of
a request that leave no such row (status, title, owner, a new request) are published here into
`live_events`, in the transaction of the change, and kept for minutes only. A reader remembers
the three highest ids it has seen (a `Cursor`) and asks for what came after.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection

from smsdesk.store.tables import live_events, message_events, messages, request_messages

REQUEST_TOPIC = "request"
KEEP_SECONDS = 600.0  # how long published changes are kept
PURGE_CHANCE = 0.01


@dataclass(frozen=True, slots=True)
class Cursor:
    """The highest id seen of timeline lines, conversation entries and live events."""

    timeline: int = 0
    conversation: int = 0
    live: int = 0


@dataclass(frozen=True, slots=True)
class StatusChange:
    """A timeline line: message `message_id` is now `status`; `request_id` if it is a reply."""

    id: int
    message_id: str
    status: str
    request_id: str | None


@dataclass(frozen=True, slots=True)
class ConversationEntry:
    """An SMS joined request `request_id`'s conversation (`direction` in or out)."""

    id: int
    request_id: str
    direction: str
    message_id: str | None


@dataclass(frozen=True, slots=True)
class LiveEvent:
    """A published change without a row of its own (`topic`, `key`, `payload`)."""

    id: int
    topic: str
    key: str | None
    payload: dict[str, Any]


@dataclass(slots=True)
class Changes:
    """Rows after a cursor, each kind in id order; `full` when a limit cut one of them short."""

    timeline: list[StatusChange] = field(default_factory=list)
    conversation: list[ConversationEntry] = field(default_factory=list)
    live: list[LiveEvent] = field(default_factory=list)
    full: bool = False


def publish(
    conn: Connection, topic: str, key: str | None, payload: dict[str, Any], at: float
) -> None:
    """Record a change the screens show, in the caller's transaction."""
    publish_many(conn, [(topic, key, payload)], at)


def publish_many(
    conn: Connection, events: Iterable[tuple[str, str | None, dict[str, Any]]], at: float
) -> None:
    """Record several changes (topic, key, payload) in the caller's transaction."""
    rows = [
        {"at": at, "topic": topic, "key": key, "payload": json.dumps(payload, sort_keys=True)}
        for topic, key, payload in events
    ]
    if rows:
        conn.execute(live_events.insert(), rows)
        # Pages purge as they read; where none is ever open, a publish now and then does.
        if random.random() < PURGE_CHANCE:
            purge_before(conn, at - KEEP_SECONDS)


def request_changed(
    conn: Connection, request_ids: Sequence[str], fields: Sequence[str], at: float
) -> None:
    """Publish that requests changed (`fields` named; "created" for new ones)."""
    payload = {"fields": sorted(fields)}
    publish_many(conn, ((REQUEST_TOPIC, rid, payload) for rid in request_ids), at)


def latest(conn: Connection) -> Cursor:
    """The cursor of now: the highest id of each table, in one round trip."""
    row = conn.execute(
        sa.select(
            sa.select(sa.func.max(message_events.c.id)).scalar_subquery(),
            sa.select(sa.func.max(request_messages.c.id)).scalar_subquery(),
            sa.select(sa.func.max(live_events.c.id)).scalar_subquery(),
        )
    ).one()
    return Cursor(row[0] or 0, row[1] or 0, row[2] or 0)


def _after(column: Any, after: int, upto: int | None, also: Iterable[int]) -> Any:
    condition = column > after
    if upto is not None:
        condition = sa.and_(condition, column <= upto)
    extra = sorted(set(also))
    return sa.or_(condition, column.in_(extra)) if extra else condition


def changes(
    conn: Connection,
    after: Cursor,
    *,
    upto: Cursor | None = None,
    missing: tuple[Iterable[int], Iterable[int], Iterable[int]] = ((), (), ()),
    limit: int = 500,
) -> Changes:
    """The rows after `after` (up to `upto`, if given), plus those with the `missing` ids
    (rows seen to be absent earlier: a transaction that took an id may commit late)."""
    found = Changes()
    timeline = conn.execute(
        sa.select(
            message_events.c.id,
            message_events.c.message_id,
            message_events.c.status,
            messages.c.request_id,
        )
        .join(messages, messages.c.id == message_events.c.message_id, isouter=True)
        .where(
            _after(message_events.c.id, after.timeline, upto.timeline if upto else None, missing[0])
        )
        .order_by(message_events.c.id)
        .limit(limit)
    ).all()
    found.timeline = [StatusChange(*row) for row in timeline]
    entries = conn.execute(
        sa.select(
            request_messages.c.id,
            request_messages.c.request_id,
            request_messages.c.direction,
            request_messages.c.message_id,
        )
        .where(
            _after(
                request_messages.c.id,
                after.conversation,
                upto.conversation if upto else None,
                missing[1],
            )
        )
        .order_by(request_messages.c.id)
        .limit(limit)
    ).all()
    found.conversation = [ConversationEntry(*row) for row in entries]
    published = conn.execute(
        sa.select(live_events.c.id, live_events.c.topic, live_events.c.key, live_events.c.payload)
        .where(_after(live_events.c.id, after.live, upto.live if upto else None, missing[2]))
        .order_by(live_events.c.id)
        .limit(limit)
    ).all()
    found.live = [LiveEvent(r.id, r.topic, r.key, _payload(r.payload)) for r in published]
    found.full = limit in (len(found.timeline), len(found.conversation), len(found.live))
    return found


def _payload(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def purge_before(conn: Connection, at: float) -> int:
    """Delete live events older than `at`; answers how many went."""
    return conn.execute(live_events.delete().where(live_events.c.at < at)).rowcount or 0
