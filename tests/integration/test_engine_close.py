"""Closing an engine closes its connections, also one still in use that comes back later."""

from __future__ import annotations

import threading
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from smsdesk.store import db
from tests.conftest import database_url


def _usable(raw: Any) -> bool:
    try:
        raw.cursor().execute("SELECT 1")
    except Exception:
        return False
    return True


def test_a_connection_in_use_while_its_engine_closes_is_closed_when_given_back(
    engine: Engine,
) -> None:
    """A worker thread that outlives its service must not keep a database session open."""
    own = db.create_engine(database_url(engine))
    taken, closing = threading.Event(), threading.Event()
    found: dict[str, Any] = {}

    def worker() -> None:
        with own.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
            found["raw"] = conn.connection.dbapi_connection
            taken.set()
            closing.wait(10)
        # given back here, after the engine was closed

    thread = threading.Thread(target=worker)
    thread.start()
    assert taken.wait(10)
    idle = own.connect()  # another one, back in the pool before the close
    idle_raw = idle.connection.dbapi_connection
    idle.close()
    db.close(own)
    closing.set()
    thread.join(10)
    assert not _usable(idle_raw)
    assert not _usable(found["raw"])


def test_an_engine_still_open_keeps_its_connections(engine: Engine) -> None:
    own = db.create_engine(database_url(engine))
    with own.connect() as conn:
        raw = conn.connection.dbapi_connection
    try:
        assert _usable(raw)
    finally:
        db.close(own)
