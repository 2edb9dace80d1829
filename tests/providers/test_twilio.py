"""The Twilio module against its fake on loopback: requests, errors, signatures, callbacks."""

from __future__ import annotations

import hashlib
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

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
from smsdesk.providers.twilio import (
    ERRORS,
    STATUSES,
    TwilioProvider,
    TwilioSettings,
    signature,
    url_variants,
)
from smsdesk.testing.fakes import FailureMode
from smsdesk.testing.fakes.twilio import TwilioFake
from tests.support.harness import running_service

PUBLIC = "https://sms.example.com"
CALLBACK = f"{PUBLIC}/webhooks/twilio/status/s3cret"
TO = "+31612345678"
VECTOR_URL = "https://mycompany.com/myapp.php?foo=1&bar=2"
VECTOR_PARAMS = {
    "CallSid": "CA1234567890ABCDE",
    "Digits": "1234",
    "From": "+14158675309",
    "To": "+18005551212",
    "Caller": "+14158675309",
}
VECTOR_BODY = b'{"property": "value", "boolean": true}'
VECTOR_HASH = "0a1ff7634d9ab3b95db5c9a2dfe9416e41502b283a80c7cf19632632f96e6620"
SID = "SM" + "a" * 32


def outbound(**changes: Any) -> OutboundSms:
    fields: dict[str, Any] = {
        "message_id": "01TESTMESSAGE",
        "to": TO,
        "sender": "Smsdesk",
        "text": "Hello",
        "encoding": "gsm7",
        "segments": 1,
        "priority": 2,
        "status_callback_url": CALLBACK,
    }
    return OutboundSms(**{**fields, **changes})


@pytest.fixture(scope="module")
def running_fake() -> Iterator[TwilioFake]:
    with TwilioFake() as started:
        yield started


@pytest.fixture
def fake(running_fake: TwilioFake) -> Iterator[TwilioFake]:
    """One fake server per file (starting one takes a while), emptied for each test."""
    yield running_fake
    running_fake.reset()


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


def provider_for(
    settings: dict[str, Any], http: httpx.AsyncClient, tmp_path: Path, public_url: str = PUBLIC
) -> TwilioProvider:
    context = ProviderContext(data_dir=tmp_path, public_url=public_url)
    return TwilioProvider(TwilioSettings(**settings), http, context)


@pytest.fixture
def provider(fake: TwilioFake, http: httpx.AsyncClient, tmp_path: Path) -> TwilioProvider:
    return provider_for(fake.module_settings(), http, tmp_path)


def offline(tmp_path: Path, **settings: Any) -> TwilioProvider:
    """A provider that is never asked to send: for callbacks and pure functions."""
    base = {"account_sid": "AC" + "0" * 32, "auth_token": "12345", **settings}
    return provider_for(base, httpx.AsyncClient(), tmp_path)


def answering(status: int, body: Any, tmp_path: Path) -> TwilioProvider:
    """A provider whose every request gets this one answer."""

    def handler(request: httpx.Request) -> httpx.Response:
        if isinstance(body, bytes):
            return httpx.Response(status, content=body)
        return httpx.Response(status, json=body)

    client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    return provider_for({"account_sid": "AC" + "0" * 32, "auth_token": "x"}, client, tmp_path)


def form_request(url: str, fields: dict[str, str], token: str = "12345") -> CallbackRequest:
    return CallbackRequest(
        method="POST",
        url=url,
        headers={
            "content-type": "application/x-www-form-urlencoded",
            "x-twilio-signature": signature(token, url, fields.items()),
        },
        query={},
        body=urlencode(fields).encode(),
        form=fields,
    )


def captured(request: httpx.Request) -> CallbackRequest:
    """An HTTP request the fake made, as the webhook router hands it to the module."""
    body = request.content
    return CallbackRequest(
        method=request.method,
        url=str(request.url),
        headers=dict(request.headers),
        query=dict(request.url.params),
        body=body,
        form=dict(parse_qsl(body.decode(), keep_blank_values=True)),
    )


