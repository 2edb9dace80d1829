"""The fake Textlocal on its own, with plain httpx: checks, error codes, failure modes, records."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest

from smsdesk.testing.fakes import FailureMode
from smsdesk.testing.fakes.txtlocal import API_KEY, HASH, PASSWORD, USERNAME, TxtlocalFake

STATUS_URL = "http://smsdesk.test/webhooks/txtlocal/status/s3cret"
INBOUND_URL = "http://smsdesk.test/webhooks/txtlocal/inbound/s3cret"


@pytest.fixture
def fake() -> Iterator[TxtlocalFake]:
    with TxtlocalFake() as running:
        yield running


@pytest.fixture
async def client(fake: TxtlocalFake) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=fake.url, timeout=2.0) as http:
        yield http


def send_form(**changes: str | None) -> dict[str, str]:
    form: dict[str, str | None] = {
        "apikey": API_KEY,
        "numbers": "447700900123",
        "message": "Hello there",
        "sender": "Smsdesk",
        "custom": "msg-1",
    }
    form.update(changes)
    return {k: v for k, v in form.items() if v is not None}


async def post_send(client: httpx.AsyncClient, **changes: str | None) -> httpx.Response:
    return await client.post("/send/", data=send_form(**changes))


def error_code(response: httpx.Response) -> int:
    body: dict[str, Any] = response.json()
    assert response.status_code == 200 and body["status"] == "failure", body
    code: int = body["errors"][0]["code"]
    return code


async def test_an_accepted_sms_is_answered_and_recorded(
    fake: TxtlocalFake, client: httpx.AsyncClient
) -> None:
    response = await post_send(client, receipt_url=STATUS_URL)

    body = response.json()
    assert body["status"] == "success"
    assert body["num_messages"] == 1 and body["custom"] == "msg-1"
    assert body["receipt_url"] == STATUS_URL
    [message] = body["messages"]
    assert message["recipient"] == 447700900123
    [sms] = fake.messages
    assert (sms.provider_id, sms.to, sms.text, sms.sender) == (
        message["id"],
        "+447700900123",
        "Hello there",
        "Smsdesk",
    )
    assert (sms.reference, sms.callback_url, sms.unicode) == ("msg-1", STATUS_URL, False)


async def test_get_with_the_query_string_and_the_apiKey_spelling_work(
    fake: TxtlocalFake, client: httpx.AsyncClient
) -> None:
    """The API takes GET as well as POST, and documents both apikey and apiKey."""
    params = {**send_form(apikey=None), "apiKey": API_KEY}
    response = await client.get("/send/", params=params)

    assert response.json()["status"] == "success"
    assert len(fake.messages) == 1


@pytest.mark.parametrize(
    "login",
    [
        {"apikey": "wrong"},
        {"apikey": None},
        {"apikey": None, "username": USERNAME, "password": "wrong"},
        {"apikey": None, "username": "someone@else", "password": PASSWORD},
    ],
)
async def test_bad_logins_get_error_3(
    fake: TxtlocalFake, client: httpx.AsyncClient, login: dict[str, str | None]
) -> None:
    response = await post_send(client, **login)

    assert error_code(response) == 3
    assert response.json()["errors"][0]["message"] == "Invalid login details"
    assert fake.messages == []


@pytest.mark.parametrize("secret", [{"password": PASSWORD}, {"hash": HASH}])
async def test_the_legacy_login_is_accepted_with_password_or_hash(
    client: httpx.AsyncClient, secret: dict[str, str]
) -> None:
    response = await post_send(client, apikey=None, username=USERNAME, **secret)

    assert response.json()["status"] == "success"


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"numbers": None}, 4),
        ({"numbers": " , "}, 4),
        ({"message": None}, 5),
        ({"message": "x" * 767}, 6),
        ({"sender": "ab"}, 43),
        ({"sender": "TwelveLetter"}, 43),
        ({"sender": "12345678901234"}, 43),
        ({"sender": "Shop!"}, 43),
        ({"numbers": "+447700900123"}, 32),
        ({"numbers": "44 7700 900123"}, 32),
        ({"numbers": "123"}, 32),
    ],
)
async def test_invalid_requests_get_the_documented_error_code(
    fake: TxtlocalFake, client: httpx.AsyncClient, changes: dict[str, str | None], code: int
) -> None:
    response = await post_send(client, **changes)

    assert error_code(response) == code
    assert fake.messages == []


async def test_senders_within_the_rules_are_accepted(
    fake: TxtlocalFake, client: httpx.AsyncClient
) -> None:
    for sender in ("Jims Autos", "ABC", "4477009001234"):
        assert (await post_send(client, sender=sender)).json()["status"] == "success"
    assert [sms.sender for sms in fake.messages] == ["Jims Autos", "ABC", "4477009001234"]


async def test_a_missing_sender_uses_the_accounts_default(
    fake: TxtlocalFake, client: httpx.AsyncClient
) -> None:
    await post_send(client, sender=None)

    [sms] = fake.messages
    assert sms.sender == "Txtlocal"


async def test_a_refused_number_gets_error_51_with_an_invalid_number_warning(
    fake: TxtlocalFake, client: httpx.AsyncClient
) -> None:
    fake.refuse_number("+447700900123")

    response = await post_send(client)

    assert error_code(response) == 51
    assert response.json()["warnings"][0]["code"] == 3
    assert fake.messages == []


async def test_a_refused_number_among_others_is_a_warning(
    fake: TxtlocalFake, client: httpx.AsyncClient
) -> None:
    fake.refuse_number("+447700900123")

    response = await post_send(client, numbers="447700900123,447700900456")

    body = response.json()
    assert body["status"] == "success"
    assert body["warnings"][0]["numbers"] == "447700900123"
    assert [sms.to for sms in fake.messages] == ["+447700900456"]


async def test_unicode_text_is_intact_only_with_the_unicode_flag(
    fake: TxtlocalFake, client: httpx.AsyncClient
) -> None:
    """Without unicode=true the handset gets '?' for every non-GSM character."""
    await post_send(client, message="Привет ✓ €", unicode="true")
    await post_send(client, message="Привет ✓ €")

    flagged, plain = fake.messages
    assert (flagged.text, flagged.unicode) == ("Привет ✓ €", True)
    assert (plain.text, plain.unicode, plain.fields["garbled"]) == ("?????? ? €", False, True)


async def test_spaces_encoded_as_percent_20_or_plus_both_decode(
    fake: TxtlocalFake, client: httpx.AsyncClient
) -> None:
    common = f"apikey={API_KEY}&numbers=447700900123"
    headers = {"content-type": "application/x-www-form-urlencoded"}
    await client.post("/send/", content=f"{common}&message=a%20b", headers=headers)
    await client.post("/send/", content=f"{common}&message=a+b", headers=headers)

    assert [sms.text for sms in fake.messages] == ["a b", "a b"]


async def test_test_mode_answers_without_sending_or_charging(
    fake: TxtlocalFake, client: httpx.AsyncClient
) -> None:
    response = await post_send(client, test="true")

    body = response.json()
    assert (body["status"], body["test_mode"], body["balance"]) == ("success", True, 1000)
    assert fake.messages == []


async def test_sends_cost_credits_and_an_empty_account_gets_error_7(
    fake: TxtlocalFake, client: httpx.AsyncClient
) -> None:
    long_text = "x" * 200  # two parts
    assert (await post_send(client, message=long_text)).json()["cost"] == 2
    fake.balance = 1

    assert error_code(await post_send(client, message=long_text)) == 7
    assert len(fake.messages) == 1


async def test_an_unknown_command_gets_error_2(
    fake: TxtlocalFake, client: httpx.AsyncClient
) -> None:
    response = await client.post("/api2/send/", data=send_form())

    assert error_code(response) == 2
    assert fake.send_requests() == [] and fake.messages == []


async def test_failure_modes_answer_as_documented(
    fake: TxtlocalFake, client: httpx.AsyncClient
) -> None:
    fake.fail_next(FailureMode.SERVER_ERROR)
    fake.fail_next(FailureMode.THROTTLE)
    fake.fail_next(FailureMode.AUTH)

    server_error = await post_send(client)
    throttled = await post_send(client)
    refused = await post_send(client)
    normal = await post_send(client)

    assert server_error.status_code == 500
    assert (throttled.status_code, throttled.headers["retry-after"]) == (429, "1")
    assert error_code(refused) == 3
    assert normal.json()["status"] == "success"
    assert len(fake.messages) == 1
    assert len(fake.send_requests()) == 4


async def test_a_timeout_holds_the_answer_until_released(
    fake: TxtlocalFake, client: httpx.AsyncClient
) -> None:
    fake.fail_next(FailureMode.TIMEOUT)

    with pytest.raises(httpx.ReadTimeout):
        await client.post("/send/", data=send_form(), timeout=httpx.Timeout(0.2, connect=5.0))
    fake.release_held()

    assert fake.messages == []


def form_of(request: httpx.Request) -> dict[str, str]:
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    return dict(parse_qsl(request.content.decode(), keep_blank_values=True))


async def capture(send: Any) -> httpx.Request:
    seen: list[httpx.Request] = []

    def keep(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200)

    async with httpx.AsyncClient(transport=httpx.MockTransport(keep)) as http:
        await send(http)
    [request] = seen
    return request


async def test_receipts_are_posted_forms_to_the_receipt_url(
    fake: TxtlocalFake, client: httpx.AsyncClient
) -> None:
    await post_send(client, receipt_url=STATUS_URL)
    [sms] = fake.messages

    delivered = await capture(lambda http: fake.send_report(http, sms, True))
    forged = await capture(lambda http: fake.send_report(http, sms, False, forged=True))

    assert (delivered.method, str(delivered.url)) == ("POST", STATUS_URL)
    form = form_of(delivered)
    assert (form["number"], form["status"], form["customID"]) == ("447700900123", "D", "msg-1")
    assert len(form["datetime"]) == 19
    assert form_of(forged)["status"] == "U"
    assert str(forged.url).endswith("/not-the-secret")


async def test_without_a_receipt_url_receipts_go_to_the_account_url(
    fake: TxtlocalFake, client: httpx.AsyncClient
) -> None:
    fake.point_callbacks(STATUS_URL, INBOUND_URL)
    await post_send(client)
    [sms] = fake.messages

    request = await capture(lambda http: fake.send_report(http, sms, True))

    assert sms.report_requested and sms.callback_url is None
    assert str(request.url) == STATUS_URL


async def test_inbox_forwards_are_posted_forms(fake: TxtlocalFake) -> None:
    fake.point_callbacks(STATUS_URL, INBOUND_URL)

    request = await capture(
        lambda http: fake.send_inbound(http, "+447700900999", "+447860012345", "Yes")
    )

    assert str(request.url) == INBOUND_URL
    form = form_of(request)
    assert (form["sender"], form["inNumber"], form["content"]) == (
        "447700900999",
        "447860012345",
        "Yes",
    )
    assert {"keyword", "comments", "email", "credits"} <= set(form)
