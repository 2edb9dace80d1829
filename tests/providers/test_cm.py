"""The CM.com module against its fake on loopback, and against CM's documented answers."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import SecretStr, ValidationError

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
from smsdesk.providers.cm import (
    CmProvider,
    CmSettings,
    parse_inbound_message,
    parse_status_report,
)
from smsdesk.testing.fakes import FailureMode
from smsdesk.testing.fakes.cm import CmFake
from tests.support.harness import running_service

TO = "+31612345678"
TOKEN = "5f0c9d2e-8b1a-4c7e-9f3d-2a6b8c4e1d70"


@pytest.fixture(scope="module")
def server() -> Iterator[CmFake]:
    with CmFake() as started:
        yield started


@pytest.fixture
def fake(server: CmFake) -> CmFake:
    """The module's fake, clean for each test."""
    server.reset()
    return server


@pytest.fixture
async def make_provider(fake: CmFake, tmp_path: Path) -> AsyncIterator[Callable[..., CmProvider]]:
    """Providers pointed at the fake, with any settings changed."""
    async with httpx.AsyncClient() as client:

        def build(**changes: Any) -> CmProvider:
            settings = CmSettings(**{**fake.module_settings(), **changes})
            context = ProviderContext(data_dir=tmp_path, public_url="http://desk.example")
            return CmProvider(settings, client, context)

        yield build


@pytest.fixture
def provider(make_provider: Callable[..., CmProvider]) -> CmProvider:
    return make_provider()


@pytest.fixture
def parser() -> CmProvider:
    """A provider for reading callbacks; no fake server needed."""
    return answering(200, {"errorCode": 0})


def sms(to: str = TO, text: str = "Hello", **fields: Any) -> OutboundSms:
    values: dict[str, Any] = {
        "message_id": new_id(),
        "to": to,
        "sender": "Smsdesk",
        "text": text,
        "encoding": "gsm7",
        "segments": 1,
        "priority": 2,
        **fields,
    }
    return OutboundSms(**values)


def answering(status: int, body: Any, seen: list[httpx.Request] | None = None) -> CmProvider:
    """A provider whose network answers every request with `body` (CM's answer shapes)."""

    def handler(request: httpx.Request) -> httpx.Response:
        if seen is not None:
            seen.append(request)
        if isinstance(body, str):
            return httpx.Response(status, text=body)
        return httpx.Response(status, json=body)

    client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    settings = CmSettings(product_token=SecretStr(TOKEN))
    return CmProvider(settings, client, ProviderContext(data_dir=Path(".")))


def callback(body: bytes | str, content_type: str = "application/json") -> CallbackRequest:
    data = body.encode() if isinstance(body, str) else body
    return CallbackRequest("POST", "http://desk/cb", {"content-type": content_type}, {}, data)


# -- the request -------------------------------------------------------------------------------


async def test_the_request_carries_cms_fields_in_cms_formats(
    fake: CmFake, provider: CmProvider
) -> None:
    """One POST to /v1.0/message: token in the body, 00 number, our id as reference, validity."""
    expires = time.time() + 3600
    message = sms(expires_at=expires)
    [result] = await provider.send([message])

    [request] = fake.send_requests()
    assert request.method == "POST" and request.path == "/v1.0/message"
    assert request.headers["content-type"].startswith("application/json")
    assert "x-cm-producttoken" not in request.headers
    body = request.json()["messages"]
    assert body["authentication"] == {"producttoken": TOKEN}
    assert body["msg"] == [
        {
            "from": "Smsdesk",
            "to": [{"number": "0031612345678"}],
            "body": {"type": "auto", "content": "Hello"},
            "reference": message.message_id,
            "allowedChannels": ["SMS"],
            "minimumNumberOfMessageParts": 1,
            "maximumNumberOfMessageParts": 8,
            "validity": time.strftime("%Y-%m-%d %H:%M:%S GMT", time.gmtime(expires)),
        }
    ]
    assert result.accepted and result.provider_message_id == message.message_id
    assert result.raw_code == "0"
    [recorded] = fake.sent_to(TO)
    assert (recorded.sender, recorded.text, recorded.reference) == (
        "Smsdesk",
        "Hello",
        message.message_id,
    )


