"""The e-mail-to-SMS module through a running service, against aiosmtpd on loopback."""

from __future__ import annotations

import socket
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from smsdesk.providers.email_gateway import EmailGatewaySettings
from smsdesk.testing import FakeClock
from tests.support.harness import Harness, running_service
from tests.support.smtp import SmtpInbox, self_signed_certificate

TO = "+4741000000"
LOGIN = ("smsdesk", "s3cret")


def email_settings(inbox: SmtpInbox, **changes: Any) -> dict[str, Any]:
    settings: dict[str, Any] = {
        "smtp_host": inbox.hostname,
        "smtp_port": inbox.port,
        "security": inbox.tls,
        "from_address": "sms@smsdesk.example",
        "to_template": "{number}@gateway.example",
        "timeout": 5,
    }
    if inbox.login is not None:
        settings.update(smtp_username=inbox.login[0], smtp_password=inbox.login[1])
    return {**settings, **changes}


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return self_signed_certificate(tmp_path_factory.mktemp("smtp-tls"))


@pytest.fixture
def inbox() -> Iterator[SmtpInbox]:
    with SmtpInbox() as running:
        yield running


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(time.time())


@pytest.fixture
async def harness(tmp_path: Path, clock: FakeClock) -> AsyncIterator[Harness]:
    async with running_service(tmp_path, clock=clock) as running:
        yield running


async def use_email(harness: Harness, settings: dict[str, Any]) -> None:
    await harness.configure(
        module="email",
        sender="Smsdesk",
        module_settings={"email": settings},
        limits={"email": {"rate_limit": 0, "concurrency": 2}},
    )
    await harness.idle_scans(2)  # the dispatcher picks up the new settings


async def send(harness: Harness, text: str, to: str = TO) -> str:
    response = await harness.post("/api/v1/messages", {"to": to, "text": text})
    assert response.status_code == 201, response.text
    message_id: str = response.json()["id"]
    return message_id


async def test_gsm_and_unicode_sms_arrive_as_emails_over_starttls_with_login(
    harness: Harness, certificate: tuple[Path, Path]
) -> None:
    """Each SMS is one UTF-8 e-mail to its number's address; the messages end sent."""
    with SmtpInbox(login=LOGIN, tls="starttls", certificate=certificate) as server:
        await use_email(
            harness,
            email_settings(server, ca_file=str(certificate[0]), subject_template="{sender}"),
        )
        gsm = await send(harness, "Your order {42} is ready @ desk 5")
        unicode = await send(harness, "Ваш заказ готов 📦", to="+4790000001")
        sent = [await harness.wait_for(m, "sent") for m in (gsm, unicode)]
        by_address = {e.rcpt_tos[0]: e for e in server.received()}

    assert set(by_address) == {"4741000000@gateway.example", "4790000001@gateway.example"}
    first, second = (
        by_address["4741000000@gateway.example"],
        by_address["4790000001@gateway.example"],
    )
    assert first.body == "Your order {42} is ready @ desk 5"
    assert second.body == "Ваш заказ готов 📦"
    assert second.message.get_content_charset() == "utf-8"
    assert (first.mail_from, first.message["Subject"]) == ("sms@smsdesk.example", "Smsdesk")
    for row, received in ((sent[0], first), (sent[1], second)):
        assert row["id"] in received.message["Message-ID"]
        assert row["provider_message_id"] == received.message["Message-ID"]


async def test_a_batch_shares_one_connection_and_login(harness: Harness, clock: FakeClock) -> None:
    """Messages due together go over one SMTP session, not one login per SMS."""
    server = SmtpInbox(login=LOGIN)  # down at first, so the messages gather in the queue
    await use_email(harness, email_settings(server))
    ids = [await send(harness, f"Message {n}") for n in range(5)]
    for message_id in ids:
        await harness.wait_error(message_id)
    with server:
        clock.advance(3600)
        for message_id in ids:
            await harness.wait_for(message_id, "sent")
        assert sorted(e.body for e in server.received()) == [f"Message {n}" for n in range(5)]
        assert server.logins == 1


async def test_implicit_tls_needs_a_trusted_certificate(
    harness: Harness, certificate: tuple[Path, Path]
) -> None:
    """TLS from the start works with the CA file; without it Send test names the TLS problem."""
    with SmtpInbox(tls="tls", certificate=certificate) as server:
        trusted = email_settings(server, ca_file=str(certificate[0]))
        answer = await send_test(harness, trusted)
        assert answer["accepted"] and answer["status"] == "sent", answer
        assert [e.rcpt_tos for e in server.received()] == [["4741000000@gateway.example"]]

        answer = await send_test(harness, email_settings(server))
    assert answer["error"]["kind"] == "AuthenticationError"
    assert "TLS" in answer["error"]["message"]
    assert "CERTIFICATE_VERIFY_FAILED" in answer["error"]["message"]
    assert "Trusted certificates" in answer["error"]["message"]


