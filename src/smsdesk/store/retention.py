"""The SQL of retention: finding and deleting old rows, one small batch per call.

Each `purge_*` function deletes at most about `limit` rows in the caller's (short) write
transaction and returns how many went and where the next batch starts (None: nothing left), so
the caller commits between batches and other writers get the database in between. Batches walk
a table in primary-key order: message ids are time-ordered, so "older than the cut-off" is a
range of the key; for integer keys the range is found once (`last_id_before`).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection, Engine

from smsdesk.domain.message import FINAL_STATUSES, Status
from smsdesk.store import audit, mailing_estimates
from smsdesk.store.mailing_stats import mirror_statement
from smsdesk.store.mailing_tables import mailing_recipients, mailing_replies, mailings
from smsdesk.store.tables import (
    connection_stats,
    idempotency_keys,
    inbound_messages,
    login_failures,
    message_events,
    messages,
    request_messages,
    requests,
    spend_counters,
    unmatched_reports,
    web_sessions,
    webhook_deliveries,
)
from smsdesk.store.users import SESSION_IDLE_SECONDS, SESSION_MAX_SECONDS

Cursor = Any  # where the next batch starts: an id, or None at the start
Batch = tuple[int, Cursor]  # rows deleted, next cursor (None: done)

FINAL = sorted(str(s) for s in FINAL_STATUSES)
KEPT_DELIVERY_STATUS = "pending"
LOGIN_FAILURE_SECONDS = 24 * 3600
IDEMPOTENCY_KEY_SECONDS = 7 * 24 * 3600


_ID_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # domain/ids.py's Crockford base 32


def id_before(cutoff: float) -> str:
    """The smallest time-ordered id made at `cutoff`: every older id sorts below it."""
    ms = max(int(cutoff * 1000), 0)
    prefix = "".join(_ID_ALPHABET[(ms >> shift) & 31] for shift in range(45, -1, -5))
    return prefix + "0" * 16


def _request_gone(column: sa.ColumnElement[Any]) -> sa.ColumnElement[bool]:
    """No request, or one that no longer exists: the row no longer belongs to a conversation."""
    exists = sa.exists().where(requests.c.id == column)
    return sa.or_(column.is_(None), ~exists)


def _outbound_purgeable(cutoff: float) -> sa.ColumnElement[bool]:
    """Finished before the cut-off: a final status, or sent so long ago that its validity is
    over (no report can change it any more); never one the outbox may still touch."""
    finished = sa.and_(
        messages.c.status.in_(FINAL),
        sa.func.coalesce(messages.c.final_at, messages.c.updated_at) < cutoff,
    )
    sent_long_ago = sa.and_(
        messages.c.status == str(Status.SENT),
        messages.c.expires_at < cutoff,
        messages.c.updated_at < cutoff,
    )
    return sa.and_(
        messages.c.id < id_before(cutoff),
        sa.or_(finished, sent_long_ago),
        _request_gone(messages.c.request_id),
    )


def _inbound_purgeable(cutoff: float) -> sa.ColumnElement[bool]:
    return sa.and_(
        inbound_messages.c.id < id_before(cutoff),
        inbound_messages.c.received_at < cutoff,
        inbound_messages.c.state != "pending",
        _request_gone(inbound_messages.c.request_id),
    )


def _delivery_purgeable(cutoff: float) -> sa.ColumnElement[bool]:
    return sa.and_(
        webhook_deliveries.c.id < id_before(cutoff),
        webhook_deliveries.c.created_at < cutoff,
        webhook_deliveries.c.status != KEPT_DELIVERY_STATUS,
    )


def _request_purgeable(cutoff: float) -> sa.ColumnElement[bool]:
    return sa.and_(requests.c.status == "closed", requests.c.last_activity_at < cutoff)


def _timeline_purgeable(cutoff: float) -> sa.ColumnElement[bool]:
    final_message = sa.exists().where(
        messages.c.id == message_events.c.message_id, messages.c.status.in_(FINAL)
    )
    return sa.and_(message_events.c.at < cutoff, final_message)


def _chunk_end(conn: Connection, key: sa.Column[Any], after: Cursor, below: Any, limit: int) -> Any:
    """The key `limit` rows on from `after` (or the last one below `below`); None if none."""
    window = sa.select(key).order_by(key).limit(limit)
    if after is not None:
        window = window.where(key > after)
    if below is not None:
        window = window.where(key < below)
    inner = window.subquery()
    return conn.execute(sa.select(sa.func.max(inner.c[key.name]))).scalar()


def last_id_before(engine_or_conn: Engine | Connection, kind: str, cutoff: float) -> int | None:
    """The highest integer id of `kind` (timelines, unmatched_reports) written before `cutoff`.

    Ids grow with time; a binary search over point lookups by key finds the boundary without
    an index on the time column.
    """
    table, at = _INTEGER_KEYED[kind]
    with _connection(engine_or_conn) as conn:
        low, high = conn.execute(sa.select(sa.func.min(table.c.id), sa.func.max(table.c.id))).one()
        if low is None:
            return None

        def at_or_after(point: int) -> float | None:
            return conn.execute(
                sa.select(at).where(table.c.id >= point).order_by(table.c.id).limit(1)
            ).scalar()

        first = at_or_after(low)
        if first is None or first >= cutoff:
            return None
        while low < high:
            middle = (low + high + 1) // 2
            seen = at_or_after(middle)
            if seen is not None and seen < cutoff:
                low = middle
            else:
                high = middle - 1
        return int(low)


class _connection:
    """Use a given connection, or open one on an engine for the duration."""

    def __init__(self, source: Engine | Connection) -> None:
        self.source = source
        self.opened: Connection | None = None

    def __enter__(self) -> Connection:
        if isinstance(self.source, Connection):
            return self.source
        self.opened = self.source.connect()
        return self.opened

    def __exit__(self, *_: object) -> None:
        if self.opened is not None:
            self.opened.close()


_INTEGER_KEYED: dict[str, tuple[sa.Table, sa.Column[Any]]] = {
    "timelines": (message_events, message_events.c.at),
    "unmatched_reports": (unmatched_reports, unmatched_reports.c.received_at),
}


# One batch per kind


def purge_requests(conn: Connection, cutoff: float, after: Cursor, limit: int) -> Batch:
    """Closed requests idle since before the cut-off, with their conversation entries."""
    query = sa.select(requests.c.id).where(_request_purgeable(cutoff)).order_by(requests.c.id)
    if after is not None:
        query = query.where(requests.c.id > after)
    ids = list(conn.execute(query.limit(limit).with_for_update()).scalars())
    if not ids:
        return 0, None
    gone = conn.execute(
        requests.delete().where(requests.c.id.in_(ids), _request_purgeable(cutoff))
    ).rowcount
    conn.execute(
        request_messages.delete().where(
            request_messages.c.request_id.in_(ids),
            ~sa.exists().where(requests.c.id == request_messages.c.request_id),
        )
    )
    return gone, ids[-1]


def purge_outbound(conn: Connection, cutoff: float, after: Cursor, limit: int) -> Batch:
    """Finished messages accepted before the cut-off, with their timelines; a mailing's
    recipients take their message's last status first (`store.mailing_stats`)."""
    end = _chunk_end(conn, messages.c.id, after, id_before(cutoff), limit)
    if end is None:
        return 0, None
    in_chunk = sa.and_(messages.c.id <= end, _outbound_purgeable(cutoff))
    if after is not None:
        in_chunk = sa.and_(in_chunk, messages.c.id > after)
    if conn.dialect.name == "postgresql":
        # One statement: the ids never travel to Python and back.
        gone = messages.delete().where(in_chunk).returning(messages.c.id).cte("gone")
        timeline = message_events.delete().where(
            message_events.c.message_id.in_(sa.select(gone.c.id))
        )
        # a mailing's recipients keep the last status (same snapshot as the delete)
        mirror = mirror_statement(messages.c.id.in_(sa.select(gone.c.id)))
        counted = sa.select(sa.func.count()).select_from(gone)
        counted = counted.add_cte(timeline.cte("timeline")).add_cte(mirror.cte("mirror"))
        return int(conn.execute(counted).scalar_one()), end
    ids = list(conn.execute(sa.select(messages.c.id).where(in_chunk)).scalars())
    if ids:
        conn.execute(mirror_statement(messages.c.id.in_(ids)))
        conn.execute(message_events.delete().where(message_events.c.message_id.in_(ids)))
        conn.execute(messages.delete().where(messages.c.id.in_(ids)))
    return len(ids), end


