"""The Intelecom (Puzzel) modules against the gateway's fake on loopback."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from smsdesk.domain.message import Status
from smsdesk.domain.sms import OutboundSms
from smsdesk.outbox.accept import module_defaults
from smsdesk.providers.base import (
    AuthenticationError,
    CallbackRequest,
    PermanentError,
    ProviderContext,
    RateLimitedError,
    TemporaryError,
)
from smsdesk.providers.intelecom import (
    WEB_SERVICE_OFF,
    IntelecomProvider,
    IntelecomSettings,
    OriginalIntelecomProvider,
    OriginalIntelecomSettings,
    to_e164,
    validity_code,
    validity_seconds,
)
from smsdesk.sms_configuration import module_settings
from smsdesk.testing.fakes import FailureMode
from smsdesk.testing.fakes.intelecom import IntelecomFake, _xml
from tests.support.harness import Harness, running_service

TO = "+31612345678"


@pytest.fixture(scope="module")
def running_fake() -> Iterator[IntelecomFake]:
    with IntelecomFake() as running:
        yield running


@pytest.fixture
def fake(running_fake: IntelecomFake) -> IntelecomFake:
    running_fake.reset()
    return running_fake


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


def context(tmp_path: Path) -> ProviderContext:
    return ProviderContext(data_dir=tmp_path, public_url="http://smsdesk.test")


def make_provider(
    fake: IntelecomFake, http: httpx.AsyncClient, tmp_path: Path, **changes: Any
) -> IntelecomProvider:
    settings = IntelecomSettings(**{**fake.module_settings(), **changes})
    return IntelecomProvider(settings, http, context(tmp_path))


@pytest.fixture
def provider(fake: IntelecomFake, http: httpx.AsyncClient, tmp_path: Path) -> IntelecomProvider:
    return make_provider(fake, http, tmp_path)


@pytest.fixture
def parser(http: httpx.AsyncClient, tmp_path: Path) -> IntelecomProvider:
    """A module for reading callbacks: no gateway needed."""
    return IntelecomProvider(IntelecomSettings(), http, context(tmp_path))


def outbound(message_id: str = "m1", **changes: Any) -> OutboundSms:
    fields: dict[str, Any] = {
        "message_id": message_id,
        "to": TO,
        "sender": "Smsdesk",
        "text": "Hello",
        "encoding": "gsm7",
        "segments": 1,
        "priority": 2,
        "expires_at": None,
        "status_callback_url": "http://smsdesk.test/webhooks/intelecom/status/s",
    }
    return OutboundSms(**{**fields, **changes})


def sent_message(fake: IntelecomFake, index: int = 0) -> dict[str, Any]:
    message: dict[str, Any] = fake.send_requests()[-1].json()["message"][index]
    return message


def callback(body: bytes = b"", query: dict[str, str] | None = None) -> CallbackRequest:
    method = "POST" if body else "GET"
    return CallbackRequest(method, "http://smsdesk.test/cb", {}, query or {}, body)


def dr(**fields: Any) -> dict[str, Any]:
    return {"messageid": "7a0000000001", "statuscode": 0, "type": 6, **fields}


# -- the request ------------------------------------------------------------------------------


async def test_a_send_posts_the_documented_json(
    fake: IntelecomFake, provider: IntelecomProvider
) -> None:
    """Credentials, +E.164 recipient, our id as clientReference, priority, validity, sender."""
    [result] = await provider.send([outbound(expires_at=time.time() + 48 * 3600 + 30)])

    [request] = fake.send_requests()
    assert request.headers["accept"] == "application/json"
    assert request.headers["content-type"].startswith("application/json")
    body = request.json()
    assert (body["serviceId"], body["username"], body["password"]) == (
        4711,
        "smsdesk",
        "fake-puzzel-password",
    )
    assert body["batchReference"]
    [message] = body["message"]
    assert message["recipient"] == TO
    assert message["content"] == "Hello"
    assert message["price"] == 0
    assert message["clientReference"] == "m1"
    assert message["settings"] == {
        "priority": 2,
        "validity": 168,
        "originatorSettings": {"originator": "Smsdesk", "originatorType": "ALPHANUMERIC"},
    }
    [sms] = fake.messages
    assert result.accepted and result.provider_message_id == sms.provider_id
    assert result.raw_code == "1"
    assert sms.report_requested and not sms.unicode


@pytest.mark.parametrize(("ours", "theirs"), [(1, "3"), (2, "2"), (3, "1")])
async def test_priority_is_turned_around(
    fake: IntelecomFake, provider: IntelecomProvider, ours: int, theirs: str
) -> None:
    """Our 1 is the fastest; the gateway's 3 is the highest."""
    await provider.send([outbound(priority=ours)])
    assert fake.messages[0].priority == theirs


