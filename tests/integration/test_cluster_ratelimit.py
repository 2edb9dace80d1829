"""Rate limits and concurrency that hold across every process sharing one database.

Several `Limits` stand for several worker processes: each claims real messages through its
own transactions, so what they share is only what the database holds. On a fake clock the
totals are exact; the dispatcher tests run the real claim loop.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import Connection
from sqlalchemy.engine import Engine

from smsdesk.domain.connections import Connection as SmsConnection
from smsdesk.domain.ids import new_id
from smsdesk.domain.message import Status
from smsdesk.outbox.dispatcher import Dispatcher, claim_sendable
from smsdesk.outbox.limiter import Claim, Limits, burst_of
from smsdesk.store import messages as repo
from smsdesk.store import rate_limits
from smsdesk.store.db import write_transaction
from smsdesk.store.writer import Writer
from smsdesk.testing import FakeClock
from tests.conftest import database_url
from tests.support.harness import Harness, running_service
from tests.support.kannel_standin import KannelStandIn

TO = "+31612345678"


def connection(rate: float = 20.0, concurrency: int = 256) -> SmsConnection:
    return SmsConnection(
        id="bulk", name="bulk", module="kannel", rate_limit=rate, concurrency=concurrency
    )


def queue(engine: Engine, count: int, at: float) -> None:
    rows = [
        {
            "id": new_id(),
            "module": "kannel",
            "connection_id": "bulk",
            "recipient": TO,
            "sender": "smsdesk",
            "body": "hello",
            "encoding": "gsm7",
            "segments": 1,
            "priority": 2,
            "status": "queued",
            "created_at": at,
            "updated_at": at,
            "next_attempt_at": at,
            "expires_at": at + 86_400,
            "scheduled_at": None,
            "attempts": 0,
            "reference": None,
            "api_key_id": None,
            "is_test": False,
            "delivery_report": True,
        }
        for _ in range(count)
    ]
    with write_transaction(engine) as conn, conn.begin():
        repo.insert_messages(conn, rows, "test")


def claim(engine: Engine, limits: Limits, sms: SmsConnection, wanted: int, owner: str) -> Claim:
    """One worker's claim: allowance, then the claim transaction, then settling."""
    wanted = limits.allowance(sms, wanted)
    if wanted <= 0:
        return Claim()
    now = limits.clock()

    def take(conn: Connection, limit: int) -> tuple[list[Any], list[Any]]:
        return claim_sendable(
            conn,
            connection_id=sms.id,
            owner=owner,
            limit=limit,
            now=now,
            lease_until=now + 600,
        )

    with write_transaction(engine) as conn, conn.begin():
        result = limits.claim(conn, sms, wanted, now, 1, lambda n: take(conn, n))
    limits.settle(sms, result)
    return result


def sent(engine: Engine, owner: str, claimed: list[Any], now: float) -> None:
    """The provider answered: the claimed messages are sent and no longer under way."""
    outcomes = [repo.Outcome(row.id, Status.SENT, "0", "accepted") for row in claimed]
    with write_transaction(engine) as conn, conn.begin():
        repo.record_outcomes(conn, owner, outcomes, now)


def test_workers_sharing_a_database_never_exceed_the_rate(engine: Engine) -> None:
    """Three workers at 20/s for 5 s send 100 messages plus the burst of 5 (a quarter of a
    second's worth), no more; each second of them carries at most 25, and the work is shared."""
    clock = FakeClock()
    start = clock()
    queue(engine, 300, start)
    workers = [Limits(clock, shared=True) for _ in range(3)]
    times: list[float] = []
    by_worker = [0, 0, 0]
    for step in range(500):
        for index in (step % 3, (step + 1) % 3, (step + 2) % 3):  # each is first in turn
            limits = workers[index]
            taken = claim(engine, limits, connection(), 100, f"w{index}").rows
            by_worker[index] += len(taken)
            times += [clock() - start] * len(taken)
        clock.advance(0.01)
    assert 100 - 1 <= len(times) <= 100 + 5
    per_second = [sum(1 for t in times if s <= t < s + 1) for s in range(5)]
    assert max(per_second) <= 25, per_second
    assert sum(1 for n in by_worker if n > 0) >= 2, by_worker


