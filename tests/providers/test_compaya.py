"""The Compaya (CPSMS v2) module against its fake on loopback, and canned CPSMS answers."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from smsdesk.domain.ids import new_id
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
    TemporaryError,
)
from smsdesk.providers.compaya import (
    DLR_STATUSES,
    CompayaProvider,
    CompayaSettings,
)
from smsdesk.testing.fakes.compaya import API_KEY, INVALID_NUMBER, USERNAME, CompayaFake
from tests.support.harness import running_service

CALLBACK = "http://smsdesk.test/webhooks/compaya/status/s3cret"
NUMBER = "+4522334488"
# Parsing reports needs no HTTP; one instance serves the property tests.
PARSER = CompayaProvider(CompayaSettings(), httpx.AsyncClient(), ProviderContext(Path(".")))


def outbound(**changes: Any) -> OutboundSms:
    fields: dict[str, Any] = {
        "message_id": new_id(),
        "to": NUMBER,
        "sender": "Smsdesk",
        "text": "Hello from smsdesk",
        "encoding": "gsm7",
        "segments": 1,
        "priority": 2,
        "status_callback_url": CALLBACK,
        **changes,
    }
    return OutboundSms(**fields)


@pytest.fixture(scope="module")
def fake() -> Iterator[CompayaFake]:
    with CompayaFake() as running:
        yield running


@pytest.fixture
def clean_fake(fake: CompayaFake) -> CompayaFake:
    fake.reset()
    return fake


def make_provider(
    settings: dict[str, Any], tmp_path: Path, client: httpx.AsyncClient
) -> CompayaProvider:
    context = ProviderContext(data_dir=tmp_path, public_url="http://smsdesk.test")
    return CompayaProvider(CompayaSettings(**settings), client, context)


@pytest.fixture
async def provider(clean_fake: CompayaFake, tmp_path: Path) -> AsyncIterator[CompayaProvider]:
    async with httpx.AsyncClient() as client:
        yield make_provider(clean_fake.module_settings(), tmp_path, client)


async def outcome_of(provider: CompayaProvider, sms: OutboundSms) -> ProviderError | None:
    """The error a send ended in, whether returned per message or raised for the request."""
    try:
        [result] = await provider.send([sms])
    except ProviderError as exc:
        return exc
    return result.error


# -- the request ------------------------------------------------------------------------------


async def test_the_request_is_cpsms_json_with_basic_auth(
    provider: CompayaProvider, clean_fake: CompayaFake
) -> None:
    """POST /v2/send, Basic user:API key, number without '+', UTF-8, our id as reference."""
    sms = outbound()
    [result] = await provider.send([sms])

    [request] = clean_fake.send_requests()
    assert (request.method, request.path) == ("POST", "/v2/send")
    token = base64.b64encode(f"{USERNAME}:{API_KEY}".encode()).decode()
    assert request.headers["authorization"] == f"Basic {token}"
    assert request.json() == {
        "to": "4522334488",
        "message": "Hello from smsdesk",
        "from": "Smsdesk",
        "encoding": "UTF-8",
        "flash": 0,
        "reference": sms.message_id,
        "dlr_url": f"{CALLBACK}?ref={sms.message_id}",
    }
    assert result.accepted
    assert result.provider_message_id == sms.message_id
    assert result.raw_code == "200"


async def test_no_report_wanted_means_no_dlr_url(
    provider: CompayaProvider, clean_fake: CompayaFake
) -> None:
    """Without a delivery report (or without a callback URL) no dlr_url is sent."""
    await provider.send([outbound(delivery_report=False)])
    await provider.send([outbound(status_callback_url=None)])

    for request in clean_fake.send_requests():
        assert "dlr_url" not in request.json()
    assert [sms.report_requested for sms in clean_fake.messages] == [False, False]


async def test_a_callback_url_with_a_query_keeps_it(
    provider: CompayaProvider, clean_fake: CompayaFake
) -> None:
    """Our reference is added to a dlr_url that already has parameters."""
    sms = outbound(status_callback_url=f"{CALLBACK}?tenant=7")
    await provider.send([sms])

    dlr_url = clean_fake.send_requests()[0].json()["dlr_url"]
    assert dict(parse_qsl(urlsplit(dlr_url).query)) == {"tenant": "7", "ref": sms.message_id}


async def test_a_numeric_sender_goes_without_plus_and_an_empty_one_is_left_out(
    provider: CompayaProvider, clean_fake: CompayaFake
) -> None:
    """CPSMS takes a numeric sender as digits; no sender means the account's default."""
    await provider.send([outbound(sender="+4512345678")])
    await provider.send([outbound(sender="")])

    first, second = (r.json() for r in clean_fake.send_requests())
    assert first["from"] == "4512345678"
    assert "from" not in second


