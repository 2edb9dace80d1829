"""The dispatcher on a fake clock: retries, permanent failures, expiry, throttling, rate, priority.

The simulator's ledger is the provider's side of the story: what reached it, in which order,
and how many times.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from smsdesk.testing import FakeClock
from tests.support.harness import Harness, running_service

TO = "+31612345678"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def h(tmp_path: Path, clock: FakeClock) -> AsyncIterator[Harness]:
    async with running_service(tmp_path, clock=clock) as harness:
        await simulate(harness)
        yield harness


NO_FAULTS = {
    "report_delay": 0.01,
    "temporary_failure_rate": 0.0,
    "permanent_failure_rate": 0.0,
    "throttle_rate": 0.0,
}


async def simulate(h: Harness, **faults: Any) -> None:
    """Set the simulator's behaviour; faults not named are switched off.

    A scan already under way keeps the configuration it started with, so wait for two scans.
    """
    await h.configure(module_settings={"simulator": {**NO_FAULTS, **faults}})
    if h.service.dispatcher is not None:
        await h.idle_scans(2)


def ledger(h: Harness) -> list[tuple[str, int]]:
    """(message id, times received) for every message the simulator accepted, in order."""
    path = h.service.config.data_dir / "simulator.sqlite3"
    with sqlite3.connect(path) as conn:
        rows = conn.execute("SELECT reference, attempts FROM sends ORDER BY rowid").fetchall()
    return [(str(ref), int(n)) for ref, n in rows]


async def send(h: Harness, **fields: Any) -> str:
    response = await h.post("/api/v1/messages", {"to": TO, "text": "hello", **fields})
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def message(h: Harness, message_id: str) -> dict[str, Any]:
    body: dict[str, Any] = (await h.get(f"/api/v1/messages/{message_id}")).json()
    return body


async def test_temporary_failures_are_retried_until_sent(h: Harness, clock: FakeClock) -> None:
    """A provider that fails with 503 twice is tried again later; the SMS is then delivered once."""
    await simulate(h, temporary_failure_rate=1.0)
    message_id = await send(h)
    await h.wait_until(lambda: h.service.dispatcher is not None, "dispatcher")
    for attempt in (1, 2):
        await h.idle_scans()
        body = await message(h, message_id)
        assert (body["status"], body["attempts"], body["status_code"]) == (
            "queued",
            attempt,
            "SIM-503",
        )
        assert "temporary failure" in body["error"]
        if attempt == 1:
            clock.advance(400)  # past the longest backoff
    await simulate(h)  # the provider recovers before the second backoff has passed
    clock.advance(400)
    body = await h.wait_for(message_id, "delivered")
    assert body["attempts"] == 3
    statuses = [(e["status"], e["code"]) for e in body["timeline"]]
    assert statuses.count(("queued", "SIM-503")) == 2
    assert statuses[-1] == ("delivered", "DELIVRD:000")
    assert ledger(h) == [(message_id, 1)]


async def test_backoff_waits_before_the_next_try(h: Harness, clock: FakeClock) -> None:
    """After a temporary failure nothing is sent again until the backoff has passed."""
    await simulate(h, temporary_failure_rate=1.0)
    message_id = await send(h)
    await h.idle_scans()
    assert (await message(h, message_id))["attempts"] == 1
    clock.advance(0.4)  # less than the first backoff (0.5 to 1 s)
    await h.idle_scans(5)
    assert (await message(h, message_id))["attempts"] == 1
    clock.advance(1.0)
    await h.idle_scans()
    assert (await message(h, message_id))["attempts"] == 2


async def test_permanent_failure_fails_at_once_with_the_reason(
    h: Harness, clock: FakeClock
) -> None:
    await simulate(h, permanent_failure_rate=1.0)
    message_id = await send(h)
    body = await h.wait_for(message_id, "failed")
    assert body["attempts"] == 1 and body["status_code"] == "SIM-400"
    assert "number rejected" in body["error"]
    clock.advance(3600)
    await h.idle_scans()
    assert (await message(h, message_id))["attempts"] == 1
    assert ledger(h) == []


async def test_message_expires_when_its_validity_ends(h: Harness, clock: FakeClock) -> None:
    """A message that keeps failing temporarily ends expired, naming the last error."""
    await simulate(h, temporary_failure_rate=1.0)
    message_id = await send(h, validity_hours=0.05)  # three minutes
    for _ in range(12):
        clock.advance(30)
        await h.idle_scans()
    body = await message(h, message_id)
    assert body["status"] == "expired"
    assert "validity" in body["error"] and "temporary failure" in body["error"]
    assert body["attempts"] >= 2


async def test_scheduled_message_waits_for_its_time(h: Harness, clock: FakeClock) -> None:
    from datetime import UTC, datetime

    at = datetime.fromtimestamp(clock() + 600, UTC).isoformat()
    message_id = await send(h, scheduled_at=at)
    await h.idle_scans()
    assert (await message(h, message_id))["status"] == "queued"
    clock.advance(601)
    await h.wait_for(message_id, "delivered")


async def test_throttled_module_pauses_for_retry_after(h: Harness, clock: FakeClock) -> None:
    """A 429 with Retry-After 30 pauses the whole module for 30 s, then everything goes out."""
    await simulate(h, throttle_rate=1.0, retry_after=30)
    first = await send(h)
    await h.idle_scans()
    assert (await message(h, first))["status_code"] == "SIM-429"
    await simulate(h)
    second = await send(h)
    await h.idle_scans(5)
    assert (await message(h, second))["status"] == "queued"
    assert ledger(h) == []
    clock.advance(31)
    await h.wait_for(first, "delivered")
    await h.wait_for(second, "delivered")


async def test_rate_limit_caps_messages_per_second(h: Harness, clock: FakeClock) -> None:
    """At 10 messages per second, each second of (fake) time lets ten messages out, no more."""
    await h.configure(limits={"simulator": {"rate_limit": 10}})
    await h.idle_scans(2)
    response = await h.post("/api/v1/messages/batch", {"to": [TO] * 40, "text": "x"})
    assert response.status_code == 200 and response.json()["accepted"] == 40
    await h.idle_scans()
    assert len(ledger(h)) == 1  # the burst allowance of a 10/s limit
    for second in (1, 2, 3):
        for _ in range(10):
            clock.advance(0.1001)  # a tenth of a second, kept clear of float rounding
            await h.idle_scans()
        assert len(ledger(h)) == 1 + 10 * second
    clock.advance(3600)  # a long pause does not turn into a burst
    await h.idle_scans()
    assert len(ledger(h)) == 32


async def test_priority_one_overtakes_a_backlog(h: Harness, clock: FakeClock) -> None:
    """With a rate-limited backlog of priority 3, a later priority 1 message goes out next."""
    await h.configure(limits={"simulator": {"rate_limit": 1}})
    await h.idle_scans(2)
    backlog = [await send(h, priority=3) for _ in range(5)]
    await h.idle_scans()
    clock.advance(1.0)
    urgent = await send(h, priority=1)
    await h.idle_scans()
    sent = [ref for ref, _ in ledger(h)]
    assert sent[-1] == urgent
    assert len(sent) <= 3 and sent[:-1] == backlog[: len(sent) - 1]
    for _ in range(6):
        clock.advance(1.0)
        await h.idle_scans()
    assert [ref for ref, _ in ledger(h)] == [*sent, *backlog[len(sent) - 1 :]]


async def test_cancelled_message_is_never_sent(h: Harness, clock: FakeClock) -> None:
    from datetime import UTC, datetime

    at = datetime.fromtimestamp(clock() + 60, UTC).isoformat()
    message_id = await send(h, scheduled_at=at)
    response = await h.post(f"/api/v1/messages/{message_id}/cancel")
    assert response.status_code == 200 and response.json()["status"] == "cancelled"
    clock.advance(61)
    await h.idle_scans()
    assert (await message(h, message_id))["status"] == "cancelled"
    assert ledger(h) == []


async def test_a_restarted_service_resumes_its_queue(tmp_path: Path) -> None:
    """Messages accepted while no dispatcher runs are sent when one starts."""
    async with running_service(tmp_path, dispatcher=False) as h:
        ids = [await send(h) for _ in range(3)]
    async with running_service(tmp_path) as h:
        await simulate(h)
        for message_id in ids:
            await h.wait_for(message_id, "delivered")
        assert sorted(ref for ref, _ in ledger(h)) == sorted(ids)