class Recorder:
    """Stands in for smsdesk's webhook endpoint: keeps what the fake posts."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self.client = httpx.AsyncClient(transport=httpx.MockTransport(self.handle))

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return httpx.Response(200)


# -- the request ------------------------------------------------------------------------------


async def test_a_message_is_posted_as_twilio_form_with_basic_auth(
    provider: TwilioProvider, fake: TwilioFake
) -> None:
    """One form POST to the account's Messages.json with To, From, Body and StatusCallback."""
    [result] = await provider.send([outbound()])

    [request] = fake.send_requests()
    assert request.path == f"/2010-04-01/Accounts/{fake.account_sid}/Messages.json"
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    assert request.headers["authorization"].startswith("Basic ")
    assert request.form() == {
        "To": [TO],
        "Body": ["Hello"],
        "From": ["Smsdesk"],
        "StatusCallback": [CALLBACK],
    }
    [sms] = fake.messages
    assert result.provider_message_id == sms.provider_id
    assert result.raw_code == "queued"
    assert sms.provider_id.startswith("SM") and len(sms.provider_id) == 34


async def test_no_delivery_report_means_no_status_callback(
    provider: TwilioProvider, fake: TwilioFake
) -> None:
    """A message sent without delivery report asks Twilio for no callback."""
    await provider.send([outbound(delivery_report=False)])

    [sms] = fake.messages
    assert "StatusCallback" not in sms.fields
    assert not sms.report_requested


async def test_unicode_text_goes_as_is(provider: TwilioProvider, fake: TwilioFake) -> None:
    """Twilio picks the encoding itself; the text arrives unchanged and is seen as UCS-2."""
    await provider.send([outbound(text="Привет ✓ 你好", encoding="ucs2")])

    [sms] = fake.messages
    assert sms.text == "Привет ✓ 你好"
    assert sms.unicode


@pytest.mark.parametrize(
    ("sender", "sent_as"),
    [("31612000000", "+31612000000"), ("+4790000000", "+4790000000"), ("12345", "12345")],
)
async def test_numeric_senders_go_in_e164_and_short_codes_as_they_are(
    provider: TwilioProvider, fake: TwilioFake, sender: str, sent_as: str
) -> None:
    """A sender number gets its '+', a short code keeps its digits."""
    await provider.send([outbound(sender=sender)])

    assert fake.messages[0].fields["From"] == sent_as


async def test_a_messaging_service_replaces_the_sender(
    fake: TwilioFake, http: httpx.AsyncClient, tmp_path: Path
) -> None:
    """With a messaging service SID set, Twilio gets MessagingServiceSid and no From."""
    service = "MG" + "1" * 32
    provider = provider_for(
        {**fake.module_settings(), "messaging_service_sid": service}, http, tmp_path
    )
    [result] = await provider.send([outbound()])

    [sms] = fake.messages
    assert sms.fields["MessagingServiceSid"] == service
    assert "From" not in sms.fields
    assert result.raw_code == "accepted"


async def test_an_api_key_authenticates_instead_of_the_auth_token(
    fake: TwilioFake, http: httpx.AsyncClient, tmp_path: Path
) -> None:
    """API key SID and secret are the Basic credentials when set."""
    settings = {
        **fake.module_settings(),
        "auth_token": "",
        "api_key_sid": fake.api_key_sid,
        "api_key_secret": fake.api_key_secret,
    }
    [result] = await provider_for(settings, http, tmp_path).send([outbound()])

    assert result.accepted
    assert len(fake.messages) == 1


async def test_validity_follows_expiry(provider: TwilioProvider, fake: TwilioFake) -> None:
    """An expiry an hour away becomes ValidityPeriod of about 3600 seconds."""
    await provider.send([outbound(expires_at=time.time() + 3600)])

    assert 3590 <= int(fake.messages[0].fields["ValidityPeriod"]) <= 3600


FORM_ONLY = TwilioProvider(TwilioSettings(), httpx.AsyncClient(), ProviderContext(Path(".")))


@given(st.floats(min_value=-1e6, max_value=1e7, allow_nan=False))
def test_validity_is_clamped_to_twilios_range(seconds_left: float) -> None:
    """ValidityPeriod is always a whole number of seconds from 1 to 36000."""
    provider = FORM_ONLY
    now = 1_700_000_000.0
    validity = int(provider.form(outbound(expires_at=now + seconds_left), now)["ValidityPeriod"])
    assert 1 <= validity <= 36000
    if 1 <= seconds_left <= 36000:
        assert validity - 1 < seconds_left <= validity