def purge_inbound(conn: Connection, cutoff: float, after: Cursor, limit: int) -> Batch:
    """Processed inbound SMS received before the cut-off."""
    end = _chunk_end(conn, inbound_messages.c.id, after, id_before(cutoff), limit)
    if end is None:
        return 0, None
    condition = sa.and_(inbound_messages.c.id <= end, _inbound_purgeable(cutoff))
    if after is not None:
        condition = sa.and_(condition, inbound_messages.c.id > after)
    return conn.execute(inbound_messages.delete().where(condition)).rowcount, end


def purge_webhook_deliveries(conn: Connection, cutoff: float, after: Cursor, limit: int) -> Batch:
    """Delivered and dead webhook deliveries made before the cut-off (never pending ones)."""
    end = _chunk_end(conn, webhook_deliveries.c.id, after, id_before(cutoff), limit)
    if end is None:
        return 0, None
    condition = sa.and_(webhook_deliveries.c.id <= end, _delivery_purgeable(cutoff))
    if after is not None:
        condition = sa.and_(condition, webhook_deliveries.c.id > after)
    return conn.execute(webhook_deliveries.delete().where(condition)).rowcount, end


def _purge_id_range(
    table: sa.Table, condition: sa.ColumnElement[bool], bound: int | None
) -> Callable[[Connection, Cursor, int], Batch]:
    def batch(conn: Connection, after: Cursor, limit: int) -> Batch:
        start = -1 if after is None else int(after)
        if bound is None or start >= bound:
            return 0, None
        end = min(start + limit, bound)
        deleted = conn.execute(
            table.delete().where(table.c.id > start, table.c.id <= end, condition)
        ).rowcount
        return deleted, end

    return batch


