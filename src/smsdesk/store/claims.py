"""What a dispatcher's claim returns, and the claim on SQLite as one statement built once.

On SQLite one writer holds the database at a time, so the due messages can be chosen and
taken in a single `UPDATE … WHERE id IN (SELECT … LIMIT n) RETURNING …`, compiled once and
handed to the driver as a tuple. The two-step claim (`messages.claim_due`: the ids first, then
the UPDATE by an `IN` list that SQLAlchemy expands on every call) stays for PostgreSQL, whose
planner may run an `IN (subquery)` again for each row it updates.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection
from sqlalchemy.engine import Dialect

from smsdesk.domain.message import Status
from smsdesk.store.bulk import positional_statement
from smsdesk.store.tables import IS_QUEUED, messages

m = messages

# What the dispatcher reads of a claimed message (to send it, judge the answer, fail over).
CLAIMED_COLUMNS = tuple(
    m.c[name]
    for name in (
        "id",
        "module",
        "recipient",
        "sender",
        "body",
        "encoding",
        "segments",
        "priority",
        "status",
        "expires_at",
        "attempts",
        "lease_owner",
        "lease_until",
        "delivery_report",
        "transactional",
        "connection_id",
        "route_plan",
        "plan_index",
        "connection_attempts",
        "reference",
        "request_id",
    )
)


_LIMIT = sa.bindparam("limit", type_=sa.Integer)
# A literal OFFSET: with a LIMIT parameter, SQLite's compiler adds an OFFSET parameter.
_NO_OFFSET: sa.ColumnClause[int] = sa.literal_column("0")


def _due(whose: sa.ColumnElement[bool]) -> sa.Select[Any]:
    """(priority, id) of a connection's due queued messages, most urgent first."""
    return (
        sa.select(m.c.priority, m.c.id)
        .where(IS_QUEUED, whose, m.c.next_attempt_at <= sa.bindparam("now", type_=sa.Double))
        .order_by(m.c.priority, m.c.id)
        .limit(_LIMIT)
        .offset(_NO_OFFSET)
    )


@lru_cache(maxsize=8)
def _claim(
    dialect: Dialect, by_connection: bool, with_unassigned: bool
) -> tuple[str, Callable[[dict[str, Any]], tuple[Any, ...]]]:
    connection = sa.bindparam("connection_id", type_=sa.String)
    unassigned = sa.and_(m.c.connection_id.is_(None), m.c.module == sa.bindparam("module"))
    if not by_connection:
        chosen = _due(m.c.module == sa.bindparam("module")).subquery()
    elif not with_unassigned:
        chosen = _due(m.c.connection_id == connection).subquery()
    else:
        # Each part follows its own index in order; the union is cut to `limit` again.
        both = sa.union_all(
            sa.select(_due(m.c.connection_id == connection).subquery()),
            sa.select(_due(unassigned).subquery()),
        ).subquery()
        chosen = (
            sa.select(both.c.id)
            .order_by(both.c.priority, both.c.id)
            .limit(_LIMIT)
            .offset(_NO_OFFSET)
            .subquery()
        )
    values: dict[str, Any] = {
        "status": sa.bindparam("sending", type_=sa.String),
        "lease_owner": sa.bindparam("owner", type_=sa.String),
        "lease_until": sa.bindparam("lease_until", type_=sa.Double),
        "attempts": m.c.attempts + sa.literal_column("1"),
        "connection_attempts": m.c.connection_attempts + sa.literal_column("1"),
        "updated_at": sa.bindparam("now", type_=sa.Double),
    }
    if by_connection:
        values["connection_id"] = sa.func.coalesce(m.c.connection_id, connection)
    statement = (
        m.update()
        .where(m.c.id.in_(sa.select(chosen.c.id)))
        .values(**values)
        .returning(*CLAIMED_COLUMNS)
    )
    prepared = positional_statement(dialect, statement)
    assert prepared is not None, "SQLite takes positional parameters"
    return prepared


def claim_in_one_statement(
    conn: Connection,
    *,
    owner: str,
    limit: int,
    now: float,
    lease_until: float,
    connection_id: str | None,
    module: str | None,
) -> list[sa.Row[Any]]:
    """SQLite: take up to `limit` due messages (see `messages.claim_due`) in one statement:
    rows of the claimed columns (`delivery_report` and `transactional` as SQLite's 1 and 0)."""
    sql, values = _claim(conn.dialect, connection_id is not None, module is not None)
    parameters = {
        "now": now,
        "limit": limit,
        "owner": owner,
        "lease_until": lease_until,
        "sending": Status.SENDING.value,
        "connection_id": connection_id,
        "module": module,
    }
    return list(conn.exec_driver_sql(sql, values(parameters)).all())