async def send_test(harness: Harness, settings: dict[str, Any]) -> dict[str, Any]:
    response = await harness.post(
        "/api/v1/settings/test",
        {
            "to": TO,
            "text": "Test",
            "settings": {"module": "email", "module_settings": {"email": settings}},
        },
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_a_wrong_smtp_password_is_an_authentication_error_in_send_test(
    harness: Harness,
) -> None:
    with SmtpInbox(login=LOGIN) as server:
        answer = await send_test(harness, email_settings(server, smtp_password="wrong"))
        assert server.received() == []
    assert answer["accepted"] is False
    assert answer["error"]["kind"] == "AuthenticationError"
    assert answer["error"]["code"] == "535"
    assert "SMTP password" in answer["error"]["message"]


async def test_a_refused_recipient_fails_the_message_with_the_servers_reply(
    harness: Harness, inbox: SmtpInbox
) -> None:
    inbox.refuse("4741000000@gateway.example", "550 5.1.1 Unknown subscriber")
    await use_email(harness, email_settings(inbox))
    refused = await send(harness, "Not for you")
    other = await send(harness, "For you", to="+4790000001")
    failed = await harness.wait_for(refused, "failed")
    await harness.wait_for(other, "sent")
    assert "550 5.1.1 Unknown subscriber" in failed["error"]
    assert failed["status_code"] == "550"
    assert [e.body for e in inbox.received()] == ["For you"]


async def test_a_server_that_is_down_keeps_the_message_queued_until_it_returns(
    harness: Harness, clock: FakeClock
) -> None:
    """Connection refused is temporary: queued with the reason, then sent exactly once."""
    server = SmtpInbox()  # its port is chosen but nothing listens yet
    await use_email(harness, email_settings(server))
    message_id = await send(harness, "Are you there?")
    waiting = await harness.wait_error(message_id)
    assert f"Cannot reach the SMTP server 127.0.0.1:{server.port}" in waiting["error"]

    with server:
        clock.advance(3600)
        await harness.idle_scans(2)
        sent = await harness.wait_for(message_id, "sent")
        await harness.idle_scans(2)
        assert [e.body for e in server.received()] == ["Are you there?"]
    assert sent["attempts"] >= 2


async def test_a_temporary_refusal_is_retried(harness: Harness, inbox: SmtpInbox) -> None:
    inbox.refuse("4741000000@gateway.example", "451 4.3.0 Try again later")
    await use_email(harness, email_settings(inbox))
    message_id = await send(harness, "Later")
    waiting = await harness.wait_error(message_id)
    assert "451 4.3.0 Try again later" in waiting["error"]


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("to_template", "{phone}@gateway.example", "Unknown placeholder {phone}"),
        ("to_template", "{number}", "does not make an e-mail address"),
        ("body_template", "{text} {", "not valid"),
        ("subject_template", "{text:>10}", "Unknown placeholder {text:>10}"),
        ("intelecom_address", "{number}-{sender}@smsmail.intele.com", "{sender}"),
    ],
)
async def test_templates_are_checked_when_saved(
    harness: Harness, field: str, value: str, expected: str
) -> None:
    response = await harness.put("/api/v1/settings", {"module_settings": {"email": {field: value}}})
    assert response.status_code == 422, response.text
    errors = {f["field"]: f["message"] for f in response.json()["error"]["fields"]}
    assert expected in errors[f"module_settings.email.{field}"]


def test_every_setting_has_a_title_and_description() -> None:
    for name, prop in EmailGatewaySettings.model_json_schema()["properties"].items():
        assert prop.get("title") and prop.get("description"), name


async def test_a_server_without_starttls_is_a_settings_error_in_send_test(
    harness: Harness, inbox: SmtpInbox
) -> None:
    """Asking for STARTTLS from a server that does not offer it never falls back to plain."""
    answer = await send_test(harness, email_settings(inbox, security="starttls"))
    assert answer["error"]["kind"] == "AuthenticationError"
    assert "STARTTLS" in answer["error"]["message"]
    assert inbox.received() == []


async def test_a_server_that_never_answers_is_a_timeout(harness: Harness) -> None:
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        settings = {
            "smtp_host": "127.0.0.1",
            "smtp_port": silent.getsockname()[1],
            "security": "none",
            "from_address": "sms@smsdesk.example",
            "to_template": "{number}@gateway.example",
            "timeout": 0.3,
        }
        answer = await send_test(harness, settings)
    assert answer["error"]["kind"] == "TemporaryError"
    assert "did not answer within 0.3 s" in answer["error"]["message"]


async def test_an_unconfigured_module_names_the_missing_fields(harness: Harness) -> None:
    answer = await send_test(harness, {"to_template": "{number}@gateway.example"})
    assert answer["error"]["kind"] == "AuthenticationError"
    assert "SMTP server, From address" in answer["error"]["message"]
