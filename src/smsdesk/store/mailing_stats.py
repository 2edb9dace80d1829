"""What became of a mailing's recipients: their messages' statuses copied onto the recipient
rows, so a mailing's statistics and per-recipient report outlive the purge of old messages.

`mirror_messages` is called by the sender when it learns of new statuses and by retention just
before it deletes messages (`mirror_statement` in the same statement or transaction as the
delete), so the last status a recipient's message had is never lost.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection

from smsdesk.domain.message import FINAL_STATUSES, Status
from smsdesk.store.mailing_tables import mailing_recipients as mr
from smsdesk.store.mailing_tables import mailing_replies
from smsdesk.store.tables import messages

_IN = 500  # message ids per statement
_FINAL = sorted(str(s) for s in FINAL_STATUSES)
_REACHED = ["sent", "delivered", "undelivered"]  # statuses a message has only once sent


def status_time(table: Any = messages) -> sa.ColumnElement[Any]:
    """When a message reached its current status: settled, sent, or last changed."""
    c = table.c
    return sa.case(
        (c.status.in_(_FINAL), sa.func.coalesce(c.final_at, c.updated_at)),
        (c.status == str(Status.SENT), sa.func.coalesce(c.sent_at, c.updated_at)),
        else_=c.updated_at,
    )


def mirror_statement(condition: sa.ColumnElement[bool]) -> sa.Update:
    """An UPDATE copying status, provider code and status time from the messages matching
    `condition` (on the `messages` table) onto their recipients; only rows with a recipient
    are touched."""
    return (
        mr.update()
        .where(mr.c.message_id == messages.c.id, condition)
        .values(
            status=messages.c.status,
            status_code=messages.c.status_code,
            status_at=status_time(),
        )
    )


def mirror_messages(conn: Connection, message_ids: Sequence[str]) -> int:
    """Copy these messages' current status, provider code and status time onto the mailing
    recipients linked to them; how many recipients were updated (messages that belong to no
    mailing, or no longer exist, change nothing)."""
    ids = sorted(set(message_ids))
    updated = 0
    for start in range(0, len(ids), _IN):
        chunk = ids[start : start + _IN]
        result = conn.execute(mirror_statement(messages.c.id.in_(chunk)))
        updated += int(result.rowcount or 0)
    return updated


WAITING = "waiting"  # a valid recipient not queued yet (held by the window, or not reached)


def recipient_status() -> sa.ColumnElement[Any]:
    """A recipient's status: its message's, live, while the message exists; else the one
    mirrored (or the sender's refusal); `waiting` before it is queued."""
    return sa.func.coalesce(messages.c.status, mr.c.status, WAITING)


def _with_messages() -> sa.Join:
    return mr.outerjoin(messages, messages.c.id == mr.c.message_id)


def status_counts(conn: Connection, mailing_id: str) -> list[tuple[str, str, int]]:
    """(check result, status, recipients) of the mailing: one GROUP BY."""
    status = recipient_status()
    rows = conn.execute(
        sa.select(mr.c.check_result, status, sa.func.count())
        .select_from(_with_messages())
        .where(mr.c.mailing_id == mailing_id)
        .group_by(mr.c.check_result, status)
    )
    return [(str(check), str(state), int(count)) for check, state, count in rows]


def reply_counts(conn: Connection, mailing_id: str) -> tuple[int, int]:
    """(replies received, recipients who opted out by replying) of the mailing."""
    opted = sa.case((mailing_replies.c.opt_out.is_(True), mailing_replies.c.recipient_id))
    replies, opt_outs = conn.execute(
        sa.select(sa.func.count(), sa.func.count(sa.distinct(opted))).where(
            mailing_replies.c.mailing_id == mailing_id
        )
    ).one()
    return int(replies), int(opt_outs)


def sent_time() -> sa.ColumnElement[Any]:
    """When a recipient's SMS went out: its message's send time; once the message is purged,
    the mirrored status time of one that got at least as far as sent."""
    reached = sa.and_(mr.c.status.in_(_REACHED), messages.c.id.is_(None))
    return sa.func.coalesce(messages.c.sent_at, sa.case((reached, mr.c.status_at)))


def final_time() -> sa.ColumnElement[Any]:
    """When a recipient's SMS was settled (delivered, undelivered, failed, ...)."""
    return sa.case(
        (messages.c.id.is_not(None), messages.c.final_at),
        (mr.c.status.in_(_FINAL), mr.c.status_at),
    )


def delivery_range(conn: Connection, mailing_id: str) -> tuple[float | None, float | None]:
    """The first send and the last send or settling of the mailing's SMS."""
    first, last_sent, last_final = conn.execute(
        sa.select(sa.func.min(sent_time()), sa.func.max(sent_time()), sa.func.max(final_time()))
        .select_from(_with_messages())
        .where(mr.c.mailing_id == mailing_id, mr.c.message_id.is_not(None))
    ).one()
    ends = [t for t in (last_sent, last_final) if t is not None]
    return (None if first is None else float(first)), (max(ends) if ends else None)


def _bucket(conn: Connection, moment: sa.ColumnElement[Any], start: float, width: float) -> Any:
    offset = (moment - start) / width
    if conn.dialect.name == "postgresql":
        return sa.cast(sa.func.floor(offset), sa.Integer)
    return sa.cast(offset, sa.Integer)  # SQLite truncates, and the offset is never negative


def delivery_groups(
    conn: Connection, mailing_id: str, start: float, width: float
) -> list[tuple[str, int | None, int | None, int]]:
    """(status, bucket of the send, bucket of the settling, recipients): which `width`-second
    bucket after `start` each SMS was sent and settled in, counted in one GROUP BY."""
    status = recipient_status()
    sent = _bucket(conn, sent_time(), start, width)
    final = _bucket(conn, final_time(), start, width)
    rows = conn.execute(
        sa.select(status, sent, final, sa.func.count())
        .select_from(_with_messages())
        .where(mr.c.mailing_id == mailing_id, mr.c.message_id.is_not(None))
        .group_by(status, sent, final)
    )
    return [
        (str(state), None if s is None else int(s), None if f is None else int(f), int(n))
        for state, s, f, n in rows
    ]