async def test_unicode_text_asks_for_auto_detected_encoding(
    fake: IntelecomFake, provider: IntelecomProvider
) -> None:
    """Without autoDetectEncoding the gateway refuses non-GSM characters."""
    await provider.send([outbound(text="Привет ✓", encoding="ucs2")])
    assert sent_message(fake)["settings"]["autoDetectEncoding"] is True
    assert fake.messages[0].unicode and fake.messages[0].text == "Привет ✓"


async def test_no_report_wanted_skips_the_customer_report(
    fake: IntelecomFake, http: httpx.AsyncClient, tmp_path: Path
) -> None:
    """Either the message or the module saying no adds skip_customer_report_delivery."""
    quiet_module = make_provider(fake, http, tmp_path, delivery_report=False)
    loud_module = make_provider(fake, http, tmp_path)
    await loud_module.send([outbound("a", delivery_report=False, status_callback_url=None)])
    await quiet_module.send([outbound("b")])
    await loud_module.send([outbound("c")])

    skip = [{"key": "skip_customer_report_delivery", "value": "true"}]
    assert [r.json()["message"][0]["settings"].get("parameter") for r in fake.send_requests()] == [
        skip,
        skip,
        None,
    ]
    assert [sms.report_requested for sms in fake.messages] == [False, False, True]


@pytest.mark.parametrize(
    ("sender", "originator"),
    [
        ("Smsdesk", {"originator": "Smsdesk", "originatorType": "ALPHANUMERIC"}),
        ("1960", {"originator": "1960", "originatorType": "NETWORK"}),
        ("4799999999", {"originator": "+4799999999", "originatorType": "INTERNATIONAL"}),
    ],
)
async def test_the_originator_type_follows_the_sender(
    fake: IntelecomFake, provider: IntelecomProvider, sender: str, originator: dict[str, str]
) -> None:
    await provider.send([outbound(sender=sender)])
    assert sent_message(fake)["settings"]["originatorSettings"] == originator
    assert fake.messages[0].sender == originator["originator"]


async def test_a_sender_the_gateway_refuses_fails_only_its_message(
    fake: IntelecomFake, provider: IntelecomProvider
) -> None:
    """'_' is not an allowed originator character; the rest of the batch still goes."""
    bad, good = await provider.send([outbound("a", sender="Sms_desk"), outbound("b")])
    assert isinstance(bad.error, PermanentError) and bad.error.code == "sender"
    assert "Sms_desk" in bad.error.message
    assert good.accepted
    assert [m["clientReference"] for m in fake.send_requests()[0].json()["message"]] == ["b"]


async def test_more_than_six_parts_is_refused_before_sending(
    fake: IntelecomFake, provider: IntelecomProvider
) -> None:
    [result] = await provider.send([outbound(text="x" * 1000, segments=7)])
    assert isinstance(result.error, PermanentError)
    assert "at most 6" in result.error.message and result.raw_code == "too-long"
    assert fake.send_requests() == []


