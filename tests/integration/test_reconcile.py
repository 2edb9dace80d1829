"""Reconciliation: messages whose delivery report was lost are looked up at the provider.

A fake clock moves the messages past the configured age; each run is started by hand
(`run_once`) or by waking the service's own reconciler, never by sleeping.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine

from smsdesk.outbox.reconcile import Reconciler
from smsdesk.testing import FakeClock
from smsdesk.testing.fakes import FailureMode, FakeProvider, FakeSms, load_fake
from smsdesk.testing.fakes.compaya import CompayaFake
from smsdesk.testing.fakes.twilio import TwilioFake
from tests.conftest import database_url
from tests.support.harness import Harness, running_service

TO = "+31612345678"
HOUR = 3600.0


@dataclass
class Setup:
    harness: Harness
    fake: FakeProvider
    clock: FakeClock

    @property
    def reconciler(self) -> Reconciler:
        reconciler = self.harness.service.reconciler
        assert reconciler is not None, "the reconciler runs with the dispatcher"
        return reconciler

    async def sent(self, text: str = "Hello") -> tuple[dict[str, Any], FakeSms]:
        """Send one message and wait until the provider accepted it."""
        response = await self.harness.post("/api/v1/messages", {"to": TO, "text": text})
        assert response.status_code == 201, response.text
        body = await self.harness.wait_for(response.json()["id"], "sent")
        return body, self.fake.find(body["provider_message_id"])

    async def status(self, message_id: str) -> dict[str, Any]:
        body: dict[str, Any] = (await self.harness.get(f"/api/v1/messages/{message_id}")).json()
        return body


async def _setup(tmp_path: Path, module: str) -> AsyncIterator[Setup]:
    fake = load_fake(module)().start()
    clock = FakeClock(time.time())
    try:
        async with running_service(tmp_path, listen=True, clock=clock) as harness:
            secret = harness.service.settings.callback_secret()
            base = f"{harness.service.public_url}/webhooks/{module}"
            fake.point_callbacks(f"{base}/status/{secret}", f"{base}/inbound/{secret}")
            await harness.configure(
                module=module,
                sender="Smsdesk",
                reconcile_after_minutes=60,
                module_settings={module: fake.module_settings()},
                limits={module: {"rate_limit": 0, "concurrency": 4}},
            )
            await harness.idle_scans(2)
            yield Setup(harness, fake, clock)
    finally:
        fake.stop()


@pytest.fixture
async def twilio(tmp_path: Path) -> AsyncIterator[Setup]:
    async for setup in _setup(tmp_path, "twilio"):
        yield setup


@pytest.fixture
async def compaya(tmp_path: Path) -> AsyncIterator[Setup]:
    async for setup in _setup(tmp_path, "compaya"):
        yield setup


@pytest.fixture
async def linkmobility(tmp_path: Path) -> AsyncIterator[Setup]:
    async for setup in _setup(tmp_path, "linkmobility"):
        yield setup


async def test_a_lost_twilio_report_is_learnt_by_asking_after_the_configured_age(
    twilio: Setup,
) -> None:
    """Twilio delivered but its callback never came: an hour later the message is delivered."""
    body, sms = await twilio.sent()
    twilio.fake.lose_report(sms, delivered=True)

    twilio.clock.advance(59 * 60)
    assert await twilio.reconciler.run_once() == 0
    assert (await twilio.status(body["id"]))["status"] == "sent"

    twilio.clock.advance(2 * 60)
    twilio.reconciler.wake()  # the service's own periodic job does the asking
    done = await twilio.harness.wait_for(body["id"], "delivered")
    assert done["status_code"] == "delivered"
    last = done["timeline"][-1]
    assert (last["status"], last["source"], last["applied"]) == ("delivered", "reconcile", True)
    assert isinstance(twilio.fake, TwilioFake)
    assert len(twilio.fake.query_requests()) == 1


async def test_a_lost_undelivered_report_ends_undelivered_with_twilios_reason(
    twilio: Setup,
) -> None:
    """The message resource's error code gives the same description as a callback would."""
    body, sms = await twilio.sent()
    twilio.fake.lose_report(sms, delivered=False)
    twilio.clock.advance(HOUR + 60)

    assert await twilio.reconciler.run_once() == 1

    done = await twilio.status(body["id"])
    assert (done["status"], done["status_code"]) == ("undelivered", "undelivered:30003")
    assert "unreachable" in done["timeline"][-1]["detail"]


async def test_a_message_still_under_way_is_asked_about_again_only_after_a_back_off(
    twilio: Setup,
) -> None:
    """No final status yet: not asked on every run, but again after as long as it waited."""
    body, sms = await twilio.sent()
    assert isinstance(twilio.fake, TwilioFake)
    twilio.clock.advance(HOUR + 60)

    assert await twilio.reconciler.run_once() == 1
    assert await twilio.reconciler.run_once() == 0
    twilio.clock.advance(HOUR / 2)
    assert await twilio.reconciler.run_once() == 0
    assert (await twilio.status(body["id"]))["status"] == "sent"
    assert len(twilio.fake.query_requests()) == 1

    twilio.fake.lose_report(sms, delivered=True)
    twilio.clock.advance(HOUR)
    assert await twilio.reconciler.run_once() == 1
    assert (await twilio.status(body["id"]))["status"] == "delivered"
    assert len(twilio.fake.query_requests()) == 2