@pytest.mark.postgres
def test_workers_in_threads_never_exceed_the_rate(pg_engine: Engine) -> None:
    """Four workers claiming at once on the real clock for a second stay within rate x time +
    burst: the bucket row is taken by one transaction at a time."""
    queue(pg_engine, 200, time.time())
    rate = 50.0
    counts = [0] * 4
    started = time.time()

    def work(index: int) -> None:
        limits = Limits(time.time, shared=True)
        while time.time() - started < 1.0:
            counts[index] += len(claim(pg_engine, limits, connection(rate), 100, f"t{index}").rows)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.time() - started
    assert sum(counts) <= rate * elapsed + burst_of(rate, shared=True) + 1e-9
    assert sum(counts) >= rate * 0.8  # the limit is not a ceiling nobody reaches


def test_a_throttling_answer_pauses_every_worker(engine: Engine) -> None:
    """A 429 with Retry-After 30 met by one worker stops the others for 30 s, then all go on."""
    clock = FakeClock()
    queue(engine, 10, clock())
    first, other = Limits(clock, shared=True), Limits(clock, shared=True)
    assert len(claim(engine, first, connection(), 1, "w1").rows) == 1
    assert len(claim(engine, other, connection(), 1, "w2").rows) == 1
    first.pause("bulk", 30.0, Writer(engine).submit)  # a writer not started runs it at once
    clock.advance(5)
    assert claim(engine, other, connection(), 5, "w2").rows == []
    assert other.wait() == pytest.approx(25.0)
    clock.advance(25.01)
    assert len(claim(engine, other, connection(), 10, "w2").rows) == 5  # the burst
    state = {s["connection_id"]: s for s in rate_limits.limiter_state(engine, clock())}
    assert state["bulk"]["rate"] == 20.0
    assert state["bulk"]["paused_until"] == pytest.approx(clock() - 0.01, abs=1e-6)


def test_concurrency_holds_across_workers(engine: Engine) -> None:
    """With concurrency 2, two workers together never have more than two messages at the
    provider; one more may go when one of them is answered."""
    clock = FakeClock()
    queue(engine, 10, clock())
    first, other = Limits(clock, shared=True), Limits(clock, shared=True)
    busy = connection(rate=0, concurrency=2)
    taken = claim(engine, first, busy, 10, "w1").rows
    assert len(taken) == 2
    assert claim(engine, other, busy, 10, "w2").rows == []
    assert other.wait() == pytest.approx(0.05)  # tries again soon, not after a whole poll
    sent(engine, "w1", taken[:1], clock())
    clock.advance(0.05)
    assert len(claim(engine, other, busy, 10, "w2").rows) == 1
    assert claim(engine, first, busy, 10, "w1").rows == []


# -- the dispatcher --------------------------------------------------------------------------


@pytest.fixture
def stand_in() -> Iterator[KannelStandIn]:
    server = KannelStandIn(round_trip=(0.0, 0.0), report_delay=60).start()  # no reports here
    try:
        yield server
    finally:
        server.stop()


def most_at_once(stand_in: KannelStandIn) -> int:
    """The most requests the provider had open at one moment."""
    edges = []
    for taken in stand_in.received():
        edges += [(taken.at, 1), (taken.answered_at or float("inf"), -1)]
    open_now = most = 0
    for _, step in sorted(edges):
        open_now += step
        most = max(most, open_now)
    return most


def arrivals(stand_in: KannelStandIn) -> list[float]:
    return sorted(taken.at for taken in stand_in.received())


async def use_kannel(h: Harness, stand_in: KannelStandIn, *, rate: float, concurrency: int) -> None:
    await h.configure(
        module="kannel",
        sender="SMSDESK",
        module_settings={"kannel": stand_in.module_settings()},
        limits={"kannel": {"rate_limit": rate, "concurrency": concurrency}},
    )


def dispatcher(h: Harness, owner: str, **options: Any) -> Dispatcher:
    service = h.service
    assert service.pool is not None
    return Dispatcher(
        writer=service.writer,
        store=service.settings,
        pool=service.pool,
        owner=owner,
        public_url=service.public_url,
        clock=service.clock,
        **options,
    )


async def until(condition: Any, what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.01)


