"""Original Intelecom with *Use web service* off: each SMS by e-mail to the Intelecom gateway."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from smsdesk.providers.intelecom import WEB_SERVICE_OFF
from smsdesk.testing import FakeClock
from smsdesk.testing.fakes.intelecom import IntelecomFake
from tests.support.harness import Harness, running_service
from tests.support.smtp import SmtpInbox

TO = "+4741000000"


@pytest.fixture
def fake() -> Iterator[IntelecomFake]:
    with IntelecomFake() as running:
        yield running


@pytest.fixture
def inbox() -> Iterator[SmtpInbox]:
    with SmtpInbox() as running:
        yield running


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(time.time())


@pytest.fixture
async def harness(tmp_path: Path, clock: FakeClock) -> AsyncIterator[Harness]:
    async with running_service(tmp_path, clock=clock, listen=True) as running:
        yield running


def smtp(inbox: SmtpInbox) -> dict[str, Any]:
    return {
        "smtp_host": inbox.hostname,
        "smtp_port": inbox.port,
        "security": "none",
        "from_address": "sms@smsdesk.example",
        "timeout": 5,
    }


async def configure(harness: Harness, module_settings: dict[str, Any]) -> None:
    await harness.configure(
        module="original_intelecom",
        sender="Smsdesk",
        module_settings=module_settings,
        limits={"original_intelecom": {"rate_limit": 0, "concurrency": 2}},
    )
    await harness.idle_scans(2)  # the dispatcher picks up the new settings


async def send(harness: Harness, text: str, to: str = TO) -> str:
    response = await harness.post("/api/v1/messages", {"to": to, "text": text})
    assert response.status_code == 201, response.text
    message_id: str = response.json()["id"]
    return message_id


async def test_without_web_service_each_sms_is_an_email_to_the_gateway(
    harness: Harness, fake: IntelecomFake, inbox: SmtpInbox
) -> None:
    """The e-mail goes to <number>-<service id>@smsmail.intele.com with the text as body."""
    original = {**fake.module_settings(), "use_web_service": False}
    await configure(harness, {"original_intelecom": original, "email": smtp(inbox)})
    gsm = await send(harness, "Møtet er flyttet til 14:00")
    unicode = await send(harness, "Привет 👋", to="+4790000001")
    for message_id in (gsm, unicode):
        await harness.wait_for(message_id, "sent")

    by_address = {e.rcpt_tos[0]: e for e in inbox.received()}
    service = fake.service_id
    assert set(by_address) == {
        f"4741000000-{service}@smsmail.intele.com",
        f"4790000001-{service}@smsmail.intele.com",
    }
    assert by_address[f"4741000000-{service}@smsmail.intele.com"].body == (
        "Møtet er flyttet til 14:00"
    )
    assert by_address[f"4790000001-{service}@smsmail.intele.com"].body == "Привет 👋"
    assert by_address[f"4741000000-{service}@smsmail.intele.com"].message["Subject"] == ""
    assert fake.send_requests() == []


async def test_with_web_service_the_rest_gateway_is_used_even_when_email_is_set_up(
    harness: Harness, fake: IntelecomFake, inbox: SmtpInbox
) -> None:
    original = {**fake.module_settings(), "use_web_service": True}
    await configure(harness, {"original_intelecom": original, "email": smtp(inbox)})
    await harness.wait_for(await send(harness, "By REST"), "sent")
    assert [m.text for m in fake.messages] == ["By REST"]
    assert inbox.received() == []


async def test_without_email_settings_messages_wait_until_the_email_module_is_configured(
    harness: Harness, fake: IntelecomFake, inbox: SmtpInbox, clock: FakeClock
) -> None:
    """The reason says what to configure; saving the e-mail settings lets the message go."""
    original = {**fake.module_settings(), "use_web_service": False}
    await configure(harness, {"original_intelecom": original})
    message_id = await send(harness, "Waiting for SMTP")
    waiting = await harness.wait_error(message_id)
    assert waiting["error"] == WEB_SERVICE_OFF

    await configure(harness, {"email": smtp(inbox)})
    clock.advance(3600)
    await harness.wait_for(message_id, "sent")
    assert [e.body for e in inbox.received()] == ["Waiting for SMTP"]


async def test_the_gateway_address_can_be_changed_in_the_email_settings(
    harness: Harness, fake: IntelecomFake, inbox: SmtpInbox
) -> None:
    original = {**fake.module_settings(), "use_web_service": False}
    email = {**smtp(inbox), "intelecom_address": "{e164}-{service_id}@sms.example.no"}
    await configure(harness, {"original_intelecom": original, "email": email})
    await harness.wait_for(await send(harness, "Hei"), "sent")
    assert [e.rcpt_tos for e in inbox.received()] == [
        [f"+4741000000-{fake.service_id}@sms.example.no"]
    ]
