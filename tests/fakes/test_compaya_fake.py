"""The fake CPSMS API v2, spoken to with plain httpx: checks, answers and failure modes."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from smsdesk.testing.fakes import FailureMode
from smsdesk.testing.fakes.compaya import API_KEY, INVALID_NUMBER, USERNAME, CompayaFake

CALLBACK = "http://smsdesk.test/webhooks/compaya/status/s3cret?ref=01ABC"


@pytest.fixture(scope="module")
def running() -> Iterator[CompayaFake]:
    with CompayaFake() as fake:
        yield fake


@pytest.fixture
def fake(running: CompayaFake) -> CompayaFake:
    with running.lock:
        running.requests.clear()
        running.messages.clear()
        running.refused_numbers.clear()
    return running


@pytest.fixture
async def client(fake: CompayaFake) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=fake.url, auth=(USERNAME, API_KEY), timeout=5) as http:
        yield http


def body(**changes: Any) -> dict[str, Any]:
    return {"to": "4522334488", "message": "Hello", "from": "Smsdesk", **changes}


async def test_an_accepted_sms_is_recorded(client: httpx.AsyncClient, fake: CompayaFake) -> None:
    """200 with the success list; the SMS is kept in smsdesk's terms."""
    response = await client.post(
        "/v2/send",
        json=body(reference="01ABC", dlr_url=CALLBACK, encoding="UTF-8", flash=0),
    )

    assert response.status_code == 200
    assert response.json() == {"success": [{"to": "4522334488", "cost": 1}]}
    [sms] = fake.messages
    assert (sms.to, sms.sender, sms.text, sms.reference) == (
        "+4522334488",
        "Smsdesk",
        "Hello",
        "01ABC",
    )
    assert (sms.provider_id, sms.unicode, sms.report_requested) == ("01ABC", False, True)
    assert sms.callback_url == CALLBACK
    assert sms.fields == {"encoding": "UTF-8", "flash": 0}


async def test_unicode_is_flagged_and_iso_8859_1_garbles_it(
    client: httpx.AsyncClient, fake: CompayaFake
) -> None:
    """UTF-8 (the default) keeps any text; a UTF-8 body declared ISO-8859-1 arrives garbled."""
    text = "Привет Ærø"
    await client.post("/v2/send", json=body(message=text))
    await client.post("/v2/send", json=body(message=text, encoding="ISO-8859-1"))

    utf8, latin1 = fake.messages
    assert (utf8.text, utf8.unicode) == (text, True)
    assert latin1.text != text


async def test_a_json_body_is_read_whatever_the_content_type(
    client: httpx.AsyncClient, fake: CompayaFake
) -> None:
    """Like CPSMS (its curl example posts JSON as a form), the body is read as JSON."""
    response = await client.post(
        "/v2/send",
        content=json.dumps(body()).encode(),
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 200
    assert len(fake.messages) == 1


@pytest.mark.parametrize(
    "auth",
    [None, (USERNAME, "wrong-key"), ("someone", API_KEY)],
)
async def test_bad_credentials_get_401(fake: CompayaFake, auth: tuple[str, str] | None) -> None:
    """Missing or wrong user name / API key: 401 with an error body, nothing sent."""
    async with httpx.AsyncClient(base_url=fake.url, auth=auth) as http:
        response = await http.post("/v2/send", json=body())

    assert response.status_code == 401
    assert response.json()["error"]["code"] == 401
    assert fake.messages == []


async def test_a_bearer_token_is_not_basic_auth(fake: CompayaFake) -> None:
    """Only Basic user:API key authenticates."""
    async with httpx.AsyncClient(base_url=fake.url) as http:
        response = await http.post(
            "/v2/send", json=body(), headers={"authorization": f"Bearer {API_KEY}"}
        )
    assert response.status_code == 401


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"to=4522334488&message=Hello", "JSON"),
        (b"[1, 2]", "JSON"),
        (json.dumps({"message": "Hello"}).encode(), "to"),
        (json.dumps({"to": "4522334488"}).encode(), "message"),
        (json.dumps(body(message="")).encode(), "message"),
        (json.dumps(body(message="x" * 1531)).encode(), "1530"),
        (json.dumps(body(**{"from": "TwelveLetter"})).encode(), "11"),
        (json.dumps(body(**{"from": "1" * 21})).encode(), "20"),
        (json.dumps(body(reference="r" * 33)).encode(), "32"),
        (json.dumps(body(encoding="UTF-16")).encode(), "encoding"),
        (json.dumps(body(dlr_url="ftp://x")).encode(), "dlr_url"),
        (json.dumps(body(flash=2)).encode(), "flash"),
        (json.dumps(body(to=[])).encode(), "to"),
    ],
)
async def test_a_bad_request_gets_400(
    client: httpx.AsyncClient, fake: CompayaFake, content: bytes, problem: str
) -> None:
    """Missing required fields, over-long fields and a non-JSON body are refused whole."""
    response = await client.post("/v2/send", content=content)

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == 400 and problem in error["message"]
    assert fake.messages == []


