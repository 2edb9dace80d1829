"""How certain a failed e-mail-to-SMS send is, against an SMTP server on loopback.

Before DATA (connecting, logging in, MAIL FROM, RCPT TO) the gateway has not got the message;
from DATA on (a refusal of the body, no answer to it) it may have.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from smsdesk.domain.ids import new_id
from smsdesk.domain.sms import OutboundSms
from smsdesk.providers.base import PermanentError, ProviderContext, SendResult, TemporaryError
from smsdesk.providers.email_gateway import EmailGatewayProvider, EmailGatewaySettings
from smsdesk.testing import free_port
from tests.support.smtp import SmtpInbox

FIRST, SECOND = "+4741000000", "+4741000001"


class GatewayInbox(SmtpInbox):
    """An SMTP server whose answer to DATA can be a refusal, or held until released."""

    def __init__(self) -> None:
        super().__init__()
        self.data_reply: str | None = None
        self.hold_data = False
        self.released = threading.Event()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.hold_data:
            self.hold_data = False
            await asyncio.to_thread(self.released.wait, 10)
        if self.data_reply is not None:
            return self.data_reply
        return await super().handle_DATA(server, session, envelope)


@pytest.fixture
def inbox() -> Iterator[GatewayInbox]:
    server = GatewayInbox()
    server.start()
    yield server
    server.released.set()
    server.stop()


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as http:
        yield http


def provider(
    port: int, client: httpx.AsyncClient, tmp_path: Path, timeout: float = 5
) -> EmailGatewayProvider:
    settings = EmailGatewaySettings(
        smtp_host="127.0.0.1",
        smtp_port=port,
        security="none",
        from_address="sms@smsdesk.example",
        to_template="{number}@gateway.example",
        timeout=timeout,
    )
    return EmailGatewayProvider(settings, client, ProviderContext(data_dir=tmp_path))


def outbound(to: str) -> OutboundSms:
    return OutboundSms(new_id(), to, "Smsdesk", "Your table is ready", "gsm7", 1, 2)


def certainty(result: SendResult) -> tuple[Any, bool, bool]:
    error = result.error
    assert error is not None, "the e-mail was accepted"
    return type(error), error.not_taken, error.connection_level


async def test_a_server_that_is_down_took_nothing(
    client: httpx.AsyncClient, tmp_path: Path
) -> None:
    """No SMTP server at the port: every e-mail of the batch is certainly not taken."""
    results = await provider(free_port(), client, tmp_path).send(
        [outbound(FIRST), outbound(SECOND)]
    )

    assert [certainty(r) for r in results] == [(TemporaryError, True, True)] * 2


async def test_a_refusal_at_rcpt_is_not_taken(
    inbox: GatewayInbox, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    """RCPT TO answered 450: before DATA, so the gateway has nothing; the address's fault."""
    inbox.refuse("4741000000@gateway.example", "450 4.2.1 Mailbox busy")

    [result] = await provider(inbox.port, client, tmp_path).send([outbound(FIRST)])

    assert certainty(result) == (TemporaryError, True, False)


async def test_a_refusal_after_data_is_ambiguous(
    inbox: GatewayInbox, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    """DATA answered 451 after the body went: the gateway may still pass it on."""
    inbox.data_reply = "451 4.3.0 Try again later"

    [result] = await provider(inbox.port, client, tmp_path).send([outbound(FIRST)])

    assert certainty(result) == (TemporaryError, False, True)


async def test_a_permanent_refusal_after_data_fails_the_message(
    inbox: GatewayInbox, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    """DATA answered 554: the message is refused for good (it fails, it does not fail over)."""
    inbox.data_reply = "554 5.6.0 Message refused"

    [result] = await provider(inbox.port, client, tmp_path).send([outbound(FIRST)])

    assert certainty(result) == (PermanentError, False, False)


async def test_no_answer_to_data_is_ambiguous_and_the_rest_of_the_batch_not_taken(
    inbox: GatewayInbox, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    """The first body went and no answer came: it may be taken; the second never started."""
    inbox.hold_data = True

    first, second = await provider(inbox.port, client, tmp_path, timeout=1).send(
        [outbound(FIRST), outbound(SECOND)]
    )

    assert certainty(first) == (TemporaryError, False, True)
    assert certainty(second) == (TemporaryError, True, True)
