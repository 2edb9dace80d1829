"""Once-per-cluster jobs: one process of many leads each, and another takes over when it goes.

Two `Leadership` objects stand for two processes; each opens its own locks (a dedicated
PostgreSQL session, or lock files beside the SQLite database), so what they share is only
what the server (or the kernel) holds. Rounds are run by hand (`tick`), so nothing waits on
time.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from smsdesk.cluster import JOBS, Leadership
from smsdesk.store.leadership import JobLocks, holders, lock_key, open_locks


def leadership(engine: Engine, owner: str) -> Leadership:
    return Leadership(lambda: open_locks(engine, f"smsdesk {owner}"), owner=owner)


@pytest.fixture
async def pair(engine: Engine) -> AsyncIterator[tuple[Leadership, Leadership]]:
    first, second = leadership(engine, "p1"), leadership(engine, "p2")
    try:
        yield first, second
    finally:
        await first.stop()
        await second.stop()


def leaders(*processes: Leadership) -> dict[str, list[str]]:
    return {job: [p.owner for p in processes if p.holds(job)] for job in JOBS}


async def test_each_job_has_one_leader(pair: tuple[Leadership, Leadership]) -> None:
    """Two processes try for every job: the first to ask leads them all, the other none."""
    first, second = pair
    await first.tick()
    await second.tick()
    assert leaders(first, second) == {job: ["p1"] for job in JOBS}
    await first.tick()
    await second.tick()  # trying again changes nothing while the leader lives
    assert first.held == JOBS and second.held == ()


async def test_the_other_process_takes_over_when_the_leader_stops(
    pair: tuple[Leadership, Leadership],
) -> None:
    """A leader that stops gives its jobs up; the other takes each at its next round, and is
    told so (the job's loop is woken)."""
    first, second = pair
    taken: list[str] = []

    def listener(job: str) -> Callable[[bool], None]:
        def changed(held: bool) -> None:
            if held:
                taken.append(job)

        return changed

    for job in JOBS:
        second.gate(job).on_change(listener(job))
    await first.tick()
    await second.tick()
    await first.stop()
    assert first.held == ()
    await second.tick()
    assert second.held == JOBS
    assert taken == list(JOBS)


@pytest.mark.postgres
async def test_a_lost_lock_session_is_lost_leadership_at_once(pg_engine: Engine) -> None:
    """The server ends the leader's lock session (as when its process dies): the leader stops
    leading at its next round, before anyone else could run its jobs twice, and the other
    process takes them over; the old leader takes nothing back while the new one lives."""
    first, second = leadership(pg_engine, "p1"), leadership(pg_engine, "p2")
    lost: list[str] = []
    first.gate("reconcile").on_change(lambda held: lost.append("reconcile") if not held else None)
    try:
        await first.tick()
        await second.tick()
        terminate(pg_engine, "smsdesk p1")
        await first.tick()
        assert first.held == () and lost == ["reconcile"]
        await second.tick()
        assert second.held == JOBS
        await first.tick()  # reconnects, finds every job taken
        assert first.held == ()
    finally:
        await first.stop()
        await second.stop()


def terminate(engine: Engine, application_name: str) -> None:
    with engine.connect() as conn:
        ended = conn.execute(
            sa.text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE application_name = :name"
            ),
            {"name": application_name},
        ).scalar_one()
    assert ended == 1


@pytest.mark.postgres
async def test_the_server_shows_who_holds_a_job(pg_engine: Engine) -> None:
    """The locks are ordinary advisory locks: pg_locks shows which process holds each job
    (what `smsdesk cluster status` prints on PostgreSQL), and nobody once it stopped."""
    first = leadership(pg_engine, "p1")
    try:
        await first.tick()
        assert holders(pg_engine, JOBS) == dict.fromkeys(JOBS, "p1")
    finally:
        await first.stop()
    assert holders(pg_engine, JOBS) == dict.fromkeys(JOBS)


def test_sqlite_has_no_lock_table_to_ask(sqlite_engine: Engine) -> None:
    """On SQLite the heartbeats are the only record of who leads."""
    assert holders(sqlite_engine, JOBS) is None


def test_keys_are_stable_and_distinct() -> None:
    """Every version and process computes the same key per job, and no two jobs share one."""
    keys = {job: lock_key(job) for job in JOBS}
    assert len(set(keys.values())) == len(JOBS)
    assert all(0 < key < 2**63 for key in keys.values())
    assert lock_key("reconcile") == keys["reconcile"]


def lock_sessions(engine: Engine, application_name: str) -> int:
    query = sa.text("SELECT count(*) FROM pg_stat_activity WHERE application_name = :name")
    with engine.connect() as conn:
        return int(conn.execute(query, {"name": application_name}).scalar_one())


@pytest.mark.postgres
async def test_a_lock_session_that_opens_too_late_is_closed(pg_engine: Engine) -> None:
    """Opening the lock session outlasts the round's wait (a slow server, or the process
    stopping): the session the thread opens afterwards is closed, not left holding a
    connection until the garbage collector finds it."""
    name = "smsdesk slow-opener"
    go_on, opened = threading.Event(), threading.Event()
    sessions: list[JobLocks] = []  # kept here, so only an explicit close ends the session

    def slow_open() -> JobLocks:
        assert go_on.wait(10)
        sessions.append(open_locks(pg_engine, name))
        opened.set()
        return sessions[-1]

    slow = Leadership(slow_open, owner="slow", check_timeout=0.01)
    await slow.tick()  # the wait ends before the session is open
    assert slow.held == ()
    go_on.set()
    assert await asyncio.to_thread(opened.wait, 10)
    deadline = asyncio.get_running_loop().time() + 10
    while lock_sessions(pg_engine, name) and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.02)
    assert lock_sessions(pg_engine, name) == 0
    await slow.stop()