async def test_senders_at_the_limits_are_accepted(
    client: httpx.AsyncClient, fake: CompayaFake
) -> None:
    """11 characters for a name, 20 digits for a number."""
    for sender in ("ElevenChars", "1" * 20):
        response = await client.post("/v2/send", json=body(**{"from": sender}))
        assert response.status_code == 200, response.text


@pytest.mark.parametrize("number", ["+4522334488", "22334488", "45 22334488", "4522", "abc"])
async def test_a_malformed_number_is_refused_per_recipient(
    client: httpx.AsyncClient, fake: CompayaFake, number: str
) -> None:
    """'+', no country code, spaces, wrong length: CPSMS's per-recipient error."""
    response = await client.post("/v2/send", json=body(to=number))

    assert response.status_code == 400
    assert response.json() == {
        "error": [{"errorCode": 400, "errMsg": INVALID_NUMBER, "to": number}]
    }
    assert fake.messages == []


async def test_a_refused_number_and_a_good_one_answer_207(
    client: httpx.AsyncClient, fake: CompayaFake
) -> None:
    """A list of recipients with one refused: 207 with both lists; the rest is sent."""
    fake.refuse_number("+4522334488")
    response = await client.post("/v2/send", json=body(to=["4522334488", "4533445599"]))

    assert response.status_code == 207
    assert response.json() == {
        "success": [{"to": "4533445599", "cost": 1}],
        "error": [{"errorCode": 400, "errMsg": INVALID_NUMBER, "to": "4522334488"}],
    }
    assert [sms.to for sms in fake.messages] == ["+4533445599"]


async def test_partial_refuses_the_first_recipient(
    client: httpx.AsyncClient, fake: CompayaFake
) -> None:
    """PARTIAL: the first recipient of a list is refused as an invalid number, the rest sent."""
    fake.fail_next(FailureMode.PARTIAL)
    numbers = ["4522334481", "4522334482", "4522334483"]
    response = await client.post("/v2/send", json=body(to=numbers))

    assert response.status_code == 207
    assert [e["to"] for e in response.json()["error"]] == ["4522334481"]
    assert [sms.to for sms in fake.messages] == ["+4522334482", "+4522334483"]


@pytest.mark.parametrize(
    ("mode", "status"),
    [(FailureMode.SERVER_ERROR, 500), (FailureMode.THROTTLE, 429), (FailureMode.AUTH, 401)],
)
async def test_failure_modes_answer_as_documented(
    client: httpx.AsyncClient, fake: CompayaFake, mode: FailureMode, status: int
) -> None:
    """Each failure answers once with its status and the error body, then the fake is well."""
    fake.fail_next(mode)
    failed = await client.post("/v2/send", json=body())
    after = await client.post("/v2/send", json=body())

    assert failed.status_code == status
    assert failed.json()["error"]["code"] == status
    if mode is FailureMode.THROTTLE:
        assert failed.headers["retry-after"] == "1"
    assert after.status_code == 200
    assert len(fake.messages) == 1


