"""Webhook subscriptions and their deliveries in the database.

A delivery is pending until it is delivered or dead; a deliverer leases a pending one
(`lease_until`) while it POSTs it, so one delivery is never sent by two processes at once.
Deliveries are never deleted: delivered and dead ones stay listable and replayable.
Subscriptions' secrets are stored as given (sealed by `webhooks_out`).

Every function takes an open connection and never commits; the caller owns the transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection, bindparam, event
from sqlalchemy.engine import Engine

from smsdesk.domain.ids import new_id
from smsdesk.store.leases import lease_due
from smsdesk.store.tables import webhook_deliveries, webhook_subscriptions

d = webhook_deliveries
s = webhook_subscriptions
PENDING, DELIVERED, DEAD = "pending", "delivered", "dead"
DELIVERY_STATUSES = (PENDING, DELIVERED, DEAD)


@dataclass(frozen=True, slots=True)
class Claimed:
    """A delivery leased to one deliverer, with where and how to send it."""

    id: str
    subscription_id: str
    event_type: str
    payload: str
    attempts: int
    created_at: float
    url: str
    sealed_secret: str


def delivery_row(
    subscription_id: str, event_type: str, event_id: str, payload: str, now: float
) -> dict[str, Any]:
    """A new pending delivery, due at once."""
    return {
        "id": new_id(),
        "subscription_id": subscription_id,
        "event_type": event_type,
        "event_id": event_id,
        "payload": payload,
        "status": PENDING,
        "attempts": 0,
        "next_attempt_at": now,
        "lease_until": None,
        "last_status_code": None,
        "last_error": None,
        "created_at": now,
        "delivered_at": None,
    }


def insert_deliveries(conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
    """Store new deliveries (rows made by `delivery_row`)."""
    conn.execute(d.insert(), list(rows))


def claim_due(conn: Connection, *, now: float, lease_until: float, limit: int) -> list[Claimed]:
    """Lease up to `limit` due deliveries to the caller until `lease_until`.

    A leased delivery is not due for anyone else, and on PostgreSQL rows another deliverer is
    claiming are skipped, so one delivery is never POSTed by two processes at once. Deliveries
    whose subscription was deleted or deactivated become dead here, with the reason.
    """
    ids = lease_due(conn, d, PENDING, now=now, lease_until=lease_until, limit=limit)
    return leased_deliveries(conn, ids, lease_until)


def leased_deliveries(conn: Connection, ids: Sequence[str], lease_until: float) -> list[Claimed]:
    """The deliveries just leased until `lease_until`, ready to send; those whose subscription
    was deleted or deactivated become dead here, with the reason."""
    if not ids:
        return []
    rows = conn.execute(
        sa.select(d)
        .where(d.c.id.in_(ids), d.c.lease_until == lease_until)
        .order_by(d.c.next_attempt_at)
    ).all()
    claimed, dead = _sort_claimed(conn, rows)
    if dead:
        conn.execute(
            d.update()
            .where(d.c.id == bindparam("did"))
            .values(status=DEAD, lease_until=None, last_error=bindparam("reason")),
            dead,
        )
    return claimed


def _sort_claimed(
    conn: Connection, rows: Sequence[sa.Row[Any]]
) -> tuple[list[Claimed], list[dict[str, Any]]]:
    """The leased rows whose subscription is active, and the others' ids with why they die."""
    subscriptions = {
        sub.id: sub
        for sub in conn.execute(
            sa.select(s).where(s.c.id.in_({row.subscription_id for row in rows}))
        )
    }
    claimed: list[Claimed] = []
    dead: list[dict[str, Any]] = []
    for row in rows:
        sub = subscriptions.get(row.subscription_id)
        if sub is None or not sub.active:
            reason = "subscription was deleted" if sub is None else "subscription is deactivated"
            dead.append({"did": row.id, "reason": reason})
            continue
        claimed.append(
            Claimed(
                row.id,
                row.subscription_id,
                row.event_type,
                row.payload,
                row.attempts,
                row.created_at,
                sub.url,
                sub.secret,
            )
        )
    return claimed, dead


