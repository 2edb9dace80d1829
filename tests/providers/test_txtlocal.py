"""The Textlocal module against its fake on loopback: requests, error mapping, callbacks."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from smsdesk.domain.message import Status
from smsdesk.domain.settings import MASK
from smsdesk.domain.sms import OutboundSms
from smsdesk.providers.base import (
    AuthenticationError,
    CallbackRequest,
    PermanentError,
    ProviderContext,
    ProviderError,
    RateLimitedError,
    SendResult,
    TemporaryError,
)
from smsdesk.providers.txtlocal import (
    ERRORS,
    REPORT_STATUSES,
    TxtlocalProvider,
    TxtlocalSettings,
    inbound_id,
    textlocal_sender,
)
from smsdesk.testing.fakes import FailureMode
from smsdesk.testing.fakes.txtlocal import PASSWORD, USERNAME, TxtlocalFake
from tests.support.harness import running_service

PUBLIC = "http://smsdesk.test"
STATUS_URL = f"{PUBLIC}/webhooks/txtlocal/status/s3cret"
MESSAGE_ID = "01HZX5V8Q2M6W3K9T7R4N1B0CD"
NOW = 1_700_000_000.0


def outbound(**changes: Any) -> OutboundSms:
    fields: dict[str, Any] = {
        "message_id": MESSAGE_ID,
        "to": "+447700900123",
        "sender": "Smsdesk",
        "text": "Your table is ready",
        "encoding": "gsm7",
        "segments": 1,
        "priority": 2,
        "status_callback_url": STATUS_URL,
    }
    return OutboundSms(**{**fields, **changes})


@pytest.fixture
def fake() -> Iterator[TxtlocalFake]:
    with TxtlocalFake() as running:
        yield running


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


def make_provider(
    http: httpx.AsyncClient, tmp_path: Path, settings: dict[str, Any]
) -> TxtlocalProvider:
    return TxtlocalProvider(
        TxtlocalSettings(**settings), http, ProviderContext(data_dir=tmp_path, public_url=PUBLIC)
    )


@pytest.fixture
def provider(fake: TxtlocalFake, http: httpx.AsyncClient, tmp_path: Path) -> TxtlocalProvider:
    return make_provider(http, tmp_path, fake.module_settings())


@pytest.fixture
def offline(http: httpx.AsyncClient, tmp_path: Path) -> TxtlocalProvider:
    """A provider for what needs no server: building forms and parsing callbacks."""
    return make_provider(http, tmp_path, {"api_key": "k"})


def sent_form(fake: TxtlocalFake) -> dict[str, str]:
    [request] = fake.send_requests()
    return {name: values[-1] for name, values in request.form().items()}


async def send_one(provider: TxtlocalProvider, sms: OutboundSms) -> SendResult:
    [result] = await provider.send([sms])
    return result


def error_of(result: SendResult) -> ProviderError:
    assert result.error is not None, result
    return result.error


# -- the request ------------------------------------------------------------------------------


async def test_a_send_posts_the_documented_form(
    provider: TxtlocalProvider, fake: TxtlocalFake
) -> None:
    """apikey, bare international digits, text, sender, our id as custom and the receipt URL."""
    result = await send_one(provider, outbound(text="Table for 2 & more"))

    assert result.accepted
    assert result.provider_message_id == MESSAGE_ID
    form = sent_form(fake)
    assert form == {
        "apikey": "fake-textlocal-api-key",
        "numbers": "447700900123",
        "message": "Table for 2 & more",
        "sender": "Smsdesk",
        "custom": MESSAGE_ID,
        "receipt_url": STATUS_URL,
    }
    [request] = fake.send_requests()
    assert request.path == "/send/"
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    assert b"Table%20for%202%20%26%20more" in request.body  # spaces as %20, never '+'
    [sms] = fake.sent_to("+447700900123")
    assert (sms.reference, sms.callback_url, sms.report_requested) == (MESSAGE_ID, STATUS_URL, True)
    assert result.raw_code == f"success:{sms.provider_id}"


async def test_unicode_text_sets_the_unicode_flag(
    provider: TxtlocalProvider, fake: TxtlocalFake
) -> None:
    """UCS-2 texts go with unicode=true and arrive intact; GSM-7 texts carry no flag."""
    await send_one(provider, outbound(text="Привет ✓", encoding="ucs2"))

    assert sent_form(fake)["unicode"] == "true"
    [sms] = fake.messages
    assert (sms.text, sms.unicode) == ("Привет ✓", True)


async def test_without_a_delivery_report_no_receipt_url_is_sent(
    provider: TxtlocalProvider, fake: TxtlocalFake
) -> None:
    """No receipt_url when no report is wanted; custom still identifies the message."""
    await send_one(provider, outbound(delivery_report=False, status_callback_url=None))

    form = sent_form(fake)
    assert "receipt_url" not in form
    assert form["custom"] == MESSAGE_ID


def test_validity_is_sent_only_when_shorter_than_the_operators_default(
    offline: TxtlocalProvider,
) -> None:
    """Expiry within 48 h becomes a Unix timestamp; a later or missing one sends nothing."""
    soon = offline.send_fields(outbound(expires_at=NOW + 3600.7), now=NOW)
    late = offline.send_fields(outbound(expires_at=NOW + 72 * 3600), now=NOW)
    never = offline.send_fields(outbound(expires_at=None), now=NOW)

    assert soon["validity"] == str(int(NOW + 3600))
    assert "validity" not in late and "validity" not in never


def test_priority_has_no_textlocal_field(offline: TxtlocalProvider) -> None:
    """Textlocal has no priority parameter; every priority sends the same form."""
    forms = [offline.send_fields(outbound(priority=p), now=NOW) for p in (1, 2, 3)]
    assert forms[0] == forms[1] == forms[2]


async def test_test_mode_is_accepted_and_nothing_is_sent(
    fake: TxtlocalFake, http: httpx.AsyncClient, tmp_path: Path
) -> None:
    """test=true: Textlocal answers success and sends (and charges) nothing."""
    provider = make_provider(http, tmp_path, {**fake.module_settings(), "test_mode": True})

    result = await send_one(provider, outbound())

    assert result.accepted
    assert sent_form(fake)["test"] == "true"
    assert fake.messages == []


async def test_legacy_login_sends_username_and_password(
    fake: TxtlocalFake, http: httpx.AsyncClient, tmp_path: Path
) -> None:
    """Without an API key the Messenger user name and password are sent instead."""
    settings = {"base_url": fake.url, "username": USERNAME, "password": PASSWORD}
    provider = make_provider(http, tmp_path, settings)

    result = await send_one(provider, outbound())

    assert result.accepted
    form = sent_form(fake)
    assert (form["username"], form["password"]) == (USERNAME, PASSWORD)
    assert "apikey" not in form


async def test_missing_credentials_are_refused_before_any_request(
    fake: TxtlocalFake, http: httpx.AsyncClient, tmp_path: Path
) -> None:
    provider = make_provider(http, tmp_path, {"base_url": fake.url, "username": USERNAME})

    error = error_of(await send_one(provider, outbound()))

    assert isinstance(error, AuthenticationError)
    assert error.code == "no-credentials"
    assert fake.requests == []


async def test_a_text_over_766_characters_is_refused_before_sending(
    provider: TxtlocalProvider, fake: TxtlocalFake
) -> None:
    error = error_of(await send_one(provider, outbound(text="x" * 767)))

    assert isinstance(error, PermanentError)
    assert "766" in error.message
    assert fake.requests == []


@given(st.from_regex(r"[A-Za-z0-9 ]{3,11}", fullmatch=True).filter(lambda s: s.strip() == s))
def test_alphanumeric_senders_of_3_to_11_characters_pass(sender: str) -> None:
    if sender.strip():
        assert textlocal_sender(sender) == sender


@given(st.from_regex(r"\+?[0-9]{3,13}", fullmatch=True))
def test_numeric_senders_of_up_to_13_digits_pass_without_plus(sender: str) -> None:
    assert textlocal_sender(sender) == sender.removeprefix("+")


@pytest.mark.parametrize("sender", ["ab", "TwelveLetter", "Ø-Shop", "12345678901234", "a_b"])
def test_other_senders_are_refused_with_the_rule(sender: str) -> None:
    with pytest.raises(PermanentError, match="3-11 letters"):
        textlocal_sender(sender)


def test_an_empty_sender_uses_the_account_default() -> None:
    assert textlocal_sender("  ") is None


# -- answers and errors -------------------------------------------------------------------------


async def test_refused_login_is_an_authentication_error(
    provider: TxtlocalProvider, fake: TxtlocalFake
) -> None:
    fake.fail_next(FailureMode.AUTH)

    error = error_of(await send_one(provider, outbound()))

    assert isinstance(error, AuthenticationError)
    assert error.code == "3"
    assert "API key" in error.message and "Invalid login details" in error.message


async def test_a_refused_number_fails_permanently_with_code_51(
    provider: TxtlocalProvider, fake: TxtlocalFake
) -> None:
    fake.refuse_number("+447700900123")

    result = await send_one(provider, outbound())

    error = error_of(result)
    assert isinstance(error, PermanentError)
    assert (error.code, result.raw_code) == ("51", "51")
    assert fake.messages == []


async def test_no_credits_keeps_the_message_queued(
    provider: TxtlocalProvider, fake: TxtlocalFake
) -> None:
    """Error 7 is temporary: the account can be topped up before the message expires."""
    fake.balance = 0

    error = error_of(await send_one(provider, outbound()))

    assert type(error) is TemporaryError
    assert error.code == "7" and "top it up" in error.message


async def test_a_wrong_base_url_path_is_temporary_with_a_hint(
    fake: TxtlocalFake, http: httpx.AsyncClient, tmp_path: Path
) -> None:
    """A base URL with an extra path gets Textlocal's 'unrecognised command' (code 2)."""
    provider = make_provider(
        http, tmp_path, {**fake.module_settings(), "base_url": fake.url + "/api2"}
    )

    error = error_of(await send_one(provider, outbound()))

    assert type(error) is TemporaryError
    assert error.code == "2" and "Base URL" in error.message