async def test_timeout_holds_the_answer_until_released(
    client: httpx.AsyncClient, fake: CompayaFake
) -> None:
    """TIMEOUT: no answer before the client gives up; released, it answers 503."""
    fake.fail_next(FailureMode.TIMEOUT)
    with pytest.raises(httpx.ReadTimeout):
        await client.post("/v2/send", json=body(), timeout=httpx.Timeout(0.2, connect=5.0))
    fake.release_held()
    response = await client.post("/v2/send", json=body())

    assert response.status_code == 200
    assert len(fake.messages) == 1


async def test_reports_go_to_the_dlr_url_with_status_and_receiver(
    client: httpx.AsyncClient, fake: CompayaFake
) -> None:
    """POST to the dlr_url with status and receiver appended; forged changes the secret."""
    await client.post("/v2/send", json=body(dlr_url=CALLBACK))
    [sms] = fake.messages
    seen: list[httpx.Request] = []

    def capture(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200)

    async with httpx.AsyncClient(transport=httpx.MockTransport(capture)) as http:
        await fake.send_report(http, sms, True)
        await fake.send_report(http, sms, False, forged=True)

    good, forged = seen
    assert good.method == "POST"
    assert str(good.url) == f"{CALLBACK}&status=1&receiver=4522334488"
    assert forged.url.path.endswith("/not-the-secret")
    assert dict(forged.url.params) == {"ref": "01ABC", "status": "2", "receiver": "4522334488"}


async def test_only_the_send_endpoint_exists(client: httpx.AsyncClient) -> None:
    """Unknown methods are 404 and the send endpoint takes only POST."""
    assert (await client.post("/v2/nothing", json=body())).status_code == 404
    assert (await client.get("/v2/send")).status_code == 405


async def test_concurrent_sends_are_all_recorded(
    client: httpx.AsyncClient, fake: CompayaFake
) -> None:
    """Requests in parallel are each recorded once."""
    numbers = [f"45223344{i:02d}" for i in range(10)]
    await asyncio.gather(*(client.post("/v2/send", json=body(to=n)) for n in numbers))
    assert sorted(sms.to for sms in fake.messages) == sorted(f"+{n}" for n in numbers)


async def test_the_log_lists_accepted_messages_with_their_status(
    client: httpx.AsyncClient, fake: CompayaFake
) -> None:
    """getlog: every accepted SMS with its reference, and its status once the fake knows it."""
    fake.reset()
    await client.post("/v2/send", json=body(reference="01ABC", dlr_url=CALLBACK))
    await client.post("/v2/send", json=body(to="4522334489", reference="01DEF"))
    fake.lose_report(fake.find("01ABC"), delivered=True)

    response = await client.get("/v2/getlog")

    assert response.status_code == 200
    entries = {entry["userReference"]: entry for entry in response.json()}
    assert (entries["01ABC"]["dlrStatus"], entries["01ABC"]["dlrStatusText"]) == (1, "Received")
    assert entries["01DEF"]["dlrStatus"] == 0
    assert entries["01ABC"]["to"] == "4522334488"
    assert isinstance(entries["01ABC"]["timeSent"], int)


async def test_the_log_filters_by_time_and_recipient(
    client: httpx.AsyncClient, fake: CompayaFake
) -> None:
    """/getlog/<from>/<to>/<number> keeps only that window and that recipient."""
    fake.reset()
    fake.log_interval = 0
    await client.post("/v2/send", json=body(reference="01ABC"))
    await client.post("/v2/send", json=body(to="4522334489", reference="01DEF"))
    now = int(time.time())

    window = (await client.get(f"/v2/getlog/{now - 60}/{now + 60}/4522334489")).json()
    past = (await client.get(f"/v2/getlog/{now - 600}/{now - 300}")).json()
    fake.log_interval = 120

    assert [entry["userReference"] for entry in window] == ["01DEF"]
    assert past == []


async def test_the_log_allows_one_request_every_two_minutes_and_checks_credentials(
    client: httpx.AsyncClient, fake: CompayaFake
) -> None:
    """A second read within 2 minutes gets 429; wrong credentials 401."""
    fake.reset()
    async with httpx.AsyncClient(base_url=fake.url, auth=(USERNAME, "wrong")) as bad:
        assert (await bad.get("/v2/getlog")).status_code == 401
    assert (await client.get("/v2/getlog")).status_code == 200
    assert (await client.get("/v2/getlog")).status_code == 429
