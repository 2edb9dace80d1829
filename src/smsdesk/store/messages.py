"""Reading and writing messages and their timeline. Every function takes an open connection.

Write functions are meant to run as writer jobs (see `store.writer`), so they may be batched
into one transaction with others; they never commit themselves.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from operator import itemgetter
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection, bindparam
from sqlalchemy.engine import Dialect

from smsdesk.domain.message import Status, TransitionOutcome, transition
from smsdesk.domain.sms import StatusReport
from smsdesk.domain.times import iso
from smsdesk.events import MESSAGE_STATUS, EventSink
from smsdesk.store.tables import idempotency_keys, message_events, messages, unmatched_reports

m = messages
ev = message_events


@dataclass(frozen=True, slots=True)
class Event:
    """One line of a message's timeline."""

    message_id: str
    at: float
    status: str
    source: str
    code: str | None = None
    detail: str | None = None
    applied: bool = True

    def row(self) -> dict[str, Any]:
        return {
            "message_id": self.message_id,
            "at": self.at,
            "status": self.status,
            "source": self.source,
            "code": self.code,
            "detail": self.detail,
            "applied": self.applied,
        }


def insert_events(conn: Connection, events: Iterable[Event]) -> None:
    rows = [event.row() for event in events]
    if rows:
        conn.execute(ev.insert(), rows)


@lru_cache(maxsize=32)
def _positional_insert(
    dialect: Dialect, table: sa.Table, keys: tuple[str, ...]
) -> tuple[str, itemgetter[Any]] | None:
    """The INSERT for rows with these keys and a getter putting a row's values in its order.

    None unless the driver takes positional parameters (SQLite) and the statement binds exactly
    these keys (no column defaults filled in by SQLAlchemy).
    """
    compiled = table.insert().compile(dialect=dialect, column_keys=list(keys))
    order = compiled.positiontup or []
    if not compiled.positional or len(order) < 2 or sorted(order) != sorted(keys):
        return None
    return compiled.string, itemgetter(*order)


def insert_rows(conn: Connection, table: sa.Table, rows: Sequence[dict[str, Any]]) -> None:
    """A multi-row insert of rows that all have the same keys.

    On SQLite the rows go to the driver as tuples: SQLAlchemy's per-row parameter processing
    costs about as much as SQLite's own work (none of these columns need a bind processor
    there: booleans and floats are stored as they are).
    """
    if not rows:
        return
    prepared = _positional_insert(conn.dialect, table, tuple(rows[0]))
    if prepared is None:
        conn.execute(table.insert(), list(rows))
        return
    sql, values = prepared
    conn.exec_driver_sql(sql, [values(row) for row in rows])


def insert_messages(conn: Connection, rows: Sequence[dict[str, Any]], source: str) -> None:
    """Store new messages and their first timeline entry."""
    insert_rows(conn, m, rows)
    insert_rows(
        conn,
        ev,
        [
            {
                "message_id": row["id"],
                "at": row["created_at"],
                "status": row["status"],
                "source": source,
                "code": None,
                "detail": "scheduled" if row.get("scheduled_at") else None,
                "applied": True,
            }
            for row in rows
        ],
    )


@dataclass(slots=True)
class NewMessages:
    """A writer job storing accepted messages (and the Idempotency-Key answer, if any).

    Jobs of this kind that wait for the writer together are merged into one multi-row insert
    per table: one statement for many API requests instead of one each.
    """

    rows: list[dict[str, Any]]
    source: str
    idempotency: list[dict[str, Any]] = field(default_factory=list)

    def __call__(self, conn: Connection) -> None:
        if self.idempotency:
            insert_rows(conn, idempotency_keys, self.idempotency)
        if self.rows:
            insert_messages(conn, self.rows, self.source)

    def merge(self, other: object) -> NewMessages | None:
        """One job doing both, or None if `other` cannot be merged with this one."""
        if not isinstance(other, NewMessages) or other.source != self.source:
            return None
        return NewMessages(
            self.rows + other.rows, self.source, self.idempotency + other.idempotency
        )


