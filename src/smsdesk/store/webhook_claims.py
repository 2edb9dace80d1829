"""Claiming only first attempts of webhook deliveries, for deliverers that do not lead retries.

Every process with a deliverer sends fresh deliveries at once (`claim_first_attempts`); the
retries (deliveries tried before, `attempts > 0`) are claimed only by the process leading the
`webhook-retries` job, through `webhooks.claim_due`. Both lease the rows they take, so a
delivery is never POSTed by two processes at once either way.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy import Connection

from smsdesk.store.tables import webhook_deliveries as d
from smsdesk.store.webhooks import PENDING, Claimed, leased_deliveries


def claim_first_attempts(
    conn: Connection, *, now: float, lease_until: float, limit: int
) -> list[Claimed]:
    """Lease up to `limit` due deliveries never tried yet, as `webhooks.claim_due` does."""
    ids = list(
        conn.execute(
            sa.select(d.c.id)
            .where(
                d.c.status == PENDING,
                d.c.attempts == 0,
                d.c.next_attempt_at <= now,
                sa.or_(d.c.lease_until.is_(None), d.c.lease_until < now),
            )
            .order_by(d.c.next_attempt_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        .scalars()
        .all()
    )
    if not ids:
        return []
    conn.execute(
        d.update().where(d.c.id.in_(ids), d.c.status == PENDING).values(lease_until=lease_until)
    )
    return leased_deliveries(conn, ids, lease_until)