async def test_sessions_ask_for_a_new_session_and_keep_only_short_numbers(
    fake: IntelecomFake, http: httpx.AsyncClient, tmp_path: Path
) -> None:
    """A session needs the service's short number: a name as sender is left to the gateway."""
    sessions = make_provider(fake, http, tmp_path, sms_session=True, differentiator="support")
    await sessions.send([outbound("a"), outbound("b", sender="1960")])
    named, short = fake.send_requests()[0].json()["message"]
    assert named["settings"]["newSession"] is True
    assert "originatorSettings" not in named["settings"]
    assert short["settings"]["originatorSettings"]["originatorType"] == "NETWORK"
    assert short["settings"]["differentiator"] == "support"


async def test_a_batch_is_one_request_with_results_in_order(
    fake: IntelecomFake, provider: IntelecomProvider
) -> None:
    batch = [outbound(f"m{i}", to=f"+3161234567{i}") for i in range(4)]
    results = await provider.send(batch)
    assert len(fake.send_requests()) == 1
    assert [r.message_id for r in results] == ["m0", "m1", "m2", "m3"]
    assert [r.provider_message_id for r in results] == [
        fake.sent_to(f"+3161234567{i}")[0].provider_id for i in range(4)
    ]


@given(st.floats(min_value=0, max_value=30 * 86400))
def test_validity_is_the_longest_period_that_ends_in_time(seconds: float) -> None:
    code = validity_code(seconds)
    assert 0 <= code <= 173
    fitting = [c for c in range(174) if validity_seconds(c) <= seconds]
    if fitting:
        assert validity_seconds(code) == max(validity_seconds(c) for c in fitting)
    else:
        assert code == 0  # under five minutes: the shortest the gateway has


def test_validity_codes_match_the_documented_table() -> None:
    assert [validity_seconds(c) for c in (0, 143, 144, 167, 168, 173)] == [
        300,
        12 * 3600,
        12 * 3600 + 1800,
        24 * 3600,
        2 * 86400,
        7 * 86400,
    ]


# -- answers ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "error_class", "words"),
    [
        (2, AuthenticationError, "Password"),
        (3, AuthenticationError, "Service ID 4711"),
        (4, AuthenticationError, "Service ID 4711"),
        (5, PermanentError, "SYNTAX_ERROR"),
        (6, TemporaryError, "internal error"),
        (99, TemporaryError, "does not know"),
    ],
)
async def test_each_refusal_status_maps_to_an_error(
    fake: IntelecomFake,
    provider: IntelecomProvider,
    code: int,
    error_class: type[Exception],
    words: str,
) -> None:
    fake.answer_next(code)
    [result] = await provider.send([outbound()])
    assert type(result.error) is error_class
    assert result.error is not None and result.error.code == str(code)
    assert result.raw_code == str(code)
    assert words in result.error.message


@pytest.mark.parametrize(("code", "with_id"), [(24, True), (25, True), (25, False)])
async def test_held_and_duplicate_messages_count_as_accepted(
    fake: IntelecomFake, provider: IntelecomProvider, code: int, with_id: bool
) -> None:
    """The gateway has them already: sending again would make a second copy."""
    fake.answer_next(code, with_message_id=with_id)
    [result] = await provider.send([outbound()])
    assert result.accepted and result.raw_code == str(code)
    assert (result.provider_message_id is not None) is with_id


async def test_the_spam_filter_holds_a_message_as_accepted(
    fake: IntelecomFake, provider: IntelecomProvider
) -> None:
    fake.quota_per_number = 1
    first, second = await provider.send([outbound("a"), outbound("b")])
    assert (first.raw_code, second.raw_code) == ("1", "24")
    assert second.accepted and second.provider_message_id