def record_attempt(
    conn: Connection,
    delivery_id: str,
    *,
    now: float,
    status_code: int | None,
    error: str | None,
    next_attempt_at: float | None,
) -> None:
    """Store one attempt's result: delivered if `error` is None, else retried or dead.

    `next_attempt_at` None after a failure means the delivery is dead.
    """
    values: dict[str, Any] = {
        "attempts": d.c.attempts + 1,
        "last_status_code": status_code,
        "last_error": error,
        "lease_until": None,
    }
    if error is None:
        values.update(status=DELIVERED, delivered_at=now)
    elif next_attempt_at is None:
        values.update(status=DEAD)
    else:
        values.update(next_attempt_at=next_attempt_at)
    conn.execute(d.update().where(d.c.id == delivery_id, d.c.status == PENDING).values(**values))


def list_deliveries(
    conn: Connection,
    *,
    subscription_id: str | None = None,
    status: str | None = None,
    before_id: str | None = None,
    limit: int = 50,
) -> list[sa.Row[Any]]:
    """Newest first, paged by id."""
    query = sa.select(d)
    if subscription_id is not None:
        query = query.where(d.c.subscription_id == subscription_id)
    if status is not None:
        query = query.where(d.c.status == status)
    if before_id is not None:
        query = query.where(d.c.id < before_id)
    return list(conn.execute(query.order_by(d.c.id.desc()).limit(limit)).all())


def get_delivery(conn: Connection, delivery_id: str) -> sa.Row[Any] | None:
    return conn.execute(sa.select(d).where(d.c.id == delivery_id)).first()


def insert_subscription(conn: Connection, row: dict[str, Any]) -> None:
    """Store a new subscription (`events` comma-separated, `secret` sealed)."""
    conn.execute(s.insert().values(**row))


def all_subscriptions(conn: Connection) -> list[sa.Row[Any]]:
    return list(conn.execute(sa.select(s).order_by(s.c.id)).all())


def get_subscription(conn: Connection, subscription_id: str) -> sa.Row[Any] | None:
    return conn.execute(sa.select(s).where(s.c.id == subscription_id)).first()


def update_subscription(conn: Connection, subscription_id: str, values: dict[str, Any]) -> bool:
    """Change these columns of a subscription; False if there is none with that id."""
    done = conn.execute(s.update().where(s.c.id == subscription_id).values(**values)).rowcount
    return bool(done)


def delete_subscription(conn: Connection, subscription_id: str) -> bool:
    """Remove a subscription and make its pending deliveries dead; False if there was none.

    Its delivered and dead deliveries stay listed.
    """
    done = conn.execute(s.delete().where(s.c.id == subscription_id)).rowcount
    conn.execute(
        d.update()
        .where(d.c.subscription_id == subscription_id, d.c.status == PENDING)
        .values(status=DEAD, lease_until=None, last_error="subscription was deleted")
    )
    return bool(done)


def subscription_active(conn: Connection, subscription_id: str) -> bool | None:
    """Whether the subscription is active; None if there is none with that id."""
    active: bool | None = conn.execute(
        sa.select(s.c.active).where(s.c.id == subscription_id)
    ).scalar_one_or_none()
    return active


def active_subscription_events(conn: Connection) -> list[tuple[str, str]]:
    """(id, comma-separated event types) of every active subscription."""
    rows = conn.execute(sa.select(s.c.id, s.c.events).where(s.c.active == sa.true()))
    return [(sub_id, events) for sub_id, events in rows]


def listen_commits(engine: Engine, callback: Callable[[Any], None]) -> None:
    """Call `callback(connection)` after every commit on this engine."""
    event.listen(engine, "commit", callback)


def stop_listening_commits(engine: Engine, callback: Callable[[Any], None]) -> None:
    """Undo `listen_commits` (nothing if it is not listening)."""
    if event.contains(engine, "commit", callback):
        event.remove(engine, "commit", callback)
