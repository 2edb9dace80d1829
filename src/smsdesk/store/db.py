"""Engines for SQLite (WAL, the embedded default) and PostgreSQL, and schema migration.

A database that cannot be used at all (no driver, a URL naming none, no server answering)
raises `DatabaseUnavailable` with one sentence an operator can act on, so the commands print
that line instead of a traceback.
"""

from __future__ import annotations

import contextlib
import weakref
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine

MIGRATIONS = Path(__file__).parent / "migrations"
WRITER = "smsdesk_writer"


# The pip requirement that brings each driver SQLAlchemy may ask for.
DRIVER_PACKAGES = {"psycopg": "psycopg[binary]", "psycopg2": "psycopg2-binary"}
# Seconds a PostgreSQL connection attempt may take (libpq waits for TCP's own timeout, minutes).
CONNECT_TIMEOUT = 10


class DatabaseUnavailable(Exception):
    """The database cannot be used: the message is one plain sentence saying what to do."""


# SQLite's `synchronous` with WAL, as `SMSDESK_SQLITE_SYNCHRONOUS` chooses (docs/DURABILITY.md):
# NORMAL keeps every committed message through a crash or SIGKILL of smsdesk (the commit is in
# the WAL file, in the operating system's cache) and syncs the WAL to the disk at each
# checkpoint; a power loss or a crash of the operating system can undo the transactions since
# the last sync, never corrupt the file. FULL syncs the WAL at every commit: nothing committed
# is lost even to a power loss, at the cost of one disk flush per group commit.
SQLITE_SYNCHRONOUS = ("normal", "full")


def create_engine(url: str, *, sqlite_synchronous: str = "normal", **kwargs: Any) -> Engine:
    """An engine tuned for the outbox: WAL and a long busy timeout on SQLite."""
    if sqlite_synchronous not in SQLITE_SYNCHRONOUS:
        raise ValueError(f"sqlite_synchronous must be normal or full, not {sqlite_synchronous!r}")
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    try:
        parsed = sa.engine.make_url(url)
    except sa.exc.ArgumentError:
        raise DatabaseUnavailable(
            "the database URL (--database-url / SMSDESK_DATABASE_URL) is not a URL; "
            "write it as postgresql://user:password@host:5432/dbname"
        ) from None
    try:
        return _engine(parsed, sqlite_synchronous, kwargs)
    except sa.exc.NoSuchModuleError:
        raise DatabaseUnavailable(
            f"the database URL names '{parsed.drivername}', which is no installed database "
            "driver; write it as postgresql://user:password@host:5432/dbname"
        ) from None
    except ImportError as exc:
        package = DRIVER_PACKAGES.get(exc.name or "", exc.name or parsed.drivername)
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DatabaseUnavailable(
            f"the driver for {parsed.get_backend_name()} cannot be loaded ({reason}); "
            f"install it with: pip install '{package}'"
        ) from None


def _engine(url: sa.URL, synchronous: str, kwargs: dict[str, Any]) -> Engine:
    if url.get_backend_name() == "sqlite":
        path = url.database
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(url, connect_args={"timeout": 60}, **kwargs)
        event.listen(engine, "connect", partial(_sqlite_pragmas, synchronous.upper()))
        event.listen(engine, "begin", _sqlite_begin_immediate)
    else:
        kwargs.setdefault("pool_size", 10)
        kwargs.setdefault("pool_pre_ping", True)
        if url.get_driver_name() == "psycopg" and "connect_timeout" not in url.query:
            kwargs.setdefault("connect_args", {"connect_timeout": CONNECT_TIMEOUT})
        engine = sa.create_engine(url, **kwargs)
        event.listen(engine, "begin", _postgres_write_bound)
    event.listen(engine, "checkin", partial(_close_if_engine_closed, weakref.ref(engine)))
    return engine


# Engines given up with `close`: a connection of theirs that comes back is closed at once.
_CLOSED: weakref.WeakSet[Engine] = weakref.WeakSet()


V = TypeVar("V")

# Registries of other modules keyed by engine (a service's callbacks, a cache). A value that
# refers back to its engine, as a service's callback does, keeps the weak key alive for the
# life of the process; `close` removes the engine from each of them.
_PER_ENGINE: list[weakref.WeakKeyDictionary[Engine, Any]] = []


def per_engine() -> weakref.WeakKeyDictionary[Engine, V]:
    """A registry keyed by engine, emptied of an engine when it is closed (`close`)."""
    registry: weakref.WeakKeyDictionary[Engine, V] = weakref.WeakKeyDictionary()
    _PER_ENGINE.append(registry)
    return registry


