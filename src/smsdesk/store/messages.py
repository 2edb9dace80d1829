"""Reading and writing messages and their timeline. Every function takes an open connection.

Write functions are meant to run as writer jobs (see `store.writer`), so they may be batched
into one transaction with others; they never commit themselves.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, NamedTuple

import sqlalchemy as sa
from sqlalchemy import Connection, bindparam
from sqlalchemy.exc import IntegrityError

from smsdesk.domain.message import Status
from smsdesk.events import EventSink
from smsdesk.store.bulk import execute_rows, insert_rows
from smsdesk.store.claims import CLAIMED_COLUMNS, claim_in_one_statement
from smsdesk.store.reports import ReportTally, apply_early_reports
from smsdesk.store.spend import admitted
from smsdesk.store.tables import IS_QUEUED, idempotency_keys, message_events, messages
from smsdesk.store.timeline import (
    EVENT_COLUMNS,
    PUBLISHED_STATUSES,
    Event,
    emit_status_events,
    event_rows,
    failover_event,
    insert_events,
)

m = messages
ev = message_events


def insert_messages(conn: Connection, rows: Sequence[dict[str, Any]], source: str) -> None:
    """Store new messages and their first timeline entry; the spend controls may refuse them
    (`store.spend.SpendRefused`, nothing stored; automatic messages are left out instead)."""
    rows = admitted(conn, rows, source)
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


class IdempotencyKeyTaken(IntegrityError):
    """An Idempotency-Key of the job was stored meanwhile: the request that did so answers."""

    @classmethod
    def of(cls, exc: IntegrityError) -> IdempotencyKeyTaken:
        """The same database error, named for what it means here."""
        return cls(
            exc.statement,
            exc.params,
            exc if exc.orig is None else exc.orig,
            hide_parameters=exc.hide_parameters,
            connection_invalidated=exc.connection_invalidated,
            ismulti=exc.ismulti,
        )


def get_idempotency(conn: Connection, api_key_id: str, key: str) -> sa.Row[Any] | None:
    """The stored answer to the request an API key sent with this Idempotency-Key, if any."""
    ik = idempotency_keys
    return conn.execute(sa.select(ik).where(ik.c.api_key_id == api_key_id, ik.c.key == key)).first()


@dataclass(slots=True)
class NewMessages:
    """A writer job storing accepted messages (and the Idempotency-Key answer, if any).

    Jobs of this kind that wait for the writer together are merged into one multi-row insert
    per table: one statement for many API requests instead of one each.
    """

    rows: list[dict[str, Any]]
    source: str
    idempotency: list[dict[str, Any]] = field(default_factory=list)
    # An API answer waits for it: the writer commits such jobs ahead of the others.
    urgent: ClassVar[bool] = True

    def __call__(self, conn: Connection) -> None:
        if self.idempotency:
            try:
                insert_rows(conn, idempotency_keys, self.idempotency)
            except IntegrityError as exc:
                raise IdempotencyKeyTaken.of(exc) from exc
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
    conn: Connection,
    *,
    owner: str,
    limit: int,
    now: float,
    lease_until: float,
    connection_id: str | None = None,
    module: str | None = None,
) -> list[sa.Row[Any]]:
    """Take up to `limit` due messages of a connection, most urgent first, for this owner.

    With `connection_id`, the connection's messages, and, if `module` is given too, messages
    of that module with no connection yet (written before connections, or by a writer that
    sets none): they become the connection's. With only `module`, the module's messages.

    On PostgreSQL rows locked by another dispatcher are skipped, so workers never wait for
    each other and never take the same message.

    On PostgreSQL the ids are selected first, in a statement of their own: as an
    `IN (subquery)` of the UPDATE, PostgreSQL may run the subquery again for each row (a
    nested loop, chosen when the table has no statistics yet, as after a burst of inserts),
    each run skipping the rows the UPDATE already took and locking the next `limit`: a claim
    of 25 took 2,000 messages. SQLite, with one writer at a time, claims in one statement
    (`store.claims`). `delivery_report` and `transactional` come back as SQLite's 1 and 0.
    """
    if connection_id is None and module is None:
        raise ValueError("claim_due needs a connection or a module")
    if conn.dialect.name == "sqlite":
        claimed = claim_in_one_statement(
            conn,
            owner=owner,
            limit=limit,
            now=now,
            lease_until=lease_until,
            connection_id=connection_id,
            module=module,
        )
        return _with_timeline(conn, claimed, now, owner)
    if connection_id is None:
        found = _due_ids(conn, m.c.module == module, now, limit)
    else:
        found = _due_ids(conn, m.c.connection_id == connection_id, now, limit)
        if module is not None:
            # A query of its own, so each one follows the claim index in order.
            unassigned = sa.and_(m.c.connection_id.is_(None), m.c.module == module)
            found = sorted(found + _due_ids(conn, unassigned, now, limit))[:limit]
    due = [message_id for _, message_id in found]
    if not due:
        return []
    values: dict[str, Any] = {
        "status": Status.SENDING.value,
        "lease_owner": owner,
        "lease_until": lease_until,
        "attempts": m.c.attempts + 1,
        "connection_attempts": m.c.connection_attempts + 1,
        "updated_at": now,
    }
    if connection_id is not None:
        values["connection_id"] = sa.func.coalesce(m.c.connection_id, connection_id)
    claimed = list(
        conn.execute(
            m.update()
            .where(m.c.id.in_(due), m.c.status == Status.QUEUED.value)
            .values(**values)
            .returning(*CLAIMED_COLUMNS)
        ).all()
    )
    return _with_timeline(conn, claimed, now, owner)


def _with_timeline(
    conn: Connection, claimed: list[sa.Row[Any]], now: float, owner: str
) -> list[sa.Row[Any]]:
    """The claimed rows, most urgent first, each with its `sending` line in the timeline."""
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
                connection_id=row.connection_id,
            )
            for row in claimed
        ),
    )
    return claimed


def _due_ids(conn: Connection, whose: Any, now: float, limit: int) -> list[tuple[int, str]]:
    """(priority, id) of up to `limit` due queued messages, most urgent first, locked
    (skipping rows another dispatcher locked)."""
    rows = conn.execute(
        sa.select(m.c.priority, m.c.id)
        .where(IS_QUEUED, whose, m.c.next_attempt_at <= now)
        .order_by(m.c.priority, m.c.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()
    return [(int(row.priority), str(row.id)) for row in rows]


class Outcome(NamedTuple):
    """What the dispatcher decided for one claimed message after the provider answered.

    A named tuple rather than a frozen dataclass: one is made for every message sent, and a
    frozen dataclass costs several times as much to build."""

    message_id: str
    status: Status
    code: str | None = None
    detail: str | None = None
    provider_message_id: str | None = None
    next_attempt_at: float | None = None
    # The connection the attempt went through (for the timeline), and, when the message moved
    # to another connection of its plan (a failover): where to, its module, its place in the
    # plan and why (a code of `outbox.failover`).
    tried: str | None = None
    connection_id: str | None = None
    module: str | None = None
    plan_index: int | None = None
    failover_reason: str | None = None
    # The claim's attempt number (`attempts` after the claim): with the owner, it fences the
    # claim, so an answer from an earlier claim of the same message is never recorded.
    attempt: int | None = None


@dataclass(frozen=True, slots=True)
class Recorded:
    """What recording send outcomes changed, for the caller to count once it is committed."""

    outcomes: tuple[Outcome, ...]  # the outcomes stored (of messages this owner still held)
    reports: tuple[tuple[str, ReportTally], ...] = ()  # early reports applied, per module


def record_outcomes(
    conn: Connection,
    owner: str,
    outcomes: Sequence[Outcome],
    now: float,
    events: EventSink | None = None,
) -> int:
    """Store send outcomes for messages this owner still holds; return how many were stored."""
    return len(record_send_outcomes(conn, owner, outcomes, now, events).outcomes)


def record_send_outcomes(
    conn: Connection,
    owner: str,
    outcomes: Sequence[Outcome],
    now: float,
    events: EventSink | None = None,
    attempts: dict[str, int] | None = None,
) -> Recorded:
    """Store send outcomes for messages this owner still holds, and reports that were waiting.

    `attempts` gives the attempt each message was claimed for, where its outcome does not
    say: an outcome for an attempt the message is no longer at is not stored."""
    ids = [o.message_id for o in outcomes]
    held = {
        row.id: row
        for row in conn.execute(
            sa.select(*EVENT_COLUMNS, m.c.attempts)
            .where(m.c.id.in_(ids), m.c.status == Status.SENDING.value, m.c.lease_owner == owner)
            .with_for_update()
        )
    }
    claimed = attempts or {}
    mine = [
        o
        for o in outcomes
        if o.message_id in held
        and (o.attempt or claimed.get(o.message_id)) in (None, held[o.message_id].attempts)
    ]
    rows = [_outcome_row(o, now) for o in mine]
    execute_rows(conn, _RECORD_OUTCOME, [row for row in rows if not row["moved"]])
    execute_rows(conn, _RECORD_FAILOVER, [row for row in rows if row["moved"]])
    insert_events(conn, _outcome_events(mine, now))
    emit_status_events(
        conn, events, ((held[o.message_id], o.status.value, o.code) for o in mine), now
    )
    sent = {
        o.provider_message_id: o.message_id
        for o in mine
        if o.status is Status.SENT and o.provider_message_id
    }
    early = apply_early_reports(conn, sent, now, events) if sent else []
    return Recorded(tuple(mine), tuple(early))


def _outcome_row(o: Outcome, now: float) -> dict[str, Any]:
    sent = o.status is Status.SENT
    moved = o.failover_reason is not None
    return {
        "mid": o.message_id,
        "new_status": o.status.value,
        "pid": o.provider_message_id,
        "code": o.code,
        "err": None if sent else o.detail,
        "nat": o.next_attempt_at if o.next_attempt_at is not None else now,
        "sat": now if sent else None,
        "fat": now if o.status.is_final else None,
        "now": now,
        "cid": o.connection_id if moved else None,
        "mod": o.module if moved else None,
        "pix": o.plan_index if moved else None,
        "moved": moved,
    }


# What every recorded outcome sets; built once, so the SQL is compiled once (`execute_rows`).
_OUTCOME_VALUES: dict[str, Any] = {
    "status": bindparam("new_status"),
    "provider_message_id": bindparam("pid"),
    "status_code": bindparam("code"),
    "error": bindparam("err"),
    "next_attempt_at": bindparam("nat"),
    "sent_at": bindparam("sat"),
    "final_at": bindparam("fat"),
    "lease_owner": sa.null(),
    "lease_until": sa.null(),
    "updated_at": bindparam("now"),
}
_RECORD_OUTCOME = m.update().where(m.c.id == bindparam("mid")).values(**_OUTCOME_VALUES)
# A failover also moves the message to the next connection of its plan.
_RECORD_FAILOVER = (
    m.update()
    .where(m.c.id == bindparam("mid"))
    .values(
        **_OUTCOME_VALUES,
        connection_id=sa.func.coalesce(bindparam("cid", type_=sa.String), m.c.connection_id),
        module=sa.func.coalesce(bindparam("mod", type_=sa.String), m.c.module),
        plan_index=sa.func.coalesce(bindparam("pix", type_=sa.Integer), m.c.plan_index),
        failovers=m.c.failovers + 1,
        connection_attempts=0,
    )
)


def _outcome_events(outcomes: Sequence[Outcome], now: float) -> list[Event]:
    """The timeline lines of recorded outcomes: the attempt's, then a failover's if it moved."""
    lines: list[Event] = []
    for o in outcomes:
        lines.append(
            Event(
                o.message_id,
                now,
                o.status.value,
                "provider" if o.code else "dispatcher",
                o.code,
                o.detail,
                connection_id=o.tried,
            )
        )
        if o.failover_reason is not None and o.connection_id is not None:
            lines.append(
                failover_event(o.message_id, now, o.connection_id, o.failover_reason, o.tried)
            )
    return lines


@dataclass(frozen=True, slots=True)
class Move:
    """A queued message leaving its connection for another one of its plan (not sent there)."""

    message_id: str
    from_connection: str | None
    to_connection: str
    module: str
    plan_index: int
    reason: str


def waiting_on(
    conn: Connection, connection_id: str, now: float, limit: int, module: str | None = None
) -> list[sa.Row[Any]]:
    """Due queued messages of a connection (and, with `module`, that module's without one)."""
    wanted = [m.c.connection_id == connection_id]
    if module is not None:
        wanted.append(sa.and_(m.c.connection_id.is_(None), m.c.module == module))
    rows: list[Any] = []
    for whose in wanted:  # one index-ordered query each
        rows += conn.execute(
            sa.select(
                m.c.id,
                m.c.priority,
                m.c.connection_id,
                m.c.route_plan,
                m.c.plan_index,
                m.c.attempts,
                m.c.expires_at,
            )
            .where(IS_QUEUED, whose, m.c.next_attempt_at <= now)
            .order_by(m.c.priority, m.c.id)
            .limit(limit)
        ).all()
    return sorted(rows, key=lambda row: (row.priority, row.id))[:limit]


def move_connection(conn: Connection, moves: Sequence[Move], now: float) -> int:
    """Move queued messages to another connection of their plan, with a failover line each.

    Only messages still queued on the connection they were read on move; returns how many.
    """
    moved: list[Move] = []
    for move in moves:
        here = (
            m.c.connection_id.is_(None)
            if move.from_connection is None
            else m.c.connection_id == move.from_connection
        )
        done = conn.execute(
            m.update()
            .where(m.c.id == move.message_id, m.c.status == Status.QUEUED.value, here)
            .values(
                connection_id=move.to_connection,
                module=move.module,
                plan_index=move.plan_index,
                connection_attempts=0,
                failovers=m.c.failovers + 1,
                next_attempt_at=now,
                updated_at=now,
            )
        ).rowcount
        if done:
            moved.append(move)
    insert_events(
        conn,
        (
            failover_event(m_.message_id, now, m_.to_connection, m_.reason, m_.from_connection)
            for m_ in moved
        ),
    )
    return len(moved)


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
            changes = ((row, new.value, None) for row in event_rows(conn, [message_id]))
            emit_status_events(conn, events, changes, now)
    return bool(done)


def expire_overdue(conn: Connection, now: float, events: EventSink | None = None) -> int:
    """Queued messages whose validity ended are expired, with the reason in their timeline."""
    ids = (
        conn.execute(
            sa.select(m.c.id)
            .where(IS_QUEUED, m.c.expires_at <= now)
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
        sa.select(*EVENT_COLUMNS, m.c.error, m.c.status_code).where(m.c.id.in_(ids))
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
        sa.select(m.c.priority, sa.func.count()).where(IS_QUEUED).group_by(m.c.priority)
    ).all()
    return {int(priority): int(count) for priority, count in rows}