async def test_no_validity_without_an_expiry_and_no_report_switch(
    fake: CmFake, provider: CmProvider
) -> None:
    """CM has no per-message report flag or callback URL, so neither is sent."""
    await provider.send([sms(delivery_report=False, status_callback_url="http://desk/cb")])

    [item] = fake.send_requests()[0].json()["messages"]["msg"]
    assert "validity" not in item
    assert not any("report" in key.lower() or "callback" in key.lower() for key in item)


async def test_unicode_is_left_to_cms_auto_detection(fake: CmFake, provider: CmProvider) -> None:
    """Body type 'auto' makes CM send UCS-2; the text travels as UTF-8 JSON, intact."""
    text = "Привет ✓ 你好 😀"
    await provider.send([sms(text=text, encoding="ucs2")])

    [item] = fake.send_requests()[0].json()["messages"]["msg"]
    assert item["body"] == {"type": "auto", "content": text}
    [recorded] = fake.sent_to(TO)
    assert recorded.unicode and recorded.text == text


@pytest.mark.parametrize(
    ("sender", "sent_as"),
    [("Smsdesk", "Smsdesk"), ("+4790000000", "004790000000"), ("1234", "1234")],
)
async def test_senders_are_sent_the_way_cm_reads_them(
    fake: CmFake, provider: CmProvider, sender: str, sent_as: str
) -> None:
    """Names as they are; an international number written with + goes as 00…"""
    await provider.send([sms(sender=sender)])

    assert fake.send_requests()[0].json()["messages"]["msg"][0]["from"] == sent_as


async def test_a_batch_is_one_request_and_each_id_is_our_reference(
    fake: CmFake, provider: CmProvider
) -> None:
    batch = [sms(to=f"+3161234567{i}", text=f"Batch {i}") for i in range(3)]
    results = await provider.send(batch)

    assert len(fake.send_requests()) == 1
    assert [r.provider_message_id for r in results] == [m.message_id for m in batch]
    assert [fake.find(m.message_id).text for m in batch] == ["Batch 0", "Batch 1", "Batch 2"]
    assert CmProvider.max_batch == 100


async def test_more_parts_than_allowed_is_refused_before_sending(
    fake: CmFake, make_provider: Callable[..., CmProvider]
) -> None:
    """A message longer than 'Maximum SMS parts' fails for good; the rest of the batch goes."""
    provider = make_provider(max_parts=2)
    long_one, short_one = sms(segments=3), sms(to="+31612345679")
    too_long, sent = await provider.send([long_one, short_one])

    assert isinstance(too_long.error, PermanentError) and too_long.error.code == "too-many-parts"
    assert "Maximum SMS parts" in too_long.error.message
    assert sent.accepted
    [item] = fake.send_requests()[0].json()["messages"]["msg"]
    assert item["maximumNumberOfMessageParts"] == 2


async def test_without_a_product_token_nothing_is_sent(
    fake: CmFake, make_provider: Callable[..., CmProvider]
) -> None:
    """Legacy credentials alone cannot send: the admin is told to set the product token."""
    provider = make_provider(
        product_token="", customer_id="4711", username="acme", password="secret"
    )
    with pytest.raises(AuthenticationError) as raised:
        await provider.send([sms()])

    assert "product token" in raised.value.message and "legacy" in raised.value.message
    assert fake.send_requests() == []


@pytest.mark.parametrize(
    ("base_url", "url"),
    [
        ("", "https://gw.messaging.cm.com/v1.0/message"),
        ("https://gw.cmtelecom.co.za/", "https://gw.cmtelecom.co.za/v1.0/message"),
        ("https://gw-uk.cmtelecom.com/v1.0/message", "https://gw-uk.cmtelecom.com/v1.0/message"),
    ],
)
def test_the_send_url_defaults_to_cms_production_host(base_url: str, url: str) -> None:
    settings = CmSettings(product_token=SecretStr(TOKEN), base_url=base_url)
    provider = CmProvider(settings, httpx.AsyncClient(), ProviderContext(data_dir=Path(".")))
    assert provider.send_url == url


