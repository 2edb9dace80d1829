"""Each connection's rate-limit bucket, shared by every process on a PostgreSQL database.

One `connection_limits` row per connection holds the tokens left at `refilled_at` and the
`paused_until` a provider's throttling answer set. A dispatcher locks the row in the
transaction of its claim (`lock`), counts the messages being sent through the connection by
any process (`sending`), claims, and writes back what it took (`spend`): refill, concurrency
check, claim and spend are one step, so two processes can neither take the same token nor
both fill the last free request slot. The lock is taken with SKIP LOCKED: a claim
transaction also locks messages and circuit rows, and waiting here could deadlock with
a process that locked those first; the caller tries again a moment later instead.

Times are the callers' clocks (seconds since the epoch); a refill never runs backwards when
one process's clock is behind another's.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine

from smsdesk.store.connection_tables import connection_limits as cl
from smsdesk.store.tables import IS_SENDING
from smsdesk.store.tables import messages as m


@dataclass(frozen=True, slots=True)
class Bucket:
    """A connection's tokens as of `at`, and until when its provider asked for a pause."""

    tokens: float
    at: float
    paused_until: float


def refilled(tokens: float, since: float, now: float, rate: float, burst: float) -> float:
    """Tokens at `now`: `rate` per second added since `since`, never above `burst`."""
    if rate <= 0:
        return burst
    return min(burst, tokens + max(0.0, now - since) * rate)


def _locked_row(conn: Connection, connection_id: str) -> Any:
    query = sa.select(cl).where(cl.c.connection_id == connection_id)
    return conn.execute(query.with_for_update(skip_locked=True)).first()


def lock(
    conn: Connection, connection_id: str, *, rate: float, burst: float, now: float
) -> Bucket | None:
    """The connection's bucket refilled to `now`, its row locked until the transaction ends;
    None while another process holds it. A connection without a row starts full."""
    row = _locked_row(conn, connection_id)
    if row is None:
        exists = conn.execute(
            sa.select(cl.c.connection_id).where(cl.c.connection_id == connection_id)
        ).first()
        if exists is not None:
            return None
        dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
        conn.execute(
            dialect.insert(cl)
            .values(
                connection_id=connection_id,
                rate=rate,
                burst=burst,
                tokens=burst,
                refilled_at=now,
                paused_until=0.0,
            )
            .on_conflict_do_nothing()
        )
        row = _locked_row(conn, connection_id)
        if row is None:
            return None
    tokens = refilled(row.tokens, row.refilled_at, now, rate, burst)
    return Bucket(tokens, max(now, row.refilled_at), row.paused_until)


def spend(
    conn: Connection,
    connection_id: str,
    bucket: Bucket,
    used: int,
    *,
    rate: float,
    burst: float,
) -> Bucket:
    """Write back the locked bucket less the `used` tokens; returns it as stored."""
    left = Bucket(bucket.tokens - used, bucket.at, bucket.paused_until)
    conn.execute(
        sa.update(cl)
        .where(cl.c.connection_id == connection_id)
        .values(tokens=left.tokens, refilled_at=left.at, rate=rate, burst=burst)
    )
    return left


def sending(conn: Connection, connection_id: str, now: float) -> int:
    """Messages of the connection leased for sending by any process (leases not run out)."""
    count = conn.execute(
        sa.select(sa.func.count())
        .select_from(m)
        .where(
            IS_SENDING,
            m.c.connection_id == connection_id,
            m.c.lease_until > now,
        )
    ).scalar_one()
    return int(count)


def pause(conn: Connection, connection_id: str, until: float, now: float) -> None:
    """Send nothing through the connection, from any process, until `until` (a later pause
    already set stays)."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    insert = dialect.insert(cl).values(
        connection_id=connection_id,
        rate=0.0,
        burst=1.0,
        tokens=0.0,
        refilled_at=now,
        paused_until=until,
    )
    conn.execute(
        insert.on_conflict_do_update(
            index_elements=[cl.c.connection_id],
            set_={
                "paused_until": sa.case(
                    (cl.c.paused_until > insert.excluded.paused_until, cl.c.paused_until),
                    else_=insert.excluded.paused_until,
                )
            },
        )
    )


def limiter_state(source: Engine | Connection, now: float | None = None) -> list[dict[str, Any]]:
    """Every connection's shared bucket as of `now` (default: this moment), for health and
    metrics pages:
    connection id, rate (messages per second), burst, tokens, paused_until (epoch seconds,
    0 when never paused). Empty on SQLite, where each process keeps its buckets in memory."""

    at = time.time() if now is None else now

    def read(conn: Connection) -> list[dict[str, Any]]:
        rows = conn.execute(sa.select(cl).order_by(cl.c.connection_id)).all()
        return [
            {
                "connection_id": row.connection_id,
                "rate": row.rate,
                "burst": row.burst,
                "tokens": refilled(row.tokens, row.refilled_at, at, row.rate, row.burst),
                "paused_until": row.paused_until,
            }
            for row in rows
        ]

    if isinstance(source, Engine):
        with source.connect() as conn:
            return read(conn)
    return read(source)
