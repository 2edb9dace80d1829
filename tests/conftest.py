"""Shared fixtures: real SQLite files and a real PostgreSQL server started for the run."""

from __future__ import annotations

import os
import uuid
from collections.abc import Generator, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from smsdesk.store import db
from tests.support.postgres import PostgresServer, admin_sql, start_postgres

STARTED: list[PostgresServer] = []  # the run's own server, once started
_LOG_OFFSET = pytest.StashKey[int]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item) -> Generator[None, object, object]:
    """Mark where the PostgreSQL server's log stood when each test began."""
    item.stash[_LOG_OFFSET] = STARTED[0].log_size() if STARTED else 0
    return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item,
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """A failed test that used PostgreSQL carries what the server logged meanwhile, so a
    dropped connection shows its cause (a backend killed, a restart) in the CI output."""
    report = yield
    used = [*getattr(item, "fixturenames", ()), *item.keywords]
    if STARTED and report.failed and "postgres" in used:
        logged = STARTED[0].log_since(item.stash.get(_LOG_OFFSET, 0))
        if logged:
            report.sections.append(("PostgreSQL server log", logged[-20_000:]))
    return report


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """A PostgreSQL server for the whole run (or SMSDESK_TEST_POSTGRES_URL), with a migrated
    template database that each test clones."""
    external = os.environ.get("SMSDESK_TEST_POSTGRES_URL")
    server = PostgresServer.from_url(external) if external else start_postgres()
    STARTED.append(server)
    try:
        admin_sql(server, "DROP DATABASE IF EXISTS smsdesk_template")
        admin_sql(server, "CREATE DATABASE smsdesk_template")
        engine = db.create_engine(server.url("smsdesk_template"))
        db.upgrade(engine)
        engine.dispose()
        yield server
    finally:
        if not external:
            server.stop()


def _postgres_engine(server: PostgresServer) -> Iterator[Engine]:
    name = f"t_{uuid.uuid4().hex[:12]}"
    admin_sql(server, f"CREATE DATABASE {name} TEMPLATE smsdesk_template")
    engine = db.create_engine(server.url(name))
    try:
        yield engine
    finally:
        db.close(engine)
        admin_sql(server, f"DROP DATABASE {name} WITH (FORCE)")


def _sqlite_engine(tmp_path: Path) -> Iterator[Engine]:
    engine = db.create_engine(f"sqlite:///{tmp_path / 'smsdesk.sqlite3'}")
    db.upgrade(engine)
    try:
        yield engine
    finally:
        db.close(engine)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """A migrated, empty database: once on SQLite, once on PostgreSQL."""
    if request.param == "sqlite":
        yield from _sqlite_engine(tmp_path)
    else:
        yield from _postgres_engine(request.getfixturevalue("postgres"))


@pytest.fixture
def pg_engine(postgres: PostgresServer) -> Iterator[Engine]:
    """A migrated, empty PostgreSQL database of its own."""
    yield from _postgres_engine(postgres)


@pytest.fixture
def sqlite_engine(tmp_path: Path) -> Iterator[Engine]:
    yield from _sqlite_engine(tmp_path)


def database_url(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=False)


__all__ = ["database_url", "sa"]