def test_settings_refuse_what_cm_would_never_accept() -> None:
    """A product token is a UUID; CM sends at most 8 parts."""
    with pytest.raises(ValidationError, match="product token looks like"):
        CmSettings(product_token=SecretStr("not-a-token"))
    with pytest.raises(ValidationError):
        CmSettings(max_parts=9)
    assert (
        CmSettings(product_token=SecretStr(f" {TOKEN} ")).product_token.get_secret_value() == TOKEN
    )


async def test_the_legacy_plugin_keys_fill_the_module_fields(tmp_path: Path) -> None:
    """cm_serviceId/cm_username/cm_password are accepted and stored; the password is masked."""
    plugin = "cm_serviceId = 4711\ncm_username = acme\ncm_password = p@ss"
    async with running_service(tmp_path, dispatcher=False) as harness:
        await harness.configure(
            module="cm",
            plugin_configuration=plugin,
            module_settings={"cm": {"product_token": TOKEN}},
        )
        shown = (await harness.get("/api/v1/settings")).json()

    fields = shown["module_settings"]["cm"]
    assert (fields["customer_id"], fields["username"], fields["password"]) == ("4711", "acme", MASK)
    assert fields["product_token"] == MASK
    assert "p@ss" not in shown["plugin_configuration"]


# -- CM's answers ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "error_class", "code"),
    [
        (FailureMode.AUTH, AuthenticationError, "101"),
        (FailureMode.SERVER_ERROR, TemporaryError, "http-500"),
        (FailureMode.THROTTLE, RateLimitedError, "http-429"),
    ],
)
async def test_the_fakes_failures_map_to_our_errors(
    fake: CmFake,
    provider: CmProvider,
    mode: FailureMode,
    error_class: type[ProviderError],
    code: str,
) -> None:
    fake.fail_next(mode)
    with pytest.raises(error_class) as raised:
        await provider.send([sms()])

    assert raised.value.code == code
    if isinstance(raised.value, AuthenticationError):
        assert "product token" in raised.value.message
    if isinstance(raised.value, RateLimitedError):
        assert raised.value.retry_after == 1
    assert fake.messages == []


async def test_a_timeout_is_temporary(
    fake: CmFake, make_provider: Callable[..., CmProvider]
) -> None:
    fake.fail_next(FailureMode.TIMEOUT)
    with pytest.raises(TemporaryError, match="did not answer"):
        await make_provider(timeout=1.0).send([sms()])
    fake.release_held()


async def test_a_partly_refused_batch_keeps_the_accepted_ones(
    fake: CmFake, provider: CmProvider
) -> None:
    """errorCode 201: the first is Rejected with 303 (a permanent refusal), the rest accepted."""
    fake.fail_next(FailureMode.PARTIAL)
    batch = [sms(to=f"+3161234560{i}") for i in range(3)]
    refused, *accepted = await provider.send(batch)

    assert isinstance(refused.error, PermanentError)
    assert refused.error.code == "303" and refused.raw_code == "303"
    assert "number is invalid" in refused.error.message
    assert all(r.accepted for r in accepted)
    assert sorted(s.to for s in fake.messages) == ["+31612345601", "+31612345602"]


async def test_refusals_by_the_fake_name_cms_code(fake: CmFake, provider: CmProvider) -> None:
    """A refused number is 303, a bad sender 301, an empty body 304: all permanent."""
    fake.refuse_number("+31687654321")
    results = await provider.send(
        [sms(to="+31687654321"), sms(sender="Acme & Co"), sms(text=""), sms()]
    )

    assert [r.raw_code for r in results] == ["303", "301", "304", "0"]
    assert all(isinstance(r.error, PermanentError) for r in results[:3])


ALL_REFUSED_CODES = [
    (101, AuthenticationError),
    (102, AuthenticationError),
    (103, AuthenticationError),
    (202, PermanentError),
    (203, PermanentError),
    (301, PermanentError),
    (302, PermanentError),
    (303, PermanentError),
    (304, PermanentError),
    (305, PermanentError),
    (401, PermanentError),
    (402, PermanentError),
    (403, PermanentError),
    (500, TemporaryError),
    (999, TemporaryError),
]


