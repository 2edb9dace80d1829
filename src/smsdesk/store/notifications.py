"""Notifications to agents: who a request's event concerns, and the queue of e-mails and SMS.

A notification is pending until it is sent or dead; a sender leases a pending one
(`lease_until`) while it sends it, so one notification is never sent by two processes at once.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection, bindparam

from smsdesk.store.leases import lease_due
from smsdesk.store.tables import group_members, groups, notifications, requests, users

PENDING = "pending"
SENT = "sent"
DEAD = "dead"

n = notifications


def concerned(conn: Connection, event: str, request_ids: Iterable[str]) -> Sequence[Any]:
    """The users an event of these requests concerns who chose to hear of it, in one query:
    the group's members for a new request in a group, the owner otherwise.

    Each row: request_id, title, group_name, user_id, username, language, email, phone, notify.
    An empty list means there is nobody to notify.
    """
    ids = list(dict.fromkeys(request_ids))
    if not ids:
        return []
    wants = users.c.notify.like(f'%"{event}"%')
    columns = (
        requests.c.id.label("request_id"),
        requests.c.title,
        groups.c.name.label("group_name"),
        users.c.id.label("user_id"),
        users.c.username,
        users.c.language,
        users.c.email,
        users.c.phone,
        users.c.notify,
    )
    if event == "request.new_in_group":
        joined = (
            requests.join(groups, groups.c.id == requests.c.group_id)
            .join(group_members, group_members.c.group_id == requests.c.group_id)
            .join(users, users.c.id == group_members.c.user_id)
        )
    else:
        joined = requests.join(users, users.c.id == requests.c.owner_id).outerjoin(
            groups, groups.c.id == requests.c.group_id
        )
    query = (
        sa.select(*columns)
        .select_from(joined)
        .where(requests.c.id.in_(ids), wants)
        .order_by(requests.c.id, users.c.id)
    )
    return conn.execute(query).all()


def insert_notifications(conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
    if rows:
        conn.execute(n.insert(), list(rows))


def claim_due(conn: Connection, *, now: float, lease_until: float, limit: int) -> list[sa.Row[Any]]:
    """Lease up to `limit` due notifications to the caller until `lease_until`, with the
    recipient's current address and number (rows another sender is claiming are skipped on
    PostgreSQL)."""
    ids = lease_due(conn, n, PENDING, now=now, lease_until=lease_until, limit=limit)
    if not ids:
        return []
    return list(
        conn.execute(
            sa.select(n, users.c.email, users.c.phone, users.c.language)
            .select_from(n.outerjoin(users, users.c.id == n.c.user_id))
            .where(n.c.id.in_(ids), n.c.lease_until == lease_until)
            .order_by(n.c.next_attempt_at)
        ).all()
    )


def record_outcomes(conn: Connection, outcomes: Sequence[dict[str, Any]]) -> None:
    """Record attempts: each dict has nid, status, attempts, next_attempt_at, last_error,
    sent_at."""
    if not outcomes:
        return
    conn.execute(
        n.update()
        .where(n.c.id == bindparam("nid"))
        .values(
            status=bindparam("status"),
            attempts=bindparam("attempts"),
            next_attempt_at=bindparam("next"),
            last_error=bindparam("error"),
            sent_at=bindparam("sent"),
            lease_until=None,
        ),
        [
            {
                "nid": o["nid"],
                "status": o["status"],
                "attempts": o["attempts"],
                "next": o["next_attempt_at"],
                "error": o["last_error"],
                "sent": o["sent_at"],
            }
            for o in outcomes
        ],
    )


def next_due_at(conn: Connection) -> float | None:
    """When the earliest pending notification is due (None: none pending)."""
    value = conn.execute(
        sa.select(sa.func.min(n.c.next_attempt_at)).where(n.c.status == PENDING)
    ).scalar()
    return float(value) if value is not None else None


def list_notifications(
    conn: Connection, *, user_id: int | None = None, status: str | None = None, limit: int = 50
) -> list[sa.Row[Any]]:
    """Newest first, with the recipient's name."""
    query = sa.select(n, users.c.username).select_from(
        n.outerjoin(users, users.c.id == n.c.user_id)
    )
    if user_id is not None:
        query = query.where(n.c.user_id == user_id)
    if status is not None:
        query = query.where(n.c.status == status)
    return list(conn.execute(query.order_by(n.c.created_at.desc(), n.c.id.desc()).limit(limit)))


def purge_finished(conn: Connection, before: float, limit: int = 500) -> int:
    """Delete up to `limit` sent or dead notifications created before `before`."""
    ids = (
        conn.execute(
            sa.select(n.c.id)
            .where(n.c.status.in_((SENT, DEAD)), n.c.created_at < before)
            .order_by(n.c.created_at)
            .limit(limit)
        )
        .scalars()
        .all()
    )
    if not ids:
        return 0
    return int(conn.execute(n.delete().where(n.c.id.in_(ids))).rowcount)
