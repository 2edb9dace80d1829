"""Cluster-wide jobs: a lease in `cluster_jobs` so that one process of many runs a job.

A process claims a job by name for a while (`claim`), renews the lease while it works (`renew`)
and records the outcome when done (`finish`). A lease that ran out (its process died) can be
claimed by any other process. Each step is one conditional UPDATE, so two processes racing for
the same job on SQLite or PostgreSQL cannot both win.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection
from sqlalchemy.dialects import postgresql, sqlite

from smsdesk.store.tables import cluster_jobs


@dataclass(frozen=True, slots=True)
class JobState:
    """What the table says about a job: who holds it, until when, and how its last run went."""

    name: str
    owner: str | None
    lease_until: float | None
    last_started_at: float | None
    last_finished_at: float | None
    last_result: dict[str, Any] | None

    def running(self, now: float) -> bool:
        return self.owner is not None and (self.lease_until or 0.0) > now


def _ensure(conn: Connection, name: str) -> None:
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    conn.execute(dialect.insert(cluster_jobs).values(name=name).on_conflict_do_nothing())


def claim(conn: Connection, name: str, owner: str, now: float, lease_seconds: float) -> bool:
    """Take the job if nobody holds a live lease on it (or `owner` already does)."""
    _ensure(conn, name)
    taken = conn.execute(
        cluster_jobs.update()
        .where(
            cluster_jobs.c.name == name,
            sa.or_(
                cluster_jobs.c.owner.is_(None),
                cluster_jobs.c.lease_until <= now,
                cluster_jobs.c.owner == owner,
            ),
        )
        .values(owner=owner, lease_until=now + lease_seconds, last_started_at=now)
    )
    return taken.rowcount == 1


def renew(conn: Connection, name: str, owner: str, now: float, lease_seconds: float) -> bool:
    """Extend `owner`'s lease; False if it was lost (it ran out and another process took it)."""
    renewed = conn.execute(
        cluster_jobs.update()
        .where(cluster_jobs.c.name == name, cluster_jobs.c.owner == owner)
        .values(lease_until=now + lease_seconds)
    )
    return renewed.rowcount == 1


def finish(conn: Connection, name: str, owner: str, now: float, result: dict[str, Any]) -> bool:
    """Release the lease and keep the run's result; False if `owner` no longer held it."""
    done = conn.execute(
        cluster_jobs.update()
        .where(cluster_jobs.c.name == name, cluster_jobs.c.owner == owner)
        .values(
            owner=None,
            lease_until=None,
            last_finished_at=now,
            last_result=json.dumps(result, sort_keys=True),
        )
    )
    return done.rowcount == 1


def state(conn: Connection, name: str) -> JobState:
    """The job's row (an empty state if it never ran)."""
    row = conn.execute(sa.select(cluster_jobs).where(cluster_jobs.c.name == name)).first()
    if row is None:
        return JobState(name, None, None, None, None, None)
    return JobState(
        name=name,
        owner=row.owner,
        lease_until=row.lease_until,
        last_started_at=row.last_started_at,
        last_finished_at=row.last_finished_at,
        last_result=json.loads(row.last_result) if row.last_result else None,
    )