async def test_a_report_that_did_arrive_is_not_asked_about(twilio: Setup) -> None:
    """Delivered by its callback, the message is final and never looked up."""
    body, sms = await twilio.sent()
    response = await twilio.fake.send_report(twilio.harness.client, sms, delivered=True)
    assert response.status_code == 200
    await twilio.harness.wait_for(body["id"], "delivered")
    twilio.clock.advance(2 * HOUR)

    assert await twilio.reconciler.run_once() == 0
    assert isinstance(twilio.fake, TwilioFake)
    assert twilio.fake.query_requests() == []


async def test_a_provider_error_leaves_the_message_sent_and_is_logged(
    twilio: Setup, caplog: pytest.LogCaptureFixture
) -> None:
    """A 500 from Twilio's status query: logged, nothing crashes, the next try succeeds."""
    assert isinstance(twilio.fake, TwilioFake)
    body, sms = await twilio.sent()
    twilio.fake.lose_report(sms, delivered=True)
    twilio.fake.fail_next_query(FailureMode.SERVER_ERROR)
    twilio.clock.advance(HOUR + 60)

    with caplog.at_level(logging.WARNING, logger="smsdesk.outbox.reconcile"):
        assert await twilio.reconciler.run_once() == 0
    assert (await twilio.status(body["id"]))["status"] == "sent"
    [record] = [r for r in caplog.records if r.name == "smsdesk.outbox.reconcile"]
    assert "status query failed" in record.getMessage()
    assert record.__dict__["sms_module"] == "twilio"

    twilio.clock.advance(2 * HOUR)
    assert await twilio.reconciler.run_once() == 1
    assert (await twilio.status(body["id"]))["status"] == "delivered"


async def test_nothing_is_asked_when_reconciliation_is_off(twilio: Setup) -> None:
    """reconcile_after_minutes = 0 switches the job off."""
    _, sms = await twilio.sent()
    twilio.fake.lose_report(sms, delivered=True)
    await twilio.harness.configure(reconcile_after_minutes=0)
    twilio.clock.advance(10 * HOUR)

    assert await twilio.reconciler.run_once() == 0
    assert isinstance(twilio.fake, TwilioFake)
    assert twilio.fake.query_requests() == []


async def test_cpsms_reads_its_log_at_most_once_per_two_minutes(compaya: Setup) -> None:
    """Lost CPSMS reports are found in one log request; no second request within 2 minutes."""
    assert isinstance(compaya.fake, CompayaFake)
    await compaya.harness.configure(reconcile_after_minutes=1)
    first, first_sms = await compaya.sent("one")
    second, second_sms = await compaya.sent("two")
    third, third_sms = await compaya.sent("three")
    compaya.fake.lose_report(first_sms, delivered=True)
    compaya.fake.lose_report(second_sms, delivered=False)
    compaya.clock.advance(61)

    assert await compaya.reconciler.run_once() == 3
    assert (await compaya.status(first["id"]))["status"] == "delivered"
    assert (await compaya.status(second["id"]))["status"] == "undelivered"
    assert (await compaya.status(third["id"]))["status"] == "sent"
    assert len(compaya.fake.log_requests()) == 1

    compaya.fake.lose_report(third_sms, delivered=True)
    compaya.clock.advance(62)  # the third is due again, but the log was read 62 s ago
    assert await compaya.reconciler.run_once() == 0
    assert len(compaya.fake.log_requests()) == 1
    assert (await compaya.status(third["id"]))["status"] == "sent"


async def test_a_module_without_status_queries_is_never_asked(linkmobility: Setup) -> None:
    """LINK Mobility's API has no status query: its messages stay sent, and it hears nothing."""
    body, sms = await linkmobility.sent()
    linkmobility.fake.lose_report(sms, delivered=True)
    requests_before = len(linkmobility.fake.requests)
    linkmobility.clock.advance(10 * HOUR)

    assert await linkmobility.reconciler.run_once() == 0

    assert (await linkmobility.status(body["id"]))["status"] == "sent"
    assert len(linkmobility.fake.requests) == requests_before


async def test_the_simulator_answers_status_queries_for_lost_reports(
    tmp_path: Path, engine: Engine
) -> None:
    """With every report lost, the simulator's messages end delivered through reconciliation;
    a message taken once is not taken again by the next run (on each database)."""
    clock = FakeClock(time.time())
    async with running_service(tmp_path, database_url(engine), clock=clock) as h:
        await h.configure(
            module_settings={"simulator": {"report_delay": 0, "lost_report_rate": 1.0}}
        )
        await h.idle_scans(2)
        response = await h.post("/api/v1/messages", {"to": TO, "text": "hi"})
        message_id = response.json()["id"]
        await h.wait_for(message_id, "sent")
        clock.advance(HOUR + 60)
        reconciler = h.service.reconciler
        assert reconciler is not None

        assert await reconciler.run_once() == 1
        assert await reconciler.run_once() == 0

        done = await h.wait_for(message_id, "delivered")
        assert (done["status_code"], done["timeline"][-1]["source"]) == (
            "DELIVRD:000",
            "reconcile",
        )