async def test_wrong_credentials_and_service_are_configuration_errors(
    fake: IntelecomFake, http: httpx.AsyncClient, tmp_path: Path
) -> None:
    [wrong_password] = await make_provider(fake, http, tmp_path, password="nope").send([outbound()])
    [wrong_service] = await make_provider(fake, http, tmp_path, service_id="99").send([outbound()])
    assert isinstance(wrong_password.error, AuthenticationError)
    assert wrong_password.raw_code == "2"
    assert isinstance(wrong_service.error, AuthenticationError)
    assert wrong_service.raw_code == "4" and "Service ID 99" in wrong_service.error.message
    assert fake.messages == []


async def test_missing_credentials_are_named_without_asking_the_gateway(
    fake: IntelecomFake, http: httpx.AsyncClient, tmp_path: Path
) -> None:
    incomplete = make_provider(fake, http, tmp_path, service_id="", password="")
    with pytest.raises(AuthenticationError, match="Service ID, Password"):
        await incomplete.send([outbound()])
    assert fake.send_requests() == []


async def test_failure_modes_map_to_retryable_errors(
    fake: IntelecomFake, http: httpx.AsyncClient, tmp_path: Path
) -> None:
    provider = make_provider(fake, http, tmp_path, timeout=1.0)
    fake.fail_next(FailureMode.SERVER_ERROR)
    fake.fail_next(FailureMode.THROTTLE)
    fake.fail_next(FailureMode.TIMEOUT)
    [server] = await provider.send([outbound()])
    [throttled] = await provider.send([outbound()])
    [slow] = await provider.send([outbound()])
    fake.release_held()
    assert isinstance(server.error, TemporaryError) and server.raw_code == "http-500"
    assert isinstance(throttled.error, RateLimitedError) and throttled.error.retry_after == 1
    assert isinstance(slow.error, TemporaryError) and "did not answer" in slow.error.message
    assert fake.messages == []


async def test_a_partly_refused_batch_keeps_the_accepted_ones(
    fake: IntelecomFake, provider: IntelecomProvider
) -> None:
    fake.fail_next(FailureMode.PARTIAL)
    refused, *accepted = await provider.send([outbound(f"m{i}") for i in range(3)])
    assert isinstance(refused.error, PermanentError) and refused.raw_code == "5"
    assert "Invalid recipient" in refused.error.message
    assert all(r.accepted for r in accepted) and len(fake.messages) == 2


async def test_an_xml_reply_is_read_too(tmp_path: Path) -> None:
    """The gateway answers XML when it ignores Accept; the statuses are the same."""
    xml = (
        '<?xml version="1.0"?><ns2:response xmlns:ns2="urn:x"><messageStatus>'
        "<statusCode>1</statusCode><clientReference>m1</clientReference>"
        "<messageId>760081j04w00</messageId><sequenceIndex>1</sequenceIndex>"
        "</messageStatus></ns2:response>"
    )
    transport = httpx.MockTransport(lambda request: httpx.Response(200, text=xml))
    async with httpx.AsyncClient(transport=transport) as client:
        settings = IntelecomSettings(service_id="1", username="u", password="p")
        [result] = await IntelecomProvider(settings, client, context(tmp_path)).send([outbound()])
    assert result.provider_message_id == "760081j04w00"


@pytest.mark.parametrize(
    ("status", "error_class"),
    [(404, AuthenticationError), (400, PermanentError), (418, TemporaryError)],
)
async def test_an_answer_without_statuses_is_judged_by_its_http_status(
    tmp_path: Path, status: int, error_class: type[Exception]
) -> None:
    transport = httpx.MockTransport(lambda request: httpx.Response(status, text="<html>no</html>"))
    async with httpx.AsyncClient(transport=transport) as client:
        settings = IntelecomSettings(service_id="1", username="u", password="p")
        [result] = await IntelecomProvider(settings, client, context(tmp_path)).send([outbound()])
    assert type(result.error) is error_class and result.raw_code == f"http-{status}"


