"""The LINK Mobility fake itself, spoken to with plain httpx as a LINK client would."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from smsdesk.testing.fakes import FailureMode
from smsdesk.testing.fakes.linkmobility import (
    PASSWORD,
    PLATFORM_ID,
    PLATFORM_PARTNER_ID,
    USERNAME,
    LinkMobilityFake,
)

TO = "+4791234567"


def message(**changes: Any) -> dict[str, Any]:
    return {"source": "Shop", "destination": TO, "userData": "Hello", **changes}


def single(**changes: Any) -> dict[str, Any]:
    body = {
        **message(),
        "platformId": PLATFORM_ID,
        "platformPartnerId": PLATFORM_PARTNER_ID,
        "ignoreResponse": False,
    }
    return {**body, **changes}


def batch(messages: list[dict[str, Any]], **changes: Any) -> dict[str, Any]:
    body = {
        "platformId": PLATFORM_ID,
        "platformPartnerId": PLATFORM_PARTNER_ID,
        "ignoreResponse": False,
        "sendRequestMessages": messages,
    }
    return {**body, **changes}


@pytest.fixture(scope="module")
def running() -> Iterator[LinkMobilityFake]:
    with LinkMobilityFake() as fake:
        yield fake


@pytest.fixture
def fake(running: LinkMobilityFake) -> LinkMobilityFake:
    running.reset()
    return running


@pytest.fixture
async def client(fake: LinkMobilityFake) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=fake.url, auth=(USERNAME, PASSWORD)) as http:
        yield http


def assert_error(response: httpx.Response, http_status: int, code: int) -> None:
    assert response.status_code == http_status, response.text
    body = response.json()
    assert set(body) == {"status", "description", "translatedDescription"}
    assert body["status"] == code
    assert body["description"]


# --- accepted -----------------------------------------------------------------------------------


async def test_a_send_is_queued_and_recorded(
    fake: LinkMobilityFake, client: httpx.AsyncClient
) -> None:
    """With ignoreResponse false, /send answers 200 {messageId, 1005, Queued, smsCount}."""
    response = await client.post("/send", json=single(refId="ours-1", priority="HIGH"))

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"messageId", "resultCode", "description", "smsCount"}
    assert (body["resultCode"], body["description"], body["smsCount"]) == (1005, "Queued", 1)
    [sms] = fake.messages
    assert (sms.provider_id, sms.to, sms.sender, sms.text) == (
        body["messageId"],
        TO,
        "Shop",
        "Hello",
    )
    assert (sms.reference, sms.priority, sms.report_requested) == ("ours-1", "HIGH", True)
    assert not sms.unicode


@pytest.mark.parametrize("ignore", [True, None])
async def test_ignore_response_true_or_absent_answers_204(
    fake: LinkMobilityFake, client: httpx.AsyncClient, ignore: bool | None
) -> None:
    """LINK's default is no reply body: 204, yet the SMS is queued."""
    body = single()
    del body["ignoreResponse"]
    if ignore is not None:
        body["ignoreResponse"] = ignore
    response = await client.post("/send", json=body)

    assert (response.status_code, response.content) == (204, b"")
    assert len(fake.messages) == 1


async def test_long_and_unicode_texts_are_recorded_whole(
    fake: LinkMobilityFake, client: httpx.AsyncClient
) -> None:
    """LINK splits and encodes (dcs TEXT): the fake keeps the text and counts the parts."""
    text = "Привет ✓ " * 20
    response = await client.post("/send", json=single(userData=text))

    assert response.json()["smsCount"] == 3
    [sms] = fake.messages
    assert sms.text == text
    assert sms.unicode


async def test_a_batch_answers_one_result_per_message(
    fake: LinkMobilityFake, client: httpx.AsyncClient
) -> None:
    """/sendbatch answers [{messageId, refId, resultCode, message}] and records each SMS."""
    messages = [message(destination=f"+479123456{i}", refId=f"r{i}") for i in range(3)]
    response = await client.post("/sendbatch", json=batch(messages, useDeliveryReport=False))

    assert response.status_code == 200
    results = response.json()
    assert [set(r) for r in results] == [{"messageId", "refId", "resultCode", "message"}] * 3
    assert [(r["refId"], r["resultCode"]) for r in results] == [(f"r{i}", 1005) for i in range(3)]
    assert [m.reference for m in fake.messages] == ["r0", "r1", "r2"]
    assert not any(m.report_requested for m in fake.messages)