def close(engine: Engine) -> None:
    """Close every connection of `engine`: those in its pool now, and those still in use as
    they come back.

    `Engine.dispose` closes only the pooled ones; a connection in use at that moment (by a
    worker thread that outlived its caller, such as a cancelled `asyncio.to_thread`) would
    go back into the discarded pool and stay open, a database session, until the garbage
    collector found it.
    """
    _CLOSED.add(engine)
    for registry in _PER_ENGINE:
        registry.pop(engine, None)
    engine.dispose()


def _close_if_engine_closed(
    engine: weakref.ref[Engine], dbapi_connection: Any, _record: Any
) -> None:
    owner = engine()
    if dbapi_connection is not None and (owner is None or owner in _CLOSED):
        with contextlib.suppress(Exception):  # already broken: nothing left to close
            dbapi_connection.close()


# Seconds a write transaction may sit idle between statements before the server ends it. A
# process frozen (SIGSTOP, a stalled VM) in the middle of a claim would otherwise keep its row
# locks, and with them the connection's rate-limit row and its claimed messages, from every
# other process for as long as it is frozen. Write transactions here last milliseconds.
WRITE_IDLE_LIMIT = 10


def _postgres_write_bound(connection: Connection) -> None:
    if connection.get_execution_options().get(WRITER, False):
        connection.exec_driver_sql(
            f"SET LOCAL idle_in_transaction_session_timeout = '{WRITE_IDLE_LIMIT}s'"
        )


def unreachable(engine: Engine, exc: sa.exc.DBAPIError) -> DatabaseUnavailable:
    """One line for a database whose first connection failed, with the driver's reason."""
    first = str(exc.orig).strip().splitlines()[0] if str(exc.orig).strip() else ""
    reason = " ".join(first.rpartition("failed: ")[2].replace("FATAL:", "").split())
    url = engine.url
    if url.get_backend_name() == "sqlite":
        return DatabaseUnavailable(f"cannot open the SQLite database {url.database} ({reason})")
    where = f"{url.host or 'localhost'}:{url.port or 5432}/{url.database or ''}"
    if "FATAL:" in first:  # the server answered: it refused the user or has no such database
        advice = (
            "check the user, password and database name in --database-url / SMSDESK_DATABASE_URL"
        )
    else:
        advice = "is the server running, and are --database-url / SMSDESK_DATABASE_URL right?"
    return DatabaseUnavailable(
        f"cannot connect to the database at {where} ({reason or type(exc.orig).__name__}); "
        + advice
    )


def _sqlite_pragmas(synchronous: str, dbapi_connection: Any, _record: Any) -> None:
    # Let SQLAlchemy issue BEGIN itself (below) so writers take the lock up front.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA synchronous={synchronous}")
    cursor.execute("PRAGMA busy_timeout=60000")
    cursor.close()


def _sqlite_begin_immediate(connection: Any) -> None:
    # A transaction marked as a writer takes the lock at BEGIN (IMMEDIATE) instead of failing
    # later with "database is locked" when two processes upgrade read locks at once; readers
    # stay deferred so they never wait for writers under WAL.
    writer = connection.get_execution_options().get(WRITER, False)
    connection.exec_driver_sql("BEGIN IMMEDIATE" if writer else "BEGIN")


def newest_revision() -> str:
    """The newest migration's revision: migrations are numbered, each file named by its
    revision id and revising the one before (tests/unit/test_migrations_chain.py)."""
    names = (p.name.partition("_")[0] for p in (MIGRATIONS / "versions").glob("[0-9]*_*.py"))
    return max(names)


def _stored_revision(engine: Engine) -> str | None:
    """The revision recorded in the database, or None (a new database, or one that is
    unreachable: the Alembic path below says why)."""
    try:
        with engine.connect() as conn:
            return conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()
    except sa.exc.DBAPIError:
        return None


def is_postgres(engine: Engine) -> bool:
    return engine.dialect.name == "postgresql"


def write_transaction(engine: Engine) -> Any:
    """A transaction that will write: on SQLite it holds the write lock from its start."""
    return engine.connect().execution_options(**{WRITER: True})


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the schema up to date; safe to run on every start.

    A schema already at the newest migration is recognised without loading Alembic (8 MiB
    of memory in every `serve` process for nothing)."""
    if revision == "head" and _stored_revision(engine) == newest_revision():
        return
    from alembic import command
    from alembic.config import Config as AlembicConfig

    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS))
    try:
        opened = write_transaction(engine)
    except (sa.exc.OperationalError, sa.exc.InterfaceError) as exc:
        raise unreachable(engine, exc) from None
    with opened as connection, connection.begin():
        config.attributes["connection"] = connection
        command.upgrade(config, revision)