@pytest.mark.parametrize(("code", "error_class"), ALL_REFUSED_CODES)
async def test_each_request_level_code_fails_every_message_alike(
    code: int, error_class: type[ProviderError]
) -> None:
    """A 400 without per-message information applies its errorCode to the whole batch."""
    answer = {"details": f"CM text {code}", "errorCode": code, "messages": []}
    with pytest.raises(error_class) as raised:
        await answering(400, answer).send([sms(), sms(to="+31612345679")])

    assert type(raised.value) is error_class
    assert raised.value.code == str(code) and f"CM text {code}" in raised.value.message


@pytest.mark.parametrize(("code", "error_class"), ALL_REFUSED_CODES)
async def test_each_per_message_code_maps_to_our_error(
    code: int, error_class: type[ProviderError]
) -> None:
    """errorCode 201: each Rejected entry's messageErrorCode decides; Accepted ones are sent."""
    batch = [sms(), sms(to="+31612345679")]
    answer = {
        "details": "Not all messages were sent",
        "errorCode": 201,
        "messages": [
            {
                "to": "0031612345679",
                "status": "Accepted",
                "reference": batch[1].message_id,
                "parts": 1,
                "messageDetails": None,
                "messageErrorCode": 0,
            },
            {
                "to": "0031612345678",
                "status": "Rejected",
                "reference": batch[0].message_id,
                "parts": 0,
                "messageDetails": "why not",
                "messageErrorCode": code,
            },
        ],
    }
    refused, accepted = await answering(200, answer).send(batch)

    assert isinstance(refused.error, error_class) and type(refused.error) is error_class
    assert refused.error.code == str(code) and "why not" in refused.error.message
    assert accepted.accepted and accepted.provider_message_id == batch[1].message_id


async def test_an_all_refused_batch_with_entries_uses_each_entry() -> None:
    """CM answers 400 when nothing was sent, but still lists each message's own reason."""
    batch = [sms(), sms(to="+31612345679")]
    entries = [
        {"to": "0031612345678", "status": "Rejected", "messageErrorCode": 303},
        {"to": "0031612345679", "status": "Rejected", "messageErrorCode": 402},
    ]
    answer = {"details": "x", "errorCode": 303, "messages": entries}
    results = await answering(400, answer).send(batch)

    assert [r.raw_code for r in results] == ["303", "402"]


async def test_answers_without_references_match_by_order() -> None:
    batch = [sms(), sms()]
    entries = [
        {"status": "Rejected", "messageErrorCode": 304},
        {"status": "Accepted", "messageErrorCode": 0},
    ]
    results = await answering(200, {"errorCode": 201, "messages": entries}).send(batch)

    assert [r.raw_code for r in results] == ["304", "0"]


async def test_a_message_cm_does_not_mention_is_tried_again() -> None:
    batch = [sms(), sms(to="+31612345679")]
    entries = [{"to": "0031612345678", "status": "Accepted", "messageErrorCode": 0}]
    first, second = await answering(200, {"errorCode": 201, "messages": entries}).send(batch)

    assert first.accepted
    assert isinstance(second.error, TemporaryError)


@pytest.mark.parametrize(
    ("status", "body", "error_class"),
    [
        (200, "<html>proxy</html>", TemporaryError),
        (404, "Not Found", TemporaryError),
        (200, {"unexpected": True}, TemporaryError),
        (200, {"details": "?", "errorCode": 777, "messages": []}, PermanentError),
        (401, "Unauthorized", AuthenticationError),
        (503, "busy", TemporaryError),
    ],
)
async def test_answers_that_are_not_cms_reply(
    status: int, body: Any, error_class: type[ProviderError]
) -> None:
    with pytest.raises(error_class):
        await answering(status, body).send([sms()])


# -- status reports ----------------------------------------------------------------------------


def json_report(reference: str, code: Any, **status: Any) -> dict[str, Any]:
    return {
        "received": "2024-05-01T10:00:00",
        "to": "0031612345678",
        "reference": reference,
        "status": {"code": code, "errorCode": "0", "errorDescription": "", **status},
        "operator": "20416",
    }