# -- delivery reports -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "status"),
    [
        (0, Status.DELIVERED),
        (390, Status.DELIVERED),
        (361, Status.EXPIRED),
        (362, Status.EXPIRED),
        *[
            (c, Status.UNDELIVERED)
            for c in (350, 351, 354, 355, 356, 357, 358, 359, 360, 363, 364, 368, 369, 370)
        ],
        *[(c, Status.UNDELIVERED) for c in (371, 380, 385, 386, 650, 651, 652, 653, 654, 655)],
    ],
)
def test_every_report_code_maps_to_a_status(
    parser: IntelecomProvider, code: int, status: Status
) -> None:
    body = json.dumps({"dr": [dr(statuscode=code)]}).encode()
    [report] = parser.parse_status_callback(callback(body))
    assert report.status is status and report.raw_code == str(code)


def test_a_batched_json_report_keeps_the_gateways_texts(parser: IntelecomProvider) -> None:
    body = {
        "dr": [
            dr(statusdescription="OK", extstatuscode="0", extstatusdescription="Delivered"),
            dr(messageid="7a0000000002", statuscode=351, statusdescription="Unknown recipient"),
        ]
    }
    first, second = parser.parse_status_callback(callback(json.dumps(body).encode()))
    assert (first.provider_message_id, first.status) == ("7a0000000001", Status.DELIVERED)
    assert first.description == "OK (operator code 0: Delivered)"
    assert (second.provider_message_id, second.status) == ("7a0000000002", Status.UNDELIVERED)
    assert second.description == "Unknown recipient"


def test_xml_and_get_reports_are_read(parser: IntelecomProvider) -> None:
    xml = _xml("dr", [dr(messageid="a1"), dr(messageid="a2", statuscode=361)])
    query = {"messageid": "g1", "statuscode": "654", "customerMessageReference": "m1", "type": "6"}
    assert [
        (r.provider_message_id, r.status) for r in parser.parse_status_callback(callback(xml))
    ] == [
        ("a1", Status.DELIVERED),
        ("a2", Status.EXPIRED),
    ]
    [report] = parser.parse_status_callback(callback(query=query))
    assert (report.provider_message_id, report.status, report.raw_code) == (
        "g1",
        Status.UNDELIVERED,
        "654",
    )


@pytest.mark.parametrize(
    "request_",
    [
        callback(b"\x00not a report"),
        callback(b"{"),
        callback(b'{"mo": []}'),
        callback(b'{"dr": [1]}'),
        callback(json.dumps({"dr": [{"statuscode": 0}]}).encode()),
        callback(json.dumps({"dr": [dr(statuscode="ok")]}).encode()),
        callback(json.dumps({"dr": [dr(type=1)]}).encode()),
        callback(b"<dr><message>"),
        callback(b"<mo><message><messageid>x</messageid></message></mo>"),
        callback(),
    ],
)
def test_a_malformed_report_is_a_value_error(
    parser: IntelecomProvider, request_: CallbackRequest
) -> None:
    with pytest.raises(ValueError, match=r"Intelecom|Callback type"):
        parser.parse_status_callback(request_)


def test_callbacks_are_answered_with_a_bare_200(parser: IntelecomProvider) -> None:
    for kind in ("status", "inbound"):
        answer = parser.callback_answer(kind, CallbackRequest("POST", "http://x/", {}, {}, b""), [])
        assert (answer.status_code, answer.body) == (200, "")


# -- inbound ----------------------------------------------------------------------------------


def mo(**fields: Any) -> dict[str, Any]:
    return {
        "messageid": "7b0000000001",
        "sno": "1960",
        "originator": "+4799999999",
        "content": "Kodeord Hello",
        "strippedcontent": "Hello",
        "timestamp": "20140206 11:45:33",
        **fields,
    }


def test_a_batched_json_inbound_is_read(parser: IntelecomProvider) -> None:
    body = json.dumps({"mo": [mo(), mo(messageid="7b0000000002", sno="4759444444")]}).encode()
    first, second = parser.parse_inbound(callback(body))
    assert (first.sender, first.recipient, first.text) == ("+4799999999", "1960", "Kodeord Hello")
    assert second.recipient == "+4759444444"
    oslo = datetime(2014, 2, 6, 11, 45, 33, tzinfo=ZoneInfo("Europe/Oslo"))
    assert first.received_at == oslo.timestamp()