async def test_unicode_text_arrives_intact_as_utf8(
    provider: CompayaProvider, clean_fake: CompayaFake
) -> None:
    """A Cyrillic/CJK text is sent as UTF-8 and the provider sends it as Unicode."""
    text = "Привет! 你好 Ærø"
    [result] = await provider.send([outbound(text=text, encoding="ucs2")])

    assert result.accepted
    [sms] = clean_fake.sent_to(NUMBER)
    assert (sms.text, sms.unicode, sms.fields["encoding"]) == (text, True, "UTF-8")


async def test_more_than_ten_parts_is_refused_before_sending(
    provider: CompayaProvider, clean_fake: CompayaFake
) -> None:
    """CPSMS takes at most 1530 characters (10 parts); longer texts never leave."""
    [too_many_parts] = await provider.send([outbound(text="x" * 700, segments=11)])
    [too_many_chars] = await provider.send([outbound(text="x" * 1531, segments=10)])

    for result in (too_many_parts, too_many_chars):
        assert isinstance(result.error, PermanentError)
        assert result.raw_code == "too-long"
    assert clean_fake.send_requests() == []


# -- credentials --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("settings", "code", "hint"),
    [
        ({"username": "acme", "password": "legacy-pass"}, "no-api-key", "API key"),
        ({"username": "acme"}, "no-credentials", "missing"),
        ({"api_key": "k"}, "no-credentials", "missing"),
    ],
)
async def test_missing_api_key_is_explained_without_sending(
    clean_fake: CompayaFake, tmp_path: Path, settings: dict[str, Any], code: str, hint: str
) -> None:
    """Only the legacy password (or nothing) set: refused locally, saying what to enter."""
    async with httpx.AsyncClient() as client:
        provider = make_provider({**settings, "base_url": clean_fake.url}, tmp_path, client)
        error = await outcome_of(provider, outbound())

    assert isinstance(error, AuthenticationError)
    assert error.code == code
    assert hint in error.message
    assert clean_fake.send_requests() == []


async def test_a_wrong_api_key_is_an_authentication_error(
    clean_fake: CompayaFake, tmp_path: Path
) -> None:
    """CPSMS's 401 says to check the user name and API key, with CPSMS's own text."""
    settings = {**clean_fake.module_settings(), "api_key": "wrong"}
    async with httpx.AsyncClient() as client:
        error = await outcome_of(make_provider(settings, tmp_path, client), outbound())

    assert isinstance(error, AuthenticationError)
    assert error.code == "401"
    assert "credentials" in error.message and "API key" in error.message
    assert "Unauthorized" in error.message


# -- answers from the fake ----------------------------------------------------------------------


async def test_a_refused_number_fails_with_cpsmss_reason(
    provider: CompayaProvider, clean_fake: CompayaFake
) -> None:
    """The per-recipient error becomes a permanent failure with CPSMS's code and text."""
    clean_fake.refuse_number(NUMBER)
    [result] = await provider.send([outbound()])

    assert isinstance(result.error, PermanentError)
    assert result.raw_code == "400"
    assert INVALID_NUMBER in result.error.message
    assert clean_fake.messages == []


async def test_a_number_of_the_wrong_length_is_refused(provider: CompayaProvider) -> None:
    """A number CPSMS cannot place is a permanent failure."""
    [result] = await provider.send([outbound(to="+4522")])
    assert isinstance(result.error, PermanentError)
    assert result.error.code == "400"


# -- every documented answer (canned, at the network boundary) ---------------------------------


def canned(status: int, body: Any, headers: dict[str, str] | None = None) -> httpx.MockTransport:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, content=content, headers=headers)

    return httpx.MockTransport(handler)


