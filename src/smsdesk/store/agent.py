"""The reads behind the messaging-agent API (/api/v1/agent): threading and status answers.

The agent sends follow-ups by naming an earlier message, and asks for statuses in bulk with
a readable description; both are plain reads of messages and their timelines.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection

from smsdesk.store.tables import message_events, messages

m = messages
ev = message_events


def thread_parents(conn: Connection, ids: Collection[str]) -> dict[str, Any]:
    """id, request_id and session_key of each of these messages that exists, by id."""
    rows = conn.execute(sa.select(m.c.id, m.c.request_id, m.c.session_key).where(m.c.id.in_(ids)))
    return {row.id: row for row in rows}


def statuses(conn: Connection, ids: Collection[str]) -> list[Any]:
    """id, status and error of each of these messages that exists."""
    return list(conn.execute(sa.select(m.c.id, m.c.status, m.c.error).where(m.c.id.in_(ids))).all())


def latest_details(conn: Connection, ids: Collection[str]) -> dict[str, str | None]:
    """The detail of each message's latest applied timeline line, by message id."""
    latest = (
        sa.select(sa.func.max(ev.c.id))
        .where(ev.c.message_id.in_(ids), ev.c.applied.is_(sa.true()))
        .group_by(ev.c.message_id)
    )
    rows = conn.execute(sa.select(ev.c.message_id, ev.c.detail).where(ev.c.id.in_(latest)))
    return {message_id: detail for message_id, detail in rows}