def test_xml_and_get_inbound_are_read(parser: IntelecomProvider) -> None:
    [from_xml] = parser.parse_inbound(callback(_xml("mo", [mo(originator="004799999999")])))
    [from_get] = parser.parse_inbound(callback(query={k: str(v) for k, v in mo().items()}))
    assert from_xml.sender == from_get.sender == "+4799999999"
    assert from_xml.provider_message_id == "7b0000000001"


@given(st.from_regex(r"[1-9][0-9]{6,14}", fullmatch=True))
def test_every_spelling_of_a_number_becomes_e164(digits: str) -> None:
    assert to_e164(digits) == to_e164("00" + digits) == to_e164("+" + digits) == "+" + digits


def test_an_alphanumeric_originator_is_kept_for_the_pipeline_to_judge(
    parser: IntelecomProvider,
) -> None:
    """Refusing it would make the gateway resend the whole batch, good SMS included."""
    [sms] = parser.parse_inbound(callback(json.dumps({"mo": [mo(originator="Alice")]}).encode()))
    assert sms.sender == "Alice"


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        json.dumps({"mo": [{"originator": "+4799999999", "content": "x"}]}).encode(),
        json.dumps({"mo": [{"messageid": "1", "originator": "+4799999999"}]}).encode(),
        json.dumps({"dr": [dr()]}).encode(),
    ],
)
def test_a_malformed_inbound_is_a_value_error(parser: IntelecomProvider, body: bytes) -> None:
    with pytest.raises(ValueError):
        parser.parse_inbound(callback(body))


# -- settings ---------------------------------------------------------------------------------


def test_legacy_negative_flags_become_our_fields() -> None:
    """intele_noStatusReport / intele_NoSmsSession are the inverse of our fields."""
    settings = IntelecomSettings.model_validate({"no_status_report": "True", "no_sms_session": "0"})
    assert settings.delivery_report is False and settings.sms_session is True
    assert "no_status_report" not in settings.model_dump()
    blank = IntelecomSettings.model_validate({"no_status_report": "", "no_sms_session": ""})
    assert blank.delivery_report is True and blank.sms_session is False


async def test_plugin_keys_fill_the_fields_and_the_effective_report_choice(
    tmp_path: Path,
) -> None:
    """Through the configuration API; accepting a message sees 'no delivery report'."""
    plugin = "\n".join(
        [
            "intele_serviceId = 4711",
            "intele_username = acme",
            "intele_password = secret",
            "intele_noStatusReport = true",
            "intele_NoSmsSession = false",
        ]
    )
    async with running_service(tmp_path, dispatcher=False) as harness:
        await harness.configure(module="intelecom", plugin_configuration=plugin)
        config = harness.service.settings.load()
        settings = module_settings(config, "intelecom")
        assert isinstance(settings, IntelecomSettings)
        assert (settings.service_id, settings.username) == ("4711", "acme")
        assert settings.delivery_report is False and settings.sms_session is True
        assert module_defaults(config, "intelecom").delivery_report is False

        bad = await harness.put(
            "/api/v1/settings", {"plugin_configuration": "intele_noStatusReport = maybe"}
        )
        assert bad.status_code == 422
        assert "intele_noStatusReport must be true or false" in bad.text


# -- Original Intelecom -----------------------------------------------------------------------


def original(fake: IntelecomFake, http: httpx.AsyncClient, tmp_path: Path, **changes: Any) -> Any:
    fields = {**fake.module_settings(), "sms_endpoint": "SUPPORT", **changes}
    return OriginalIntelecomProvider(OriginalIntelecomSettings(**fields), http, context(tmp_path))