def error_body(code: int, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


def mine(code: int, message: str) -> dict[str, Any]:
    return {"error": [{"to": "4522334488", "errorCode": code, "errMsg": message}]}


ANSWERS: list[tuple[int, Any, type[ProviderError], str, str]] = [
    (400, error_body(400, "message is required"), PermanentError, "400", "message is required"),
    (400, mine(400, INVALID_NUMBER), PermanentError, "400", INVALID_NUMBER),
    (400, {"error": [{"to": "+45 22334488", "errorCode": 400, "errMsg": "Bad number"}]},
     PermanentError, "400", "Bad number"),
    (401, error_body(401, "Unauthorized"), AuthenticationError, "401", "credentials"),
    (402, error_body(402, "Not enough credit"), AuthenticationError, "402", "credit"),
    (403, error_body(403, "IP validation failed"), AuthenticationError, "403", "IP address"),
    (404, b"<html>Not Found</html>", AuthenticationError, "404", "base URL"),
    (406, error_body(406, "Not acceptable"), PermanentError, "406", "Not acceptable"),
    (409, error_body(409, "Conflict"), PermanentError, "409", "Conflict"),
    (418, b"teapot", PermanentError, "418", "teapot"),
    (500, error_body(500, "Internal Server Error"), TemporaryError, "http-500", "500"),
    (503, b"", TemporaryError, "http-503", "503"),
    (200, error_body(400, "Phone number should be a number"), PermanentError, "400", "number"),
    (207, {"success": [{"to": "4511111111", "cost": 1}], **mine(400, "bad")}, PermanentError,
     "400", "bad"),
    (200, {"error": {"errorCode": 402, "errMsg": "No credit"}}, AuthenticationError, "402", ""),
    (200, b"OK", TemporaryError, "http-200", "not its JSON answer"),
    (200, {}, TemporaryError, "http-200", "without an entry"),
]  # fmt: skip


@pytest.mark.parametrize(("status", "body", "kind", "code", "text"), ANSWERS)
async def test_every_cpsms_answer_maps_to_an_error_class(
    tmp_path: Path, status: int, body: Any, kind: type[ProviderError], code: str, text: str
) -> None:
    """Each documented status (and error body shape) is classified, keeping CPSMS's code."""
    async with httpx.AsyncClient(transport=canned(status, body)) as client:
        provider = make_provider({"username": "u", "api_key": "k"}, tmp_path, client)
        error = await outcome_of(provider, outbound())

    assert type(error) is kind
    assert error.code == code
    assert text in error.message


async def test_throttling_keeps_retry_after(tmp_path: Path) -> None:
    """A 429 (not documented by CPSMS) waits as long as Retry-After says."""
    transport = canned(429, error_body(429, "Too Many Requests"), {"Retry-After": "7"})
    async with httpx.AsyncClient(transport=transport) as client:
        provider = make_provider({"username": "u", "api_key": "k"}, tmp_path, client)
        error = await outcome_of(provider, outbound())

    assert isinstance(error, RateLimitedError)
    assert error.retry_after == 7


@pytest.mark.parametrize(
    "success",
    [
        [{"to": "4522334488", "cost": 1}],
        [[{"to": "4522334488", "price": "1", "countryCode": "1"}]],
        {"to": "4522334488", "cost": 1},
        [{"to": "+45 22 33 44 88", "cost": 1}],
    ],
)
async def test_flat_and_nested_success_lists_are_accepted(tmp_path: Path, success: Any) -> None:
    """The documented success shapes (flat, nested as in the older page, the number written
    otherwise) all count: the one recipient of the request was accepted."""
    async with httpx.AsyncClient(transport=canned(200, {"success": success})) as client:
        provider = make_provider({"username": "u", "api_key": "k"}, tmp_path, client)
        sms = outbound()
        [result] = await provider.send([sms])

    assert result.accepted
    assert result.provider_message_id == sms.message_id


# -- delivery reports ---------------------------------------------------------------------------


def report(url: str, method: str = "POST", form: dict[str, str] | None = None) -> CallbackRequest:
    query = dict(parse_qsl(urlsplit(url).query))
    body = "&".join(f"{k}={v}" for k, v in (form or {}).items()).encode()
    return CallbackRequest(method, url, {}, query, body, form or {})


def dlr(provider: CompayaProvider, sms: OutboundSms) -> str:
    url = provider.payload(sms)["dlr_url"]
    assert isinstance(url, str)
    return url


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ("1", Status.DELIVERED),
        ("2", Status.UNDELIVERED),
        ("3", Status.SENT),
        ("4", Status.UNDELIVERED),
        ("8", Status.UNDELIVERED),
    ],
)
async def test_every_dlr_status_is_mapped(
    provider: CompayaProvider, status: str, expected: Status
) -> None:
    """The v2 status table (and the legacy 8), keeping the raw status and receiver."""
    sms = outbound()
    [parsed] = provider.parse_status_callback(
        report(f"{dlr(provider, sms)}&status={status}&receiver=4522334488")
    )

    assert parsed.provider_message_id == sms.message_id
    assert (parsed.status, parsed.raw_code) == (expected, status)
    assert DLR_STATUSES[status][1] in parsed.description
    assert "4522334488" in parsed.description


