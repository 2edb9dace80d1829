"""The kannel module against a real Kannel (Debian's bearerbox, smsbox and fakesmsc) on loopback.

Each test starts smsdesk listening on a loopback port, then Kannel with a get-url pointing at
smsdesk's inbound webhook, so delivery reports and inbound SMS travel Kannel's own HTTP calls.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from smsdesk.providers.kannel import INBOUND_QUERY
from smsdesk.store.tables import inbound_messages
from smsdesk.testing import FakeClock
from tests.support.harness import Harness, running_service
from tests.support.kannel import USERNAME, KannelGateway, joined_text, kannel_installed

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not kannel_installed(),
        reason="Kannel is not installed: apt-get install kannel kannel-extras "
        "(needs /usr/sbin/bearerbox, /usr/sbin/smsbox, /usr/lib/kannel/test/fakesmsc)",
    ),
]

TO = "+46701234567"


@dataclass
class Setup:
    harness: Harness
    kannel: KannelGateway
    clock: FakeClock

    def settings(self, **changes: Any) -> dict[str, Any]:
        return {
            "base_url": self.kannel.sendsms_url,
            "username": USERNAME,
            "password": self.kannel.password,
            "smsc": "fake",
            "max_parts": 10,
            **changes,
        }

    async def send(self, text: str, to: str = TO) -> str:
        response = await self.harness.post("/api/v1/messages", {"to": to, "text": text})
        assert response.status_code == 201, response.text
        message_id: str = response.json()["id"]
        return message_id

    async def delivered(self, message_id: str) -> dict[str, Any]:
        try:
            return await self.harness.wait_for(message_id, "delivered", timeout=15)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{self.kannel.logs()}") from None

    def inbound(self) -> list[Any]:
        with self.harness.service.engine.connect() as conn:
            query = sa.select(inbound_messages).where(inbound_messages.c.module == "kannel")
            return list(conn.execute(query.order_by(inbound_messages.c.received_at)))


@pytest.fixture
async def setup(tmp_path: Path) -> AsyncIterator[Setup]:
    clock = FakeClock(time.time())
    async with running_service(tmp_path, listen=True, clock=clock) as harness:
        secret = harness.service.settings.callback_secret()
        get_url = f"{harness.service.public_url}/webhooks/kannel/inbound/{secret}?{INBOUND_QUERY}"
        kannel = KannelGateway(get_url)
        await asyncio.to_thread(kannel.__enter__)
        try:
            ready = Setup(harness, kannel, clock)
            await harness.configure(
                module="kannel",
                sender="SMSDESK",
                default_country_code="+46",
                module_settings={"kannel": ready.settings()},
                limits={"kannel": {"rate_limit": 0, "concurrency": 4}},
            )
            # A scan that loaded the configuration before it was saved must not claim our
            # first message with the old (empty) kannel settings.
            await harness.idle_scans(2)
            yield ready
        finally:
            await asyncio.to_thread(kannel.stop)


async def test_gsm_and_unicode_texts_reach_the_smsc_and_are_delivered(setup: Setup) -> None:
    """A GSM text goes as coding 0, a Unicode one as UCS-2; Kannel's reports mark both delivered."""
    gsm = await setup.send("Hej då, 50€ {ok}")
    unicode = await setup.send("Привет 👋")
    await setup.delivered(gsm)
    await setup.delivered(unicode)
    received = {part.kind: part for part in setup.kannel.received()}
    assert received["text"].to == TO and received["text"].sender == "SMSDESK"
    assert received["text"].text() == "Hej då, 50€ {ok}"
    assert received["ucs-2"].text(ucs2=True) == "Привет 👋"


async def test_long_text_is_split_by_kannel_into_one_concatenated_message(setup: Setup) -> None:
    """One request per message: Kannel cuts a 2-part text into UDH parts that join back whole."""
    text = "Lorem ipsum dolor sit amet. " * 8
    message = await setup.delivered(await setup.send(text))
    assert message["segments"] == 2
    parts = setup.kannel.received()
    assert [part.kind for part in parts] == ["udh", "udh"]
    assert joined_text(parts) == text


async def test_inbound_sms_from_the_smsc_become_requests(setup: Setup) -> None:
    """MO messages injected at the fake SMSC arrive through Kannel's get-url, GSM and UCS-2,
    and go through the inbound pipeline (no SMS endpoint code: every SMS is for us)."""
    await asyncio.to_thread(setup.kannel.inject_mo, "46701234502", "12345", "Svar: ja tack")
    await asyncio.to_thread(setup.kannel.inject_mo, "+46701234503", "12345", "Да, спасибо")
    await setup.harness.wait_until(lambda: len(setup.inbound()) == 2, "two inbound rows")
    rows = sorted(setup.inbound(), key=lambda row: row.sender)
    assert [(r.sender, r.recipient, r.body) for r in rows] == [
        ("+46701234502", "12345", "Svar: ja tack"),
        ("+46701234503", "12345", "Да, спасибо"),
    ]
    assert all(row.provider_message_id for row in rows)
    await setup.harness.wait_until(
        lambda: all(row.state == "request" for row in setup.inbound()), "both became requests"
    )
    assert len({row.request_id for row in setup.inbound()}) == 2


async def test_kannel_down_keeps_the_message_queued_then_sends_it_once(setup: Setup) -> None:
    """With smsbox stopped the send is retried with a clear reason, and goes out once it is back."""
    await asyncio.to_thread(setup.kannel.stop_smsbox)
    message_id = await setup.send("Sent after Kannel is back")
    deadline = time.monotonic() + 10
    while True:
        body = (await setup.harness.get(f"/api/v1/messages/{message_id}")).json()
        if body["status"] == "queued" and body["attempts"] >= 1:
            break
        assert time.monotonic() < deadline, body
        await setup.harness.idle_scans(1)
    assert "smsbox does not answer" in body["error"], body
    await asyncio.to_thread(setup.kannel.start_smsbox)
    setup.clock.advance(3600)
    await setup.delivered(message_id)
    texts = [part.text() for part in setup.kannel.received()]
    assert texts == ["Sent after Kannel is back"]


async def test_wrong_password_is_an_authentication_error_in_send_test(setup: Setup) -> None:
    """Send test with a wrong sendsms password shows Kannel's refusal as an authentication error."""
    stored = (await setup.harness.get("/api/v1/settings")).json()
    stored["module_settings"]["kannel"] = setup.settings(password="wrong")
    response = await setup.harness.post(
        "/api/v1/settings/test", {"to": TO, "text": "test", "settings": stored}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["accepted"] is False
    assert body["error"]["kind"] == "AuthenticationError"
    assert "sendsms-user" in body["error"]["message"]
    assert setup.kannel.received() == []