async def test_server_errors_and_timeouts_are_temporary(
    fake: TxtlocalFake, http: httpx.AsyncClient, tmp_path: Path
) -> None:
    provider = make_provider(http, tmp_path, {**fake.module_settings(), "timeout": 0.2})
    fake.fail_next(FailureMode.SERVER_ERROR)
    fake.fail_next(FailureMode.TIMEOUT)

    server_error = error_of(await send_one(provider, outbound()))
    timeout = error_of(await send_one(provider, outbound()))
    fake.release_held()

    assert type(server_error) is TemporaryError and server_error.code == "http-500"
    assert type(timeout) is TemporaryError and "did not answer" in timeout.message


async def test_throttling_is_rate_limited_with_retry_after(
    provider: TxtlocalProvider, fake: TxtlocalFake
) -> None:
    fake.fail_next(FailureMode.THROTTLE)

    error = error_of(await send_one(provider, outbound()))

    assert isinstance(error, RateLimitedError)
    assert error.retry_after == 1.0


def canned(status: int, body: str | dict[str, Any]) -> httpx.AsyncClient:
    """A client whose every request gets this answer: Textlocal answers the fake cannot make."""
    content = body if isinstance(body, str) else json.dumps(body)
    return httpx.AsyncClient(
        transport=httpx.MockTransport(lambda request: httpx.Response(status, text=content))
    )


