"""Failover and the circuit breaker against two providers' fakes on loopback, on SQLite and
PostgreSQL, with a fake clock.

The first connection is an Intelecom account, the second a CM account; one route sends every
message through the first, then the second. The fakes' ledgers are the providers' side: every
message must be there exactly once.
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from smsdesk.store import connection_health
from smsdesk.store.tables import message_events, messages
from smsdesk.testing import FakeClock
from smsdesk.testing.fakes import FailureMode, FakeProvider
from smsdesk.testing.fakes.cm import CmFake
from smsdesk.testing.fakes.intelecom import IntelecomFake
from tests.conftest import database_url
from tests.support.harness import Harness, running_service

TO = "+31612345678"
SENDER = "Smsdesk"


@dataclass
class Two:
    """A service with two connections, each pointed at its own fake, tried in that order."""

    h: Harness
    first: FakeProvider
    second: FakeProvider
    clock: FakeClock
    first_id: str
    second_id: str

    async def send(self, text: str) -> str:
        response = await self.h.post("/api/v1/messages", {"to": TO, "text": text})
        assert response.status_code == 201, response.text
        return str(response.json()["id"])

    def row(self, message_id: str) -> Any:
        with self.h.service.engine.connect() as conn:
            return conn.execute(sa.select(messages).where(messages.c.id == message_id)).one()

    def failovers(self, message_id: str) -> list[tuple[str, str, str]]:
        """(reason, connection left, connection taken) of each failover line of a message."""
        with self.h.service.engine.connect() as conn:
            lines = conn.execute(
                sa.select(message_events)
                .where(message_events.c.message_id == message_id)
                .where(message_events.c.source == "failover")
                .order_by(message_events.c.id)
            ).all()
        return [(line.code, line.detail, line.connection_id) for line in lines]

    def copies(self, message_id: str) -> tuple[int, int]:
        """How many times each fake took the message."""
        return len(self.first.by_reference(message_id)), len(self.second.by_reference(message_id))

    def state(self) -> str:
        with self.h.service.engine.connect() as conn:
            return connection_health.health_of(conn, self.first_id).state

    async def later(self, seconds: float) -> None:
        self.clock.advance(seconds)
        await self.h.idle_scans(2)


async def connection(
    h: Harness, name: str, fake: FakeProvider, timeout: float = 0.5, **limits: Any
) -> str:
    body = {
        "name": name,
        "module": fake.module,
        "settings": {**fake.module_settings(), "timeout": timeout},
        "concurrency": 1,
        **limits,
    }
    answer = await h.post("/api/v1/connections", body)
    assert answer.status_code == 201, answer.text
    return str(answer.json()["id"])


async def two_connections(
    tmp_path: Path, engine: Engine, timeout: float = 0.5, **limits: Any
) -> AsyncIterator[Two]:
    first, second = IntelecomFake().start(), CmFake().start()
    clock = FakeClock(time.time())
    try:
        async with running_service(tmp_path, database_url(engine), listen=True, clock=clock) as h:
            await h.configure(sender=SENDER, default_country_code="+31")
            first_id = await connection(h, "first", first, timeout, **limits)
            second_id = await connection(h, "second", second, timeout)
            route = await h.post(
                "/api/v1/routes", {"name": "All", "connections": ["first", "second"]}
            )
            assert route.status_code == 201, route.text
            await h.idle_scans(2)
            yield Two(h, first, second, clock, first_id, second_id)
    finally:
        first.stop()
        second.stop()


@pytest.fixture
async def two(tmp_path: Path, engine: Engine) -> AsyncIterator[Two]:
    """Two connections; the first's circuit opens only after many failures.

    Their timeout is 2 s: the fakes run in this process, and a pause of the whole process
    (a full garbage collection late in a long test session takes most of a second) while a
    connection is being made would be a connect timeout, rightly "not taken", where the test
    means a message taken and its answer lost."""
    async for made in two_connections(tmp_path, engine, timeout=2.0, failure_threshold=50):
        yield made


@pytest.fixture
async def tripping(tmp_path: Path, engine: Engine) -> AsyncIterator[Two]:
    """Two connections; the first's circuit opens after 2 failures, a probe after 60 s."""
    async for made in two_connections(tmp_path, engine, failure_threshold=2, cool_down=60):
        yield made