async def test_a_naively_appended_query_is_read_too(provider: CompayaProvider) -> None:
    """If CPSMS appends '?status=…' to a URL that has a query, the report still matches."""
    sms = outbound()
    url = f"{dlr(provider, sms)}?status=1&receiver=4522334488"
    [parsed] = provider.parse_status_callback(report(url, "GET"))

    assert (parsed.provider_message_id, parsed.status) == (sms.message_id, Status.DELIVERED)


async def test_a_form_posted_report_is_read(provider: CompayaProvider) -> None:
    """Parameters in a form body count as well as in the query."""
    sms = outbound()
    request = report(dlr(provider, sms), form={"status": "2", "receiver": "4522334488"})
    [parsed] = provider.parse_status_callback(request)

    assert (parsed.provider_message_id, parsed.status) == (sms.message_id, Status.UNDELIVERED)


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        (f"{CALLBACK}?ref=01HZX&receiver=4522334488", "status"),
        (f"{CALLBACK}?status=1&receiver=4522334488", "ref"),
        (f"{CALLBACK}?ref=01HZX&status=9", "Unknown"),
        (f"{CALLBACK}?ref=not%20an%20id&status=1", "ref"),
        (CALLBACK, "status"),
    ],
)
def test_a_malformed_report_is_a_value_error(
    provider: CompayaProvider, url: str, problem: str
) -> None:
    """Missing status, missing or bad reference, unknown status: ValueError, never a crash."""
    with pytest.raises(ValueError, match=problem):
        provider.parse_status_callback(report(url))


async def test_garbage_posted_to_the_callback_is_refused(provider: CompayaProvider) -> None:
    """A JSON garbage body on the dlr_url (with our ref) is malformed, not a report."""
    url = dlr(provider, outbound())
    request = CallbackRequest("POST", url, {"content-type": "application/json"}, {}, b"\x00no")
    with pytest.raises(ValueError, match="status"):
        provider.parse_status_callback(request)


@given(query=st.text(max_size=80))
def test_any_query_is_parsed_or_refused_with_value_error(query: str) -> None:
    """Whatever arrives on the report URL, the parser answers a report or a ValueError."""
    request = CallbackRequest("GET", f"{CALLBACK}?{query}", {}, {}, b"")
    try:
        reports = PARSER.parse_status_callback(request)
    except ValueError:
        return
    assert len(reports) == 1


@given(message_id=st.text("0123456789ABCDEFGHJKMNPQRSTVWXYZ", min_size=26, max_size=26))
def test_the_reference_survives_the_round_trip(message_id: str) -> None:
    """Any message id put in the dlr_url comes back from the appended report."""
    url = dlr(PARSER, outbound(message_id=message_id))
    for joiner in ("&", "?"):
        [parsed] = PARSER.parse_status_callback(report(f"{url}{joiner}status=1&receiver=45"))
        assert parsed.provider_message_id == message_id


