"""A process frozen in the middle of a write transaction on PostgreSQL (SIGSTOP, a stalled VM)
does not keep its row locks from the other processes for longer than a few seconds."""

from __future__ import annotations

import time

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from smsdesk.store import db
from tests.integration.test_store import claim, insert, make_row


@pytest.mark.postgres
def test_a_write_transaction_left_idle_is_ended_and_its_locks_freed(
    pg_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The frozen writer's claimed row can be locked by another process once the limit is up,
    and the frozen one finds its transaction gone when it wakes."""
    monkeypatch.setattr(db, "WRITE_IDLE_LIMIT", 1)
    row = make_row()
    insert(pg_engine, [row])
    claim(pg_engine, owner="alive")  # a write transaction that ended normally is untouched
    frozen = db.write_transaction(pg_engine)
    frozen.begin()
    frozen.execute(sa.text("SELECT id FROM messages WHERE id = :id FOR UPDATE"), {"id": row["id"]})

    deadline = time.monotonic() + 15
    with pg_engine.connect() as other:
        while True:
            got = other.execute(
                sa.text("SELECT id FROM messages WHERE id = :id FOR UPDATE SKIP LOCKED"),
                {"id": row["id"]},
            ).scalar()
            other.rollback()
            if got is not None:
                break
            assert time.monotonic() < deadline, "the idle writer kept its lock"
            time.sleep(0.05)
    with pytest.raises(sa.exc.DBAPIError):
        frozen.execute(sa.text("SELECT 1"))
    frozen.close()


@pytest.mark.postgres
def test_reads_and_ordinary_sessions_have_no_idle_limit(pg_engine: Engine) -> None:
    """Only write transactions are bounded; a read may take its time."""
    with pg_engine.connect() as reader:
        shown = reader.execute(sa.text("SHOW idle_in_transaction_session_timeout")).scalar()
    assert shown == "0"
    with db.write_transaction(pg_engine) as writer, writer.begin():
        shown = writer.execute(sa.text("SHOW idle_in_transaction_session_timeout")).scalar()
    assert shown == f"{db.WRITE_IDLE_LIMIT}s"
