"""The LINK Mobility module against its fake (loopback) and against canned LINK answers."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from smsdesk.domain.message import Status
from smsdesk.domain.sms import OutboundSms
from smsdesk.providers.base import (
    AuthenticationError,
    CallbackRequest,
    PermanentError,
    ProviderContext,
    RateLimitedError,
    TemporaryError,
)
from smsdesk.providers.linkmobility import (
    DEFAULT_VALIDITY_MS,
    LinkMobilityProvider,
    LinkMobilitySettings,
)
from smsdesk.testing.fakes import FailureMode
from smsdesk.testing.fakes.linkmobility import LinkMobilityFake
from tests.support.harness import running_service

TO = "+4791234567"


def sms(message_id: str = "msg-1", **fields: Any) -> OutboundSms:
    values: dict[str, Any] = {
        "message_id": message_id,
        "to": TO,
        "sender": "Smsdesk",
        "text": "Hello",
        "encoding": "gsm7",
        "segments": 1,
        "priority": 2,
    }
    return OutboundSms(**{**values, **fields})


@pytest.fixture(scope="module")
def fake() -> Iterator[LinkMobilityFake]:
    with LinkMobilityFake() as running:
        yield running


@pytest.fixture
def clean_fake(fake: LinkMobilityFake) -> LinkMobilityFake:
    """The shared fake with nothing recorded or queued."""
    fake.reset()
    return fake


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


def provider_for(
    fake: LinkMobilityFake, http: httpx.AsyncClient, tmp_path: Path, **changes: Any
) -> LinkMobilityProvider:
    settings = LinkMobilitySettings(**{**fake.module_settings(), **changes})
    return LinkMobilityProvider(settings, http, ProviderContext(tmp_path, public_url="http://x"))


@pytest.fixture
def provider(
    clean_fake: LinkMobilityFake, http: httpx.AsyncClient, tmp_path: Path
) -> LinkMobilityProvider:
    return provider_for(clean_fake, http, tmp_path, delivery_report_gates="gate1, gate2")


def last_body(fake: LinkMobilityFake) -> dict[str, Any]:
    body: dict[str, Any] = fake.send_requests()[-1].json()
    return body


# --- the request ------------------------------------------------------------------------------


async def test_one_message_goes_to_send_with_every_field(
    provider: LinkMobilityProvider, clean_fake: LinkMobilityFake
) -> None:
    """A single SMS is a JSON POST to /send with Basic auth, our id as refId and a reply asked."""
    [result] = await provider.send([sms(expires_at=time.time() + 3600)])

    request = clean_fake.send_requests()[-1]
    assert request.path == "/send"
    assert request.headers["content-type"] == "application/json"
    user, password = "smsdesk-link", "link-secret-pw"
    expected_auth = base64.b64encode(f"{user}:{password}".encode()).decode()
    assert request.headers["authorization"] == f"Basic {expected_auth}"
    body = request.json()
    assert body == {
        "source": "Smsdesk",
        "sourceTON": "ALPHANUMERIC",
        "destination": TO,
        "userData": "Hello",
        "dcs": "TEXT",
        "refId": "msg-1",
        "priority": "NORMAL",
        "platformId": "COMMON_API",
        "platformPartnerId": "4711",
        "useDeliveryReport": True,
        "deliveryReportGates": ["gate1", "gate2"],
        "relativeValidityTime": body["relativeValidityTime"],
        "ignoreResponse": False,
    }
    assert 3_540_000 <= body["relativeValidityTime"] <= 3_600_000
    [recorded] = clean_fake.messages
    assert result.accepted
    assert result.provider_message_id == recorded.provider_id
    assert result.raw_code == "1005"
    assert recorded.reference == "msg-1"


@pytest.mark.parametrize(
    ("sender", "source", "ton"),
    [
        ("Smsdesk", "Smsdesk", "ALPHANUMERIC"),
        ("4791234567", "+4791234567", "MSISDN"),
        ("+4791234567", "+4791234567", "MSISDN"),
        ("2270", "2270", "SHORTNUMBER"),
    ],
)
async def test_the_sender_type_follows_the_sender(
    provider: LinkMobilityProvider,
    clean_fake: LinkMobilityFake,
    sender: str,
    source: str,
    ton: str,
) -> None:
    """Names go as ALPHANUMERIC, long numbers as +MSISDN, short codes as SHORTNUMBER."""
    [result] = await provider.send([sms(sender=sender)])

    assert result.accepted, result.error
    body = last_body(clean_fake)
    assert (body["source"], body["sourceTON"]) == (source, ton)


@pytest.mark.parametrize("sender", ["My Shop", "1Shop", "Shop&Co", "X"])
async def test_a_sender_link_refuses_fails_before_any_request(
    provider: LinkMobilityProvider, clean_fake: LinkMobilityFake, sender: str
) -> None:
    """LINK takes 2-11 letters/digits starting with a letter; others fail with the fix."""
    [result] = await provider.send([sms(sender=sender)])

    assert isinstance(result.error, PermanentError)
    assert "sender" in result.error.message
    assert clean_fake.send_requests() == []


@pytest.mark.parametrize(("priority", "value"), [(1, "HIGH"), (2, "NORMAL"), (3, "LOW")])
async def test_priority_maps_to_links_names(
    provider: LinkMobilityProvider, clean_fake: LinkMobilityFake, priority: int, value: str
) -> None:
    """Our priority 1/2/3 is LINK's HIGH/NORMAL/LOW."""
    await provider.send([sms(priority=priority)])

    assert last_body(clean_fake)["priority"] == value
    assert clean_fake.messages[-1].priority == value


