"""The Twilio fake on its own, with plain httpx: it answers as Twilio's Messages API does."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from smsdesk.providers.twilio import signature
from smsdesk.testing.fakes import FailureMode
from smsdesk.testing.fakes.twilio import TwilioFake

TO = "+31612345678"
CALLBACK = "https://sms.example.com/webhooks/twilio/status/s3cret"


@pytest.fixture(scope="module")
def running_fake() -> Iterator[TwilioFake]:
    with TwilioFake() as started:
        yield started


@pytest.fixture
def fake(running_fake: TwilioFake) -> Iterator[TwilioFake]:
    """One fake server per file (starting one takes a while), emptied for each test."""
    yield running_fake
    running_fake.release_held()
    with running_fake.lock:
        running_fake.messages.clear()
        running_fake.requests.clear()
        running_fake.refused_numbers.clear()
        running_fake.inbound_url = running_fake.status_url = None


@pytest.fixture
async def client(fake: TwilioFake) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=fake.url, auth=(fake.account_sid, fake.auth_token)) as c:
        yield c


def messages_path(fake: TwilioFake, account: str | None = None) -> str:
    return f"/2010-04-01/Accounts/{account or fake.account_sid}/Messages.json"


async def create(
    client: httpx.AsyncClient, fake: TwilioFake, **fields: str
) -> tuple[int, dict[str, Any]]:
    form = {"To": TO, "From": "Smsdesk", "Body": "Hello", **fields}
    form = {k: v for k, v in form.items() if v != "-"}  # "-" leaves a field out
    response = await client.post(messages_path(fake), data=form)
    body: dict[str, Any] = response.json()
    return response.status_code, body


async def test_a_valid_message_is_accepted_and_recorded(
    client: httpx.AsyncClient, fake: TwilioFake
) -> None:
    """201 with the Message resource; the SMS is kept with its callback URL."""
    status, body = await create(client, fake, StatusCallback=CALLBACK)

    assert status == 201
    assert body["sid"].startswith("SM") and len(body["sid"]) == 34
    assert body["status"] == "queued"
    assert body["account_sid"] == fake.account_sid
    assert (body["to"], body["from"], body["body"]) == (TO, "Smsdesk", "Hello")
    assert body["num_segments"] == "1"
    assert body["direction"] == "outbound-api"
    assert body["uri"].endswith(f"/Messages/{body['sid']}.json")
    [sms] = fake.messages
    assert (sms.provider_id, sms.to, sms.sender, sms.text) == (body["sid"], TO, "Smsdesk", "Hello")
    assert sms.report_requested and sms.callback_url == CALLBACK
    assert not sms.unicode


async def test_unicode_is_recognised(client: httpx.AsyncClient, fake: TwilioFake) -> None:
    """A text GSM-7 cannot carry is recorded as unicode; GSM-7 extension characters are not."""
    await create(client, fake, Body="Ærø €[]")
    await create(client, fake, Body="Привет")
    assert [sms.unicode for sms in fake.messages] == [False, True]


async def test_a_messaging_service_may_replace_from(
    client: httpx.AsyncClient, fake: TwilioFake
) -> None:
    """Without From, a MessagingServiceSid is enough; the message is then 'accepted'."""
    service = "MG" + "0" * 32
    status, body = await create(client, fake, From="-", MessagingServiceSid=service)
    assert (status, body["status"], body["from"]) == (201, "accepted", None)
    assert fake.messages[0].sender == service


async def test_an_api_key_authenticates(fake: TwilioFake) -> None:
    """API key SID + secret are accepted as Basic credentials."""
    async with httpx.AsyncClient(
        base_url=fake.url, auth=(fake.api_key_sid, fake.api_key_secret)
    ) as client:
        status, _ = await create(client, fake)
    assert status == 201


@pytest.mark.parametrize(
    "auth", [("AC" + "0" * 32, "x"), ("ACcorrect", ""), None], ids=["wrong", "blank", "none"]
)
async def test_bad_credentials_get_401_20003(
    fake: TwilioFake, auth: tuple[str, str] | None
) -> None:
    """Wrong or missing credentials: Twilio's 401 with code 20003; nothing recorded."""
    async with httpx.AsyncClient(base_url=fake.url, auth=auth) as client:
        response = await client.post(messages_path(fake), data={"To": TO, "Body": "x"})
    assert response.status_code == 401
    assert response.json()["code"] == 20003
    assert fake.messages == []