async def test_failures_the_provider_never_took_fail_over_and_an_ambiguous_one_does_not(
    two: Two,
) -> None:
    """Refused connection, 5xx and refused credentials go to the second connection at once;
    a timeout after the first took the message retries the first, which keeps it once.
    Every message reaches exactly one provider exactly once."""
    h = two.h
    normal = await two.send("one")
    await h.wait_for(normal, "sent")
    assert two.row(normal).connection_id == two.first_id

    moved: list[str] = []
    for mode in (FailureMode.REFUSE_CONNECTION, FailureMode.SERVER_ERROR, FailureMode.AUTH):
        two.first.fail_next(mode)
        message_id = await two.send(f"through {mode.value}")
        await h.wait_for(message_id, "sent")
        two.first.release_held()  # the port opens again after REFUSE_CONNECTION
        row = two.row(message_id)
        assert (row.connection_id, row.module, row.plan_index, row.failovers) == (
            two.second_id,
            "cm",
            1,
            1,
        ), mode
        assert two.failovers(message_id) == [("not_taken", two.first_id, two.second_id)], mode
        moved.append(message_id)

    two.first.fail_next(FailureMode.ACCEPT_THEN_TIMEOUT)
    ambiguous = await two.send("taken, answer lost")
    waiting = await h.wait_error(ambiguous)
    row = two.row(ambiguous)
    assert (row.connection_id, row.failovers, waiting["status"]) == (
        two.first_id,
        0,
        "queued",
    ), (waiting["error"], two.failovers(ambiguous))
    assert two.copies(ambiguous) == (1, 0)
    two.first.release_held()
    await two.later(5)  # past the backoff
    await h.wait_for(ambiguous, "sent")
    row = two.row(ambiguous)
    assert (row.connection_id, row.failovers, row.attempts) == (two.first_id, 0, 2)
    assert two.failovers(ambiguous) == []

    assert two.copies(normal) == (1, 0)
    assert two.copies(ambiguous) == (1, 0)  # the gateway dropped the repeated reference
    assert [two.copies(m) for m in moved] == [(0, 1)] * 3

    text = (await h.get("/metrics")).text
    lines = dict(line.rsplit(" ", 1) for line in text.splitlines() if not line.startswith("#"))
    first = f'connection="{two.first_id}"'
    assert float(lines[f"smsdesk_connection_failovers_total{{{first}}}"]) == 3
    assert float(lines[f'smsdesk_connection_sends_total{{{first},result="not_taken"}}']) == 3
    assert float(lines[f'smsdesk_connection_sends_total{{{first},result="ambiguous"}}']) == 1


async def test_the_circuit_opens_skips_the_connection_and_half_opens_for_one_probe(
    tripping: Two,
) -> None:
    """Two failures open the first circuit; while open, its messages go straight to the second
    without a request to the first; after the cool-down one probe goes through the first and
    closes the circuit. Each change is one connection.health event."""
    two = tripping
    h = two.h
    await h.configure(webhooks={"allow_private": ["127.0.0.0/8"]})
    subscribed = await h.post(
        "/api/v1/webhooks", {"url": "http://127.0.0.1:9/events", "events": ["connection.health"]}
    )
    assert subscribed.status_code == 201, subscribed.text

    for n in range(2):
        two.first.fail_next(FailureMode.SERVER_ERROR)
        message_id = await two.send(f"failure {n}")
        await h.wait_for(message_id, "sent")
        assert two.row(message_id).connection_id == two.second_id
    assert two.state() == "open"

    tried = len(two.first.send_requests())
    skipped = await two.send("while open")
    await h.wait_for(skipped, "sent")
    assert two.failovers(skipped) == [("circuit_open", two.first_id, two.second_id)]
    assert len(two.first.send_requests()) == tried  # not even tried

    await two.later(59)
    assert two.state() == "open"
    await two.later(2)
    probe = await two.send("the probe")
    await h.wait_for(probe, "sent")
    assert two.row(probe).connection_id == two.first_id
    assert two.state() == "closed"

    rows = h.service.webhooks.store.deliveries(subscription_id=subscribed.json()["id"])
    changes = [json.loads(row.payload)["data"] for row in reversed(rows)]
    assert [(c["previous"], c["state"]) for c in changes] == [
        ("closed", "open"),
        ("open", "half_open"),
        ("half_open", "closed"),
    ]
    assert {c["connection_id"] for c in changes} == {two.first_id}


