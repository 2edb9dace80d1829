"""The group-commit writer: many callers per transaction, one bad job fails alone."""

from __future__ import annotations

import asyncio
import fcntl
import os
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError

from smsdesk.store import messages as repo
from smsdesk.store.tables import idempotency_keys, messages
from smsdesk.store.writer import Writer
from tests.integration.test_store import make_row


@pytest.fixture
def writer(engine: Engine) -> Iterator[Writer]:
    w = Writer(engine)
    w.start()
    yield w
    w.stop()


def keep_busy(writer: Writer) -> tuple[Future[Any], threading.Event]:
    """A job that holds the writer until the returned event is set (and has started)."""
    started, gate = threading.Event(), threading.Event()

    def hold(conn: sa.Connection) -> None:
        started.set()
        gate.wait(10)

    busy = writer.submit(hold)
    assert started.wait(10)
    return busy, gate


def queued_together(writer: Writer, jobs: list[Any]) -> list[Future[Any]]:
    """Submit `jobs` while the writer is busy, so they all wait for it and run as one batch."""
    busy, gate = keep_busy(writer)
    futures = [writer.submit(job) for job in jobs]
    gate.set()
    busy.result(10)
    return futures


def idempotency(key: str) -> dict[str, Any]:
    return {
        "api_key_id": "k1",
        "key": key,
        "request_hash": "h",
        "response": "{}",
        "status_code": 201,
        "created_at": 0.0,
    }


def count(engine: Engine, table: sa.Table) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())


def test_waiting_requests_share_one_transaction(engine: Engine, writer: Writer) -> None:
    """Fifty API requests waiting together are stored by one transaction, all of them."""
    jobs = [repo.NewMessages([make_row()], "api", [idempotency(f"k{i}")]) for i in range(50)]
    before = writer.batches
    for future in queued_together(writer, jobs):
        assert future.result(10) is None
    assert writer.batches == before + 2  # the job that kept the writer busy, then the fifty
    assert count(engine, messages) == 50 and count(engine, idempotency_keys) == 50


def test_a_failing_request_fails_alone(engine: Engine, writer: Writer) -> None:
    """A reused Idempotency-Key fails its own request; the others in its batch are stored."""
    writer.run_sync(repo.NewMessages([make_row()], "api", [idempotency("taken")]))
    jobs = [
        repo.NewMessages([make_row()], "api", [idempotency("a")]),
        repo.NewMessages([make_row()], "api", [idempotency("taken")]),
        repo.NewMessages([make_row()], "api", [idempotency("b")]),
    ]
    first, clash, last = queued_together(writer, jobs)
    assert first.result(10) is None and last.result(10) is None
    with pytest.raises(IntegrityError):
        clash.result(10)
    assert count(engine, messages) == 3 and count(engine, idempotency_keys) == 3


def test_a_caller_that_gave_up_is_skipped(engine: Engine, writer: Writer) -> None:
    """A job cancelled while it waits for the writer is never run."""
    busy, gate = keep_busy(writer)
    abandoned = writer.submit(repo.NewMessages([make_row()], "api"))
    assert abandoned.cancel()
    kept = writer.submit(repo.NewMessages([make_row()], "api"))
    gate.set()
    busy.result(10)
    kept.result(10)
    assert count(engine, messages) == 1


def test_other_jobs_in_a_batch_keep_their_own_results(engine: Engine, writer: Writer) -> None:
    """Message inserts (an answer waits for them) are committed together first; a plain
    callable queued between them runs after them, in a transaction of its own, with its own
    result."""

    def count_messages(conn: sa.Connection) -> int:
        return int(conn.execute(sa.select(sa.func.count()).select_from(messages)).scalar_one())

    jobs: list[Any] = [
        repo.NewMessages([make_row(), make_row()], "api"),
        repo.NewMessages([make_row()], "api"),
        count_messages,
        repo.NewMessages([make_row()], "api", [idempotency("c")]),
    ]
    before = writer.batches
    results = [future.result(10) for future in queued_together(writer, jobs)]
    assert results == [None, None, 4, None]
    assert writer.batches == before + 3  # the hold, the inserts, the callable
    assert count(engine, messages) == 4 and count(engine, idempotency_keys) == 1


def test_stored_rows_read_back_as_given(engine: Engine, writer: Writer) -> None:
    """Booleans, floats and empty fields survive the multi-row insert on every database."""
    row = {**make_row(), "is_test": True, "delivery_report": False, "scheduled_at": 1.5}
    writer.run_sync(repo.NewMessages([row], "api"))
    with engine.connect() as conn:
        stored = repo.get_message(conn, row["id"])
        timeline = repo.get_timeline(conn, row["id"])
    assert stored is not None
    assert {key: getattr(stored, key) for key in row} == row
    assert [(e.status, e.source, e.detail, e.applied) for e in timeline] == [
        ("queued", "api", "scheduled", True)
    ]


def test_a_background_job_waits_for_the_callers_queued_before_and_beside_it(
    writer: Writer,
) -> None:
    order: list[str] = []
    busy, gate = keep_busy(writer)
    background = writer.submit_background(lambda conn: order.append("purge step"))
    first = writer.submit(lambda conn: order.append("accept 1"))
    second = writer.submit(lambda conn: order.append("accept 2"))
    gate.set()
    for future in (busy, background, first, second):
        future.result(10)
    assert order == ["accept 1", "accept 2", "purge step"]