@pytest.mark.parametrize(
    ("expires_in", "expected"),
    [
        (None, DEFAULT_VALIDITY_MS),
        (3600.5, 3_600_000),
        (10, 60_000),
        (7 * 86400, DEFAULT_VALIDITY_MS),
    ],
)
async def test_validity_follows_the_expiry_within_links_default(
    provider: LinkMobilityProvider,
    clean_fake: LinkMobilityFake,
    expires_in: float | None,
    expected: int,
) -> None:
    """relativeValidityTime is the time left in whole minutes, at least 1 min, at most 48 h."""
    expires_at = None if expires_in is None else time.time() + expires_in
    await provider.send([sms(expires_at=expires_at)])

    assert abs(last_body(clean_fake)["relativeValidityTime"] - expected) <= 60_000


async def test_no_delivery_report_asks_for_none(
    provider: LinkMobilityProvider, clean_fake: LinkMobilityFake
) -> None:
    """Without a report wanted, useDeliveryReport is false and no gates are named."""
    await provider.send([sms(delivery_report=False)])

    body = last_body(clean_fake)
    assert body["useDeliveryReport"] is False
    assert "deliveryReportGates" not in body
    assert not clean_fake.messages[-1].report_requested


async def test_without_gates_the_accounts_default_gate_is_used(
    clean_fake: LinkMobilityFake, http: httpx.AsyncClient, tmp_path: Path
) -> None:
    """No gate ids configured: a report is asked for and LINK picks the account's gate."""
    provider = provider_for(clean_fake, http, tmp_path)
    await provider.send([sms()])

    body = last_body(clean_fake)
    assert body["useDeliveryReport"] is True
    assert "deliveryReportGates" not in body


async def test_unicode_goes_as_text_for_link_to_encode(
    provider: LinkMobilityProvider, clean_fake: LinkMobilityFake
) -> None:
    """dcs TEXT: LINK picks UCS-2 and splits, so the text is sent as it is."""
    text = "Привет ✓ 你好"
    await provider.send([sms(text=text, encoding="ucs2")])

    assert last_body(clean_fake)["dcs"] == "TEXT"
    assert clean_fake.messages[-1].text == text
    assert clean_fake.messages[-1].unicode