def purge_timelines(
    conn: Connection, cutoff: float, after: Cursor, limit: int, bound: int | None
) -> Batch:
    """Timeline entries of finished messages recorded before the cut-off, up to id `bound`.

    The first batch also drops the connections' per-minute figures and the daily spend
    counters from before the cut-off (a day's or a connection's worth of rows: small)."""
    if after is None:
        day = datetime.fromtimestamp(cutoff, UTC).strftime("%Y-%m-%d")
        conn.execute(connection_stats.delete().where(connection_stats.c.minute < int(cutoff // 60)))
        conn.execute(spend_counters.delete().where(spend_counters.c.day < day))
    return _purge_id_range(message_events, _timeline_purgeable(cutoff), bound)(conn, after, limit)


def purge_unmatched_reports(
    conn: Connection, cutoff: float, after: Cursor, limit: int, bound: int | None
) -> Batch:
    """Delivery reports that found no message, received before the cut-off."""
    condition = unmatched_reports.c.received_at < cutoff
    return _purge_id_range(unmatched_reports, condition, bound)(conn, after, limit)


def purge_audit(conn: Connection, cutoff: float, after: Cursor, limit: int) -> Batch:
    """The oldest audit entries before the cut-off, moving the chain's start (verifiable)."""
    deleted = audit.purge_before(conn, cutoff, limit)
    return deleted, (True if deleted else None)


# Housekeeping: rows that expire on their own


def purge_sessions(conn: Connection, now: float) -> int:
    """Web sessions idle too long or older than their maximum age."""
    expired = sa.or_(
        web_sessions.c.last_seen_at < now - SESSION_IDLE_SECONDS,
        web_sessions.c.created_at < now - SESSION_MAX_SECONDS,
    )
    return int(conn.execute(web_sessions.delete().where(expired)).rowcount)


def purge_login_failures(conn: Connection, now: float, limit: int) -> int:
    """Failed logins older than a day (the throttle looks back minutes)."""
    ids = sa.select(login_failures.c.id).where(login_failures.c.at < now - LOGIN_FAILURE_SECONDS)
    ids = ids.order_by(login_failures.c.id).limit(limit)
    doomed = list(conn.execute(ids).scalars())
    if not doomed:
        return 0
    return int(
        conn.execute(login_failures.delete().where(login_failures.c.id.in_(doomed))).rowcount
    )


def purge_idempotency_keys(conn: Connection, now: float, limit: int) -> int:
    """Stored answers to Idempotency-Keys older than their lifetime (a week)."""
    ik = idempotency_keys
    keys = conn.execute(
        sa.select(ik.c.api_key_id, ik.c.key)
        .where(ik.c.created_at < now - IDEMPOTENCY_KEY_SECONDS)
        .limit(limit)
    ).all()
    if not keys:
        return 0
    pairs = [(row.api_key_id, row.key) for row in keys]
    return int(
        conn.execute(ik.delete().where(sa.tuple_(ik.c.api_key_id, ik.c.key).in_(pairs))).rowcount
    )


# What a purge would delete now


ENDED_MAILING_STATUSES = ("done", "cancelled")


def _mailing_purgeable(cutoff: float) -> sa.ColumnElement[bool]:
    return sa.and_(
        mailings.c.status.in_(ENDED_MAILING_STATUSES),
        sa.func.coalesce(mailings.c.finished_at, mailings.c.updated_at) < cutoff,
    )


def purge_mailings(conn: Connection, cutoff: float, after: Cursor, limit: int) -> Batch:
    """Up to `limit` recipients of the oldest mailing that ended before the cut-off; once it
    has none left, its replies and the mailing itself (counted: one mailing)."""
    mailing_id = conn.execute(
        sa.select(mailings.c.id)
        .where(_mailing_purgeable(cutoff))
        .order_by(mailings.c.created_at, mailings.c.id)
        .limit(1)
    ).scalar()
    if mailing_id is None:
        return 0, None
    ids = (
        sa.select(mailing_recipients.c.id)
        .where(mailing_recipients.c.mailing_id == mailing_id)
        .order_by(mailing_recipients.c.id)
        .limit(limit)
        .scalar_subquery()
    )
    if conn.execute(mailing_recipients.delete().where(mailing_recipients.c.id.in_(ids))).rowcount:
        return 0, mailing_id
    conn.execute(mailing_replies.delete().where(mailing_replies.c.mailing_id == mailing_id))
    conn.execute(mailings.delete().where(mailings.c.id == mailing_id))
    mailing_estimates.forget_basis(conn, mailing_id)
    return 1, mailing_id


def count_purgeable(conn: Connection, kind: str, cutoff: float) -> int:
    """How many rows of `kind` are older than `cutoff` and may go."""
    if kind == "audit":
        return audit.count_before(conn, cutoff)
    table, condition = {
        "requests": (requests, _request_purgeable(cutoff)),
        "outbound": (messages, _outbound_purgeable(cutoff)),
        "inbound": (inbound_messages, _inbound_purgeable(cutoff)),
        "timelines": (message_events, _timeline_purgeable(cutoff)),
        "webhook_deliveries": (webhook_deliveries, _delivery_purgeable(cutoff)),
        "unmatched_reports": (unmatched_reports, unmatched_reports.c.received_at < cutoff),
        "mailings": (mailings, _mailing_purgeable(cutoff)),
    }[kind]
    query = sa.select(sa.func.count()).select_from(table).where(condition)
    return int(conn.execute(query).scalar_one())
