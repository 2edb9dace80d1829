"""The processes of the installation as their heartbeats say, and the messages they hold leased.

Each process rewrites its own row every few seconds (`beat`) and deletes it when it stops
(`leave`); a row not rewritten for a while belongs to a process that died or froze. Rows
silent for an hour are dropped by the next beat of any process.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy import Connection, Engine
from sqlalchemy.dialects import postgresql, sqlite

from smsdesk.store.cluster_tables import cluster_processes as cp
from smsdesk.store.tables import IS_SENDING
from smsdesk.store.tables import messages as m

FORGET_AFTER = 3600.0


@dataclass(frozen=True, slots=True)
class ProcessRow:
    """One process as its last heartbeat described it."""

    id: str
    host: str
    pid: int
    role: str
    jobs: tuple[str, ...]
    leased: int
    started_at: float
    last_seen: float


def leased_messages(conn: Connection, owner: str, now: float) -> int:
    """How many messages `owner` holds leased for sending right now."""
    return int(
        conn.execute(
            sa.select(sa.func.count()).where(
                IS_SENDING,
                m.c.lease_until > now,
                m.c.lease_owner == owner,
            )
        ).scalar_one()
    )


def beat(conn: Connection, row: ProcessRow) -> None:
    """Write this process's row (insert or replace) and forget long-silent processes."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    values = {
        "id": row.id,
        "host": row.host,
        "pid": row.pid,
        "role": row.role,
        "jobs": json.dumps(list(row.jobs)),
        "leased": row.leased,
        "started_at": row.started_at,
        "last_seen": row.last_seen,
    }
    insert = dialect.insert(cp).values(**values)
    conn.execute(
        insert.on_conflict_do_update(
            index_elements=[cp.c.id], set_={k: v for k, v in values.items() if k != "id"}
        )
    )
    conn.execute(cp.delete().where(cp.c.last_seen < row.last_seen - FORGET_AFTER))


def leave(conn: Connection, process_id: str) -> None:
    """A process that stops cleanly takes its row away."""
    conn.execute(cp.delete().where(cp.c.id == process_id))


def processes(source: Connection | Engine) -> list[ProcessRow]:
    """Every process with a row, most recently seen first."""
    if isinstance(source, Engine):
        with source.connect() as conn:
            return processes(conn)
    conn = source
    return [
        ProcessRow(
            id=r.id,
            host=r.host,
            pid=r.pid,
            role=r.role,
            jobs=tuple(json.loads(r.jobs)),
            leased=r.leased,
            started_at=r.started_at,
            last_seen=r.last_seen,
        )
        for r in conn.execute(sa.select(cp).order_by(cp.c.last_seen.desc(), cp.c.id))
    ]