async def test_more_parts_than_link_sends_is_refused(
    provider: LinkMobilityProvider, clean_fake: LinkMobilityFake
) -> None:
    """LINK sends at most 254 parts; a longer text fails without a request."""
    [result] = await provider.send([sms(segments=255)])

    assert isinstance(result.error, PermanentError)
    assert "254" in result.error.message
    assert clean_fake.send_requests() == []


# --- batches ----------------------------------------------------------------------------------


async def test_a_batch_is_one_sendbatch_request(
    provider: LinkMobilityProvider, clean_fake: LinkMobilityFake
) -> None:
    """Several SMS go in one /sendbatch with shared fields; results come back in order."""
    batch = [sms(f"m{i}", to=f"+479123456{i}", text=f"Text {i}") for i in range(3)]
    results = await provider.send(batch)

    [request] = clean_fake.send_requests()
    assert request.path == "/sendbatch"
    body = request.json()
    assert body["platformPartnerId"] == "4711"
    assert body["ignoreResponse"] is False
    assert [m["refId"] for m in body["sendRequestMessages"]] == ["m0", "m1", "m2"]
    assert all("platformId" not in m for m in body["sendRequestMessages"])
    assert [r.message_id for r in results] == ["m0", "m1", "m2"]
    for result in results:
        assert result.accepted
        assert clean_fake.find(result.provider_message_id or "").reference == result.message_id


async def test_messages_that_differ_in_shared_fields_go_in_separate_requests(
    provider: LinkMobilityProvider, clean_fake: LinkMobilityFake
) -> None:
    """Delivery report and validity are per request, so a batch splits where they differ."""
    batch = [sms("a", to="+4791234561"), sms("b", to="+4791234562", delivery_report=False)]
    batch.append(sms("c", to="+4791234563"))
    results = await provider.send(batch)

    assert all(r.accepted for r in results)
    paths = sorted(r.path for r in clean_fake.send_requests())
    assert paths == ["/send", "/sendbatch"]
    assert {m.reference: m.report_requested for m in clean_fake.messages} == {
        "a": True,
        "b": False,
        "c": True,
    }


async def test_a_refused_message_in_a_batch_fails_alone(
    provider: LinkMobilityProvider, clean_fake: LinkMobilityFake
) -> None:
    """A per-message resultCode refusal is a PermanentError for that message only."""
    clean_fake.fail_next(FailureMode.PARTIAL)
    batch = [sms(f"m{i}", to=f"+479123456{i}") for i in range(3)]
    first, *rest = await provider.send(batch)

    assert isinstance(first.error, PermanentError)
    assert first.error.code == first.raw_code == "2106"
    assert "number error" in first.error.message
    assert all(r.accepted for r in rest)
    assert len(clean_fake.messages) == 2


async def test_a_refused_number_fails_for_good(
    provider: LinkMobilityProvider, clean_fake: LinkMobilityFake
) -> None:
    """A single send LINK refuses for its destination is a PermanentError with LINK's code."""
    clean_fake.refuse_number(TO)
    [result] = await provider.send([sms()])

    assert isinstance(result.error, PermanentError)
    assert result.raw_code == "2106"
    assert clean_fake.messages == []


# --- whole-request failures through the fake ----------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "error_class", "code"),
    [
        (FailureMode.AUTH, AuthenticationError, "106100"),
        (FailureMode.THROTTLE, RateLimitedError, "http-429"),
        (FailureMode.SERVER_ERROR, TemporaryError, "http-500"),
    ],
)
async def test_failure_modes_map_to_our_errors(
    provider: LinkMobilityProvider,
    clean_fake: LinkMobilityFake,
    mode: FailureMode,
    error_class: type[Exception],
    code: str,
) -> None:
    """Refused credentials, throttling and 5xx become the error the dispatcher acts on."""
    clean_fake.fail_next(mode)
    [result] = await provider.send([sms()])

    assert type(result.error) is error_class
    assert result.error is not None and result.error.code == code
    if mode is FailureMode.THROTTLE:
        assert isinstance(result.error, RateLimitedError) and result.error.retry_after == 1.0
    if mode is FailureMode.AUTH:
        assert "password" in result.error.message