def textlocal_failure(code: int, message: str = "Some reason") -> dict[str, Any]:
    return {"errors": [{"code": code, "message": message}], "status": "failure"}


@pytest.mark.parametrize(("code", "kind"), [(c, k) for c, (k, _) in ERRORS.items()])
async def test_every_documented_error_code_maps_to_its_class(
    code: int, kind: type[ProviderError], tmp_path: Path
) -> None:
    async with canned(200, textlocal_failure(code, "Documented text")) as http:
        provider = make_provider(http, tmp_path, {"api_key": "k"})
        error = error_of(await send_one(provider, outbound()))

    assert type(error) is kind
    assert error.code == str(code)
    assert "Documented text" in error.message


async def test_an_unknown_error_code_is_permanent_and_kept(tmp_path: Path) -> None:
    body = {"errors": [{"code": "999", "message": "Brand new"}], "status": "failure"}
    async with canned(400, body) as http:
        provider = make_provider(http, tmp_path, {"api_key": "k"})
        result = await send_one(provider, outbound())

    error = error_of(result)
    assert type(error) is PermanentError
    assert (error.code, result.raw_code) == ("999", "999")
    assert "Brand new" in error.message


@pytest.mark.parametrize(
    ("status", "body"),
    [(200, "<html>Maintenance</html>"), (404, "<h1>Not Found</h1>"), (200, "[1, 2]")],
)
async def test_an_answer_that_is_not_textlocal_json_is_temporary(
    status: int, body: str, tmp_path: Path
) -> None:
    async with canned(status, body) as http:
        provider = make_provider(http, tmp_path, {"api_key": "k"})
        error = error_of(await send_one(provider, outbound()))

    assert type(error) is TemporaryError
    assert error.code == f"http-{status}" and "Base URL" in error.message


