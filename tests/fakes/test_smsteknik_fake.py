"""The SMS Teknik fake itself, spoken to with plain httpx: answers as SMS Teknik documents."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest

from smsdesk.testing.fakes import FailureMode
from smsdesk.testing.fakes.smsteknik import COMPANY, PASSWORD, USERNAME, SmsTeknikFake

CREDENTIALS = {"id": COMPANY, "user": USERNAME, "pass": PASSWORD}
CALLBACK = "http://127.0.0.1:9/webhooks/smsteknik/status/s3cret"


def document(
    text: str | None = "Hello",
    numbers: tuple[str, ...] = ("+46701234567",),
    **fields: str,
) -> bytes:
    """An `<sms-teknik>` request as a client would write it."""
    values = {"operationtype": "0", "smssender": "Smsdesk", "customid": "ref-1", **fields}
    body = "".join(f"<{name}>{value}</{name}>" for name, value in values.items())
    if text is not None:
        body += f"<udmessage><![CDATA[{text}]]></udmessage>"
    items = "".join(f"<recipient><nr>{n}</nr></recipient>" for n in numbers)
    return f'<?xml version="1.0"?><sms-teknik>{body}<items>{items}</items></sms-teknik>'.encode()


@pytest.fixture(scope="module")
def server() -> Iterator[SmsTeknikFake]:
    with SmsTeknikFake() as started:
        yield started


@pytest.fixture
def fake(server: SmsTeknikFake) -> SmsTeknikFake:
    server.reset()
    return server


@pytest.fixture
async def client(fake: SmsTeknikFake) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=fake.url, timeout=5) as http:
        yield http


async def post(
    client: httpx.AsyncClient, body: bytes, params: dict[str, str] | None = None, **kw: Any
) -> httpx.Response:
    return await client.post(
        "/send/xml/", params=CREDENTIALS if params is None else params, content=body, **kw
    )


async def test_an_accepted_sms_is_answered_with_its_smsid_and_recorded(
    client: httpx.AsyncClient, fake: SmsTeknikFake
) -> None:
    """HTTP 200, text/plain, the SMSID; the SMS is kept with its number, text and callback."""
    body = document(deliverystatustype="3", deliverystatusaddress=CALLBACK)
    answer = await post(client, body)

    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain")
    assert answer.text.isdigit()
    [sms] = fake.messages
    assert (sms.provider_id, sms.to, sms.text, sms.sender) == (
        answer.text,
        "+46701234567",
        "Hello",
        "Smsdesk",
    )
    assert (sms.reference, sms.report_requested, sms.callback_url) == ("ref-1", True, CALLBACK)


async def test_several_recipients_get_one_answer_each_in_order(
    client: httpx.AsyncClient, fake: SmsTeknikFake
) -> None:
    """';'-separated answers, a refusal in place: '1950940234;0:Invalid phonenumber - #…#'."""
    answer = await post(client, document(numbers=("+46701234567", "+47123", "0701234568")))

    first, refused, third = answer.text.split(";")
    assert first.isdigit() and third.isdigit()
    assert refused == "0:Invalid phonenumber - #+47123#"
    assert [sms.to for sms in fake.messages] == ["+46701234567", "+46701234568"]


@pytest.mark.parametrize(
    "params",
    [
        {**CREDENTIALS, "pass": "wrong"},
        {**CREDENTIALS, "id": "Smsdesk Akeri AB"},
        {"user": USERNAME, "pass": PASSWORD},
        {},
    ],
)
async def test_bad_credentials_are_access_denied(
    client: httpx.AsyncClient, fake: SmsTeknikFake, params: dict[str, str]
) -> None:
    """Wrong or missing id, user or pass: HTTP 200 with '0:Access denied', nothing sent."""
    answer = await post(client, document(), params)

    assert (answer.status_code, answer.text) == (200, "0:Access denied")
    assert fake.messages == []


async def test_the_company_name_is_read_as_utf8(client: httpx.AsyncClient) -> None:
    """'Å' in the id arrives %-encoded as UTF-8 (C3 85) and is accepted."""
    answer = await post(client, document())
    assert "id=Smsdesk+%C3%85keri+AB" in str(answer.request.url)
    assert answer.text.isdigit()


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"<sms-teknik><udmessage>", "0:Parse error, "),
        (b"not xml at all", "0:Parse error, "),
        (b"<other><udmessage>Hi</udmessage></other>", "0:Parse error, "),
        (document(text=None), "0:The required XML-tag <udmessage> is missing"),
        (document(text=""), "0:Message could't be empty"),
        (document(text="   "), "0:Message could't be empty"),
        (document(numbers=()), "0:No Valid recipients"),
        (document(smssender="Far too long a name"), "0:Invalid sender - #Far too long a name#"),
    ],
)
async def test_bad_documents_are_refused_as_sms_teknik_answers(
    client: httpx.AsyncClient, fake: SmsTeknikFake, body: bytes, expected: str
) -> None:
    """Unreadable XML, a missing or empty udmessage, no recipients, an impossible sender."""
    answer = await post(client, body)

    assert answer.status_code == 200
    assert answer.text.startswith(expected)
    assert fake.messages == []


@pytest.mark.parametrize(
    ("number", "usee164", "expected"),
    [
        ("+461234", "0", "0:Invalid phonenumber - #+461234#"),
        ("+4670123456789012", "0", "0:Invalid phonenumber - #+4670123456789012#"),
        ("+46abc1234567", "0", "0:Invalid phonenumber - #+46abc1234567#"),
        ("+99912345678", "0", None),
        ("+99912345678", "1", "0:Invalid phonenumber (e164) - #+99912345678#"),
        ("+46701234567", "1", None),
    ],
)
async def test_numbers_are_checked_for_length_and_with_usee164_for_range(
    client: httpx.AsyncClient, number: str, usee164: str, expected: str | None
) -> None:
    """8 to 16 characters including '+'; usee164 1 also wants a range defined in E.164."""
    answer = await post(client, document(numbers=(number,), usee164=usee164))

    if expected is None:
        assert answer.text.isdigit()
    else:
        assert answer.text == expected


async def test_refused_and_blocked_numbers_and_an_empty_account(
    client: httpx.AsyncClient, fake: SmsTeknikFake
) -> None:
    """refused_numbers are invalid, blocked ones 'Number is blocked', no credit 'No SMS Left'."""
    fake.refuse_number("+46709999999")
    fake.blocked_numbers.add("+46708888888")
    answer = await post(client, document(numbers=("+46709999999", "+46708888888")))
    assert answer.text == "0:Invalid phonenumber - #+46709999999#;0:Number is blocked"

    fake.credits = 1
    assert (await post(client, document())).text.isdigit()
    assert (await post(client, document())).text == "0:No SMS Left"
    assert len(fake.messages) == 1


async def test_operation_type_5_is_unicode(client: httpx.AsyncClient, fake: SmsTeknikFake) -> None:
    """The text arrives whole either way; operation type 5 marks it Unicode."""
    await post(client, document(text="Привет ✓", operationtype="5"))
    await post(client, document(text="Hej då"))

    assert [(s.text, s.unicode) for s in fake.messages] == [("Привет ✓", True), ("Hej då", False)]


@pytest.mark.parametrize(
    ("mode", "status", "text"),
    [
        (FailureMode.SERVER_ERROR, 500, "Internal Server Error"),
        (FailureMode.THROTTLE, 429, "Too Many Requests"),
        (FailureMode.AUTH, 200, "0:Access denied"),
    ],
)
async def test_failure_modes_answer_as_documented(
    client: httpx.AsyncClient, fake: SmsTeknikFake, mode: FailureMode, status: int, text: str
) -> None:
    """5xx, 429 with Retry-After (UNCONFIRMED for SMS Teknik), and 'Access denied'."""
    fake.fail_next(mode)
    answer = await post(client, document())

    assert (answer.status_code, answer.text) == (status, text)
    if mode is FailureMode.THROTTLE:
        assert answer.headers["retry-after"] == "1"
    assert fake.messages == []
    assert (await post(client, document())).text.isdigit()


async def test_timeout_holds_the_request_until_released(
    client: httpx.AsyncClient, fake: SmsTeknikFake
) -> None:
    """The client gives up first; once released the fake answers 503 and sent nothing."""
    fake.fail_next(FailureMode.TIMEOUT)
    with pytest.raises(httpx.ReadTimeout):
        await post(client, document(), timeout=httpx.Timeout(0.2, connect=5.0))
    fake.release_held()
    assert fake.messages == []


async def test_partial_refuses_the_first_recipient_only(
    client: httpx.AsyncClient, fake: SmsTeknikFake
) -> None:
    """In a several-recipient request the first is refused as an invalid number."""
    fake.fail_next(FailureMode.PARTIAL)
    answer = await post(client, document(numbers=("+46701234567", "+46701234568")))

    refused, accepted = answer.text.split(";")
    assert refused == "0:Invalid phonenumber - #+46701234567#"
    assert accepted.isdigit()
    assert [sms.to for sms in fake.messages] == ["+46701234568"]


async def test_reports_are_sent_as_the_delivery_status_type_asks(
    client: httpx.AsyncClient, fake: SmsTeknikFake
) -> None:
    """Type 3 is a POST form with nr, ref, state, text, datetime, customid, smsparts."""
    await post(client, document(deliverystatustype="3", deliverystatusaddress=CALLBACK))
    [sms] = fake.messages
    seen: list[httpx.Request] = []

    def record(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200)

    async with httpx.AsyncClient(transport=httpx.MockTransport(record)) as capture:
        await fake.send_report(capture, sms, True)
        await fake.send_report(capture, sms, False, forged=True)

    delivered, forged = seen
    assert delivered.method == "POST" and str(delivered.url) == CALLBACK
    assert delivered.headers["content-type"] == "application/x-www-form-urlencoded"
    form = dict(parse_qsl(delivered.content.decode()))
    assert set(form) == {"nr", "ref", "state", "text", "datetime", "customid", "smsparts"}
    assert (form["ref"], form["state"], form["customid"]) == (sms.provider_id, "DELIVRD", "ref-1")
    assert dict(parse_qsl(forged.content.decode()))["state"] == "UNDELIV"
    assert str(forged.url).endswith("/not-the-secret")


async def test_replies_are_forwarded_as_a_form(fake: SmsTeknikFake) -> None:
    """A reply goes to the inbound URL with the sender in nr and its text."""
    fake.point_callbacks(CALLBACK, "http://127.0.0.1:9/webhooks/smsteknik/inbound/s3cret")
    seen: list[httpx.Request] = []

    def record(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200)

    async with httpx.AsyncClient(transport=httpx.MockTransport(record)) as capture:
        await fake.send_inbound(capture, "+46701234567", "+46700000000", "Ja tack")

    [reply] = seen
    form = dict(parse_qsl(reply.content.decode()))
    assert (form["nr"], form["to"], form["text"]) == ("+46701234567", "+46700000000", "Ja tack")
    assert form["ref"].isdigit()