# --- refused ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "auth", [None, (USERNAME, "wrong"), ("someone", PASSWORD)], ids=["none", "pw", "user"]
)
async def test_bad_credentials_are_refused_with_106100(
    fake: LinkMobilityFake, auth: tuple[str, str] | None
) -> None:
    """Missing or wrong Basic auth is 401 with LINK's invalid-authentication code."""
    async with httpx.AsyncClient(base_url=fake.url, auth=auth) as http:
        response = await http.post("/send", json=single())

    assert_error(response, 401, 106100)
    assert fake.messages == []


@pytest.mark.parametrize(("field", "code"), [("platformId", 106200), ("platformPartnerId", 106201)])
@pytest.mark.parametrize("value", [None, "wrong"])
async def test_platform_ids_are_checked(
    fake: LinkMobilityFake, client: httpx.AsyncClient, field: str, code: int, value: str | None
) -> None:
    """A missing or wrong platformId / platformPartnerId is refused with its own code."""
    body = single()
    if value is None:
        del body[field]
    else:
        body[field] = value

    assert_error(await client.post("/send", json=body), 400, code)
    assert_error(
        await client.post("/sendbatch", json={**batch([message()]), field: value}), 400, code
    )


@pytest.mark.parametrize(
    ("source", "ton"),
    [
        ("1Shop", "ALPHANUMERIC"),
        ("My Shop", "ALPHANUMERIC"),
        ("S", "ALPHANUMERIC"),
        ("Shop1234567X", "ALPHANUMERIC"),
        ("4791234567", "MSISDN"),
        ("+47123", "MSISDN"),
        ("+4791234567", "SHORTNUMBER"),
        ("Shop", "WHATEVER"),
    ],
)
async def test_senders_follow_the_type_of_number(
    fake: LinkMobilityFake, client: httpx.AsyncClient, source: str, ton: str
) -> None:
    """Names are 2-11 letters/digits starting with a letter; MSISDNs need '+'."""
    response = await client.post("/send", json=single(source=source, sourceTON=ton))

    assert_error(response, 400, 2000)
    assert fake.messages == []


@pytest.mark.parametrize("destination", ["4791234567", "+47-912", "0047912345678", ""])
async def test_destinations_need_plus_and_digits(
    fake: LinkMobilityFake, client: httpx.AsyncClient, destination: str
) -> None:
    """A destination that is not +E.164 is a number error (2106)."""
    response = await client.post("/send", json=single(destination=destination))

    assert_error(response, 400, 2106)


async def test_a_refused_number_in_a_batch_fails_alone(
    fake: LinkMobilityFake, client: httpx.AsyncClient
) -> None:
    """A refused number gets a per-message 2106 in the batch; the others are queued."""
    fake.refuse_number("+4791234561")
    messages = [message(destination=f"+479123456{i}", refId=f"r{i}") for i in range(3)]
    results = (await client.post("/sendbatch", json=batch(messages))).json()

    assert [r["resultCode"] for r in results] == [1005, 2106, 1005]
    assert results[1]["messageId"] is None
    assert sorted(m.to for m in fake.messages) == ["+4791234560", "+4791234562"]


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[1, 2]",
        json.dumps(batch([])).encode(),
        json.dumps(batch([message()] * 1001)).encode(),
        json.dumps(batch(["text"])).encode(),  # type: ignore[list-item]
    ],
)
async def test_malformed_batches_are_refused(
    fake: LinkMobilityFake, client: httpx.AsyncClient, body: bytes
) -> None:
    """Not JSON, not an object, or not 1-1000 message objects: 400, nothing sent."""
    response = await client.post(
        "/sendbatch", content=body, headers={"content-type": "application/json"}
    )

    assert response.status_code == 400
    assert fake.messages == []


async def test_json_is_required(fake: LinkMobilityFake, client: httpx.AsyncClient) -> None:
    """A form body is not accepted."""
    response = await client.post("/send", data={"source": "Shop"})

    assert response.status_code == 400