def test_the_original_screen_shows_only_the_seed_fields() -> None:
    """base_url and timeout exist for pointing at another gateway but are not on the screen."""
    assert list(OriginalIntelecomSettings.model_json_schema()["properties"]) == [
        "sms_endpoint",
        "use_web_service",
        "delivery_report",
        "service_id",
        "username",
        "password",
        "sms_priority",
    ]


async def test_original_with_web_service_sends_through_the_same_gateway(
    fake: IntelecomFake, http: httpx.AsyncClient, tmp_path: Path
) -> None:
    provider = original(fake, http, tmp_path, delivery_report=False)
    [result] = await provider.send([outbound(priority=1)])
    assert result.accepted
    body = fake.send_requests()[0].json()
    assert (body["serviceId"], body["username"]) == (4711, "smsdesk")
    [sms] = fake.messages
    assert sms.priority == "3" and not sms.report_requested


async def test_original_without_web_service_keeps_messages_queued(
    fake: IntelecomFake, http: httpx.AsyncClient, tmp_path: Path
) -> None:
    provider = original(fake, http, tmp_path, use_web_service=False)
    results = await provider.send([outbound("a"), outbound("b")])
    for result in results:
        assert isinstance(result.error, AuthenticationError)
        assert result.error.message == WEB_SERVICE_OFF
    assert fake.send_requests() == []


async def configure_original(harness: Harness, fake: IntelecomFake, **fields: Any) -> None:
    secret = harness.service.settings.callback_secret()
    base = f"{harness.service.public_url}/webhooks/original_intelecom"
    fake.point_callbacks(f"{base}/status/{secret}", f"{base}/inbound/{secret}")
    await harness.configure(
        module="original_intelecom",
        sender="Smsdesk",
        module_settings={"original_intelecom": {**fake.module_settings(), **fields}},
        limits={"original_intelecom": {"rate_limit": 0, "concurrency": 4}},
    )
    await harness.idle_scans(2)  # the dispatcher picks up the new settings


async def test_original_through_the_service_reports_only_what_was_asked(
    fake: IntelecomFake, tmp_path: Path
) -> None:
    """Report off: none is requested and the message stays sent; on: it becomes delivered."""
    async with running_service(tmp_path, listen=True) as harness:
        await configure_original(harness, fake, delivery_report=False, sms_priority=1)
        quiet = await harness.post("/api/v1/messages", {"to": TO, "text": "No report"})
        quiet_id = quiet.json()["id"]
        await harness.wait_for(quiet_id, "sent")
        await configure_original(harness, fake, delivery_report=True, sms_priority=3)
        loud = await harness.post("/api/v1/messages", {"to": TO, "text": "Report please"})
        loud_id = loud.json()["id"]
        await harness.wait_for(loud_id, "sent")

        answer = await fake.deliver_reports(harness.client)
        assert answer is not None and answer.status_code == 200
        await harness.wait_for(loud_id, "delivered")
        await harness.idle_scans(2)
        assert (await harness.get(f"/api/v1/messages/{quiet_id}")).json()["status"] == "sent"
    first, second = fake.messages
    assert (first.report_requested, first.priority) == (False, "3")
    assert (second.report_requested, second.priority) == (True, "1")


async def test_original_without_web_service_through_the_service(
    fake: IntelecomFake, tmp_path: Path
) -> None:
    async with running_service(tmp_path, listen=True) as harness:
        await configure_original(harness, fake, use_web_service=False)
        accepted = await harness.post("/api/v1/messages", {"to": TO, "text": "By e-mail?"})
        message_id = accepted.json()["id"]
        deadline = time.monotonic() + 10
        while True:
            body = (await harness.get(f"/api/v1/messages/{message_id}")).json()
            if body["attempts"] >= 1 and body["error"]:
                break
            assert time.monotonic() < deadline, body
            await harness.idle_scans(1)
    assert body["status"] == "queued" and body["attempts"] >= 1
    assert "Use web service is off" in body["error"]
    assert fake.send_requests() == []