async def test_a_text_longer_than_1600_characters_is_refused_before_sending(
    provider: TwilioProvider, fake: TwilioFake
) -> None:
    """Twilio takes at most 1600 characters (emoji count twice); longer is refused here."""
    with pytest.raises(PermanentError) as refused:
        await provider.send([outbound(text="😀" * 801)])

    assert refused.value.code == "21617"
    assert fake.send_requests() == []
    [ok] = await provider.send([outbound(text="😀" * 800)])
    assert ok.accepted


async def test_missing_credentials_are_an_authentication_error(tmp_path: Path) -> None:
    """Without an account SID and token nothing is sent and the admin is told what to enter."""
    provider = provider_for({}, httpx.AsyncClient(), tmp_path)
    with pytest.raises(AuthenticationError, match="account SID"):
        await provider.send([outbound()])
    provider = provider_for({"account_sid": "AC" + "0" * 32}, httpx.AsyncClient(), tmp_path)
    with pytest.raises(AuthenticationError, match="auth token"):
        await provider.send([outbound()])


# -- errors ----------------------------------------------------------------------------------


async def test_refused_credentials_keep_twilios_code(
    provider: TwilioProvider, fake: TwilioFake
) -> None:
    """A 401 is an AuthenticationError with code 20003 and says what to check."""
    fake.fail_next(FailureMode.AUTH)
    with pytest.raises(AuthenticationError) as refused:
        await provider.send([outbound()])

    assert refused.value.code == "20003"
    assert "auth token" in refused.value.message


async def test_wrong_token_is_refused_by_the_fake_as_twilio_does(
    fake: TwilioFake, http: httpx.AsyncClient, tmp_path: Path
) -> None:
    """A wrong auth token gets Twilio's 401 / 20003."""
    provider = provider_for({**fake.module_settings(), "auth_token": "wrong"}, http, tmp_path)
    with pytest.raises(AuthenticationError) as refused:
        await provider.send([outbound()])
    assert refused.value.code == "20003"


async def test_throttling_keeps_retry_after_and_code(
    provider: TwilioProvider, fake: TwilioFake
) -> None:
    """HTTP 429 / 20429 is a RateLimitedError with the Retry-After Twilio gave."""
    fake.fail_next(FailureMode.THROTTLE)
    with pytest.raises(RateLimitedError) as slowed:
        await provider.send([outbound()])

    assert slowed.value.code == "20429"
    assert slowed.value.retry_after == 1.0


async def test_server_errors_and_timeouts_are_temporary(
    provider: TwilioProvider, fake: TwilioFake, tmp_path: Path
) -> None:
    """A 500 and an unanswered request are both worth retrying."""
    fake.fail_next(FailureMode.SERVER_ERROR)
    with pytest.raises(TemporaryError) as failed:
        await provider.send([outbound()])
    assert failed.value.code == "http-500"

    fake.fail_next(FailureMode.TIMEOUT)
    impatient = provider_for({**fake.module_settings(), "timeout": 0.2}, provider.http, tmp_path)
    with pytest.raises(TemporaryError, match="did not answer"):
        await impatient.send([outbound()])
    fake.release_held()


async def test_a_refused_number_fails_permanently_with_21211(
    provider: TwilioProvider, fake: TwilioFake
) -> None:
    """Twilio's 'not a valid phone number' ends the message, with code 21211."""
    fake.refuse_number(TO)
    with pytest.raises(PermanentError) as refused:
        await provider.send([outbound()])

    assert refused.value.code == "21211"
    assert "not a valid phone number" in refused.value.message
    assert fake.messages == []


@pytest.mark.parametrize("code", sorted(ERRORS))
async def test_every_documented_error_code_maps_to_its_class(code: int, tmp_path: Path) -> None:
    """Each known Twilio code in a 400 body becomes its error class with the code kept."""
    body = {"code": code, "message": "Twilio says no", "more_info": "https://x/y", "status": 400}
    with pytest.raises(ERRORS[code][0]) as refused:
        await answering(400, body, tmp_path).send([outbound()])

    assert refused.value.code == str(code)
    assert "Twilio says no" in refused.value.message


async def test_a_bad_status_callback_url_says_to_fix_the_public_url(tmp_path: Path) -> None:
    """Error 21609 tells the admin that the service's public URL is what needs fixing."""
    body = {"code": 21609, "message": "bad URL", "more_info": "", "status": 400}
    with pytest.raises(PermanentError, match="public URL"):
        await answering(400, body, tmp_path).send([outbound()])