# --- failure modes --------------------------------------------------------------------------------


async def test_failure_modes_answer_as_documented(
    fake: LinkMobilityFake, client: httpx.AsyncClient
) -> None:
    """5xx, 429 with Retry-After and 401/106100, each once; then sending works again."""
    fake.fail_next(FailureMode.SERVER_ERROR)
    fake.fail_next(FailureMode.THROTTLE)
    fake.fail_next(FailureMode.AUTH)

    assert (await client.post("/send", json=single())).status_code == 500
    throttled = await client.post("/send", json=single())
    assert (throttled.status_code, throttled.headers["retry-after"]) == (429, "1")
    assert_error(await client.post("/send", json=single()), 401, 106100)
    assert fake.messages == []
    assert (await client.post("/send", json=single())).status_code == 200


async def test_partial_refuses_the_first_message_of_a_batch(
    fake: LinkMobilityFake, client: httpx.AsyncClient
) -> None:
    """PARTIAL: the first message gets a destination error code, the rest are queued."""
    fake.fail_next(FailureMode.PARTIAL)
    messages = [message(destination=f"+479123456{i}", refId=f"r{i}") for i in range(3)]
    results = (await client.post("/sendbatch", json=batch(messages))).json()

    assert [r["resultCode"] for r in results] == [2106, 1005, 1005]
    assert [m.reference for m in fake.messages] == ["r1", "r2"]


async def test_timeout_holds_the_answer(fake: LinkMobilityFake, client: httpx.AsyncClient) -> None:
    """TIMEOUT: no answer until released (then 503, which the gone client never sees)."""
    fake.fail_next(FailureMode.TIMEOUT)
    try:
        with pytest.raises(httpx.TimeoutException):
            await client.post("/send", json=single(), timeout=httpx.Timeout(0.2, connect=5.0))
    finally:
        fake.release_held()
    assert fake.messages == []


# --- reports and inbound ------------------------------------------------------------------------


async def test_reports_go_once_per_segment_to_the_gate(
    fake: LinkMobilityFake, client: httpx.AsyncClient
) -> None:
    """send_report POSTs JSON per segment, '{messageId}$n', to the gate URL; forged breaks it."""
    await client.post("/send", json=single(userData="word " * 80, refId="ours-9"))
    [sms] = fake.messages
    seen: list[httpx.Request] = []

    def gate(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200)

    fake.point_callbacks("http://smsdesk.test/webhooks/linkmobility/status/s3cret", None)
    async with httpx.AsyncClient(transport=httpx.MockTransport(gate)) as http:
        answer = await fake.send_report(http, sms, delivered=False)
        await fake.send_report(http, sms, delivered=True, forged=True)

    assert answer.status_code == 200
    bodies = [json.loads(r.content) for r in seen]
    assert [b["id"] for b in bodies[:3]] == [f"{sms.provider_id}${n}" for n in (1, 2, 3)]
    assert {(b["refId"], b["resultCode"], b["segments"]) for b in bodies[:3]} == {
        ("ours-9", 1006, 3)
    }
    assert all(r.headers["content-type"] == "application/json" for r in seen)
    assert str(seen[0].url).endswith("/s3cret")
    assert str(seen[3].url).endswith("/not-the-secret")
    assert bodies[3]["resultCode"] == 1001


async def test_inbound_is_forwarded_as_mo_json(fake: LinkMobilityFake) -> None:
    """send_inbound POSTs LINK's MO JSON: source '+MSISDN', content.userData, messageId."""
    seen: list[httpx.Request] = []

    def gate(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200)

    fake.point_callbacks(None, "http://smsdesk.test/webhooks/linkmobility/inbound/s3cret")
    async with httpx.AsyncClient(transport=httpx.MockTransport(gate)) as http:
        await fake.send_inbound(http, "+4799887766", "+4712345678", "Yes")

    [request] = seen
    body = json.loads(request.content)
    assert (body["source"], body["destination"]) == ("+4799887766", "+4712345678")
    assert body["content"] == {"type": "SMS", "userData": "Yes", "encoding": "TEXT"}
    assert body["messageId"]