@pytest.mark.parametrize(
    ("code", "status"),
    [
        ("0", Status.SENT),
        ("1", Status.UNDELIVERED),
        ("2", Status.DELIVERED),
        ("3", Status.UNDELIVERED),
        ("4", Status.DELIVERED),
        (2, Status.DELIVERED),
    ],
)
def test_every_report_status_maps_to_ours(parser: CmProvider, code: Any, status: Status) -> None:
    body = json.dumps({"messages": {"msg": json_report("REF1", code, errorCode="12")}})
    [report] = parser.parse_status_callback(callback(body))

    assert report.provider_message_id == "REF1"
    assert report.status is status
    assert report.raw_code == f"{code}:12"
    assert report.description
    assert report.occurred_at == 1714557600.0


def test_a_json_report_list_gives_one_report_each(parser: CmProvider) -> None:
    items = [json_report("A", "2"), json_report("B", "3", errorDescription="Absent subscriber")]
    reports = parser.parse_status_callback(callback(json.dumps({"messages": {"msg": items}})))

    assert [(r.provider_message_id, r.status) for r in reports] == [
        ("A", Status.DELIVERED),
        ("B", Status.UNDELIVERED),
    ]
    assert reports[1].description == "Absent subscriber"


def test_an_xml_report_with_several_messages(parser: CmProvider) -> None:
    body = (
        "<MESSAGES>"
        '<MSG RECEIVED="2024-05-01T10:00:00"><TO>0031612345678</TO><REFERENCE>A</REFERENCE>'
        "<STATUS><CODE>2</CODE><ERRORCODE></ERRORCODE><ERRORDESCRIPTION/></STATUS>"
        "<OPERATOR>20416</OPERATOR></MSG>"
        "<MSG><TO>0031612345679</TO><REFERENCE>B</REFERENCE>"
        "<STATUS><CODE>1</CODE><ERRORCODE>9</ERRORCODE>"
        "<ERRORDESCRIPTION>Rejected by operator</ERRORDESCRIPTION></STATUS></MSG>"
        "</MESSAGES>"
    )
    first, second = parser.parse_status_callback(callback(body, "text/xml"))

    assert (first.provider_message_id, first.status, first.raw_code) == ("A", Status.DELIVERED, "2")
    assert first.description == "delivered" and first.occurred_at == 1714557600.0
    assert (second.status, second.raw_code, second.description) == (
        Status.UNDELIVERED,
        "1:9",
        "Rejected by operator",
    )
    assert second.occurred_at is None


def test_reports_without_our_reference_are_skipped(parser: CmProvider) -> None:
    """A message sent outside smsdesk has no reference: nothing to update, still answered 200."""
    body = json.dumps({"messages": {"msg": [json_report("", "2"), json_report("A", "2")]}})
    assert [r.provider_message_id for r in parser.parse_status_callback(callback(body))] == ["A"]


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"\x00not a report",
        b"{}",
        b'{"messages": {}}',
        b'{"messages": {"msg": ["x"]}}',
        b'{"messages": {"msg": {"reference": "A"}}}',
        json.dumps({"messages": {"msg": json_report("A", "7")}}).encode(),
        b"<MESSAGES><MSG>",
        b"<OTHER/>",
        b"<MESSAGES><MSG><REFERENCE>A</REFERENCE></MSG></MESSAGES>",
        b'<!DOCTYPE x [<!ENTITY a "b">]><MESSAGES/>',
    ],
)
def test_malformed_reports_are_value_errors(parser: CmProvider, body: bytes) -> None:
    with pytest.raises(ValueError):
        parser.parse_status_callback(callback(body))