async def test_a_failed_probe_opens_the_circuit_again(tripping: Two) -> None:
    """A probe that fails opens the circuit for a new cool-down; the probe message itself
    fails over to the second connection."""
    two = tripping
    h = two.h
    two.first.fail_next(FailureMode.SERVER_ERROR, times=3)
    for n in range(2):
        await h.wait_for(await two.send(f"failure {n}"), "sent")
    assert two.state() == "open"
    await two.later(61)
    probe = await two.send("the failing probe")
    await h.wait_for(probe, "sent")
    assert two.row(probe).connection_id == two.second_id
    assert two.failovers(probe) == [("not_taken", two.first_id, two.second_id)]
    assert two.state() == "open"
    await two.later(30)
    skipped = await two.send("still open")
    await h.wait_for(skipped, "sent")
    assert two.failovers(skipped) == [("circuit_open", two.first_id, two.second_id)]


@pytest.fixture
async def limited(tmp_path: Path, engine: Engine) -> AsyncIterator[Two]:
    """Two connections; the first sends at most 2 messages per second. Their timeout is long:
    a send that timed out on a loaded machine would be retried only when the fake clock
    reaches its backoff, which this test never advances to."""
    async for made in two_connections(tmp_path, engine, timeout=10.0, rate_limit=2):
        yield made


async def test_each_connection_keeps_its_own_rate_limit(limited: Two) -> None:
    """The first connection's limit of 2 per second holds its messages back (they wait for
    it, they do not fail over)."""
    two, h = limited, limited.h
    waiting = [await two.send(f"limited {n}") for n in range(3)]

    def taken() -> int:
        return sum(sum(two.copies(m)) for m in waiting)

    await h.idle_scans(3)
    assert taken() == 1  # the burst of a 2/s limit
    for count in (2, 3):
        two.clock.advance(0.5001)
        await h.idle_scans(2)
        await h.wait_until(functools.partial(lambda n: taken() == n, count), f"{count} sent")
    assert [two.copies(m) for m in waiting] == [(1, 0)] * 3
    assert all(two.failovers(m) == [] for m in waiting)


async def test_messages_written_without_a_connection_go_through_the_default(
    tmp_path: Path, engine: Engine
) -> None:
    """Messages queued before connections existed (no connection, no plan) of the default
    connection's module are sent by it and become its messages."""
    url = database_url(engine)
    async with running_service(tmp_path, url, dispatcher=False) as h:
        ids = []
        for n in range(3):
            answer = await h.post("/api/v1/messages", {"to": TO, "text": f"from before {n}"})
            assert answer.status_code == 201, answer.text
            ids.append(answer.json()["id"])
        with h.service.engine.begin() as conn:
            conn.execute(
                messages.update()
                .where(messages.c.id.in_(ids))
                .values(connection_id=None, route_plan=None)
            )
    async with running_service(tmp_path, url) as h:
        for message_id in ids:
            await h.wait_for(message_id, "sent", "delivered")
        with h.service.engine.connect() as conn:
            taken = conn.execute(
                sa.select(messages.c.connection_id).where(messages.c.id.in_(ids))
            ).scalars()
            assert set(taken) == {"default"}