async def test_success_with_only_a_warning_is_the_warnings_error(tmp_path: Path) -> None:
    """A 'success' that sent nothing but warns 'invalid number' is a refusal."""
    body = {
        "warnings": [{"code": 3, "message": "Invalid number"}],
        "messages": [],
        "status": "success",
    }
    async with canned(200, body) as http:
        provider = make_provider(http, tmp_path, {"api_key": "k"})
        error = error_of(await send_one(provider, outbound()))

    assert type(error) is PermanentError and error.code == "warning-3"
    assert "Invalid number" in error.message


async def test_success_with_numeric_ids_is_accepted(tmp_path: Path) -> None:
    body = {"messages": [{"id": 1151346216, "recipient": 447700900123}], "status": "success"}
    async with canned(200, body) as http:
        provider = make_provider(http, tmp_path, {"api_key": "k"})
        result = await send_one(provider, outbound())

    assert result.accepted and result.raw_code == "success:1151346216"


# -- callbacks ---------------------------------------------------------------------------------


async def captured(send: Any) -> CallbackRequest:
    """What the fake posts, as the webhook router would hand it to the module."""
    seen: list[httpx.Request] = []

    def keep(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200)

    async with httpx.AsyncClient(transport=httpx.MockTransport(keep)) as client:
        await send(client)
    [request] = seen
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    body = request.content
    return CallbackRequest(
        request.method,
        str(request.url),
        dict(request.headers),
        dict(request.url.params),
        body,
        dict(parse_qsl(body.decode(), keep_blank_values=True)),
    )


def receipt(**fields: str) -> CallbackRequest:
    return CallbackRequest("POST", STATUS_URL, {}, {}, b"", fields)


@pytest.mark.parametrize(
    ("delivered", "status"), [(True, Status.DELIVERED), (False, Status.UNDELIVERED)]
)
async def test_the_fakes_receipt_parses_to_a_report_for_our_message(
    provider: TxtlocalProvider, fake: TxtlocalFake, delivered: bool, status: Status
) -> None:
    await send_one(provider, outbound())
    [sms] = fake.messages

    callback = await captured(lambda client: fake.send_report(client, sms, delivered))

    assert urlsplit(callback.url).path == urlsplit(STATUS_URL).path
    [report] = provider.parse_status_callback(callback)
    assert (report.provider_message_id, report.status) == (MESSAGE_ID, status)
    assert report.raw_code == ("D" if delivered else "U")
    assert report.occurred_at is not None


@pytest.mark.parametrize("letter", sorted(REPORT_STATUSES))
def test_every_receipt_status_maps_and_keeps_its_letter(
    offline: TxtlocalProvider, letter: str
) -> None:
    callback = receipt(number="447700900123", status=letter, customID=MESSAGE_ID, datetime="")

    [report] = offline.parse_status_callback(callback)

    assert report.status is REPORT_STATUSES[letter][0]
    assert report.raw_code == letter and report.description
    assert report.occurred_at is None


def test_receipt_statuses_are_the_documented_ones() -> None:
    assert {k: v[0] for k, v in REPORT_STATUSES.items()} == {
        "D": Status.DELIVERED,
        "U": Status.UNDELIVERED,
        "I": Status.UNDELIVERED,
        "E": Status.EXPIRED,
        "?": Status.SENT,
        "P": Status.SENT,
    }


def test_a_receipt_in_the_query_string_is_read_too(offline: TxtlocalProvider) -> None:
    query = {"number": "447700900123", "status": "D", "customID": MESSAGE_ID}
    callback = CallbackRequest("GET", STATUS_URL, {}, query, b"")

    [report] = offline.parse_status_callback(callback)

    assert report.status is Status.DELIVERED


def test_the_receipt_datetime_is_read_as_utc(offline: TxtlocalProvider) -> None:
    callback = receipt(status="D", customID=MESSAGE_ID, datetime="2023-11-14 22:13:20")

    [report] = offline.parse_status_callback(callback)

    assert report.occurred_at == NOW


