"""How certain a failed send is, for every HTTP module against its fake on loopback.

A failure the provider certainly did not take (`not_taken`) may go to another connection; an
ambiguous one (the provider may have the message) must be retried on the same connection. Each
test runs once per fake in `smsdesk.testing.fakes.FAKES`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest

from smsdesk.domain.ids import new_id
from smsdesk.domain.sms import OutboundSms
from smsdesk.providers.base import (
    AuthenticationError,
    PermanentError,
    Provider,
    ProviderContext,
    ProviderError,
    RateLimitedError,
    SendResult,
    TemporaryError,
)
from smsdesk.providers.registry import get_module
from smsdesk.testing.fakes import FAKES, FailureMode, FakeProvider, load_fake
from smsdesk.testing.fakes.intelecom import IntelecomFake
from tests.contract.conftest import Contract

TO = "+31612345678"
SENDER = "Smsdesk"
TIMEOUT = 0.5  # the client's timeout, so a held answer fails quickly


@pytest.fixture(scope="module", params=sorted(FAKES))
def server(request: pytest.FixtureRequest) -> Iterator[FakeProvider]:
    with load_fake(request.param)() as started:
        yield started


@pytest.fixture
def fake(server: FakeProvider) -> Iterator[FakeProvider]:
    """The module's fake, clean for each test; held answers released and its port open after."""
    server.reset()
    yield server
    server.release_held()


@pytest.fixture
async def provider(fake: FakeProvider, tmp_path: Path) -> AsyncIterator[Provider]:
    info = get_module(fake.module)
    assert info.provider_class is not None
    settings = info.settings_model(**{**fake.module_settings(), "timeout": TIMEOUT})
    context = ProviderContext(data_dir=tmp_path, sender=SENDER, public_url="http://desk.example")
    async with httpx.AsyncClient() as client:
        yield info.provider_class(settings, client, context)


def outbound(to: str = TO, message_id: str | None = None) -> OutboundSms:
    message_id = message_id or new_id()
    return OutboundSms(
        message_id=message_id,
        to=to,
        sender=SENDER,
        text="Your table is ready",
        encoding="gsm7",
        segments=1,
        priority=2,
        status_callback_url=f"http://desk.example/webhooks/x/status/secret?ref={message_id}",
    )


async def send_one(provider: Provider, sms: OutboundSms) -> SendResult:
    """The one result of a send, whether the module raised its error or returned it."""
    try:
        [result] = await provider.send([sms])
    except ProviderError as exc:
        return SendResult(sms.message_id, error=exc, raw_code=exc.code)
    return result


def certainty(error: ProviderError | None) -> dict[str, Any]:
    assert error is not None, "the send was accepted"
    return {
        "kind": type(error).__name__,
        "not_taken": error.not_taken,
        "connection_level": error.connection_level,
    }


async def test_a_refused_connection_is_not_taken(provider: Provider, fake: FakeProvider) -> None:
    """A closed port: the provider cannot have the message, and the connection is at fault."""
    fake.fail_next(FailureMode.REFUSE_CONNECTION)

    refused = await send_one(provider, outbound())

    assert certainty(refused.error) == {
        "kind": "TemporaryError",
        "not_taken": True,
        "connection_level": True,
    }
    assert refused.error is not None and "could not reach" in refused.error.message.lower()
    fake.release_held()
    assert (await send_one(provider, outbound())).accepted
    assert len(fake.messages) == 1


async def test_a_server_error_without_an_id_is_not_taken(
    provider: Provider, fake: FakeProvider
) -> None:
    """A 5xx answer carries no message id: the provider did not take it."""
    fake.fail_next(FailureMode.SERVER_ERROR)

    failed = await send_one(provider, outbound())

    assert certainty(failed.error) == {
        "kind": "TemporaryError",
        "not_taken": True,
        "connection_level": True,
    }
    assert fake.messages == []


async def test_refused_credentials_are_not_taken_and_about_the_connection(
    provider: Provider, fake: FakeProvider
) -> None:
    """401 or the provider's own refusal of the login: nothing taken, the account is at fault."""
    fake.fail_next(FailureMode.AUTH)

    refused = await send_one(provider, outbound())

    assert isinstance(refused.error, AuthenticationError)
    assert (refused.error.not_taken, refused.error.connection_level) == (True, True)
    assert fake.messages == []


async def test_throttling_is_not_taken(provider: Provider, fake: FakeProvider) -> None:
    """429 (or the provider's "too many requests"): refused before taking the message."""
    fake.fail_next(FailureMode.THROTTLE)

    throttled = await send_one(provider, outbound())

    assert isinstance(throttled.error, RateLimitedError | TemporaryError)
    assert (throttled.error.not_taken, throttled.error.connection_level) == (True, True)
    assert fake.messages == []