async def test_the_fake_refuses_an_unusable_callback_url(
    fake: TwilioFake, http: httpx.AsyncClient, tmp_path: Path
) -> None:
    """A callback host with '_' is refused by Twilio as 21609."""
    provider = provider_for(fake.module_settings(), http, tmp_path)
    with pytest.raises(PermanentError) as refused:
        await provider.send([outbound(status_callback_url="https://my_host/webhooks")])
    assert refused.value.code == "21609"


@pytest.mark.parametrize(
    ("status", "body", "kind", "code"),
    [
        (400, {"code": 99999, "message": "new", "status": 400}, PermanentError, "99999"),
        (400, b"<html>bad</html>", PermanentError, "http-400"),
        (403, b"", PermanentError, "http-403"),
        (201, {"status": "queued"}, TemporaryError, "http-201"),
        (201, b"not json", TemporaryError, "http-201"),
    ],
)
async def test_unexpected_answers(
    status: int, body: Any, kind: type[Exception], code: str, tmp_path: Path
) -> None:
    """Unknown codes are permanent; a success without a SID is worth another try."""
    with pytest.raises(kind) as raised:
        await answering(status, body, tmp_path).send([outbound()])
    assert getattr(raised.value, "code", None) == code


# -- signatures ------------------------------------------------------------------------------


def test_signature_matches_twilios_documented_vector() -> None:
    """token 12345 over the documented URL and params gives RSOYDt4T1cUTdK1PDd93/VVr8B8=."""
    assert signature("12345", VECTOR_URL, VECTOR_PARAMS.items()) == "RSOYDt4T1cUTdK1PDd93/VVr8B8="


def test_the_documented_form_callback_verifies(tmp_path: Path) -> None:
    """The documented request passes; a changed field or token does not."""
    provider = offline(tmp_path)
    request = form_request(VECTOR_URL, VECTOR_PARAMS)
    assert request.headers["x-twilio-signature"] == "RSOYDt4T1cUTdK1PDd93/VVr8B8="
    assert provider.verify_callback(request, "s")

    tampered = form_request(VECTOR_URL, VECTOR_PARAMS)
    tampered = CallbackRequest(
        "POST",
        VECTOR_URL,
        tampered.headers,
        {},
        urlencode({**VECTOR_PARAMS, "Digits": "9999"}).encode(),
    )
    assert not provider.verify_callback(tampered, "s")
    assert not offline(tmp_path, auth_token="54321").verify_callback(request, "s")


def test_a_json_callback_is_checked_by_its_body_hash(tmp_path: Path) -> None:
    """JSON bodies: the URL carries bodySHA256 and only the URL is signed."""
    assert hashlib.sha256(VECTOR_BODY).hexdigest() == VECTOR_HASH
    url = f"{VECTOR_URL}&bodySHA256={VECTOR_HASH}"
    headers = {"content-type": "application/json", "x-twilio-signature": signature("12345", url)}
    provider = offline(tmp_path)
    assert provider.verify_callback(CallbackRequest("POST", url, headers, {}, VECTOR_BODY), "s")
    changed = VECTOR_BODY.replace(b"true", b"false")
    assert not provider.verify_callback(CallbackRequest("POST", url, headers, {}, changed), "s")
    no_hash = {
        "content-type": "application/json",
        "x-twilio-signature": signature("12345", VECTOR_URL),
    }
    assert not provider.verify_callback(
        CallbackRequest("POST", VECTOR_URL, no_hash, {}, VECTOR_BODY), "s"
    )


@pytest.mark.parametrize(
    ("signed", "seen"),
    [
        ("https://mycompany.com/myapp.php?foo=1", "https://mycompany.com:443/myapp.php?foo=1"),
        ("https://mycompany.com:443/myapp.php?foo=1", "https://mycompany.com/myapp.php?foo=1"),
        ("http://mycompany.com/a", "http://mycompany.com:80/a"),
        ("https://mycompany.com/a", "https://mycompany.com:8443/a"),
    ],
)
def test_a_port_added_or_stripped_still_verifies(signed: str, seen: str, tmp_path: Path) -> None:
    """Twilio may sign with or without the port; both forms are accepted."""
    request = form_request(signed, VECTOR_PARAMS)
    request = CallbackRequest("POST", seen, request.headers, {}, request.body, request.form)
    assert offline(tmp_path).verify_callback(request, "s")