@pytest.mark.parametrize(
    "fields",
    [
        {},
        {"status": "D", "number": "447700900123"},
        {"status": "X", "customID": MESSAGE_ID},
        {"status": "", "customID": MESSAGE_ID},
    ],
)
def test_a_malformed_receipt_is_a_value_error(
    offline: TxtlocalProvider, fields: dict[str, str]
) -> None:
    with pytest.raises(ValueError, match="Textlocal receipt"):
        offline.parse_status_callback(receipt(**fields))


async def test_the_fakes_inbox_forward_parses_to_an_inbound_sms(
    provider: TxtlocalProvider, fake: TxtlocalFake
) -> None:
    fake.point_callbacks(STATUS_URL, f"{PUBLIC}/webhooks/txtlocal/inbound/s3cret")

    callback = await captured(
        lambda client: fake.send_inbound(client, "+447700900999", "+447860012345", "Yes please")
    )

    [sms] = provider.parse_inbound(callback)
    assert (sms.sender, sms.recipient, sms.text) == ("+447700900999", "+447860012345", "Yes please")
    assert sms.provider_message_id.startswith("tl-")


def forward(**changes: str) -> CallbackRequest:
    fields = {
        "inNumber": "447860012345",
        "sender": "447700900999",
        "keyword": "",
        "content": "Yes please",
        "comments": "Yes please",
        "email": "",
        "credits": "990",
    }
    return CallbackRequest("POST", PUBLIC, {}, {}, b"", {**fields, **changes})


def test_a_repeated_forward_gets_the_same_id_and_a_new_one_does_not(
    offline: TxtlocalProvider,
) -> None:
    """The derived id dedupes a forward sent twice, not a later identical reply."""
    [first] = offline.parse_inbound(forward())
    [again] = offline.parse_inbound(forward())
    [later] = offline.parse_inbound(forward(credits="985"))

    assert first.provider_message_id == again.provider_message_id
    assert later.provider_message_id != first.provider_message_id
    assert len(first.provider_message_id) <= 100


def test_a_keyword_inbox_keeps_the_full_content(offline: TxtlocalProvider) -> None:
    """content is the whole text; comments (without the keyword) is not what was sent."""
    [sms] = offline.parse_inbound(forward(keyword="PIZZA", content="PIZZA large", comments="large"))
    assert sms.text == "PIZZA large"


@pytest.mark.parametrize("missing", ["sender", "inNumber", "content"])
def test_an_incomplete_forward_is_a_value_error(offline: TxtlocalProvider, missing: str) -> None:
    request = forward()
    fields = {k: v for k, v in request.form.items() if k != missing}
    with pytest.raises(ValueError, match="inbox forward"):
        offline.parse_inbound(CallbackRequest("POST", PUBLIC, {}, {}, b"", fields))


@given(st.dictionaries(st.text(max_size=10), st.text(max_size=30), max_size=6))
def test_inbound_ids_are_deterministic_and_fit_the_column(fields: dict[str, str]) -> None:
    assert inbound_id(fields) == inbound_id(dict(reversed(list(fields.items()))))
    assert len(inbound_id(fields)) <= 100


def test_callbacks_are_answered_with_a_plain_200(offline: TxtlocalProvider) -> None:
    for kind in ("status", "inbound"):
        answer = offline.callback_answer(
            kind, CallbackRequest("POST", "http://x/", {}, {}, b""), []
        )
        assert (answer.status_code, answer.body) == (200, "")


# -- configuration ------------------------------------------------------------------------------


async def test_plugin_keys_fill_the_legacy_login(tmp_path: Path) -> None:
    """txtlocal_username / txtlocal_password set the fields; the password is masked."""
    async with running_service(tmp_path, dispatcher=False) as harness:
        await harness.configure(
            module="txtlocal",
            plugin_configuration="txtlocal_username = desk@example.com\ntxtlocal_password = s3cr3t",
        )
        shown = (await harness.get("/api/v1/settings")).json()
        stored = harness.service.settings.load().module_settings["txtlocal"]

    fields = shown["module_settings"]["txtlocal"]
    assert (fields["username"], fields["password"], fields["api_key"]) == (
        "desk@example.com",
        MASK,
        "",
    )
    assert "s3cr3t" not in json.dumps(shown)
    assert stored["password"].get_secret_value() == "s3cr3t"
