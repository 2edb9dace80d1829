"""Engines for SQLite (WAL, the embedded default) and PostgreSQL, and schema migration."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import event
from sqlalchemy.engine import Engine

MIGRATIONS = Path(__file__).parent / "migrations"
WRITER = "smsdesk_writer"


def create_engine(url: str, **kwargs: Any) -> Engine:
    """An engine tuned for the outbox: WAL and a long busy timeout on SQLite."""
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    if url.startswith("sqlite"):
        path = sa.engine.make_url(url).database
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(url, connect_args={"timeout": 60}, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin_immediate)
        return engine
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("pool_pre_ping", True)
    return sa.create_engine(url, **kwargs)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # Let SQLAlchemy issue BEGIN itself (below) so writers take the lock up front.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=60000")
    cursor.close()


def _sqlite_begin_immediate(connection: Any) -> None:
    # A transaction marked as a writer takes the lock at BEGIN (IMMEDIATE) instead of failing
    # later with "database is locked" when two processes upgrade read locks at once; readers
    # stay deferred so they never wait for writers under WAL.
    writer = connection.get_execution_options().get(WRITER, False)
    connection.exec_driver_sql("BEGIN IMMEDIATE" if writer else "BEGIN")


def is_postgres(engine: Engine) -> bool:
    return engine.dialect.name == "postgresql"


def write_transaction(engine: Engine) -> Any:
    """A transaction that will write: on SQLite it holds the write lock from its start."""
    return engine.connect().execution_options(**{WRITER: True})


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the schema up to date; safe to run on every start."""
    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS))
    with write_transaction(engine) as connection, connection.begin():
        config.attributes["connection"] = connection
        command.upgrade(config, revision)