def test_url_variants_are_unique_and_keep_the_query() -> None:
    """Port variants keep path and query; a URL with its default port is not repeated."""
    assert url_variants("https://h.example/p?q=1") == [
        "https://h.example/p?q=1",
        "https://h.example:443/p?q=1",
    ]
    assert url_variants("https://h.example:443/p") == [
        "https://h.example:443/p",
        "https://h.example/p",
    ]


def test_the_public_url_verifies_behind_a_reverse_proxy(tmp_path: Path) -> None:
    """Twilio signed our public URL; we see the proxy's internal one."""
    signed = form_request(CALLBACK, {"MessageSid": SID, "MessageStatus": "sent"})
    internal = "http://127.0.0.1:8000/webhooks/twilio/status/s3cret"
    request = CallbackRequest("POST", internal, signed.headers, {}, signed.body, signed.form)
    assert offline(tmp_path).verify_callback(request, "s3cret")
    assert not offline(tmp_path).verify_callback(
        CallbackRequest("POST", internal, signed.headers, {}, b"MessageSid=x", {}), "s3cret"
    )
    elsewhere = provider_for(
        {"account_sid": "AC" + "0" * 32, "auth_token": "12345"},
        httpx.AsyncClient(),
        tmp_path,
        public_url="https://other.example.com",
    )
    assert not elsewhere.verify_callback(request, "s3cret")


def test_unsigned_callbacks_and_a_missing_token_are_refused(tmp_path: Path) -> None:
    """No signature header, or no auth token to check it with, means refused."""
    signed = form_request(CALLBACK, {"MessageSid": SID})
    unsigned = CallbackRequest(
        "POST", CALLBACK, {"content-type": signed.headers["content-type"]}, {}, signed.body
    )
    assert not offline(tmp_path).verify_callback(unsigned, "s")
    assert not offline(tmp_path, auth_token="").verify_callback(signed, "s")


# -- status callbacks ------------------------------------------------------------------------


@pytest.mark.parametrize("twilio_status", sorted(s for s, ours in STATUSES.items() if ours))
def test_every_outbound_status_maps(twilio_status: str, tmp_path: Path) -> None:
    """Each Twilio message status becomes ours, the raw status kept."""
    fields = {"MessageSid": SID, "MessageStatus": twilio_status}
    [report] = offline(tmp_path).parse_status_callback(form_request(CALLBACK, fields))

    assert report.provider_message_id == SID
    assert report.status is STATUSES[twilio_status]
    assert report.raw_code == twilio_status


def test_status_mapping_choices() -> None:
    """Delivered and read reach the phone; failed, canceled and partial do not."""
    assert STATUSES["delivered"] is STATUSES["read"] is Status.DELIVERED
    for status in ("undelivered", "failed", "canceled", "partially_delivered"):
        assert STATUSES[status] is Status.UNDELIVERED
    for status in ("accepted", "scheduled", "queued", "sending", "sent"):
        assert STATUSES[status] is Status.SENT


def test_an_error_code_and_done_date_are_kept(tmp_path: Path) -> None:
    """ErrorCode goes into raw_code and the description; RawDlrDoneDate into occurred_at."""
    fields = {
        "MessageSid": SID,
        "MessageStatus": "undelivered",
        "ErrorCode": "30003",
        "RawDlrDoneDate": "2405171432",
    }
    [report] = offline(tmp_path).parse_status_callback(form_request(CALLBACK, fields))

    assert report.status is Status.UNDELIVERED
    assert report.raw_code == "undelivered:30003"
    assert "unreachable" in report.description and "30003" in report.description
    assert report.occurred_at == datetime(2024, 5, 17, 14, 32, tzinfo=UTC).timestamp()


def test_an_elapsed_validity_period_is_expired(tmp_path: Path) -> None:
    """failed with ErrorCode 30036 means the validity period ran out."""
    fields = {"MessageSid": SID, "MessageStatus": "failed", "ErrorCode": "30036"}
    [report] = offline(tmp_path).parse_status_callback(form_request(CALLBACK, fields))
    assert report.status is Status.EXPIRED
    assert report.raw_code == "failed:30036"