async def test_another_accounts_path_is_not_found(
    client: httpx.AsyncClient, fake: TwilioFake
) -> None:
    """Good credentials on another account's path: 404 with 20404."""
    response = await client.post(messages_path(fake, "AC" + "1" * 32), data={"To": TO})
    assert (response.status_code, response.json()["code"]) == (404, 20404)


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"To": "-"}, 21604),
        ({"To": "0612345678"}, 21211),
        ({"To": "+0123"}, 21211),
        ({"From": "-"}, 21603),
        ({"From": "Far too long a name"}, 21212),
        ({"From": "123456789012"}, 21212),
        ({"From": "-", "MessagingServiceSid": "MG1"}, 21701),
        ({"Body": "-"}, 21602),
        ({"Body": ""}, 21602),
        ({"Body": "x" * 1601}, 21617),
        ({"StatusCallback": "ftp://example.com/x"}, 21609),
        ({"StatusCallback": "https://bad_host.example.com/x"}, 21609),
        ({"ValidityPeriod": "0"}, 21624),
        ({"ValidityPeriod": "36001"}, 21624),
    ],
)
async def test_invalid_fields_get_twilios_codes(
    client: httpx.AsyncClient, fake: TwilioFake, fields: dict[str, str], code: int
) -> None:
    """Each invalid field is refused with HTTP 400 and Twilio's error code and body."""
    status, body = await create(client, fake, **fields)

    assert (status, body["code"], body["status"]) == (400, code, 400)
    assert body["message"]
    assert body["more_info"] == f"https://www.twilio.com/docs/errors/{code}"
    assert fake.messages == []


async def test_a_json_body_is_not_a_form(client: httpx.AsyncClient, fake: TwilioFake) -> None:
    """Twilio reads only forms: a JSON body lacks 'To' (21604)."""
    response = await client.post(messages_path(fake), json={"To": TO, "Body": "x"})
    assert (response.status_code, response.json()["code"]) == (400, 21604)


async def test_refused_numbers_get_21211(client: httpx.AsyncClient, fake: TwilioFake) -> None:
    """A number the test refuses is 'not a valid phone number'."""
    fake.refuse_number(TO)
    status, body = await create(client, fake)
    assert (status, body["code"]) == (400, 21211)


@pytest.mark.parametrize(
    ("mode", "status", "code"),
    [
        (FailureMode.SERVER_ERROR, 500, 20500),
        (FailureMode.THROTTLE, 429, 20429),
        (FailureMode.AUTH, 401, 20003),
        (FailureMode.PARTIAL, 400, 21211),
    ],
)
async def test_failure_modes_answer_as_twilio(
    client: httpx.AsyncClient, fake: TwilioFake, mode: FailureMode, status: int, code: int
) -> None:
    """Each failure mode gives Twilio's answer once; the next request succeeds."""
    fake.fail_next(mode)
    response = await client.post(messages_path(fake), data={"To": TO, "From": "A", "Body": "x"})

    assert (response.status_code, response.json()["code"]) == (status, code)
    if mode is FailureMode.THROTTLE:
        assert response.headers["retry-after"] == "1"
    assert fake.messages == []
    assert (await create(client, fake))[0] == 201


async def test_timeout_holds_until_released(client: httpx.AsyncClient, fake: TwilioFake) -> None:
    """TIMEOUT answers nothing before the client gives up."""
    fake.fail_next(FailureMode.TIMEOUT)
    with pytest.raises(httpx.ReadTimeout):
        await client.post(
            messages_path(fake), data={"To": TO}, timeout=httpx.Timeout(0.2, connect=5.0)
        )
    fake.release_held()
    assert len(fake.send_requests()) == 1