async def test_a_failure_stops_the_rest_of_a_split_batch(
    provider: LinkMobilityProvider, clean_fake: LinkMobilityFake
) -> None:
    """When one request of a split batch is refused as a whole, the others are not tried."""
    clean_fake.fail_next(FailureMode.AUTH)
    batch = [sms("a", to="+4791234561"), sms("b", to="+4791234562", delivery_report=False)]
    results = await provider.send(batch)

    assert all(isinstance(r.error, AuthenticationError) for r in results)
    assert len(clean_fake.send_requests()) == 1


async def test_a_timeout_is_temporary(
    provider: LinkMobilityProvider, clean_fake: LinkMobilityFake
) -> None:
    """No answer within the timeout is worth trying again."""
    clean_fake.fail_next(FailureMode.TIMEOUT)
    provider.settings.timeout = 0.2
    try:
        [result] = await provider.send([sms()])
    finally:
        clean_fake.release_held()

    assert isinstance(result.error, TemporaryError)
    assert "did not answer" in result.error.message


@pytest.mark.parametrize(
    ("changes", "code", "named"),
    [
        ({"password": "wrong"}, "106100", "password"),
        ({"platform_id": "OTHER"}, "106200", "Platform ID"),
        ({"platform_partner_id": "9999"}, "106201", "Platform partner ID"),
    ],
)
async def test_wrong_account_settings_keep_messages_queued(
    clean_fake: LinkMobilityFake,
    http: httpx.AsyncClient,
    tmp_path: Path,
    changes: dict[str, str],
    code: str,
    named: str,
) -> None:
    """Bad credentials or platform ids are configuration errors naming the setting to fix."""
    provider = provider_for(clean_fake, http, tmp_path, **changes)
    [result] = await provider.send([sms()])

    assert isinstance(result.error, AuthenticationError)
    assert result.error.code == code
    assert named in result.error.message


async def test_an_empty_partner_id_is_reported_without_a_request(
    clean_fake: LinkMobilityFake, http: httpx.AsyncClient, tmp_path: Path
) -> None:
    """LINK needs platformPartnerId; an empty setting is named before anything is sent."""
    provider = provider_for(clean_fake, http, tmp_path, platform_partner_id="")
    [result] = await provider.send([sms()])

    assert isinstance(result.error, AuthenticationError)
    assert "Platform partner ID" in result.error.message
    assert clean_fake.send_requests() == []


# --- every documented answer, canned ----------------------------------------------------------


def canned(status: int, body: Any = None, text: str = "") -> LinkMobilityProvider:
    """A provider whose HTTP client gets one fixed answer from 'LINK'."""

    def answer(request: httpx.Request) -> httpx.Response:
        if body is None:
            return httpx.Response(status, text=text)
        return httpx.Response(status, json=body)

    settings = LinkMobilitySettings(
        username="u", password="p", platform_partner_id="1", base_url="https://link.test/sms"
    )
    client = httpx.AsyncClient(transport=httpx.MockTransport(answer))
    return LinkMobilityProvider(settings, client, ProviderContext(Path(".")))


def error_body(code: int, description: str = "said LINK") -> dict[str, Any]:
    return {"status": code, "description": description, "translatedDescription": None}