@pytest.mark.parametrize("report_format", ["json", "xml"])
@pytest.mark.parametrize(
    ("delivered", "status"), [(True, Status.DELIVERED), (False, Status.UNDELIVERED)]
)
async def test_the_fakes_reports_parse_back_to_the_message(
    fake: CmFake,
    provider: CmProvider,
    report_format: str,
    delivered: bool,
    status: Status,
) -> None:
    """What the fake posts (either format) names the message by the id the send returned."""
    [sent] = await provider.send([sms()])
    fake.report_format = report_format  # type: ignore[assignment]
    fake.point_callbacks("http://desk/webhooks/cm/status/secret", None)
    captured: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        captured.append(request)
        return httpx.Response(200)

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        await fake.send_report(client, fake.sent_to(TO)[0], delivered)
    [request] = captured
    [report] = provider.parse_status_callback(
        callback(request.content, request.headers["content-type"])
    )
    assert report.provider_message_id == sent.provider_message_id
    assert report.status is status


def test_the_callback_answer_is_an_empty_200(parser: CmProvider) -> None:
    for kind in ("status", "inbound"):
        answer = parser.callback_answer(kind, CallbackRequest("POST", "http://x/", {}, {}, b""), [])
        assert (answer.status_code, answer.body) == (200, "")


# -- inbound -----------------------------------------------------------------------------------


def inbound(sender: str = "0031611122233", recipient: str = "3197010000000", **extra: Any) -> bytes:
    body = {
        "from": {"number": sender, "name": "Jan"},
        "to": {"number": recipient},
        "message": {"text": "Yes, tomorrow is fine", "media": {}, "custom": {}},
        "reference": None,
        "groupings": ["", "", ""],
        "timeUtc": "2024-05-01T10:00:00",
        "channel": "SMS",
        **extra,
    }
    return json.dumps(body).encode()


@pytest.mark.parametrize(
    ("sender", "expected"),
    [
        ("0031611122233", "+31611122233"),
        ("+31611122233", "+31611122233"),
        ("31611122233", "+31611122233"),
    ],
)
def test_an_inbound_sms_is_read_with_numbers_in_e164(
    parser: CmProvider, sender: str, expected: str
) -> None:
    [message] = parser.parse_inbound(callback(inbound(sender)))

    assert (message.sender, message.recipient) == (expected, "+3197010000000")
    assert message.text == "Yes, tomorrow is fine"
    assert message.received_at == 1714557600.0
    assert message.provider_message_id.startswith("cm-mo-")


def test_a_short_code_recipient_is_kept_as_it_is(parser: CmProvider) -> None:
    [message] = parser.parse_inbound(callback(inbound(recipient="3010")))
    assert message.recipient == "3010"


def test_the_inbound_id_is_stable_for_cms_retries_and_differs_per_message() -> None:
    """CM retries every 5 minutes until answered 200: the same post must be stored once."""
    first = parse_inbound_message(callback(inbound()))[0].provider_message_id
    again = parse_inbound_message(callback(inbound()))[0].provider_message_id
    other = parse_inbound_message(callback(inbound(timeUtc="2024-05-01T10:00:01")))
    assert first == again != other[0].provider_message_id


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"not json",
        b"[]",
        b'{"from": {"number": "0031611122233"}}',
        b'{"from": "x", "to": {}}',
        json.dumps(
            {"from": {"number": "1"}, "to": {"number": "2"}, "message": {"text": 5}}
        ).encode(),
    ],
)
def test_malformed_inbound_is_a_value_error(parser: CmProvider, body: bytes) -> None:
    with pytest.raises(ValueError):
        parser.parse_inbound(callback(body))


# -- properties over wide inputs ---------------------------------------------------------------


@given(st.text(min_size=1, max_size=200))
async def test_any_text_is_sent_exactly_as_given(text: str) -> None:
    seen: list[httpx.Request] = []
    answer = {"details": "Created 1 message(s)", "errorCode": 0, "messages": []}
    [result] = await answering(200, answer, seen).send([sms(text=text)])

    assert result.accepted
    assert json.loads(seen[0].content)["messages"]["msg"][0]["body"]["content"] == text


@given(st.binary(max_size=300))
def test_the_status_report_parser_fails_only_with_value_error(body: bytes) -> None:
    """Whatever arrives, the router gets reports or a ValueError (a 400), never a crash."""
    with contextlib.suppress(ValueError):
        parse_status_report(callback(body))