def test_a_background_job_never_shares_a_callers_transaction(writer: Writer) -> None:
    row = make_row()
    busy, gate = keep_busy(writer)
    background = writer.submit_background(lambda conn: conn.execute(messages.insert(), row))
    failing = writer.submit(lambda conn: (_ for _ in ()).throw(RuntimeError("refused")))
    gate.set()
    busy.result(10)
    with pytest.raises(RuntimeError):
        failing.result(10)
    background.result(10)
    with writer.engine.connect() as conn:
        stored = conn.execute(sa.select(messages.c.id).where(messages.c.id == row["id"])).all()
    assert len(stored) == 1


def test_background_jobs_still_waiting_run_when_the_writer_stops(engine: Engine) -> None:
    w = Writer(engine)
    w.start()
    busy, gate = keep_busy(w)
    background = w.submit_background(lambda conn: "done")
    gate.set()
    w.stop()
    assert busy.done()
    assert background.result(10) == "done"


async def test_callers_on_the_event_loop_share_a_batch_and_keep_their_own_errors(
    engine: Engine, writer: Writer
) -> None:
    """`run` from the event loop: results and a clash reach the right awaiting callers."""
    busy, gate = keep_busy(writer)
    jobs = [
        repo.NewMessages([make_row()], "api", [idempotency("a")]),
        repo.NewMessages([make_row()], "api", [idempotency("a")]),
        repo.NewMessages([make_row()], "api", [idempotency("b")]),
    ]
    tasks = [asyncio.create_task(writer.run(job)) for job in jobs]
    await asyncio.wait_for(until_queued(writer, len(jobs)), 10)
    gate.set()
    first, clash, last = await asyncio.gather(*tasks, return_exceptions=True)
    assert first is None and last is None
    assert isinstance(clash, IntegrityError)
    assert count(engine, messages) == 2
    busy.result(10)


async def test_callers_on_the_event_loop_sharing_a_commit_each_get_their_own_result(
    engine: Engine, writer: Writer
) -> None:
    busy, gate = keep_busy(writer)

    def times_ten(n: int) -> Callable[[Connection], int]:
        return lambda _conn: n * 10

    tasks = [asyncio.create_task(writer.run(times_ten(n))) for n in range(5)]
    await asyncio.wait_for(until_queued(writer, len(tasks)), 10)
    before = writer.batches
    gate.set()
    assert await asyncio.gather(*tasks) == [0, 10, 20, 30, 40]
    busy.result(10)
    assert writer.batches == before + 2  # the busy job, then the five in one transaction


async def test_an_awaiting_caller_that_gave_up_is_skipped(engine: Engine, writer: Writer) -> None:
    busy, gate = keep_busy(writer)
    abandoned = asyncio.create_task(writer.run(repo.NewMessages([make_row()], "api")))
    kept = asyncio.create_task(writer.run(repo.NewMessages([make_row()], "api")))
    await asyncio.wait_for(until_queued(writer, 2), 10)
    abandoned.cancel()
    gate.set()
    await kept
    with pytest.raises(asyncio.CancelledError):
        await abandoned
    busy.result(10)
    assert count(engine, messages) == 1


async def until_queued(writer: Writer, jobs: int) -> None:
    """Let the event loop run until `jobs` jobs wait in the writer's queue."""
    while writer.waiting() < jobs:
        await asyncio.sleep(0)


def test_inserts_waiting_with_other_jobs_are_committed_before_them(
    engine: Engine, writer: Writer
) -> None:
    """An API answer does not wait for the dispatcher's SQL queued ahead of it: the insert is
    committed (visible to other connections) before the earlier job runs."""
    seen: list[int] = []

    def look_from_outside(conn: sa.Connection) -> None:
        seen.append(count(engine, messages))

    jobs: list[Any] = [look_from_outside, repo.NewMessages([make_row()], "api")]
    looked, inserted = queued_together(writer, jobs)
    assert inserted.result(10) is None and looked.result(10) is None
    assert seen == [1]


def _turn_taken(lock_file: str) -> bool:
    """Whether a writer of another process holds the turn (a lock on the file)."""
    fd = os.open(lock_file, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def test_writers_of_several_processes_take_turns_through_a_lock_file(
    sqlite_engine: Engine,
) -> None:
    """On SQLite a writer holds the turn for as long as its transaction, so another process's
    writer waits on the lock file (woken when it is free) rather than polling SQLite's lock."""
    writer = Writer(sqlite_engine)
    writer.start()
    try:
        lock_file = f"{sqlite_engine.url.database}.writer.lock"
        busy, gate = keep_busy(writer)
        assert _turn_taken(lock_file)
        gate.set()
        busy.result(10)
        writer.submit(lambda conn: None).result(10)
        assert not _turn_taken(lock_file)
    finally:
        writer.stop()


def test_a_turn_held_too_long_is_given_up_on(
    sqlite_engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    """A writer of a frozen process keeps its turn: the others write without it after a while
    (SQLite's own lock still keeps writes apart) and say so."""
    lock_file = f"{sqlite_engine.url.database}.writer.lock"
    held = os.open(lock_file, os.O_RDWR | os.O_CREAT, 0o600)
    writer = Writer(sqlite_engine, turn_wait=0.2)
    writer.start()
    try:
        fcntl.flock(held, fcntl.LOCK_EX)
        row = make_row()
        writer.submit(repo.NewMessages([row], "api")).result(10)
        assert "held the SQLite write turn for 0.2 s" in caplog.text
        fcntl.flock(held, fcntl.LOCK_UN)
        writer.submit(repo.NewMessages([make_row()], "api")).result(10)
        assert not _turn_taken(lock_file)
    finally:
        os.close(held)
        writer.stop()
    with sqlite_engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(messages)).scalar() == 2