@pytest.mark.parametrize(
    ("status", "code", "error_class"),
    [
        (401, 106100, AuthenticationError),
        (403, 106101, AuthenticationError),
        (403, 106102, AuthenticationError),
        (400, 106200, AuthenticationError),
        (400, 106201, AuthenticationError),
        (400, 106202, PermanentError),
        (400, 106000, TemporaryError),
        (403, 106300, TemporaryError),
        (403, 106301, TemporaryError),
        (400, 2000, PermanentError),
        (400, 2106, PermanentError),
        (400, 4001, PermanentError),
        (400, 3, RateLimitedError),
        (403, 999999, AuthenticationError),
        (400, 999999, PermanentError),
    ],
)
async def test_every_error_code_maps_to_a_decision(
    status: int, code: int, error_class: type[Exception]
) -> None:
    """LINK's error body codes decide: fix the settings, retry, or fail; the code is kept."""
    [result] = await canned(status, error_body(code)).send([sms()])

    assert type(result.error) is error_class
    assert result.error is not None
    assert result.error.code == result.raw_code == str(code)
    assert "LINK Mobility" in result.error.message


async def test_the_deveel_error_shape_is_read_too() -> None:
    """An error body carrying errorCode instead of status still gives LINK's code."""
    body = {"errorCode": "106200", "description": "Invalid or missing platformId"}
    [result] = await canned(400, body).send([sms()])

    assert isinstance(result.error, AuthenticationError)
    assert result.error.code == "106200"


@pytest.mark.parametrize(
    ("status", "text", "error_class"),
    [
        (400, "Bad Request", PermanentError),
        (403, "<html>Forbidden</html>", AuthenticationError),
        (404, "Not Found", AuthenticationError),
        (502, "Bad Gateway", TemporaryError),
    ],
)
async def test_answers_without_an_error_body(
    status: int, text: str, error_class: type[Exception]
) -> None:
    """Bodies without a LINK code are judged by HTTP status; a 404 points at the base URL."""
    [result] = await canned(status, text=text).send([sms()])

    assert type(result.error) is error_class
    assert result.error is not None and result.error.code == f"http-{status}"
    if status == 404:
        assert "base URL" in result.error.message


async def test_a_reply_without_a_body_is_accepted() -> None:
    """A 204 (ignoreResponse honoured as true) means queued, without LINK's message id."""
    [result] = await canned(204, text="").send([sms()])

    assert result.accepted
    assert result.provider_message_id is None


async def test_a_single_reply_with_a_refusal_code_fails() -> None:
    """A 200 whose resultCode is not 'in progress' is LINK refusing the message."""
    body = {"messageId": "x", "resultCode": 2104, "description": "Unknown subscriber"}
    [result] = await canned(200, body).send([sms()])

    assert isinstance(result.error, PermanentError)
    assert result.raw_code == "2104"


async def test_a_batch_reply_is_matched_by_ref_id_and_missing_ones_retry() -> None:
    """Batch results are matched by refId in any order; one not mentioned is retried."""
    body = [
        {"messageId": "L2", "refId": "b", "resultCode": 1005, "message": "Queued"},
        {"messageId": None, "refId": "a", "resultCode": 2105, "message": "Blocked"},
    ]
    batch = [sms("a"), sms("b"), sms("c")]
    a, b, c = await canned(200, body).send(batch)

    assert isinstance(a.error, PermanentError) and a.raw_code == "2105"
    assert b.accepted and b.provider_message_id == "L2"
    assert isinstance(c.error, TemporaryError)


@pytest.mark.parametrize("body", [{"not": "a list"}, ["text"]])
async def test_an_unreadable_batch_reply_is_temporary(body: Any) -> None:
    """A batch answer that is not a list of results is retried rather than guessed at."""
    results = await canned(200, body).send([sms("a"), sms("b")])

    assert all(isinstance(r.error, TemporaryError) for r in results)


# --- delivery reports -------------------------------------------------------------------------


def callback(body: Any) -> CallbackRequest:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return CallbackRequest("POST", "http://x/webhooks", {}, {}, raw)


