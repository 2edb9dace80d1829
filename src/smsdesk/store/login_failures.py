"""Wrong passwords, counted in the database so every process of an installation shares them.

An attempt is written before its password is checked (`begin_attempt`), in a transaction that
first counts the recent ones, so processes trying at the same moment cannot each let a fifth
attempt through; a right password removes the rows of its address and user name. Rows older
than the window are deleted a few at a time as attempts come in, so the table stays small.
"""

from __future__ import annotations

import math

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from smsdesk.store.db import write_transaction
from smsdesk.store.tables import login_failures

MAX_FAILURES = 5
WINDOW_SECONDS = 15 * 60
CLEANUP_BATCH = 200


def _key(address: str, username: str) -> tuple[str, str]:
    return address[:64], username.strip().lower()[:100]


def _serialise(conn: Connection, address: str, username: str) -> None:
    """On PostgreSQL, one attempt per address and user name at a time (SQLite's write lock,
    taken at BEGIN, already serialises every writer)."""
    if conn.dialect.name == "postgresql":
        conn.execute(
            sa.text("SELECT pg_advisory_xact_lock(hashtext(:key))"),
            {"key": f"login:{address}\n{username}"},
        )


def begin_attempt(engine: Engine, address: str, username: str, now: float) -> int:
    """0 if this attempt may check its password (it is counted as failed until `succeeded`);
    otherwise the seconds to wait, and nothing is counted."""
    address, username = _key(address, username)
    with write_transaction(engine) as conn, conn.begin():
        _serialise(conn, address, username)
        recent = (
            conn.execute(
                sa.select(login_failures.c.at)
                .where(
                    login_failures.c.username == username,
                    login_failures.c.address == address,
                    login_failures.c.at > now - WINDOW_SECONDS,
                )
                .order_by(login_failures.c.at.desc())
                .limit(MAX_FAILURES)
            )
            .scalars()
            .all()
        )
        if len(recent) >= MAX_FAILURES:
            return max(1, math.ceil(float(recent[-1]) + WINDOW_SECONDS - now))
        conn.execute(login_failures.insert().values(address=address, username=username, at=now))
        _forget_old(conn, now)
    return 0


def succeeded(engine: Engine, address: str, username: str) -> None:
    """A right password: the failures of this address and user name are forgiven."""
    address, username = _key(address, username)
    with write_transaction(engine) as conn, conn.begin():
        conn.execute(
            login_failures.delete().where(
                login_failures.c.username == username, login_failures.c.address == address
            )
        )


def _forget_old(conn: Connection, now: float) -> None:
    old = (
        sa.select(login_failures.c.id)
        .where(login_failures.c.at <= now - WINDOW_SECONDS)
        .limit(CLEANUP_BATCH)
        .scalar_subquery()
    )
    conn.execute(login_failures.delete().where(login_failures.c.id.in_(old)))


def count(engine: Engine) -> int:
    """Rows kept (for tests and operators)."""
    with engine.connect() as conn:
        return int(
            conn.execute(sa.select(sa.func.count()).select_from(login_failures)).scalar_one()
        )
