"""Leasing due rows of a queue table to one worker at a time.

A queue table (notifications, webhook deliveries) has `id`, `status`, `next_attempt_at` and
`lease_until`; a row is due when it is pending, its next attempt has come and no live lease
holds it. Every function takes an open connection and never commits.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy import Connection


def lease_due(
    conn: Connection, table: sa.Table, pending: str, *, now: float, lease_until: float, limit: int
) -> list[str]:
    """Lease up to `limit` due rows of `table` (oldest due first) to the caller until
    `lease_until`, and return their ids; on PostgreSQL rows another worker is claiming are
    skipped, so a row is never leased to two workers at once."""
    c = table.c
    ids = list(
        conn.execute(
            sa.select(c.id)
            .where(
                c.status == pending,
                c.next_attempt_at <= now,
                sa.or_(c.lease_until.is_(None), c.lease_until < now),
            )
            .order_by(c.next_attempt_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        .scalars()
        .all()
    )
    if ids:
        conn.execute(
            table.update().where(c.id.in_(ids), c.status == pending).values(lease_until=lease_until)
        )
    return ids