def report(code: int, report_id: str = "Abc+/123$1", **extra: Any) -> dict[str, Any]:
    return {
        "refId": "msg-1",
        "id": report_id,
        "operator": "no.telenor",
        "sentTimestamp": "2015-11-19T09:37:35Z",
        "timestamp": "2015-11-19T09:37:00Z",
        "resultCode": code,
        "operatorResultCode": "2",
        "segments": 1,
        "gateCustomParameters": {},
        "customParameters": {"received": "2015-11-19 10:37:36"},
        **extra,
    }


@pytest.mark.parametrize(
    ("codes", "status"),
    [
        ([1001], Status.DELIVERED),
        ([1000, 1005, 1007, 1008, 1011, 1012, 1013], Status.SENT),
        ([1002, 1010], Status.EXPIRED),
        ([1003, 1004, 1006, 1009, 0, 1, 2, 3, 4, 5, 6, 104, 105], Status.UNDELIVERED),
        ([2000, 2104, 2106, 2207, 3000, 3002, 4000, 4007], Status.UNDELIVERED),
        ([7777], Status.SENT),
    ],
)
def test_every_result_code_maps_to_a_status(
    provider: LinkMobilityProvider, codes: list[int], status: Status
) -> None:
    """Each documented resultCode has our status; unknown codes change nothing final."""
    for code in codes:
        [parsed] = provider.parse_status_callback(callback(report(code)))
        assert parsed.status is status, code
        assert parsed.raw_code == str(code)
        assert parsed.description


def test_a_report_keys_on_links_message_id_without_the_segment(
    provider: LinkMobilityProvider,
) -> None:
    """'{messageId}$2' is matched to the message LINK called messageId; time is kept."""
    [parsed] = provider.parse_status_callback(callback(report(1001, "Dcshuhod0PMAAAFQ+/PbnR3x$2")))

    assert parsed.provider_message_id == "Dcshuhod0PMAAAFQ+/PbnR3x"
    assert parsed.occurred_at == 1447925820.0
    assert "operator code 2" in parsed.description


@given(st.text(alphabet="ABCxyz019+/=$", min_size=1, max_size=30), st.integers(1, 254))
def test_any_message_id_survives_the_segment_suffix(message_id: str, segment: int) -> None:
    """Whatever characters LINK's id has, stripping '$n' gives it back."""
    settings = LinkMobilitySettings(platform_partner_id="1")
    provider = LinkMobilityProvider(settings, httpx.AsyncClient(), ProviderContext(Path(".")))
    [parsed] = provider.parse_status_callback(callback(report(1001, f"{message_id}${segment}")))

    assert parsed.provider_message_id == message_id


def test_a_list_of_reports_in_one_post(provider: LinkMobilityProvider) -> None:
    """A gate may POST several reports at once as a JSON array."""
    parsed = provider.parse_status_callback(
        callback([report(1001, "A$1"), report(1001, "A$2"), report(1006, "B$1")])
    )

    assert [(p.provider_message_id, p.status) for p in parsed] == [
        ("A", Status.DELIVERED),
        ("A", Status.DELIVERED),
        ("B", Status.UNDELIVERED),
    ]


async def test_the_fakes_reports_parse_once_per_segment(
    provider: LinkMobilityProvider, clean_fake: LinkMobilityFake
) -> None:
    """A three-part text gets three reports that all land on the one message."""
    [result] = await provider.send([sms(text="word " * 80, segments=3)])
    sent = clean_fake.find(result.provider_message_id or "")
    bodies = clean_fake.report_bodies(sent, 1001)

    parsed = [provider.parse_status_callback(callback(b))[0] for b in bodies]
    assert len(parsed) == 3
    assert {p.provider_message_id for p in parsed} == {result.provider_message_id}


