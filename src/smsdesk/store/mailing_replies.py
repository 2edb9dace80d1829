"""Replies to mailings: which mailing an inbound SMS answers, and the record of each reply.

Finding the mailing runs for every batch of inbound SMS, so it is one query that stays cheap
however large the mailings: it starts from the few mailings that sent anything lately
(`ix_mailings_status`) and looks their recipients up by mailing and number
(`ix_mailing_recipients_number`), never scanning recipients by number alone.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection

from smsdesk.domain.mailings import Replies, Status
from smsdesk.store.mailing_tables import mailing_recipients as mr
from smsdesk.store.mailing_tables import mailing_replies, mailings

_IN = 500  # numbers per IN (...) query
_STARTED = (Status.SENDING.value, Status.PAUSED.value, Status.DONE.value, Status.CANCELLED.value)


@dataclass(frozen=True, slots=True)
class Answered:
    """The mailing recipient an SMS from a number answers."""

    mailing_id: str
    mailing_name: str
    recipient_id: int
    replies: Replies
    queued_at: float


def answered_mailings(
    conn: Connection, numbers: Collection[str], since: float
) -> dict[str, Answered]:
    """For each number, the recipient row of the mailing that most recently sent it an SMS
    at or after `since` (numbers no mailing wrote to lately are left out)."""
    wanted = sorted(set(numbers))
    lately = sa.select(mailings.c.id).where(
        mailings.c.status.in_(_STARTED),
        sa.or_(mailings.c.finished_at.is_(None), mailings.c.finished_at >= since),
    )
    found: dict[str, Answered] = {}
    for start in range(0, len(wanted), _IN):
        rows = conn.execute(
            sa.select(
                mr.c.number,
                mr.c.id,
                mr.c.mailing_id,
                mr.c.queued_at,
                mailings.c.name,
                mailings.c.replies,
            )
            .select_from(mr.join(mailings, mailings.c.id == mr.c.mailing_id))
            .where(
                mr.c.mailing_id.in_(lately),
                mr.c.number.in_(wanted[start : start + _IN]),
                mr.c.message_id.is_not(None),
                mr.c.queued_at >= since,
            )
        )
        for row in rows:
            known = found.get(row.number)
            if known is None or (row.queued_at, row.id) > (known.queued_at, known.recipient_id):
                found[row.number] = Answered(
                    row.mailing_id, row.name, row.id, Replies(row.replies), row.queued_at
                )
    return found


def record_replies(conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
    """Store replies (mailing_id, recipient_id, inbound_id, request_id, opt_out,
    received_at); an inbound SMS processed again (e.g. accepted from the unrecognised list)
    replaces its earlier record."""
    if not rows:
        return
    conn.execute(
        mailing_replies.delete().where(
            mailing_replies.c.inbound_id.in_([r["inbound_id"] for r in rows])
        )
    )
    conn.execute(mailing_replies.insert(), list(rows))


def mailing_of_request(conn: Connection, request_id: str) -> tuple[str, str] | None:
    """(id, name) of the mailing a request began as a reply to, if any."""
    row = conn.execute(
        sa.select(mailings.c.id, mailings.c.name)
        .select_from(mailing_replies.join(mailings, mailings.c.id == mailing_replies.c.mailing_id))
        .where(mailing_replies.c.request_id == request_id)
        .order_by(mailing_replies.c.received_at)
        .limit(1)
    ).first()
    return None if row is None else (row.id, row.name)