async def test_reports_and_inbound_are_signed_forms(
    client: httpx.AsyncClient, fake: TwilioFake
) -> None:
    """Reports go to the message's StatusCallback, inbound to the portal URL, both signed."""
    await create(client, fake, StatusCallback=CALLBACK)
    inbound_url = "https://sms.example.com/webhooks/twilio/inbound/s3cret"
    fake.point_callbacks(None, inbound_url)
    seen: list[httpx.Request] = []

    def record(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200)

    async with httpx.AsyncClient(transport=httpx.MockTransport(record)) as webhook:
        await fake.send_report(webhook, fake.messages[0], False)
        await fake.send_report(webhook, fake.messages[0], True, forged=True)
        await fake.send_inbound(webhook, "+31611122233", "+31612000000", "Hi")

    report, forged, inbound = seen
    for request, url in ((report, CALLBACK), (forged, CALLBACK), (inbound, inbound_url)):
        assert str(request.url) == url
        assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    report_form = dict(httpx.QueryParams(report.content.decode()))
    assert report_form["MessageStatus"] == report_form["SmsStatus"] == "undelivered"
    assert report_form["ErrorCode"] == "30003"
    assert report_form["MessageSid"] == fake.messages[0].provider_id
    assert len(report_form["RawDlrDoneDate"]) == 10
    expected = signature(fake.auth_token, CALLBACK, report_form.items())
    assert report.headers["x-twilio-signature"] == expected
    forged_form = dict(httpx.QueryParams(forged.content.decode()))
    assert forged.headers["x-twilio-signature"] != signature(
        fake.auth_token, CALLBACK, forged_form.items()
    )
    inbound_form = dict(httpx.QueryParams(inbound.content.decode()))
    assert (inbound_form["From"], inbound_form["Body"], inbound_form["SmsStatus"]) == (
        "+31611122233",
        "Hi",
        "received",
    )
    assert inbound_form["MessageSid"] == inbound_form["SmsSid"] == inbound_form["SmsMessageSid"]
    assert inbound.headers["x-twilio-signature"] == signature(
        fake.auth_token, inbound_url, inbound_form.items()
    )


def message_path(fake: TwilioFake, message_sid: str) -> str:
    return f"/2010-04-01/Accounts/{fake.account_sid}/Messages/{message_sid}.json"


async def test_a_message_can_be_fetched_with_its_current_status(
    client: httpx.AsyncClient, fake: TwilioFake
) -> None:
    """GET the message resource: queued at first; delivered once the fake knows, report or not."""
    _, created = await create(client, fake, StatusCallback=CALLBACK)
    response = await client.get(message_path(fake, created["sid"]))
    assert response.status_code == 200
    assert (response.json()["sid"], response.json()["status"]) == (created["sid"], "queued")

    fake.lose_report(fake.find(created["sid"]), delivered=False)
    body = (await client.get(message_path(fake, created["sid"]))).json()
    assert (body["status"], body["error_code"]) == ("undelivered", 30003)
    assert fake.query_requests()[-1].method == "GET"


async def test_fetching_checks_credentials_and_knows_its_messages(
    client: httpx.AsyncClient, fake: TwilioFake
) -> None:
    """Wrong credentials get 401/20003; an unknown SID 404 with Twilio's error body."""
    _, created = await create(client, fake)
    async with httpx.AsyncClient(base_url=fake.url, auth=(fake.account_sid, "wrong")) as bad:
        refused = await bad.get(message_path(fake, created["sid"]))
    assert (refused.status_code, refused.json()["code"]) == (401, 20003)

    missing = await client.get(message_path(fake, "SM" + "0" * 32))
    assert missing.status_code == 404
    assert missing.json()["code"] == 20404
    assert missing.json()["more_info"].endswith("/20404")


async def test_a_fetch_failure_affects_queries_not_sends(
    client: httpx.AsyncClient, fake: TwilioFake
) -> None:
    """fail_next_query makes the next fetch fail and leaves sends alone."""
    fake.fail_next_query(FailureMode.SERVER_ERROR)
    status, created = await create(client, fake)
    assert status == 201
    failed = await client.get(message_path(fake, created["sid"]))
    assert (failed.status_code, failed.json()["code"]) == (500, 20500)
    assert (await client.get(message_path(fake, created["sid"]))).status_code == 200
