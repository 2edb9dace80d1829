"""The circuit breaker state of each connection, shared by every process, and its statistics.

The rules are the pure functions of `outbox/breaker.py`; this module keeps their result. Every
change is a conditional UPDATE on the state the caller read (`transition`), so when several
processes see the same failures only one of them changes the state, and the
`connection.health` event fires once per change across the cluster. The half-open probe is a
lease (`take_probe`): one process at a time sends it; a process that dies leaves a lease that
runs out.

`connection_stats` counts per connection and minute what was tried and how it went, for the
dashboard's throughput and error rate (`store/stats.py`); retention purges old minutes.

Implicit connections (`module:<name>`) are not stored, so they have no circuit: they read as
closed and their transitions change nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection
from sqlalchemy.dialects import postgresql, sqlite

from smsdesk.domain.connections import IMPLICIT_PREFIX, Health
from smsdesk.domain.times import iso
from smsdesk.events import CONNECTION_HEALTH, EventSink
from smsdesk.store.tables import connection_health as ch
from smsdesk.store.tables import connection_stats as cs
from smsdesk.store.tables import connections as cn


def _health(row: Any) -> Health:
    return Health(
        state=row.state,
        consecutive_failures=int(row.consecutive_failures),
        opened_at=row.opened_at,
        last_error=row.last_error,
    )


def states(conn: Connection) -> dict[str, Health]:
    """The health of every stored connection that has a row (a missing one reads as closed)."""
    return {row.connection_id: _health(row) for row in conn.execute(sa.select(ch))}


def health_of(conn: Connection, connection_id: str, *, lock: bool = False) -> Health:
    """One connection's health; `lock` holds its row (PostgreSQL) until the transaction ends."""
    query = sa.select(ch).where(ch.c.connection_id == connection_id)
    if lock:
        query = query.with_for_update()
    row = conn.execute(query).first()
    return Health() if row is None else _health(row)


def _stored(connection_id: str) -> bool:
    return not connection_id.startswith(IMPLICIT_PREFIX)


def _ensure(conn: Connection, connection_id: str, now: float) -> None:
    """A closed row for a connection that has none yet (a connection made without one)."""
    exists = conn.execute(sa.select(cn.c.id).where(cn.c.id == connection_id)).first()
    if exists is None:
        return
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    conn.execute(
        dialect.insert(ch)
        .values(connection_id=connection_id, state="closed", consecutive_failures=0, updated_at=now)
        .on_conflict_do_nothing()
    )


def transition(
    conn: Connection,
    connection_id: str,
    expected: Health,
    new: Health,
    now: float,
    events: EventSink | None = None,
) -> bool:
    """Store `new` if the connection's health is still `expected`; False if it was not.

    A change of state ends any probe lease and publishes one `connection.health` event.
    """
    if not _stored(connection_id):
        return False
    if new == expected:
        return True
    _ensure(conn, connection_id, now)
    changed = new.state != expected.state
    values: dict[str, Any] = {
        "state": new.state,
        "consecutive_failures": new.consecutive_failures,
        "opened_at": new.opened_at,
        "last_error": new.last_error,
        "updated_at": now,
    }
    if changed:
        values.update(last_change_at=now, probe_owner=None, probe_until=None)
    done = conn.execute(
        ch.update()
        .where(
            ch.c.connection_id == connection_id,
            ch.c.state == expected.state,
            ch.c.consecutive_failures == expected.consecutive_failures,
        )
        .values(**values)
    ).rowcount
    if done and changed:
        _publish(conn, events, connection_id, expected.state, new, now)
    return bool(done)


def take_probe(
    conn: Connection,
    connection_id: str,
    owner: str,
    now: float,
    until: float,
    *,
    cool_down: float,
    events: EventSink | None = None,
) -> bool:
    """Lease the half-open probe to `owner` until `until`; True if it is theirs.

    An open circuit whose cool-down has passed becomes half-open here (one event). A lease
    held by another process is respected until it runs out.
    """
    if not _stored(connection_id):
        return False
    before = conn.execute(
        sa.select(ch).where(ch.c.connection_id == connection_id).with_for_update()
    ).first()
    if before is None:
        return False
    ready = sa.or_(
        ch.c.state == "half_open",
        sa.and_(
            ch.c.state == "open",
            sa.or_(ch.c.opened_at.is_(None), ch.c.opened_at <= now - cool_down),
        ),
    )
    free = sa.or_(ch.c.probe_owner.is_(None), ch.c.probe_until <= now, ch.c.probe_owner == owner)
    done = conn.execute(
        ch.update()
        .where(ch.c.connection_id == connection_id, ready, free)
        .values(state="half_open", probe_owner=owner, probe_until=until, updated_at=now)
    ).rowcount
    if done and before.state == "open":
        conn.execute(
            ch.update().where(ch.c.connection_id == connection_id).values(last_change_at=now)
        )
        after = Health("half_open", int(before.consecutive_failures), before.opened_at)
        _publish(conn, events, connection_id, "open", after, now, before.last_error)
    return bool(done)


def _publish(
    conn: Connection,
    events: EventSink | None,
    connection_id: str,
    previous: str,
    new: Health,
    now: float,
    last_error: str | None = None,
) -> None:
    if events is None:
        return
    wants = getattr(events, "wants", None)
    if wants is not None and not wants(conn, CONNECTION_HEALTH):
        return
    name = conn.execute(sa.select(cn.c.name).where(cn.c.id == connection_id)).scalar()
    payload = {
        "connection_id": connection_id,
        "name": name,
        "state": new.state,
        "previous": previous,
        "consecutive_failures": new.consecutive_failures,
        "last_error": new.last_error if new.last_error is not None else last_error,
        "at": iso(now),
    }
    events.emit(conn, CONNECTION_HEALTH, [payload])


@dataclass(frozen=True, slots=True)
class Tally:
    """What one batch of sends through a connection gave, counted into its minute."""

    attempts: int = 0
    accepted: int = 0
    not_taken: int = 0
    ambiguous: int = 0
    failovers: int = 0

    def __bool__(self) -> bool:
        return any((self.attempts, self.accepted, self.not_taken, self.ambiguous, self.failovers))


def add_stats(conn: Connection, connection_id: str, now: float, tally: Tally) -> None:
    """Add a batch's figures to the connection's current minute."""
    if not tally:
        return
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    counts = {
        "attempts": tally.attempts,
        "accepted": tally.accepted,
        "not_taken": tally.not_taken,
        "ambiguous": tally.ambiguous,
        "failovers": tally.failovers,
    }
    insert = dialect.insert(cs).values(connection_id=connection_id, minute=int(now // 60), **counts)
    conn.execute(
        insert.on_conflict_do_update(
            index_elements=[cs.c.connection_id, cs.c.minute],
            set_={name: getattr(cs.c, name) + getattr(insert.excluded, name) for name in counts},
        )
    )


def stats_between(conn: Connection, since: float, now: float) -> dict[str, Tally]:
    """Each connection's figures summed over the minutes from `since` to `now`."""
    columns = ("attempts", "accepted", "not_taken", "ambiguous", "failovers")
    rows = conn.execute(
        sa.select(cs.c.connection_id, *(sa.func.sum(cs.c[name]) for name in columns))
        .where(cs.c.minute >= int(since // 60), cs.c.minute <= int(now // 60))
        .group_by(cs.c.connection_id)
    ).all()
    return {row[0]: Tally(*(int(v or 0) for v in row[1:])) for row in rows}
