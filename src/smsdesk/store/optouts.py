"""The opt-out list: numbers (E.164) that asked not to receive SMS, and why.

The inbound pipeline adds and removes numbers when a customer texts STOP or START, the outbox
asks which recipients opted out, and administrators manage the list through the API and CLI.
Every function takes the caller's connection, so changes commit with the rest of the caller's
transaction (usually a writer job).

An erased customer's opt-out is kept only as a keyed hash of the number (`erased_opt_outs`,
keyed with the installation's hash key), so a later send to that number is still refused. The
service tells this module how to get the key for its database (`use_hash_key`); the checks
hash a number only when erased opt-outs exist. A START (or an administrator's removal) takes a
number off both lists.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterable
from typing import Any, TypeAlias

import sqlalchemy as sa
from sqlalchemy import Connection
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine

from smsdesk.events import OPT_OUT_CHANGED, EventSink
from smsdesk.store import db
from smsdesk.store.hash_key import keyed_hash
from smsdesk.store.tables import erased_opt_outs, opt_outs

# One entry of the list: number, keyword, source, inbound_id, created_at.
OptOutRow: TypeAlias = sa.Row[Any]

_CHUNK = 500  # numbers per IN (...) query, well under every driver's parameter limit

# Changes made by this process (whatever the connection): a cache of the list looks again.
changes_in_process = 0


def _changed() -> None:
    global changes_in_process
    changes_in_process += 1


# How each database's hash key is fetched (set by the service that opened the engine).
_hash_keys: weakref.WeakKeyDictionary[Engine, Callable[[], bytes]] = db.per_engine()


def use_hash_key(engine: Engine, key: Callable[[], bytes]) -> None:
    """Numbers of erased opt-outs in `engine`'s database are hashed with what `key` returns."""
    _hash_keys[engine] = key


def hash_key_of(engine: Engine) -> bytes | None:
    """The hash key of `engine`'s database, or None if no service said how to get it."""
    loader = _hash_keys.get(engine)
    return None if loader is None else loader()


def opted_out(conn: Connection, numbers: Iterable[str]) -> set[str]:
    """Those of `numbers` that are on the opt-out list (or on it as an erased number's hash)."""
    wanted = sorted(set(numbers))
    found: set[str] = set()
    for start in range(0, len(wanted), _CHUNK):
        chunk = wanted[start : start + _CHUNK]
        found.update(
            conn.execute(sa.select(opt_outs.c.number).where(opt_outs.c.number.in_(chunk)))
            .scalars()
            .all()
        )
    rest = [number for number in wanted if number not in found]
    if rest and _any_erased(conn):
        key = hash_key_of(conn.engine)
        if key is not None:
            hashes = {keyed_hash(key, number): number for number in rest}
            found.update(hashes[h] for h in erased_hashes_among(conn, hashes))
    return found


def _any_erased(conn: Connection) -> bool:
    return conn.execute(sa.select(erased_opt_outs.c.number_hash).limit(1)).first() is not None


def erased_hashes_among(conn: Connection, hashes: Iterable[str]) -> set[str]:
    """Those of `hashes` that are erased opt-outs."""
    wanted = sorted(set(hashes))
    found: set[str] = set()
    column = erased_opt_outs.c.number_hash
    for start in range(0, len(wanted), _CHUNK):
        chunk = wanted[start : start + _CHUNK]
        found.update(conn.execute(sa.select(column).where(column.in_(chunk))).scalars().all())
    return found


def opt_out_fingerprint(conn: Connection) -> tuple[int, float | None, int, float | None]:
    """How many numbers (and erased numbers' hashes) are on the list and when the newest came:
    a change alters one of them."""
    erased = sa.select(sa.func.count()).select_from(erased_opt_outs).scalar_subquery()
    erased_newest = sa.select(sa.func.max(erased_opt_outs.c.erased_at)).scalar_subquery()
    count, newest, erased_count, erased_at = conn.execute(
        sa.select(sa.func.count(), sa.func.max(opt_outs.c.created_at), erased, erased_newest)
    ).one()
    return int(count), newest, int(erased_count), erased_at


def all_opted_out(conn: Connection) -> frozenset[str]:
    """Every number on the list, for a cache held in memory."""
    return frozenset(conn.execute(sa.select(opt_outs.c.number)).scalars())


def all_erased_hashes(conn: Connection) -> frozenset[str]:
    """Every erased number's hash, for a cache held in memory."""
    return frozenset(conn.execute(sa.select(erased_opt_outs.c.number_hash)).scalars())


def keep_as_erased(conn: Connection, number: str, key: bytes, now: float) -> bool:
    """Replace `number`'s entry by its keyed hash (its customer is being erased); True if it
    was on the list."""
    row = get_opt_out(conn, number)
    if row is None:
        return False
    number_hash = keyed_hash(key, number)
    known = conn.execute(
        sa.select(erased_opt_outs.c.number_hash).where(erased_opt_outs.c.number_hash == number_hash)
    ).first()
    if known is None:
        conn.execute(
            erased_opt_outs.insert().values(
                number_hash=number_hash,
                keyword=row.keyword,
                source=row.source,
                created_at=row.created_at,
                erased_at=now,
            )
        )
    conn.execute(opt_outs.delete().where(opt_outs.c.number == number))
    _changed()
    return True


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
    """Take `number` off the list, also as an erased number's hash; True if it was on it."""
    _changed()
    removed = conn.execute(opt_outs.delete().where(opt_outs.c.number == number)).rowcount > 0
    if _any_erased(conn):
        key = hash_key_of(conn.engine)
        if key is not None:
            erased = erased_opt_outs.delete().where(
                erased_opt_outs.c.number_hash == keyed_hash(key, number)
            )
            removed = conn.execute(erased).rowcount > 0 or removed
    return removed


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
    """The entry of `number`, or None if it is not on the list (an erased number's entry has
    its keyword, source and time, without the SMS that asked for it)."""
    row = conn.execute(sa.select(opt_outs).where(opt_outs.c.number == number)).first()
    if row is not None or not _any_erased(conn):
        return row
    key = hash_key_of(conn.engine)
    if key is None:
        return None
    e = erased_opt_outs
    return conn.execute(
        sa.select(
            sa.literal(number, sa.String).label("number"),
            e.c.keyword,
            e.c.source,
            sa.null().label("inbound_id"),
            e.c.created_at,
        ).where(e.c.number_hash == keyed_hash(key, number))
    ).first()


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


def list_erased(conn: Connection, *, limit: int = 100) -> list[OptOutRow]:
    """Opt-outs of erased customers, newest first, without their numbers (only hashes are
    kept): number (None), keyword, source, inbound_id (None), created_at."""
    e = erased_opt_outs
    query = sa.select(
        sa.null().label("number"),
        e.c.keyword,
        e.c.source,
        sa.null().label("inbound_id"),
        e.c.created_at,
    ).order_by(e.c.created_at.desc(), e.c.number_hash)
    return list(conn.execute(query.limit(limit)).all())