async def test_the_fakes_report_is_read_by_the_module(
    provider: CompayaProvider, clean_fake: CompayaFake
) -> None:
    """What the fake POSTs to the dlr_url is what the module parses, for each outcome."""
    sms = outbound()
    await provider.send([sms])
    [sent] = clean_fake.sent_to(NUMBER)
    captured: list[httpx.Request] = []

    def capture(request: httpx.Request) -> httpx.Response:
        captured.append(request)
        return httpx.Response(200)

    async with httpx.AsyncClient(transport=httpx.MockTransport(capture)) as client:
        await clean_fake.send_report(client, sent, True)
        await clean_fake.send_report(client, sent, False)
        await clean_fake.send_status(client, sent, "3")

    statuses = []
    for request in captured:
        url = str(request.url)
        callback = report(url, request.method)
        [parsed] = provider.parse_status_callback(callback)
        assert parsed.provider_message_id == sms.message_id
        statuses.append(parsed.status)
    assert statuses == [Status.DELIVERED, Status.UNDELIVERED, Status.SENT]


def test_the_callback_answer_is_an_empty_200(provider: CompayaProvider) -> None:
    """CPSMS only needs a 200."""
    answer = provider.callback_answer(
        "status", CallbackRequest("POST", "http://x/", {}, {}, b""), []
    )
    assert (answer.status_code, answer.body) == (200, "")


def test_inbound_is_not_offered(provider: CompayaProvider) -> None:
    """CPSMS forwards no inbound SMS; a call to that URL is refused as malformed."""
    with pytest.raises(ValueError):
        provider.parse_inbound(report(CALLBACK))


# -- configuration -------------------------------------------------------------------------------


async def test_plugin_keys_fill_the_settings_and_the_password_is_masked(tmp_path: Path) -> None:
    """compaya_username / compaya_password from the original product set the module fields."""
    plugin = "compaya_username = acme\ncompaya_password = legacy-p@ss"
    async with running_service(tmp_path, dispatcher=False) as harness:
        await harness.configure(
            module="compaya",
            plugin_configuration=plugin,
            module_settings={"compaya": {"api_key": "the-v2-key"}},
        )
        shown = (await harness.get("/api/v1/settings")).json()
        stored = harness.service.settings.load().module_settings["compaya"]

    fields = shown["module_settings"]["compaya"]
    assert (fields["username"], fields["password"], fields["api_key"]) == ("acme", MASK, MASK)
    assert "legacy-p@ss" not in shown["plugin_configuration"]
    assert stored["password"].get_secret_value() == "legacy-p@ss"
    assert stored["api_key"].get_secret_value() == "the-v2-key"


# -- status queries: the log, once every 2 minutes -------------------------------------------


async def test_a_status_query_reads_the_log_for_final_statuses(
    provider: CompayaProvider, clean_fake: CompayaFake
) -> None:
    """Delivered and failed messages come back by our reference; others and strangers do not."""
    sent = [outbound() for _ in range(3)]
    for sms in sent:
        assert (await provider.send([sms]))[0].accepted
    delivered, failed, waiting = (clean_fake.find(s.message_id) for s in sent)
    clean_fake.lose_report(delivered, delivered=True)
    clean_fake.lose_report(failed, delivered=False)

    reports = await provider.query_status([s.message_id for s in sent] + [new_id()])

    assert sorted((r.provider_message_id, r.status, r.raw_code) for r in reports) == sorted(
        [
            (delivered.provider_id, Status.DELIVERED, "1"),
            (failed.provider_id, Status.UNDELIVERED, "2"),
        ]
    )
    [log_request] = clean_fake.log_requests()
    start, end = (int(part) for part in log_request.path.split("/")[-2:])
    assert end - start == 8 * 24 * 3600 + 3600
    assert waiting.delivered is None


async def test_the_log_is_not_read_twice_within_two_minutes(
    provider: CompayaProvider, clean_fake: CompayaFake
) -> None:
    """The second query is refused before it reaches CPSMS, saying how long to wait."""
    await provider.query_status(["01ABC"])
    with pytest.raises(RateLimitedError) as refused:
        await provider.query_status(["01ABC"])
    assert refused.value.retry_after is not None and 100 < refused.value.retry_after <= 120
    assert len(clean_fake.log_requests()) == 1


async def test_a_refused_log_request_is_the_usual_error(
    clean_fake: CompayaFake, tmp_path: Path
) -> None:
    """Wrong credentials on the log: an authentication error, as for sending."""
    settings = {**clean_fake.module_settings(), "api_key": "wrong"}
    async with httpx.AsyncClient() as client:
        with pytest.raises(AuthenticationError):
            await make_provider(settings, tmp_path, client).query_status(["01ABC"])