@pytest.mark.parametrize(
    "body",
    [
        b"\x00not json",
        [],
        ["text"],
        {"resultCode": 1001},
        {"id": "", "resultCode": 1001},
        {"id": "A$1"},
        {"id": "A$1", "resultCode": "delivered"},
        {"id": "A$1", "resultCode": True},
    ],
)
def test_a_malformed_report_is_a_value_error(provider: LinkMobilityProvider, body: Any) -> None:
    """Anything that is not a LINK report is refused with a reason (HTTP 400), never a 500."""
    with pytest.raises(ValueError, match="LINK Mobility"):
        provider.parse_status_callback(callback(body))


def test_the_callback_answer_is_an_empty_200(provider: LinkMobilityProvider) -> None:
    """LINK's gates want HTTP 200; the body does not matter."""
    for kind in ("status", "inbound"):
        answer = provider.callback_answer(
            kind, CallbackRequest("POST", "http://x/", {}, {}, b""), []
        )
        assert (answer.status_code, answer.body) == (200, "")


# --- inbound ----------------------------------------------------------------------------------


def mo(**changes: Any) -> dict[str, Any]:
    body = {
        "destination": "NO-2333",
        "subNumber": None,
        "source": "+4799887766",
        "content": {"type": "SMS", "userData": "STOP now", "encoding": "TEXT"},
        "operator": "no.telenor",
        "timestamp": "2015-11-19T09:37:00Z",
        "messageId": "MOid123",
        "route": {"type": "KEYWORD_ROUTE", "id": "r1", "keyword": "STOP"},
    }
    return {**body, **changes}


def test_an_inbound_sms_is_parsed(provider: LinkMobilityProvider) -> None:
    """MO JSON becomes an InboundSms with LINK's messageId and the time it arrived."""
    [inbound] = provider.parse_inbound(callback(mo()))

    assert inbound.provider_message_id == "MOid123"
    assert inbound.sender == "+4799887766"
    assert inbound.recipient == "NO-2333"
    assert inbound.text == "STOP now"
    assert inbound.received_at == 1447925820.0


def test_several_inbound_sms_in_one_post(provider: LinkMobilityProvider) -> None:
    """An array of MO messages is accepted like an array of reports."""
    parsed = provider.parse_inbound(callback([mo(), mo(messageId="MO2", source="004712345678")]))

    assert [(p.provider_message_id, p.sender) for p in parsed] == [
        ("MOid123", "+4799887766"),
        ("MO2", "+4712345678"),
    ]


@pytest.mark.parametrize(
    "body",
    [
        b"{",
        mo(source=None),
        mo(destination=5),
        mo(content="STOP"),
        mo(content={"userData": 7}),
        mo(messageId=""),
    ],
)
def test_a_malformed_inbound_sms_is_a_value_error(
    provider: LinkMobilityProvider, body: Any
) -> None:
    """An MO without sender, recipient, content or id is refused with a reason."""
    with pytest.raises(ValueError, match="LINK Mobility"):
        provider.parse_inbound(callback(body))


# --- configuration ----------------------------------------------------------------------------


async def test_the_settings_save_through_the_configuration_api(tmp_path: Path) -> None:
    """The module's fields are stored, the password masked, bad gate ids refused."""
    async with running_service(tmp_path, dispatcher=False) as harness:
        fields = {
            "username": "desk",
            "password": "pw-secret-1",
            "platform_partner_id": "4711",
            "delivery_report_gates": "gate1,gate2",
            "base_url": "https://n-eu.linkmobility.io/sms",
        }
        await harness.configure(module="linkmobility", module_settings={"linkmobility": fields})
        shown = (await harness.get("/api/v1/settings")).json()["module_settings"]["linkmobility"]
        assert shown["password"] != "pw-secret-1"
        assert shown["platform_id"] == "COMMON_API"
        assert shown["delivery_report_gates"] == "gate1,gate2"

        refused = await harness.put(
            "/api/v1/settings",
            {"module_settings": {"linkmobility": {"delivery_report_gates": "gate<1>"}}},
        )
        assert refused.status_code == 422, refused.text
