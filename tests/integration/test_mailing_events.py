"""The `mailing.status` webhook event: every change of a mailing's status reaches a
subscriber's endpoint, signed, with the old and new status and the counts so far."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine

from smsdesk.testing import FakeClock
from smsdesk.webhooks_out.signing import verify_signature
from tests.conftest import database_url
from tests.support.harness import Harness, running_service
from tests.support.receiver import WebhookReceiver

NL = ["+31620000001", "+31620000002", "+31620000003"]
WEEKDAYS = ["mon", "tue", "wed", "thu", "fri"]


def utc(hour: int) -> float:
    return datetime(2026, 6, 15, hour, tzinfo=UTC).timestamp()  # a Monday


@pytest.fixture
async def served(tmp_path: Path, engine: Engine) -> AsyncIterator[tuple[Harness, FakeClock]]:
    """smsdesk with its dispatcher, mailing sender and webhook deliverer on a fake clock that
    starts at 10:00 in Amsterdam."""
    clock = FakeClock(utc(8))
    async with running_service(tmp_path, database_url(engine), clock=clock) as h:
        await h.configure(
            module_settings={"simulator": {"report_delay": 0.02}},
            webhooks={"allow_private": ["127.0.0.0/8"]},
        )
        yield h, clock


async def act(h: Harness, mailing_id: str, action: str) -> None:
    response = await h.post(f"/api/v1/mailings/{mailing_id}/{action}")
    assert response.status_code == 200, response.text


async def new_mailing(h: Harness, numbers: list[str], **fields: Any) -> str:
    body = {"name": "Summer sale", "text": "Hello", "override_consent": True, **fields}
    created = await h.post("/api/v1/mailings", body)
    assert created.status_code == 201, created.text
    mailing_id: str = created.json()["id"]
    if numbers:
        added = await h.post(f"/api/v1/mailings/{mailing_id}/recipients", {"numbers": numbers})
        assert added.status_code == 200, added.text
    return mailing_id


async def test_every_status_change_reaches_the_subscriber(
    served: tuple[Harness, FakeClock],
) -> None:
    """Scheduled, started, paused, resumed and done (once its messages left the outbox), and
    a draft cancelled: each is one signed event, in order, naming the mailing; the last one
    counts the three messages as sent or delivered."""
    h, clock = served
    with WebhookReceiver() as receiver:
        subscribed = await h.post(
            "/api/v1/webhooks", {"url": receiver.url, "events": ["mailing.status"]}
        )
        assert subscribed.status_code == 201, subscribed.text
        secret = subscribed.json()["secret"]
        window = {"days": WEEKDAYS, "from": "11:00", "to": "17:00"}  # opens 09:00 UTC
        # Scheduled for later, so the service's sender cannot start it before the test does.
        later = datetime.fromtimestamp(utc(12), UTC).isoformat()
        mailing_id = await new_mailing(h, NL, window=window, scheduled_at=later)
        sender = h.service.mailings
        assert sender is not None
        for action in ("schedule", "start", "pause", "resume"):
            await act(h, mailing_id, action)
            await sender.run_once()  # the sender's pass between two clicks changes nothing
        other = await new_mailing(h, [], name="Never sent")
        await act(h, other, "cancel")
        await h.wait_until(lambda: len(receiver.events()) == 5, "five events at the receiver")

        clock.now = utc(9)  # the window opens: the service's own sender sends them

        async def done() -> bool:
            sender.wake()
            body = (await h.get(f"/api/v1/mailings/{mailing_id}")).json()
            return bool(body["status"] == "done")

        for _ in range(1000):
            if await done():
                break
            await h.idle_scans(1)
        else:
            raise AssertionError("the mailing never finished")
        await h.wait_until(lambda: len(receiver.events()) == 6, "six events at the receiver")

    # Deliveries go out side by side, so they may arrive in any order; event ids are
    # time-ordered, so sorting by them gives the order the changes were made in.
    events = sorted(receiver.events("mailing.status"), key=lambda e: str(e["id"]))
    changes = [(e["data"]["id"], e["data"]["old_status"], e["data"]["status"]) for e in events]
    assert changes == [
        (mailing_id, "draft", "scheduled"),
        (mailing_id, "scheduled", "sending"),
        (mailing_id, "sending", "paused"),
        (mailing_id, "paused", "sending"),
        (other, "draft", "cancelled"),
        (mailing_id, "sending", "done"),
    ]
    assert {e["data"]["name"] for e in events} == {"Summer sale", "Never sent"}
    last = events[-1]["data"]
    assert last["counts"]["recipients"] == 3
    assert last["counts"]["sent"] + last["counts"]["delivered"] == 3
    assert last["counts"]["queued"] == last["counts"]["waiting"] == 0
    assert last["at"] == "2026-06-15T09:00:00.000Z"
    for headers, body in receiver.received():  # signed at the (fake) time of sending
        signed_at = float(headers["x-smsdesk-timestamp"])
        assert signed_at in (utc(8), utc(9))
        assert verify_signature(secret, headers, body, now=signed_at)
        assert not verify_signature("another secret", headers, body, now=signed_at)


async def test_mailing_status_can_be_chosen_and_unknown_events_are_refused(
    served: tuple[Harness, FakeClock],
) -> None:
    """Subscribers choose mailing.status like any other event; a misspelt one is refused with
    the list of valid types, which names it."""
    h, _ = served
    refused = await h.post(
        "/api/v1/webhooks", {"url": "http://127.0.0.1:9/e", "events": ["mailing.statuses"]}
    )
    assert refused.status_code == 422
    assert "mailing.status" in refused.json()["error"]["message"]