def claim_due(
    conn: Connection, *, module: str, owner: str, limit: int, now: float, lease_until: float
) -> list[sa.Row[Any]]:
    """Take up to `limit` due messages of a module, most urgent first, for this owner.

    On PostgreSQL rows locked by another dispatcher are skipped, so workers never wait for
    each other and never take the same message.

    The ids are selected first, in a statement of their own: as an `IN (subquery)` of the
    UPDATE, PostgreSQL may run the subquery again for each row (a nested loop, chosen when
    the table has no statistics yet, as after a burst of inserts), each run skipping the rows
    the UPDATE already took and locking the next `limit`: a claim of 25 took 2,000 messages.
    """
    due = (
        conn.execute(
            sa.select(m.c.id)
            .where(
                m.c.status == Status.QUEUED.value,
                m.c.module == module,
                m.c.next_attempt_at <= now,
            )
            .order_by(m.c.priority, m.c.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        .scalars()
        .all()
    )
    if not due:
        return []
    claimed = list(
        conn.execute(
            m.update()
            .where(m.c.id.in_(due), m.c.status == Status.QUEUED.value)
            .values(
                status=Status.SENDING.value,
                lease_owner=owner,
                lease_until=lease_until,
                attempts=m.c.attempts + 1,
                updated_at=now,
            )
            .returning(*m.c)
        ).all()
    )
    claimed.sort(key=lambda row: (row.priority, row.id))
    insert_events(
        conn,
        (
            Event(
                row.id,
                now,
                Status.SENDING.value,
                "dispatcher",
                detail=f"attempt {row.attempts} by {owner}",
            )
            for row in claimed
        ),
    )
    return claimed


def release_expired_leases(conn: Connection, now: float) -> int:
    """Put back in the queue messages whose dispatcher stopped before recording a result."""
    ids = (
        conn.execute(
            sa.select(m.c.id)
            .where(m.c.status == Status.SENDING.value, m.c.lease_until < now)
            .with_for_update(skip_locked=True)
        )
        .scalars()
        .all()
    )
    if not ids:
        return 0
    conn.execute(
        m.update()
        .where(m.c.id.in_(ids), m.c.status == Status.SENDING.value)
        .values(
            status=Status.QUEUED.value,
            lease_owner=None,
            lease_until=None,
            next_attempt_at=now,
            updated_at=now,
        )
    )
    insert_events(
        conn,
        (
            Event(i, now, Status.QUEUED.value, "dispatcher", detail="lease expired; taken up again")
            for i in ids
        ),
    )
    return len(ids)


@dataclass(frozen=True, slots=True)
class Outcome:
    """What the dispatcher decided for one claimed message after the provider answered."""

    message_id: str
    status: Status
    code: str | None = None
    detail: str | None = None
    provider_message_id: str | None = None
    next_attempt_at: float | None = None


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
_EVENT_COLUMNS = (m.c.id, m.c.module, m.c.recipient, m.c.reference, m.c.request_id)


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


def _event_rows(conn: Connection, ids: Sequence[str]) -> Iterator[Any]:
    yield from conn.execute(sa.select(*_EVENT_COLUMNS).where(m.c.id.in_(ids)))


def record_outcomes(
    conn: Connection,
    owner: str,
    outcomes: Sequence[Outcome],
    now: float,
    events: EventSink | None = None,
) -> int:
    """Store send outcomes for messages this owner still holds; return how many were stored."""
    ids = [o.message_id for o in outcomes]
    held = {
        row.id: row
        for row in conn.execute(
            sa.select(*_EVENT_COLUMNS)
            .where(m.c.id.in_(ids), m.c.status == Status.SENDING.value, m.c.lease_owner == owner)
            .with_for_update()
        )
    }
    mine = [o for o in outcomes if o.message_id in held]
    rows = [_outcome_row(o, now) for o in mine]
    if rows:
        conn.execute(
            m.update()
            .where(m.c.id == bindparam("mid"))
            .values(
                status=bindparam("new_status"),
                provider_message_id=bindparam("pid"),
                status_code=bindparam("code"),
                error=bindparam("err"),
                next_attempt_at=bindparam("nat"),
                sent_at=bindparam("sat"),
                final_at=bindparam("fat"),
                lease_owner=None,
                lease_until=None,
                updated_at=now,
            ),
            rows,
        )
    insert_events(
        conn,
        (
            Event(
                o.message_id,
                now,
                o.status.value,
                "provider" if o.code else "dispatcher",
                o.code,
                o.detail,
            )
            for o in mine
        ),
    )
    emit_status_events(
        conn, events, ((held[o.message_id], o.status.value, o.code) for o in mine), now
    )
    sent = {
        o.provider_message_id: o.message_id
        for o in mine
        if o.status is Status.SENT and o.provider_message_id
    }
    if sent:
        _apply_early_reports(conn, sent, now, events)
    return len(mine)


def _outcome_row(o: Outcome, now: float) -> dict[str, Any]:
    sent = o.status is Status.SENT
    return {
        "mid": o.message_id,
        "new_status": o.status.value,
        "pid": o.provider_message_id,
        "code": o.code,
        "err": None if sent else o.detail,
        "nat": o.next_attempt_at if o.next_attempt_at is not None else now,
        "sat": now if sent else None,
        "fat": now if o.status.is_final else None,
    }


def _apply_early_reports(
    conn: Connection, sent: dict[str, str], now: float, events: EventSink | None = None
) -> None:
    """Reports that arrived before the send was recorded are applied now."""
    early = conn.execute(
        sa.select(unmatched_reports)
        .where(unmatched_reports.c.provider_message_id.in_(sent))
        .order_by(unmatched_reports.c.id)
    ).all()
    if not early:
        return
    by_module: dict[str, list[StatusReport]] = {}
    for row in early:
        by_module.setdefault(row.module, []).append(
            StatusReport(row.provider_message_id, Status(row.status), row.code or "")
        )
    for module, reports in by_module.items():
        apply_reports(conn, module, reports, now, keep_unmatched=False, events=events)
    conn.execute(
        unmatched_reports.delete().where(unmatched_reports.c.id.in_([row.id for row in early]))
    )


@dataclass(frozen=True, slots=True)
class ReportTally:
    applied: int = 0
    duplicate: int = 0
    stale: int = 0
    unmatched: int = 0
    statuses: tuple[str, ...] = ()


def apply_reports(
    conn: Connection,
    module: str,
    reports: Sequence[StatusReport],
    now: float,
    *,
    keep_unmatched: bool = True,
    events: EventSink | None = None,
    source: str = "report",
) -> ReportTally:
    """Apply delivery reports: idempotent, order-safe, unmatched ones kept for later.

    `source` names their origin in the timeline: "report" (the provider's callback),
    "reconcile" (a status query) or "agent" (the messaging-agent API).
    """
    pids = {r.provider_message_id for r in reports}
    found_rows = conn.execute(
        sa.select(*_EVENT_COLUMNS, m.c.status, m.c.provider_message_id)
        .where(m.c.module == module, m.c.provider_message_id.in_(pids))
        .with_for_update()
    ).all()
    current = {row.provider_message_id: [row.id, Status(row.status)] for row in found_rows}
    updates: list[dict[str, Any]] = []
    timeline: list[Event] = []
    unmatched: list[dict[str, Any]] = []
    counts = {"applied": 0, "duplicate": 0, "stale": 0}
    for report in reports:
        found = current.get(report.provider_message_id)
        if found is None:
            unmatched.append(
                {
                    "module": module,
                    "provider_message_id": report.provider_message_id,
                    "status": report.status.value,
                    "code": report.raw_code,
                    "received_at": now,
                }
            )
            continue
        result = transition(found[1], report.status)
        counts[result.outcome.value] += 1
        if result.outcome is TransitionOutcome.DUPLICATE:
            continue
        detail = report.description or None
        if result.applied:
            found[1] = result.status
            updates.append(
                {
                    "mid": found[0],
                    "new_status": result.status.value,
                    "code": report.raw_code,
                    "fat": now if result.status.is_final else None,
                }
            )
        else:
            detail = f"ignored: message is already {found[1].value}"
        timeline.append(
            Event(
                found[0],
                now,
                report.status.value,
                source,
                report.raw_code,
                detail,
                applied=result.applied,
            )
        )
    if updates:
        conn.execute(
            m.update()
            .where(m.c.id == bindparam("mid"))
            .values(
                status=bindparam("new_status"),
                status_code=bindparam("code"),
                final_at=sa.func.coalesce(m.c.final_at, bindparam("fat")),
                updated_at=now,
            ),
            updates,
        )
    insert_events(conn, timeline)
    if updates:
        by_id = {row.id: row for row in found_rows}
        emit_status_events(
            conn, events, ((by_id[u["mid"]], u["new_status"], u["code"]) for u in updates), now
        )
    if unmatched and keep_unmatched:
        conn.execute(unmatched_reports.insert(), unmatched)
    return ReportTally(
        counts["applied"],
        counts["duplicate"],
        counts["stale"],
        len(unmatched),
        tuple(u["new_status"] for u in updates),
    )


def get_message(conn: Connection, message_id: str) -> sa.Row[Any] | None:
    return conn.execute(sa.select(m).where(m.c.id == message_id)).first()


def get_timeline(conn: Connection, message_id: str) -> list[sa.Row[Any]]:
    return list(
        conn.execute(sa.select(ev).where(ev.c.message_id == message_id).order_by(ev.c.id)).all()
    )


@dataclass(frozen=True, slots=True)
class MessageFilter:
    status: str | None = None
    module: str | None = None
    recipient: str | None = None
    since: float | None = None
    until: float | None = None
    priority: int | None = None


def list_messages(
    conn: Connection, flt: MessageFilter, *, before_id: str | None, limit: int
) -> list[sa.Row[Any]]:
    """Newest first, paged by id (a cursor stays stable while new messages arrive)."""
    query = sa.select(m)
    conditions = [
        (flt.status, m.c.status == flt.status),
        (flt.module, m.c.module == flt.module),
        (flt.recipient, m.c.recipient == flt.recipient),
        (flt.since, m.c.created_at >= (flt.since or 0)),
        (flt.until, m.c.created_at < (flt.until or 0)),
        (flt.priority, m.c.priority == flt.priority),
        (before_id, m.c.id < (before_id or "")),
    ]
    for value, condition in conditions:
        if value is not None:
            query = query.where(condition)
    return list(conn.execute(query.order_by(m.c.id.desc()).limit(limit)).all())


def change_status(
    conn: Connection,
    message_id: str,
    expected: Status,
    new: Status,
    now: float,
    detail: str,
    events: EventSink | None = None,
) -> bool:
    """An operator's action (cancel, resend): applied only if the status is still `expected`."""
    values: dict[str, Any] = {"status": new.value, "updated_at": now}
    if new is Status.QUEUED:
        values.update(
            next_attempt_at=now, error=None, final_at=None, attempts=0, provider_message_id=None
        )
    elif new.is_final:
        values["final_at"] = now
    done = conn.execute(
        m.update().where(m.c.id == message_id, m.c.status == expected.value).values(**values)
    ).rowcount
    if done:
        insert_events(conn, [Event(message_id, now, new.value, "operator", detail=detail)])
        if new.value in PUBLISHED_STATUSES:
            changes = ((row, new.value, None) for row in _event_rows(conn, [message_id]))
            emit_status_events(conn, events, changes, now)
    return bool(done)


def expire_overdue(conn: Connection, now: float, events: EventSink | None = None) -> int:
    """Queued messages whose validity ended are expired, with the reason in their timeline."""
    ids = (
        conn.execute(
            sa.select(m.c.id)
            .where(m.c.status == Status.QUEUED.value, m.c.expires_at <= now)
            .with_for_update(skip_locked=True)
        )
        .scalars()
        .all()
    )
    if not ids:
        return 0
    reason = "validity period ended before the message could be sent"
    conn.execute(
        m.update()
        .where(m.c.id.in_(ids), m.c.status == Status.QUEUED.value)
        .values(
            status=Status.EXPIRED.value,
            final_at=now,
            updated_at=now,
            # Keep the last provider error: it is usually why the message never went out.
            error=sa.func.coalesce(reason + " (last error: " + m.c.error + ")", reason),
        )
    )
    rows = conn.execute(
        sa.select(*_EVENT_COLUMNS, m.c.error, m.c.status_code).where(m.c.id.in_(ids))
    ).all()
    insert_events(
        conn,
        (
            Event(r.id, now, Status.EXPIRED.value, "dispatcher", r.status_code, r.error)
            for r in rows
        ),
    )
    emit_status_events(conn, events, ((r, Status.EXPIRED.value, r.status_code) for r in rows), now)
    return len(ids)


def queue_depth(conn: Connection) -> dict[int, int]:
    """Queued messages per SMS priority."""
    rows = conn.execute(
        sa.select(m.c.priority, sa.func.count())
        .where(m.c.status == Status.QUEUED.value)
        .group_by(m.c.priority)
    ).all()
    return {int(priority): int(count) for priority, count in rows}