def test_an_unreadable_done_date_keeps_the_report(tmp_path: Path) -> None:
    """A RawDlrDoneDate that is not YYMMDDhhmm is dropped, not the report."""
    fields = {"MessageSid": SID, "MessageStatus": "delivered", "RawDlrDoneDate": "soon"}
    [report] = offline(tmp_path).parse_status_callback(form_request(CALLBACK, fields))
    assert report.occurred_at is None


def test_legacy_sms_fields_and_get_callbacks_are_read(tmp_path: Path) -> None:
    """SmsSid/SmsStatus stand in for MessageSid/MessageStatus; GET fields are in the query."""
    fields = {"SmsSid": SID, "SmsStatus": "delivered"}
    request = CallbackRequest("GET", CALLBACK, {}, fields, b"")
    [report] = offline(tmp_path).parse_status_callback(request)
    assert (report.provider_message_id, report.status) == (SID, Status.DELIVERED)


def test_inbound_statuses_in_a_status_callback_are_ignored(tmp_path: Path) -> None:
    """'received' belongs to inbound messages: nothing to apply."""
    fields = {"MessageSid": SID, "MessageStatus": "received"}
    assert offline(tmp_path).parse_status_callback(form_request(CALLBACK, fields)) == []


@pytest.mark.parametrize(
    "fields",
    [{}, {"MessageSid": SID}, {"MessageStatus": "sent"}, {"MessageSid": SID, "MessageStatus": "x"}],
)
def test_malformed_status_callbacks_are_value_errors(
    fields: dict[str, str], tmp_path: Path
) -> None:
    """Missing fields or an unknown status are refused with a clear ValueError."""
    request = CallbackRequest("POST", CALLBACK, {}, {}, urlencode(fields).encode(), fields)
    with pytest.raises(ValueError, match="Twilio"):
        offline(tmp_path).parse_status_callback(request)


def test_a_non_form_body_is_a_value_error(tmp_path: Path) -> None:
    """A JSON or binary body is not a Twilio status callback."""
    request = CallbackRequest("POST", CALLBACK, {}, {}, b"\x00not a report")
    with pytest.raises(ValueError, match="form"):
        offline(tmp_path).parse_status_callback(request)


@pytest.mark.parametrize("delivered", [True, False])
async def test_the_fakes_signed_report_matches_the_sent_message(
    provider: TwilioProvider, fake: TwilioFake, delivered: bool
) -> None:
    """A report the fake posts verifies and names the SID that sending returned."""
    [result] = await provider.send([outbound()])
    recorder = Recorder()
    await fake.send_report(recorder.client, fake.messages[0], delivered)
    await fake.send_report(recorder.client, fake.messages[0], delivered, forged=True)

    genuine, forged = (captured(r) for r in recorder.requests)
    assert genuine.url == CALLBACK
    assert provider.verify_callback(genuine, "s3cret")
    assert not provider.verify_callback(forged, "s3cret")
    [report] = provider.parse_status_callback(genuine)
    assert report.provider_message_id == result.provider_message_id
    assert report.status is (Status.DELIVERED if delivered else Status.UNDELIVERED)
    assert report.occurred_at is not None


# -- inbound ---------------------------------------------------------------------------------


async def test_an_inbound_message_is_read_and_answered_with_empty_twiml(
    provider: TwilioProvider, fake: TwilioFake
) -> None:
    """The fake's signed inbound form verifies and becomes an InboundSms."""
    fake.point_callbacks(None, f"{PUBLIC}/webhooks/twilio/inbound/s3cret")
    recorder = Recorder()
    await fake.send_inbound(recorder.client, "+31611122233", "+31612000000", "Yes 👍")
    await fake.send_inbound(recorder.client, "+31611122233", "+31612000000", "No", forged=True)

    genuine, forged = (captured(r) for r in recorder.requests)
    assert provider.verify_callback(genuine, "s3cret")
    assert not provider.verify_callback(forged, "s3cret")
    [sms] = provider.parse_inbound(genuine)
    assert (sms.sender, sms.recipient, sms.text) == ("+31611122233", "+31612000000", "Yes 👍")
    assert sms.provider_message_id.startswith("SM")
    answer = provider.callback_answer("inbound", genuine, [sms])
    assert answer.media_type == "text/xml"
    assert answer.body == '<?xml version="1.0" encoding="UTF-8"?><Response/>'
    assert (answer.status_code, provider.callback_answer("status", genuine, []).body) == (200, "")


