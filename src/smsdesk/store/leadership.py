"""Locks that name one process of the installation leader of a job (or holder of a slot).

PostgreSQL: a session-level advisory lock per name (`pg_try_advisory_lock` on a stable 63-bit
key), taken on a connection of its own that lives as long as the process leads. The server
drops the locks when that session ends, so a process that dies (even by SIGKILL) frees its
jobs at once, and a process whose connection is lost has lost them too: `alive()` says so.
The connection uses TCP keepalives at both ends, so a machine that vanished from the network
loses its locks in seconds, not hours. A frozen process (SIGSTOP) keeps its session and its
locks until it is resumed or killed.

SQLite: one host shares the file, so an exclusive `flock` on a file per name beside the
database plays the same part (the kernel drops it when the process dies). An in-memory
database has one process: it holds every lock.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
from collections.abc import Iterable
from pathlib import Path
from typing import IO, Protocol

import sqlalchemy as sa
from sqlalchemy import Engine
from sqlalchemy.pool import NullPool

# TCP keepalives on both ends of the lock connection: a peer that vanished without closing it
# (a machine that lost power, a network cut) is noticed within about 7 s. On the server's end
# this ends the session and frees its locks for the other processes; on ours, `alive()` fails.
_KEEPALIVE: dict[str, object] = {
    "keepalives": 1,
    "keepalives_idle": 4,
    "keepalives_interval": 1,
    "keepalives_count": 3,
    "connect_timeout": 5,
    "options": "-c tcp_keepalives_idle=4 -c tcp_keepalives_interval=1 -c tcp_keepalives_count=3",
}


def lock_key(name: str) -> int:
    """The advisory-lock key of `name`: the same in every process and version, 0 < key < 2**63."""
    digest = hashlib.blake2b(f"smsdesk:{name}".encode(), digest_size=8).digest()
    return (int.from_bytes(digest, "big") >> 1) or 1


class JobLocks(Protocol):
    """Named locks held by one process; all are gone together when `alive()` turns False."""

    kind: str

    def take(self, name: str) -> bool:
        """Take `name` if no other process holds it; True if this process holds it now."""

    def release(self, name: str) -> None:
        """Give `name` up (nothing if not held)."""

    def alive(self) -> bool:
        """Whether the locks are still ours (False: the session ended; every lock is lost)."""

    def close(self) -> None:
        """Give every lock up."""


class AdvisoryLocks:
    """PostgreSQL advisory locks on a dedicated connection (never returned to a pool)."""

    kind = "postgresql advisory locks"

    def __init__(self, engine: Engine, application_name: str) -> None:
        self._engine = sa.create_engine(
            engine.url,
            poolclass=NullPool,
            connect_args={**_KEEPALIVE, "application_name": application_name[:63]},
        )
        self._conn: sa.Connection | None = self._engine.connect().execution_options(
            isolation_level="AUTOCOMMIT"
        )
        self._held: set[str] = set()

    def _execute(self, sql: str, **params: object) -> object:
        if self._conn is None:
            raise ConnectionError("the lock connection is closed")
        return self._conn.execute(sa.text(sql), params).scalar()

    def take(self, name: str) -> bool:
        if name in self._held:
            return True
        if self._execute("SELECT pg_try_advisory_lock(:key)", key=lock_key(name)):
            self._held.add(name)
            return True
        return False

    def release(self, name: str) -> None:
        if name in self._held:
            self._held.discard(name)
            self._execute("SELECT pg_advisory_unlock(:key)", key=lock_key(name))

    def alive(self) -> bool:
        try:
            return self._execute("SELECT 1") == 1
        except Exception:
            return False

    def close(self) -> None:
        """Close the session: the server drops every lock it held."""
        self._held.clear()
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.invalidate()
            with contextlib.suppress(Exception):
                conn.close()
        self._engine.dispose()


class FileLocks:
    """`flock` on `<database file>.<name>.lock`: held until released or the process ends."""

    kind = "lock files"

    def __init__(self, database: Path) -> None:
        self._database = database
        self._files: dict[str, IO[bytes]] = {}

    def _path(self, name: str) -> Path:
        return self._database.with_name(f"{self._database.name}.{name}.lock")

    def take(self, name: str) -> bool:
        if name in self._files:
            return True
        handle = open(self._path(name), "ab")  # noqa: SIM115 - open while the lock is held
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            return False
        self._files[name] = handle
        return True

    def release(self, name: str) -> None:
        handle = self._files.pop(name, None)
        if handle is not None:
            handle.close()  # closing the file releases the lock

    def alive(self) -> bool:
        return True

    def close(self) -> None:
        for name in list(self._files):
            self.release(name)


class SoleProcess:
    """An in-memory database: this process is the only one and holds every lock."""

    kind = "sole process"

    def take(self, name: str) -> bool:
        return True

    def release(self, name: str) -> None:
        return None

    def alive(self) -> bool:
        return True

    def close(self) -> None:
        return None


def open_locks(engine: Engine, application_name: str) -> JobLocks:
    """The locks that fit the database: advisory locks, lock files, or the sole process."""
    if engine.dialect.name == "postgresql":
        return AdvisoryLocks(engine, application_name)
    database = engine.url.database
    if not database or database == ":memory:":
        return SoleProcess()
    return FileLocks(Path(os.path.abspath(database)))


def holders(engine: Engine, names: Iterable[str]) -> dict[str, str | None] | None:
    """PostgreSQL: the process holding each lock now (from `pg_locks`, by the application name
    its lock session gave, without the `smsdesk ` prefix); None elsewhere, where only the
    processes' heartbeats tell."""
    if engine.dialect.name != "postgresql":
        return None
    wanted = {lock_key(name): name for name in names}
    found: dict[str, str | None] = dict.fromkeys(wanted.values())
    query = sa.text(
        "SELECT (l.classid::bigint << 32) | l.objid::bigint, a.application_name "
        "FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
        "WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1 "
        "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())"
    )
    with engine.connect() as conn:
        for key, application in conn.execute(query):
            if key in wanted:
                found[wanted[key]] = (application or "").removeprefix("smsdesk ")
    return found
