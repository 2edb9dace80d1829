"""The Puzzel (Intelecom) gateway fake, spoken to with plain httpx."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from defusedxml import ElementTree

from smsdesk.testing.fakes import FailureMode
from smsdesk.testing.fakes.intelecom import PASSWORD, SERVICE_ID, USERNAME, IntelecomFake

PATH = "/gw/rs/sendMessages"
JSON = {"Accept": "application/json"}
STATUS_URL = "http://smsdesk.test/webhooks/intelecom/status/the-secret"
INBOUND_URL = "http://smsdesk.test/webhooks/intelecom/inbound/the-secret"


@pytest.fixture(scope="module")
def running_fake() -> Iterator[IntelecomFake]:
    with IntelecomFake() as running:
        yield running


@pytest.fixture
def fake(running_fake: IntelecomFake) -> IntelecomFake:
    running_fake.release_held()
    running_fake.reset()
    running_fake.point_callbacks(STATUS_URL, INBOUND_URL)
    return running_fake


def message(**fields: Any) -> dict[str, Any]:
    return {"recipient": "+4741000000", "content": "Hello", "clientReference": "m1", **fields}


def request(*messages: dict[str, Any], **fields: Any) -> dict[str, Any]:
    body = {"serviceId": SERVICE_ID, "username": USERNAME, "password": PASSWORD}
    return {**body, "message": list(messages) or [message()], **fields}


def post(fake: IntelecomFake, body: Any, **kwargs: Any) -> httpx.Response:
    headers = kwargs.pop("headers", JSON)
    return httpx.post(fake.url + PATH, json=body, headers=headers, **kwargs)


def statuses(response: httpx.Response) -> list[dict[str, Any]]:
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()["messageStatus"]
    return found


def test_an_accepted_message_is_recorded_and_answered(fake: IntelecomFake) -> None:
    settings = {
        "priority": 3,
        "validity": 173,
        "originatorSettings": {"originator": "Smsdesk", "originatorType": "ALPHANUMERIC"},
        "parameter": [{"key": "skip_customer_report_delivery", "value": "true"}],
    }
    [status] = statuses(post(fake, request(message(settings=settings))))
    assert status["statusCode"] == 1 and status["statusMessage"]
    assert (status["clientReference"], status["recipient"]) == ("m1", "+4741000000")
    assert status["sequenceIndex"] == 1 and status["messageId"]
    [sms] = fake.messages
    assert (sms.provider_id, sms.to, sms.sender, sms.text) == (
        status["messageId"],
        "+4741000000",
        "Smsdesk",
        "Hello",
    )
    assert (sms.reference, sms.priority, sms.report_requested) == ("m1", "3", False)


def test_without_accept_json_the_answer_is_xml(fake: IntelecomFake) -> None:
    response = post(fake, request(), headers={})
    root = ElementTree.fromstring(response.content)
    codes = [e.text for e in root.iter() if e.tag == "statusCode"]
    assert response.headers["content-type"].startswith("application/xml") and codes == ["1"]


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"password": "wrong"}, 2),
        ({"username": "someone"}, 2),
        ({"serviceId": 1234}, 4),
        ({"serviceId": "4711"}, 5),
        ({"message": []}, 5),
    ],
)
def test_the_common_parameters_refuse_every_message(
    fake: IntelecomFake, changes: dict[str, Any], code: int
) -> None:
    body = {**request(message(), message(clientReference="m2")), **changes}
    assert {s["statusCode"] for s in statuses(post(fake, body))} == {code}
    assert fake.messages == []


@pytest.mark.parametrize(
    "bad",
    [
        {"recipient": "4741000000"},
        {"recipient": "+47 41 00"},
        {"content": ""},
        {"content": "Привет"},
        {"content": "x" * 919},
        {"price": "0"},
        {"settings": {"priority": 4}},
        {"settings": {"validity": 174}},
        {
            "settings": {
                "originatorSettings": {
                    "originator": "Twelve chars",
                    "originatorType": "ALPHANUMERIC",
                }
            }
        },
        {
            "settings": {
                "originatorSettings": {"originator": "Sms_desk", "originatorType": "ALPHANUMERIC"}
            }
        },
        {"settings": {"originatorSettings": {"originator": "4799", "originatorType": "NATIONAL"}}},
        {"settings": {"parameter": [{"key": "colour", "value": "blue"}]}},
    ],
)
def test_a_malformed_message_gets_a_syntax_error(fake: IntelecomFake, bad: dict[str, Any]) -> None:
    """Status 5 for that message only; the one beside it is accepted."""
    body = request(message(**bad), message(clientReference="m2", recipient="+4741000001"))
    first, second = statuses(post(fake, body))
    assert (first["statusCode"], second["statusCode"]) == (5, 1)
    assert first["messageId"] is None
    assert [sms.reference for sms in fake.messages] == ["m2"]


def test_unicode_needs_auto_detected_encoding(fake: IntelecomFake) -> None:
    six_ucs2_parts = "Ж" * 402
    body = request(message(content=six_ucs2_parts, settings={"autoDetectEncoding": True}))
    assert statuses(post(fake, body))[0]["statusCode"] == 1
    assert fake.messages[0].unicode


def test_a_refused_number_is_an_invalid_recipient(fake: IntelecomFake) -> None:
    fake.refuse_number("+4741000000")
    [status] = statuses(post(fake, request()))
    assert status["statusCode"] == 5 and "Invalid recipient" in status["statusMessage"]


def test_what_is_not_json_is_refused(fake: IntelecomFake) -> None:
    form = httpx.post(fake.url + PATH, data={"serviceId": "4711"}, headers=JSON)
    broken = httpx.post(
        fake.url + PATH, content=b"{", headers={**JSON, "content-type": "application/json"}
    )
    assert (form.status_code, broken.status_code) == (415, 400)


def test_failure_modes_answer_as_documented(fake: IntelecomFake) -> None:
    fake.fail_next(FailureMode.SERVER_ERROR)
    fake.fail_next(FailureMode.THROTTLE)
    fake.fail_next(FailureMode.AUTH)
    fake.fail_next(FailureMode.PARTIAL)
    assert post(fake, request()).status_code == 500
    throttled = post(fake, request())
    assert (throttled.status_code, throttled.headers["retry-after"]) == (429, "1")
    assert [s["statusCode"] for s in statuses(post(fake, request()))] == [2]
    body = request(*(message(clientReference=f"m{i}") for i in range(3)))
    assert [s["statusCode"] for s in statuses(post(fake, body))] == [5, 1, 1]
    assert [sms.reference for sms in fake.messages] == ["m1", "m2"]


def test_a_timeout_holds_the_answer(fake: IntelecomFake) -> None:
    fake.fail_next(FailureMode.TIMEOUT)
    with pytest.raises(httpx.ReadTimeout):
        post(fake, request(), timeout=httpx.Timeout(0.2, connect=5.0))
    fake.release_held()
    assert fake.messages == []


def test_the_spam_filter_and_scripted_answers(fake: IntelecomFake) -> None:
    fake.quota_per_number = 1
    first, held = statuses(post(fake, request(message(), message(clientReference="m2"))))
    assert (first["statusCode"], held["statusCode"]) == (1, 24) and held["messageId"]
    fake.answer_next(25, with_message_id=False)
    [duplicate] = statuses(post(fake, request(message(recipient="+4741000009"))))
    assert (duplicate["statusCode"], duplicate["messageId"]) == (25, None)
    assert len(fake.messages) == 2


async def test_reports_and_inbound_go_to_the_portal_urls(fake: IntelecomFake) -> None:
    seen: list[httpx.Request] = []

    def service(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200)

    post(
        fake,
        request(
            message(),
            message(
                clientReference="m2",
                settings={"parameter": [{"key": "skip_customer_report_delivery", "value": "true"}]},
            ),
        ),
    )
    wanted, unwanted = fake.messages
    async with httpx.AsyncClient(transport=httpx.MockTransport(service)) as client:
        await fake.send_report(client, wanted, False, forged=True)
        await fake.send_inbound(client, "+4799999999", "+4759444444", "Kodeord hello")
        assert await fake.deliver_reports(client) is not None
        assert await fake.deliver_reports(client) is None  # each report goes once
        fake.callback_format = "xml"
        await fake.send_report(client, wanted, True)
        fake.callback_format = "get"
        await fake.send_report(client, wanted, True)

    forged, inbound, batch, xml, get = seen
    assert str(forged.url).endswith("/status/not-the-secret")
    [report] = json.loads(forged.content)["dr"]
    assert (report["messageid"], report["statuscode"], report["type"]) == (
        wanted.provider_id,
        351,
        6,
    )
    assert report["customermessagereference"] == "m1"
    [mo] = json.loads(inbound.content)["mo"]
    assert str(inbound.url) == INBOUND_URL
    assert (mo["originator"], mo["sno"], mo["content"]) == (
        "+4799999999",
        "4759444444",
        "Kodeord hello",
    )
    assert (mo["command"], mo["strippedcontent"]) == ("Kodeord", "hello")
    assert [r["messageid"] for r in json.loads(batch.content)["dr"]] == [wanted.provider_id]
    assert unwanted.provider_id not in batch.content.decode()
    assert ElementTree.fromstring(xml.content).tag == "dr"
    assert (get.method, get.url.params["statuscode"], get.url.params["type"]) == ("GET", "0", "6")