@pytest.mark.parametrize(
    ("raw", "e164"),
    [("0031611122233", "+31611122233"), ("31611122233", "+31611122233"), ("12345", "12345")],
)
def test_inbound_numbers_are_normalised(raw: str, e164: str, tmp_path: Path) -> None:
    """00-prefixed and bare numbers get their '+'; short codes stay as they are."""
    fields = {"MessageSid": SID, "From": raw, "To": "+31612000000", "Body": "hi"}
    [sms] = offline(tmp_path).parse_inbound(form_request(PUBLIC, fields))
    assert sms.sender == e164


def test_malformed_inbound_is_a_value_error(tmp_path: Path) -> None:
    """An inbound form without From or Body is refused."""
    fields = {"MessageSid": SID, "To": "+31612000000"}
    with pytest.raises(ValueError, match="From, To and Body"):
        offline(tmp_path).parse_inbound(form_request(PUBLIC, fields))


# -- configuration -----------------------------------------------------------------------------


async def test_plugin_keys_fill_the_twilio_fields(tmp_path: Path) -> None:
    """twilio_account_sid and twilio_auth_token set the module's fields; the token is masked."""
    account = "AC" + "ab" * 16
    plugin = f"twilio_account_sid = {account}\ntwilio_auth_token = t0ken-value"
    async with running_service(tmp_path, dispatcher=False) as harness:
        await harness.configure(module="twilio", plugin_configuration=plugin)
        shown = (await harness.get("/api/v1/settings")).json()
        fields = shown["module_settings"]["twilio"]
        assert fields["account_sid"] == account
        assert "t0ken-value" not in str(shown)
        stored = harness.service.settings.load().module_settings["twilio"]["auth_token"]
        assert stored.get_secret_value() == "t0ken-value"


def test_settings_refuse_malformed_sids() -> None:
    """SIDs have Twilio's shapes: AC…, SK…, MG… followed by 32 hex digits."""
    with pytest.raises(ValueError):
        TwilioSettings(account_sid="12345")
    with pytest.raises(ValueError):
        TwilioSettings(messaging_service_sid="MGxyz")
    with pytest.raises(ValueError):
        TwilioSettings(api_key_sid="AC" + "0" * 32)


# -- status queries (reconciliation) -------------------------------------------------------


async def test_a_status_query_reports_final_statuses_and_skips_the_rest(
    provider: TwilioProvider, fake: TwilioFake
) -> None:
    """Delivered and undelivered come back as reports; queued and unknown SIDs do not."""
    results = [(await provider.send([outbound(message_id=f"m{i}")]))[0] for i in range(3)]
    delivered, undelivered, waiting = (fake.find(r.provider_message_id or "") for r in results)
    fake.lose_report(delivered, delivered=True)
    fake.lose_report(undelivered, delivered=False)

    reports = await provider.query_status(
        [delivered.provider_id, undelivered.provider_id, waiting.provider_id, SID]
    )

    assert [(r.provider_message_id, r.status, r.raw_code) for r in reports] == [
        (delivered.provider_id, Status.DELIVERED, "delivered"),
        (undelivered.provider_id, Status.UNDELIVERED, "undelivered:30003"),
    ]
    assert "unreachable" in reports[1].description
    assert reports[0].occurred_at is not None
    [get] = [r for r in fake.query_requests() if r.path.endswith(f"{delivered.provider_id}.json")]
    assert get.headers["authorization"].startswith("Basic ")


async def test_status_query_failures_are_the_usual_provider_errors(
    provider: TwilioProvider, fake: TwilioFake
) -> None:
    """5xx is temporary, 429 rate-limited, 401 an authentication error."""
    for mode, error in [
        (FailureMode.SERVER_ERROR, TemporaryError),
        (FailureMode.THROTTLE, RateLimitedError),
        (FailureMode.AUTH, AuthenticationError),
    ]:
        fake.fail_next_query(mode)
        with pytest.raises(error):
            await provider.query_status([SID])


async def test_an_expired_validity_from_a_status_query_is_expired(tmp_path: Path) -> None:
    """Error 30036 in the message resource maps to expired, as in a callback."""
    body = {"sid": SID, "status": "failed", "error_code": 30036}
    [report] = await answering(200, body, tmp_path).query_status([SID])
    assert (report.status, report.raw_code) == (Status.EXPIRED, "failed:30036")