@pytest.fixture
async def pair(tmp_path: Path, pg_engine: Engine) -> AsyncIterator[tuple[Harness, Harness]]:
    """Two smsdesk processes on one PostgreSQL database, neither dispatching yet."""
    url = database_url(pg_engine)
    key = Fernet.generate_key().decode()  # one installation: one key for its stored secrets
    async with (
        running_service(tmp_path / "a", url, dispatcher=False, listen=True, secret_key=key) as a,
        running_service(tmp_path / "b", url, dispatcher=False, listen=True, secret_key=key) as b,
    ):
        yield a, b


@pytest.mark.postgres
async def test_two_dispatchers_share_the_concurrency(
    pair: tuple[Harness, Harness], stand_in: KannelStandIn
) -> None:
    """Concurrency 2 with two dispatchers: the provider never sees more than two requests at
    once, however long it keeps them; all messages go out once it answers."""
    a, b = pair
    await use_kannel(a, stand_in, rate=0, concurrency=2)
    await until(
        lambda: (
            b.service.settings.load().module == "kannel"
            and any(c.module == "kannel" for c in b.service.stored_connections())
        ),
        "the other process sees the configuration",
    )
    stand_in.hold()
    response = await a.post("/api/v1/messages/batch", {"to": [TO] * 8, "text": "x"})
    assert response.json()["accepted"] == 8
    workers = [dispatcher(a, "a"), dispatcher(b, "b")]
    for worker in workers:
        await worker.start()
    try:
        await until(lambda: stand_in.held() == 2, "two requests at the provider")
        scans = [w.scans + 5 for w in workers]
        await until(lambda: all(w.scans >= n for w, n in zip(workers, scans, strict=True)), "scans")
        assert most_at_once(stand_in) == 2
        stand_in.release()
        await until(lambda: stand_in.count() == 8, "all messages at the provider")
        assert most_at_once(stand_in) == 2
    finally:
        for worker in workers:
            await worker.stop()


async def test_a_token_that_comes_during_the_scan_is_not_missed(
    tmp_path: Path, stand_in: KannelStandIn
) -> None:
    """At 20/s the dispatcher sleeps until the next token, and not at all when it came while
    the scan ended; with nothing held back it waits its whole poll interval."""
    clock = FakeClock()
    async with running_service(tmp_path, dispatcher=False, listen=True, clock=clock) as h:
        await use_kannel(h, stand_in, rate=20, concurrency=4)
        response = await h.post("/api/v1/messages/batch", {"to": [TO] * 3, "text": "x"})
        assert response.json()["accepted"] == 3
        worker = dispatcher(h, "w", poll_interval=0.5)
        assert await worker.run_once() == 2  # the burst: a tenth of a second's worth
        assert await worker.run_once() == 0
        assert worker._idle_wait() == pytest.approx(0.05)  # one token at 20/s
        clock.advance(0.051)  # the token arrives between the scan and the wait (kept clear of
        # float rounding)
        assert worker._idle_wait() == 0
        assert await worker.run_once() == 1
        await until(lambda: worker.sends_in_flight == 0, "sends done")
        clock.advance(0.051)  # one scan more finds the queue empty; then no hurry
        worker._limits.held.clear()
        assert await worker.run_once() == 0
        assert worker._idle_wait() == 0.5


async def test_one_dispatcher_keeps_up_with_its_rate(
    tmp_path: Path, stand_in: KannelStandIn
) -> None:
    """30 messages at 20/s reach the provider in about 1.4 s even with a 30 s poll interval:
    the dispatcher never waits out a poll while messages wait for a token."""
    async with running_service(tmp_path, dispatcher=False, listen=True) as h:
        await use_kannel(h, stand_in, rate=20, concurrency=4)
        response = await h.post("/api/v1/messages/batch", {"to": [TO] * 30, "text": "x"})
        assert response.json()["accepted"] == 30
        worker = dispatcher(h, "w", poll_interval=30.0)
        await worker.start()
        try:
            await until(lambda: stand_in.count() == 30, "30 messages sent", 10.0)
        finally:
            await worker.stop()
        times = arrivals(stand_in)
        span = times[-1] - times[0]
        assert (30 - 2 - 1) / 20 <= span < 3.0
        assert max(b - a for a, b in itertools.pairwise(times)) < 1.0  # no poll waited out