async def test_an_answer_held_past_the_timeout_is_ambiguous(
    provider: Provider, fake: FakeProvider
) -> None:
    """The provider stored the message but its answer never came: it may have been taken."""
    fake.fail_next(FailureMode.ACCEPT_THEN_TIMEOUT)

    timed_out = await send_one(provider, outbound())

    assert certainty(timed_out.error) == {
        "kind": "TemporaryError",
        "not_taken": False,
        "connection_level": True,
    }
    assert timed_out.error is not None and "may have taken" in timed_out.error.message
    assert len(fake.messages) == 1


async def test_a_retry_after_an_ambiguous_send_doubles_unless_the_provider_deduplicates(
    provider: Provider, fake: FakeProvider
) -> None:
    """The same message id again: only a provider that de-duplicates references keeps one."""
    sms = outbound()
    fake.fail_next(FailureMode.ACCEPT_THEN_TIMEOUT)
    assert not (await send_one(provider, sms)).accepted
    fake.release_held()

    again = await send_one(provider, sms)

    assert again.accepted
    assert len(fake.messages) == (1 if provider.dedupes_reference else 2)


async def test_a_refused_number_is_final_and_not_about_the_connection(
    provider: Provider, fake: FakeProvider
) -> None:
    """A message-level refusal fails the message; it neither fails over nor trips a breaker."""
    fake.refuse_number("+31687654321")

    refused = await send_one(provider, outbound("+31687654321"))

    assert isinstance(refused.error, PermanentError)
    assert (refused.error.not_taken, refused.error.connection_level) == (False, False)


async def test_an_intelecom_duplicate_reference_is_accepted_once(tmp_path: Path) -> None:
    """Status 25: the gateway already has this clientReference; sent, with the first's id."""
    info = get_module("intelecom")
    assert info.provider_class is not None and info.provider_class.dedupes_reference
    with IntelecomFake() as fake:
        settings = info.settings_model(**fake.module_settings())
        async with httpx.AsyncClient() as client:
            provider = info.provider_class(settings, client, ProviderContext(data_dir=tmp_path))
            sms = outbound()
            first = await send_one(provider, sms)
            second = await send_one(provider, sms)

        assert first.accepted and second.accepted
        assert second.raw_code == "25"
        assert second.provider_message_id == first.provider_message_id
        assert [m.reference for m in fake.messages] == [sms.message_id]


async def test_link_requests_not_made_after_an_ambiguous_one_are_not_taken(
    tmp_path: Path,
) -> None:
    """LINK sends each group of a batch in its own request and stops at the first failure:
    the group whose answer never came is ambiguous, the groups never sent are not taken."""
    info = get_module("linkmobility")
    assert info.provider_class is not None
    with load_fake("linkmobility")() as fake:
        settings = info.settings_model(**{**fake.module_settings(), "timeout": TIMEOUT})
        async with httpx.AsyncClient() as client:
            provider = info.provider_class(settings, client, ProviderContext(data_dir=tmp_path))
            with_report = outbound()
            without_report = replace(outbound("+31612345679"), delivery_report=False)
            fake.fail_next(FailureMode.ACCEPT_THEN_TIMEOUT)
            first, second = await provider.send([with_report, without_report])
            fake.release_held()

        assert certainty(first.error)["not_taken"] is False
        assert certainty(second.error)["not_taken"] is True
        assert [m.to for m in fake.messages] == [TO]


async def test_through_the_service_a_refused_connection_keeps_the_message_until_it_returns(
    contract: Contract,
) -> None:
    """A closed port: the message waits, and goes out once when the provider is back."""
    contract.fake.fail_next(FailureMode.REFUSE_CONNECTION)
    accepted = await contract.send(TO, "Anyone there")

    failed = await contract.wait_error(accepted["id"])
    assert "could not reach" in failed["error"].lower()
    contract.fake.release_held()

    await contract.later(600)
    await contract.harness.wait_for(accepted["id"], "sent")
    assert len(contract.fake.sent_to(TO)) == 1


async def test_through_the_service_an_ambiguous_send_is_retried_and_doubles_unless_deduplicated(
    contract: Contract,
) -> None:
    """Taken but unanswered: retried on the same connection with the same reference, so the
    phone gets it twice unless the provider drops the repeated reference."""
    provider_class = get_module(contract.module).provider_class
    assert provider_class is not None
    contract.fake.fail_next(FailureMode.ACCEPT_THEN_TIMEOUT)
    accepted = await contract.send(TO, "Maybe twice")

    failed = await contract.wait_error(accepted["id"])
    assert "may have taken" in failed["error"]
    contract.fake.release_held()

    await contract.later(600)
    await contract.harness.wait_for(accepted["id"], "sent")
    assert len(contract.fake.sent_to(TO)) == (1 if provider_class.dedupes_reference else 2)
