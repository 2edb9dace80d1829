"""The CM.com fake, spoken to with plain httpx: it answers as CM's gateway documents."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from defusedxml import ElementTree

from smsdesk.testing.fakes import FailureMode
from smsdesk.testing.fakes.cm import NO_ACCOUNT, PRODUCT_TOKEN, CmFake


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
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=5) as http:
        yield http


def msg(number: str = "0031612345678", **fields: Any) -> dict[str, Any]:
    return {
        "from": "Smsdesk",
        "to": [{"number": number}],
        "body": {"type": "auto", "content": "Hello"},
        "reference": "REF1",
        **fields,
    }


def request(*items: dict[str, Any], token: str | None = PRODUCT_TOKEN) -> dict[str, Any]:
    messages: dict[str, Any] = {"msg": list(items)}
    if token is not None:
        messages["authentication"] = {"producttoken": token}
    return {"messages": messages}


async def post(client: httpx.AsyncClient, fake: CmFake, body: Any, **kwargs: Any) -> httpx.Response:
    if isinstance(body, bytes):
        return await client.post(f"{fake.url}/v1.0/message", content=body, **kwargs)
    return await client.post(f"{fake.url}/v1.0/message", json=body, **kwargs)


async def test_an_accepted_message_is_recorded_and_answered_like_cm(
    fake: CmFake, client: httpx.AsyncClient
) -> None:
    response = await post(client, fake, request(msg()))

    assert response.status_code == 200
    assert response.json() == {
        "details": "Created 1 message(s)",
        "errorCode": 0,
        "messages": [
            {
                "to": "0031612345678",
                "status": "Accepted",
                "reference": "REF1",
                "parts": 1,
                "messageDetails": None,
                "messageErrorCode": 0,
            }
        ],
    }
    [sms] = fake.messages
    assert (sms.provider_id, sms.to, sms.sender, sms.text) == (
        "REF1",
        "+31612345678",
        "Smsdesk",
        "Hello",
    )
    assert sms.reference == "REF1" and not sms.unicode and sms.report_requested
    assert sms.callback_url is None


async def test_unicode_is_detected_as_cm_does_for_type_auto(
    fake: CmFake, client: httpx.AsyncClient
) -> None:
    body = {"type": "auto", "content": "Привет " * 20}
    response = await post(client, fake, request(msg(body=body)))

    assert response.json()["messages"][0]["parts"] == 3
    assert fake.messages[0].unicode


async def test_each_recipient_of_a_msg_is_one_sms(fake: CmFake, client: httpx.AsyncClient) -> None:
    item = msg(to=[{"number": "0031612345678"}, {"number": "0031612345679"}])
    response = await post(client, fake, request(item))

    assert response.json()["details"] == "Created 2 message(s)"
    assert [s.to for s in fake.messages] == ["+31612345678", "+31612345679"]


async def test_the_token_may_come_in_the_header(fake: CmFake, client: httpx.AsyncClient) -> None:
    response = await post(
        client, fake, request(msg(), token=None), headers={"X-CM-PRODUCTTOKEN": PRODUCT_TOKEN}
    )
    assert response.json()["errorCode"] == 0


@pytest.mark.parametrize("token", [None, "00000000-0000-0000-0000-000000000000"])
async def test_a_wrong_or_missing_token_is_error_101(
    fake: CmFake, client: httpx.AsyncClient, token: str | None
) -> None:
    response = await post(client, fake, request(msg(), token=token))

    assert response.status_code == 400
    assert response.json() == {"details": NO_ACCOUNT, "errorCode": 101, "messages": []}
    assert fake.messages == []


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"{not json", 202),
        ({"nothing": 1}, 202),
        ({"messages": []}, 202),
        (request(), 203),
        ({"messages": {"authentication": {"producttoken": PRODUCT_TOKEN}, "msg": {}}}, 203),
    ],
)
async def test_a_malformed_request_is_refused_whole(
    fake: CmFake, client: httpx.AsyncClient, body: Any, code: int
) -> None:
    response = await post(client, fake, body)

    assert response.status_code == 400
    assert response.json()["errorCode"] == code
    assert response.json()["messages"] == []


@pytest.mark.parametrize(
    ("item", "code"),
    [
        (msg(**{"from": "Far too long name"}), 301),
        (msg(**{"from": "Acme & Co"}), 301),
        (msg(**{"from": "12345678901234567"}), 301),
        (msg(to=[]), 302),
        (msg(to="0031612345678"), 302),
        (msg("+31612345678"), 303),
        (msg("31612345678"), 303),
        (msg("0031"), 303),
        (msg(body={"type": "auto", "content": ""}), 304),
        (msg(body={"type": "binary", "content": "x"}), 304),
        (msg(body={"type": "auto", "content": "x" * 200}, maximumNumberOfMessageParts=1), 304),
        (msg(reference="not valid!"), 305),
        (msg(maximumNumberOfMessageParts=9), 305),
    ],
)
async def test_an_invalid_message_is_rejected_with_cms_code(
    fake: CmFake, client: httpx.AsyncClient, item: dict[str, Any], code: int
) -> None:
    """When every message is refused the answer is 400 and each entry says why."""
    response = await post(client, fake, request(item))

    assert response.status_code == 400
    body = response.json()
    assert body["errorCode"] == code
    [entry] = body["messages"]
    assert (entry["status"], entry["messageErrorCode"], entry["parts"]) == ("Rejected", code, 0)
    assert entry["messageDetails"]
    assert fake.messages == []


async def test_a_mixed_request_is_201_with_each_messages_verdict(
    fake: CmFake, client: httpx.AsyncClient
) -> None:
    fake.refuse_number("+31612345679")
    good, bad = msg(reference="A"), msg("0031612345679", reference="B")
    response = await post(client, fake, request(good, bad))

    assert response.status_code == 200
    body = response.json()
    assert body["errorCode"] == 201
    assert [(e["reference"], e["status"], e["messageErrorCode"]) for e in body["messages"]] == [
        ("A", "Accepted", 0),
        ("B", "Rejected", 303),
    ]
    assert [s.reference for s in fake.messages] == ["A"]


@pytest.mark.parametrize(
    ("mode", "status", "code"),
    [(FailureMode.SERVER_ERROR, 500, 500), (FailureMode.AUTH, 400, 101)],
)
async def test_failure_modes_answer_as_cm(
    fake: CmFake, client: httpx.AsyncClient, mode: FailureMode, status: int, code: int
) -> None:
    fake.fail_next(mode)
    response = await post(client, fake, request(msg()))

    assert response.status_code == status
    assert response.json()["errorCode"] == code
    assert fake.messages == []
    assert (await post(client, fake, request(msg()))).json()["errorCode"] == 0


async def test_throttling_is_429_with_retry_after(fake: CmFake, client: httpx.AsyncClient) -> None:
    fake.fail_next(FailureMode.THROTTLE)
    response = await post(client, fake, request(msg()))

    assert response.status_code == 429
    assert response.headers["retry-after"] == "1"
    assert fake.messages == []


async def test_partial_refuses_the_first_message_only(
    fake: CmFake, client: httpx.AsyncClient
) -> None:
    fake.fail_next(FailureMode.PARTIAL)
    items = [msg(f"003161234560{i}", reference=f"R{i}") for i in range(3)]
    response = await post(client, fake, request(*items))

    body = response.json()
    assert (response.status_code, body["errorCode"]) == (200, 201)
    assert [e["messageErrorCode"] for e in body["messages"]] == [303, 0, 0]
    assert [s.reference for s in fake.messages] == ["R1", "R2"]


async def test_a_timeout_holds_the_answer_until_released(
    fake: CmFake, client: httpx.AsyncClient
) -> None:
    fake.fail_next(FailureMode.TIMEOUT)
    with pytest.raises(httpx.ReadTimeout):
        await post(client, fake, request(msg()), timeout=httpx.Timeout(0.2, connect=5.0))
    fake.release_held()
    assert fake.messages == []


# -- callbacks the fake sends ------------------------------------------------------------------


@pytest.fixture
def captured() -> list[httpx.Request]:
    return []


@pytest.fixture
async def webhook(captured: list[httpx.Request]) -> AsyncIterator[httpx.AsyncClient]:
    """Where the fake posts callbacks: answers 200 and keeps what came."""

    def handler(request: httpx.Request) -> httpx.Response:
        captured.append(request)
        return httpx.Response(200)

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
        yield http


STATUS_URL = "http://desk/webhooks/cm/status/s3cret"
INBOUND_URL = "http://desk/webhooks/cm/inbound/s3cret"


async def accepted_sms(fake: CmFake, client: httpx.AsyncClient) -> Any:
    await post(client, fake, request(msg()))
    fake.point_callbacks(STATUS_URL, INBOUND_URL)
    return fake.messages[0]


async def test_a_json_report_is_posted_to_the_portal_url(
    fake: CmFake,
    client: httpx.AsyncClient,
    webhook: httpx.AsyncClient,
    captured: list[httpx.Request],
) -> None:
    sms = await accepted_sms(fake, client)
    await fake.send_report(webhook, sms, True)
    await fake.send_report(webhook, sms, False, forged=True)

    delivered, forged = captured
    assert (delivered.method, str(delivered.url)) == ("POST", STATUS_URL)
    assert delivered.headers["content-type"] == "application/json"
    report = json.loads(delivered.content)["messages"]["msg"]
    assert (report["reference"], report["to"], report["status"]["code"]) == (
        "REF1",
        "0031612345678",
        "2",
    )
    assert json.loads(forged.content)["messages"]["msg"]["status"]["code"] == "3"
    assert str(forged.url).endswith("/not-the-secret")


async def test_an_xml_report_has_cms_elements(
    fake: CmFake,
    client: httpx.AsyncClient,
    webhook: httpx.AsyncClient,
    captured: list[httpx.Request],
) -> None:
    sms = await accepted_sms(fake, client)
    fake.report_format = "xml"
    await fake.send_report(webhook, sms, False)

    [sent] = captured
    root = ElementTree.fromstring(sent.content)
    assert root.tag == "MESSAGES"
    item = root.find("MSG")
    assert item is not None and item.get("RECEIVED")
    assert item.findtext("REFERENCE") == "REF1"
    assert item.findtext("STATUS/CODE") == "3"
    assert item.findtext("TO") == "0031612345678"


async def test_an_inbound_sms_is_posted_as_cms_json(
    fake: CmFake, webhook: httpx.AsyncClient, captured: list[httpx.Request]
) -> None:
    fake.point_callbacks(STATUS_URL, INBOUND_URL)
    await fake.send_inbound(webhook, "+31611122233", "+31612000000", "Hi")
    await fake.send_inbound(webhook, "+31611122233", "+31612000000", "Hi", forged=True)

    real, forged = captured
    assert str(real.url) == INBOUND_URL and str(forged.url).endswith("/not-the-secret")
    body = json.loads(real.content)
    assert body["from"] == {"number": "0031611122233"}
    assert body["to"] == {"number": "0031612000000"}
    assert body["message"] == {"text": "Hi"}
    assert body["channel"] == "SMS" and len(body["groupings"]) == 3 and body["timeUtc"]
