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
from smsdesk.store.tables import messages

_IN = 500  # message ids per statement
_FINAL = sorted(str(s) for s in FINAL_STATUSES)


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
