"""The opt-out list: numbers (E.164) that asked not to receive SMS, and why.

The inbound pipeline adds and removes numbers when a customer texts STOP or START, the outbox
asks which recipients opted out, and administrators manage the list through the API and CLI.
Every function takes the caller's connection, so changes commit with the rest of the caller's
transaction (usually a writer job).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, TypeAlias

import sqlalchemy as sa
from sqlalchemy import Connection
from sqlalchemy.dialects import postgresql, sqlite

from smsdesk.events import OPT_OUT_CHANGED, EventSink
from smsdesk.store.tables import opt_outs

# One entry of the list: number, keyword, source, inbound_id, created_at.
OptOutRow: TypeAlias = sa.Row[Any]

_CHUNK = 500  # numbers per IN (...) query, well under every driver's parameter limit

# Changes made by this process (whatever the connection): a cache of the list looks again.
changes_in_process = 0


def _changed() -> None:
    global changes_in_process
    changes_in_process += 1


def opted_out(conn: Connection, numbers: Iterable[str]) -> set[str]:
    """Those of `numbers` that are on the opt-out list."""
    wanted = sorted(set(numbers))
    found: set[str] = set()
    for start in range(0, len(wanted), _CHUNK):
        chunk = wanted[start : start + _CHUNK]
        found.update(
            conn.execute(sa.select(opt_outs.c.number).where(opt_outs.c.number.in_(chunk)))
            .scalars()
            .all()
        )
    return found


def opt_out_fingerprint(conn: Connection) -> tuple[int, float | None]:
    """How many numbers are on the list and when the newest came: a change alters one of them."""
    count, newest = conn.execute(
        sa.select(sa.func.count(), sa.func.max(opt_outs.c.created_at))
    ).one()
    return int(count), newest


def all_opted_out(conn: Connection) -> frozenset[str]:
    """Every number on the list, for a cache held in memory."""
    return frozenset(conn.execute(sa.select(opt_outs.c.number)).scalars())


def add_opt_out(
    conn: Connection,
    number: str,
    *,
    keyword: str | None,
    source: str,
    inbound_id: str | None,
    now: float,
) -> bool:
    """Put `number` on the list; True if it was not on it already (the first reason is kept)."""
    values = {
        "number": number,
        "keyword": keyword,
        "source": source,
        "inbound_id": inbound_id,
        "created_at": now,
    }
    insert: Any
    if conn.dialect.name == "postgresql":
        insert = postgresql.insert(opt_outs).values(values).on_conflict_do_nothing()
    elif conn.dialect.name == "sqlite":
        insert = sqlite.insert(opt_outs).values(values).on_conflict_do_nothing()
    else:  # pragma: no cover - only SQLite and PostgreSQL are supported
        if conn.execute(sa.select(opt_outs.c.number).where(opt_outs.c.number == number)).first():
            return False
        insert = opt_outs.insert().values(values)
    _changed()
    # RETURNING rather than rowcount: psycopg reports no row count for ON CONFLICT DO NOTHING.
    return conn.execute(insert.returning(opt_outs.c.number)).first() is not None


def remove_opt_out(conn: Connection, number: str) -> bool:
    """Take `number` off the list; True if it was on it."""
    _changed()
    return conn.execute(opt_outs.delete().where(opt_outs.c.number == number)).rowcount > 0


def set_opt_out_by_administrator(
    conn: Connection, number: str, *, opted_out: bool, source: str, now: float, events: EventSink
) -> bool:
    """Add (`opted_out`) or remove a number as an administrator did; an event if it changed."""
    if opted_out:
        changed = add_opt_out(conn, number, keyword=None, source=source, inbound_id=None, now=now)
    else:
        changed = remove_opt_out(conn, number)
    if changed:
        events.emit(
            conn,
            OPT_OUT_CHANGED,
            [{"number": number, "opted_out": opted_out, "source": source, "keyword": None}],
        )
    return changed


def get_opt_out(conn: Connection, number: str) -> OptOutRow | None:
    """The entry of `number`, or None if it is not on the list."""
    return conn.execute(sa.select(opt_outs).where(opt_outs.c.number == number)).first()


def opt_out_cursor(row: OptOutRow) -> str:
    """The `before` value that continues a listing after `row`."""
    return f"{row.created_at!r}_{row.number}"


def list_opt_outs(
    conn: Connection,
    *,
    before: str | None = None,
    limit: int = 100,
    contains: str | None = None,
) -> list[OptOutRow]:
    """Newest first; `before` is `opt_out_cursor` of the last row of the previous page.

    `contains` keeps numbers containing those digits (a leading + is ignored).
    """
    query = sa.select(opt_outs).order_by(opt_outs.c.created_at.desc(), opt_outs.c.number.desc())
    if before:
        at_text, _, number = before.partition("_")
        try:
            at = float(at_text)
        except ValueError:
            raise ValueError(f"'{before}' is not a cursor from a previous page.") from None
        query = query.where(
            sa.or_(
                opt_outs.c.created_at < at,
                sa.and_(opt_outs.c.created_at == at, opt_outs.c.number < number),
            )
        )
    digits = (contains or "").strip().lstrip("+")
    if digits:
        escaped = digits.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        query = query.where(opt_outs.c.number.like(f"%{escaped}%", escape="\\"))
    return list(conn.execute(query.limit(limit)).all())
