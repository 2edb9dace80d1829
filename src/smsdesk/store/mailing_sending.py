"""The database side of sending mailings: which recipients are due, and what became of them.

Everything here runs inside the sender's writer job, with the mailing's row locked
(`store.mailings.lock_mailing`), so two processes never queue the same recipient twice.
A recipient is pending while it is valid, has no message and no refusal (`status` is null);
`not_before` holds it until its send window opens.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection

from smsdesk.domain.mailing_checks import Check
from smsdesk.domain.mailings import Status
from smsdesk.store.mailing_tables import mailing_recipients as mr
from smsdesk.store.mailing_tables import mailings
from smsdesk.store.tables import customers, messages

QUEUED = "queued"
SENDING = "sending"


def _pending() -> sa.ColumnElement[bool]:
    return sa.and_(
        mr.c.check_result == Check.VALID.value, mr.c.message_id.is_(None), mr.c.status.is_(None)
    )


def mailings_to_send(conn: Connection, now: float) -> tuple[list[str], list[str]]:
    """(ids of sending mailings, ids of scheduled ones whose time has come)."""
    rows = conn.execute(
        sa.select(mailings.c.id, mailings.c.status).where(
            sa.or_(
                mailings.c.status == Status.SENDING.value,
                sa.and_(
                    mailings.c.status == Status.SCHEDULED.value,
                    sa.func.coalesce(mailings.c.scheduled_at, 0) <= now,
                ),
            )
        )
    ).all()
    sending = [r.id for r in rows if r.status == Status.SENDING.value]
    return sending, [r.id for r in rows if r.status == Status.SCHEDULED.value]


def due_recipients(conn: Connection, mailing_id: str, now: float, limit: int) -> list[sa.Row[Any]]:
    """Pending recipients not held beyond `now`, in the order given, with their customer."""
    return list(
        conn.execute(
            sa.select(
                mr.c.id,
                mr.c.number,
                mr.c.customer_id,
                mr.c.variables,
                mr.c.time_zone,
                customers.c.name.label("customer_name"),
            )
            .select_from(mr.outerjoin(customers, customers.c.id == mr.c.customer_id))
            .where(
                mr.c.mailing_id == mailing_id,
                _pending(),
                sa.or_(mr.c.not_before.is_(None), mr.c.not_before <= now),
            )
            .order_by(mr.c.id)
            .limit(limit)
        )
    )


def still_pending(conn: Connection, mailing_id: str, ids: Sequence[int]) -> set[int]:
    """Those of the recipients (ids) that are still pending."""
    found: set[int] = set()
    for start in range(0, len(ids), 500):
        found.update(
            conn.execute(
                sa.select(mr.c.id).where(
                    mr.c.mailing_id == mailing_id, mr.c.id.in_(ids[start : start + 500]), _pending()
                )
            ).scalars()
        )
    return found


def remaining(conn: Connection, mailing_id: str) -> int:
    """Recipients still to be queued, held ones included."""
    return int(
        conn.execute(
            sa.select(sa.func.count()).where(mr.c.mailing_id == mailing_id, _pending())
        ).scalar_one()
    )


def queued_since(conn: Connection, mailing_id: str, since: float) -> int:
    """Messages this mailing queued at or after `since` (for its throttle)."""
    return int(
        conn.execute(
            sa.select(sa.func.count()).where(mr.c.mailing_id == mailing_id, mr.c.queued_at >= since)
        ).scalar_one()
    )


def waiting_in_outbox(conn: Connection, mailing_id: str) -> int:
    """This mailing's messages still queued in the outbox (not yet handed to a provider)."""
    return int(
        conn.execute(
            sa.select(sa.func.count())
            .select_from(mr.join(messages, messages.c.id == mr.c.message_id))
            .where(mr.c.mailing_id == mailing_id, messages.c.status == QUEUED)
        ).scalar_one()
    )


def queued_message_ids(conn: Connection, mailing_id: str) -> list[str]:
    """Ids of this mailing's messages still queued in the outbox (to cancel them)."""
    return list(
        conn.execute(
            sa.select(messages.c.id)
            .select_from(mr.join(messages, messages.c.id == mr.c.message_id))
            .where(mr.c.mailing_id == mailing_id, messages.c.status == QUEUED)
        ).scalars()
    )


def hold(conn: Connection, until: Mapping[int, float]) -> None:
    """Hold recipients (by id) until their window opens."""
    by_time: dict[float, list[int]] = {}
    for recipient_id, at in until.items():
        by_time.setdefault(at, []).append(recipient_id)
    for at, ids in by_time.items():
        conn.execute(mr.update().where(mr.c.id.in_(ids)).values(not_before=at))


def mark_queued(conn: Connection, queued: Sequence[tuple[int, str]], now: float) -> None:
    """Record each recipient's (id) message id."""
    if queued:
        conn.execute(
            mr.update()
            .where(mr.c.id == sa.bindparam("rid"))
            .values(message_id=sa.bindparam("mid"), status=QUEUED, queued_at=now),
            [{"rid": rid, "mid": mid} for rid, mid in queued],
        )


def unlink(conn: Connection, message_ids: Sequence[str]) -> None:
    """Recipients of these (cancelled) messages wait to be queued again."""
    for start in range(0, len(message_ids), 500):
        conn.execute(
            mr.update()
            .where(mr.c.message_id.in_(message_ids[start : start + 500]))
            .values(message_id=None, status=None, queued_at=None)
        )


def mark_refused(conn: Connection, refused: Mapping[int, tuple[str, str]]) -> None:
    """Recipients the outbox refused at sending: id -> (status, reason)."""
    for recipient_id, (status, reason) in refused.items():
        conn.execute(
            mr.update().where(mr.c.id == recipient_id).values(status=status, reason=reason)
        )


def unfinished_messages(conn: Connection, mailing_id: str) -> int:
    """This mailing's messages still queued or being sent (a sent one awaiting its report is
    finished). Read from the outbox's status index, each one checked against its recipient
    row, so it costs what the outbox holds rather than what the mailing holds."""
    of_mailing = sa.exists().where(mr.c.message_id == messages.c.id, mr.c.mailing_id == mailing_id)
    return int(
        conn.execute(
            sa.select(sa.func.count()).where(messages.c.status.in_((QUEUED, SENDING)), of_mailing)
        ).scalar_one()
    )


def unmirrored_message_ids(
    conn: Connection, mailing_id: str, *, after: str = "", limit: int = 2000
) -> list[str]:
    """Ids (after `after`, in order) of this mailing's messages whose status or provider code
    differs from what their recipient row holds: the ones worth mirroring."""
    return list(
        conn.execute(
            sa.select(messages.c.id)
            .select_from(mr.join(messages, messages.c.id == mr.c.message_id))
            .where(
                mr.c.mailing_id == mailing_id,
                messages.c.id > after,
                sa.or_(
                    mr.c.status.is_distinct_from(messages.c.status),
                    mr.c.status_code.is_distinct_from(messages.c.status_code),
                ),
            )
            .order_by(messages.c.id)
            .limit(limit)
        ).scalars()
    )


def finished_since(conn: Connection, since: float) -> list[str]:
    """Ids of mailings done or cancelled at or after `since` (late reports still arrive)."""
    return list(
        conn.execute(
            sa.select(mailings.c.id).where(
                mailings.c.status.in_((Status.DONE.value, Status.CANCELLED.value)),
                mailings.c.finished_at >= since,
            )
        ).scalars()
    )
