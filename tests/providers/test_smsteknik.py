"""The SMS Teknik module against its fake on loopback: requests, answers, reports, replies."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
from defusedxml import ElementTree
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from smsdesk.domain.encoding import analyse
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
from smsdesk.providers.smsteknik import (
    REPORT_STATUSES,
    STOCKHOLM,
    SmsTeknikProvider,
    SmsTeknikSettings,
    error_for,
    read_answer,
)
from smsdesk.testing.fakes import FailureMode
from smsdesk.testing.fakes.smsteknik import COMPANY, PASSWORD, USERNAME, SmsTeknikFake
from tests.support.harness import Harness, running_service

TO = "+46701234567"
STATUS_URL = "https://desk.example/webhooks/smsteknik/status/s3cret"


def outbound(text: str = "Hello", **changes: Any) -> OutboundSms:
    analysed = analyse(text)
    fields: dict[str, Any] = {
        "message_id": "msg-1",
        "to": TO,
        "sender": "Smsdesk",
        "text": text,
        "encoding": analysed.encoding.value,
        "segments": analysed.segments,
        "priority": 2,
        "status_callback_url": STATUS_URL,
    }
    return OutboundSms(**{**fields, **changes})


@pytest.fixture(scope="module")
def server() -> Iterator[SmsTeknikFake]:
    with SmsTeknikFake() as started:
        yield started


@pytest.fixture
def fake(server: SmsTeknikFake) -> SmsTeknikFake:
    server.reset()
    return server


def offline_provider(**changes: Any) -> SmsTeknikProvider:
    """A provider for parsing and building only: its client reaches no network."""
    settings = SmsTeknikSettings(company_id="c", username="u", password="p", **changes)
    client = httpx.AsyncClient(transport=httpx.MockTransport(lambda _: httpx.Response(500)))
    return SmsTeknikProvider(settings, client, ProviderContext(Path(".")))


PARSER = offline_provider()


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


def provider_for(
    fake: SmsTeknikFake, http: httpx.AsyncClient, tmp_path: Path, **changes: Any
) -> SmsTeknikProvider:
    settings = SmsTeknikSettings(**{**fake.module_settings(), "timeout": 5.0, **changes})
    return SmsTeknikProvider(settings, http, ProviderContext(tmp_path, public_url="https://desk"))


@pytest.fixture
def provider(fake: SmsTeknikFake, http: httpx.AsyncClient, tmp_path: Path) -> SmsTeknikProvider:
    return provider_for(fake, http, tmp_path)


@pytest.fixture
def parser() -> SmsTeknikProvider:
    return PARSER


# -- the request -----------------------------------------------------------------------------


async def test_the_request_carries_credentials_in_the_query_and_xml_in_the_body(
    provider: SmsTeknikProvider, fake: SmsTeknikFake
) -> None:
    """POST /send/xml/ with id (UTF-8, so 'Å' survives), user and pass; the body is UTF-8 XML."""
    [result] = await provider.send([outbound()])

    assert result.accepted and result.provider_message_id
    [request] = fake.send_requests()
    assert (request.method, request.path) == ("POST", "/send/xml/")
    assert request.query == {"id": COMPANY, "user": USERNAME, "pass": PASSWORD}
    assert request.headers["content-type"] == "text/xml; charset=utf-8"
    root = ElementTree.fromstring(request.body)
    assert root.tag == "sms-teknik"
    assert root.findtext("items/recipient/nr") == TO
    assert root.findtext("customid") == "msg-1"
    assert root.findtext("smssender") == "Smsdesk"
    assert (root.findtext("send_date"), root.findtext("send_time")) == ("", "")
    assert root.findtext("usee164") == "0"
    assert root.find("ttl") is None
    assert b"<udmessage><![CDATA[Hello]]></udmessage>" in request.body


async def test_a_gsm_text_is_operation_type_0_and_unicode_is_5(
    provider: SmsTeknikProvider, fake: SmsTeknikFake
) -> None:
    """Operation type 5 marks Unicode; the fake decodes both back to the same text."""
    await provider.send([outbound("Hej då")])
    await provider.send([outbound("Привет ✓", message_id="msg-2")])

    first, second = (ElementTree.fromstring(r.body) for r in fake.send_requests())
    assert first.findtext("operationtype") == "0"
    assert second.findtext("operationtype") == "5"
    assert [(s.text, s.unicode) for s in fake.messages] == [("Hej då", False), ("Привет ✓", True)]


async def test_one_part_is_not_multisms_and_long_texts_allow_the_configured_parts(
    fake: SmsTeknikFake, http: httpx.AsyncClient, tmp_path: Path
) -> None:
    """multisms 0 for one part; 1 with maxmultisms = the parts allowed for longer texts."""
    provider = provider_for(fake, http, tmp_path, max_parts=4)
    await provider.send([outbound("short")])
    await provider.send([outbound("x" * 400, message_id="msg-2")])

    short, long = (ElementTree.fromstring(r.body) for r in fake.send_requests())
    assert (short.findtext("multisms"), short.findtext("maxmultisms")) == ("0", "0")
    assert (long.findtext("multisms"), long.findtext("maxmultisms")) == ("1", "4")


async def test_a_delivery_report_is_asked_as_a_post_to_the_messages_callback(
    provider: SmsTeknikProvider, fake: SmsTeknikFake
) -> None:
    """deliverystatustype 3 with the status callback URL; 0 and no address when not wanted."""
    await provider.send([outbound()])
    await provider.send([outbound(message_id="m2", delivery_report=False)])

    wanted, unwanted = (ElementTree.fromstring(r.body) for r in fake.send_requests())
    assert wanted.findtext("deliverystatustype") == "3"
    assert wanted.findtext("deliverystatusaddress") == STATUS_URL
    assert unwanted.findtext("deliverystatustype") == "0"
    assert unwanted.findtext("deliverystatusaddress") == ""
    assert [sms.report_requested for sms in fake.messages] == [True, False]
    assert fake.messages[0].callback_url == STATUS_URL


async def test_replies_are_forwarded_only_when_a_reply_url_is_set(
    fake: SmsTeknikFake, http: httpx.AsyncClient, tmp_path: Path
) -> None:
    """A reply forward URL turns on the reply number and a POST forward to that URL."""
    url = "https://desk.example/webhooks/smsteknik/inbound/s3cret"
    await provider_for(fake, http, tmp_path).send([outbound()])
    await provider_for(fake, http, tmp_path, reply_forward_url=url).send([outbound()])

    off, on = (ElementTree.fromstring(r.body) for r in fake.send_requests())
    assert (off.findtext("usereplynumber"), off.findtext("usereplyforwardurl")) == ("0", "")
    assert on.findtext("usereplynumber") == "1"
    assert on.findtext("usereplyforwardtype") == "3"
    assert on.findtext("usereplyforwardurl") == url
    assert on.findtext("usereplycustomid") == "msg-1"


@hypothesis_settings(max_examples=50, deadline=None)
@given(st.text(st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=300))
def test_any_text_survives_the_xml(text: str) -> None:
    """CDATA carries every text, ']]>' included, and the XML is still well formed."""
    document = PARSER.build_document(outbound(text, segments=1, sender="S&Co."))

    root = ElementTree.fromstring(document.encode())
    assert root.findtext("udmessage") == text
    assert root.findtext("smssender") == "S&Co."


# -- refusals before sending -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "settings", "code"),
    [
        ({"text": "x" * 1200, "segments": 8}, {}, "too-many-parts"),
        ({"text": "x" * 200, "segments": 2}, {"long_messages": False}, "too-many-parts"),
        ({"text": "x" * 400, "segments": 3}, {"max_parts": 2}, "too-many-parts"),
        ({"text": "page\fbreak"}, {}, "unsendable-character"),
        ({"sender": "A much too long name"}, {}, "invalid-sender"),
        ({"sender": "1234567890123456"}, {}, "invalid-sender"),
    ],
)
async def test_what_sms_teknik_never_accepts_is_refused_without_a_request(
    fake: SmsTeknikFake,
    http: httpx.AsyncClient,
    tmp_path: Path,
    changes: dict[str, Any],
    settings: dict[str, Any],
    code: str,
) -> None:
    """Too many parts, characters XML cannot carry and impossible senders fail for good."""
    provider = provider_for(fake, http, tmp_path, **settings)
    [result] = await provider.send([outbound(**changes)])

    assert isinstance(result.error, PermanentError)
    assert result.error.code == code == result.raw_code
    assert fake.send_requests() == []


async def test_missing_credentials_keep_the_message_queued_without_a_request(
    fake: SmsTeknikFake, http: httpx.AsyncClient, tmp_path: Path
) -> None:
    """No password configured is an authentication problem, not a refused message."""
    provider = provider_for(fake, http, tmp_path, password="")
    [result] = await provider.send([outbound()])

    assert isinstance(result.error, AuthenticationError)
    assert "module settings" in result.error.message
    assert fake.send_requests() == []


# -- answers ---------------------------------------------------------------------------------


async def test_the_smsid_is_the_provider_message_id(
    provider: SmsTeknikProvider, fake: SmsTeknikFake
) -> None:
    """The digits SMS Teknik answers identify the SMS in its reports."""
    [result] = await provider.send([outbound()])

    [sms] = fake.messages
    assert result.provider_message_id == sms.provider_id == result.raw_code
    assert sms.reference == "msg-1"


@pytest.mark.parametrize(
    ("mode", "error_class", "code"),
    [
        (FailureMode.SERVER_ERROR, TemporaryError, "http-500"),
        (FailureMode.TIMEOUT, TemporaryError, "timeout"),
        (FailureMode.THROTTLE, RateLimitedError, "http-429"),
        (FailureMode.AUTH, AuthenticationError, "0:Access denied"),
    ],
)
async def test_failure_modes_map_to_our_errors(
    provider: SmsTeknikProvider,
    fake: SmsTeknikFake,
    mode: FailureMode,
    error_class: type[Exception],
    code: str,
) -> None:
    """5xx and timeouts retry, 429 waits for Retry-After, 'Access denied' is authentication."""
    fake.fail_next(mode)
    if mode is FailureMode.TIMEOUT:
        provider.settings.timeout = 0.2
    [result] = await provider.send([outbound()])
    fake.release_held()

    assert type(result.error) is error_class
    assert result.error is not None and result.error.code == code
    if isinstance(result.error, RateLimitedError):
        assert result.error.retry_after == 1.0
    assert fake.messages == []


async def test_wrong_credentials_are_an_authentication_error(
    fake: SmsTeknikFake, http: httpx.AsyncClient, tmp_path: Path
) -> None:
    """The fake checks id, user and pass and answers 0:Access denied like SMS Teknik."""
    provider = provider_for(fake, http, tmp_path, company_id="Smsdesk Akeri AB")
    [result] = await provider.send([outbound()])

    assert isinstance(result.error, AuthenticationError)
    assert "company (id), user name and password" in result.error.message
    assert "Access denied" in result.error.message


@pytest.mark.parametrize(
    ("setup", "to", "error_class", "code_start"),
    [
        ("refuse", "+46709999999", PermanentError, "0:Invalid phonenumber - #+46709999999#"),
        ("none", "+461234", PermanentError, "0:Invalid phonenumber - #"),
        ("block", "+46708888888", PermanentError, "0:Number is blocked"),
        ("empty", TO, RateLimitedError, "0:No SMS Left"),
    ],
)
async def test_refusals_from_the_fake_keep_the_providers_reason(
    provider: SmsTeknikProvider,
    fake: SmsTeknikFake,
    setup: str,
    to: str,
    error_class: type[Exception],
    code_start: str,
) -> None:
    """Invalid, blocked or short numbers fail for good; an empty account waits and retries."""
    if setup == "refuse":
        fake.refuse_number(to)
    elif setup == "block":
        fake.blocked_numbers.add(to)
    elif setup == "empty":
        fake.credits = 0
    [result] = await provider.send([outbound(to=to)])

    assert type(result.error) is error_class
    assert result.error is not None and result.error.code is not None
    assert result.error.code.startswith(code_start)
    assert result.raw_code == result.error.code
    assert fake.messages == []


@pytest.mark.parametrize(
    ("answer", "error_class"),
    [
        ("0:Access denied", AuthenticationError),
        ("0:No SMS Left", RateLimitedError),
        ("0:No SMS left", RateLimitedError),
        ("0:Invalid phonenumber", PermanentError),
        ("0:Invalid phonenumber - #+47123#", PermanentError),
        ("0:Invalid phonenumber (e164)", PermanentError),
        ("0:Number is blocked", PermanentError),
        ("0:No Valid recipients", PermanentError),
        ("0:Parse error, unexpected end of file", PermanentError),
        ("0:The required XML-tag <udmessage> is missing", PermanentError),
        ("0:Message could't be empty", PermanentError),
        ("0:Message could’t be empty", PermanentError),
        ("0:Something new", TemporaryError),
        ("<html>Bad gateway</html>", TemporaryError),
        ("", TemporaryError),
        ("0", TemporaryError),
    ],
)
def test_every_documented_answer_maps_to_an_error_class(
    answer: str, error_class: type[Exception]
) -> None:
    """Each documented reason is classified; the answer is kept as the code."""
    with pytest.raises(error_class) as caught:
        read_answer(answer, TO)
    error = caught.value
    assert type(error) is error_class
    if answer.startswith("0:"):
        assert getattr(error, "code", None) == answer
        assert answer[2:] in str(error)


def test_no_sms_left_pauses_the_module_for_ten_minutes() -> None:
    """An empty account refuses every message alike, so the module pauses instead of failing."""
    error = error_for("0:No SMS Left", TO)
    assert isinstance(error, RateLimitedError) and error.retry_after == 600
    assert "buy more" in error.message


def test_the_first_entry_of_a_multi_recipient_answer_is_ours() -> None:
    """A ';'-separated answer gives one entry per recipient; we send one recipient."""
    assert read_answer("1950940234;0:Invalid phonenumber - #+47123#", TO) == "1950940234"


async def test_unexpected_http_statuses_are_temporary_or_authentication(
    fake: SmsTeknikFake, http: httpx.AsyncClient, tmp_path: Path
) -> None:
    """A wrong base URL (404) keeps messages queued; 403 is a credentials problem."""
    missing = provider_for(fake, http, tmp_path, base_url=fake.url + "/nowhere")
    [result] = await missing.send([outbound()])
    assert isinstance(result.error, TemporaryError)
    assert result.error.code == "http-404" and "base URL" in result.error.message

    def forbidden(request: httpx.Request) -> httpx.Response:
        return httpx.Response(403, text="Forbidden")

    async with httpx.AsyncClient(transport=httpx.MockTransport(forbidden)) as client:
        [result] = await provider_for(fake, client, tmp_path).send([outbound()])
    assert isinstance(result.error, AuthenticationError) and result.error.code == "http-403"


# -- delivery reports ------------------------------------------------------------------------


def callback(
    body: bytes = b"", query: dict[str, str] | None = None, method: str = "POST"
) -> CallbackRequest:
    content_type = "application/x-www-form-urlencoded" if not body.startswith(b"<") else "text/xml"
    return CallbackRequest(method, STATUS_URL, {"content-type": content_type}, query or {}, body)


def report_form(**changes: str) -> bytes:
    fields = {
        "nr": TO,
        "ref": "1950940234",
        "state": "DELIVRD",
        "text": "Hello",
        "datetime": "2021-08-08 13:51:13",
        "customid": "msg-1",
        "smsparts": "1",
    }
    return urlencode({**fields, **changes}).encode()


@pytest.mark.parametrize(("state", "status"), sorted(REPORT_STATUSES.items()))
def test_every_state_maps_to_our_status(
    parser: SmsTeknikProvider, state: str, status: Status
) -> None:
    """DELIVRD delivers, EXPIRED expires, final failures are undelivered, the rest stay sent."""
    [report] = parser.parse_status_callback(callback(report_form(state=state)))

    assert report.provider_message_id == "1950940234"
    assert (report.status, report.raw_code) == (status, state)


def test_the_report_time_is_stockholm_local_time(parser: SmsTeknikProvider) -> None:
    """'2021-08-08 13:51:13' is summer time (UTC+2); January is UTC+1."""
    [summer] = parser.parse_status_callback(callback(report_form()))
    [winter] = parser.parse_status_callback(callback(report_form(datetime="2021-01-08 13:51:13")))
    assert summer.occurred_at == datetime.fromisoformat("2021-08-08T11:51:13+00:00").timestamp()
    assert winter.occurred_at == datetime.fromisoformat("2021-01-08T12:51:13+00:00").timestamp()
    [undated] = parser.parse_status_callback(callback(report_form(datetime="0")))
    assert undated.occurred_at is None


def test_an_unknown_state_keeps_the_message_sent_with_the_code(
    parser: SmsTeknikProvider,
) -> None:
    """A state SMS Teknik adds later changes nothing final but is recorded."""
    [report] = parser.parse_status_callback(callback(report_form(state="queued")))
    assert (report.status, report.raw_code) == (Status.SENT, "QUEUED")
    assert "not a known state" in report.description


def test_get_and_xml_reports_are_read_like_the_post_form(parser: SmsTeknikProvider) -> None:
    """deliverystatustype 2 (query) and 4 (XML `<sms>`) give the same report as 3 (form)."""
    form = parser.parse_status_callback(callback(report_form(state="UNDELIV")))
    query = {k: v[0] for k, v in parse_qs(report_form(state="UNDELIV").decode()).items()}
    get = parser.parse_status_callback(callback(query=query, method="GET"))
    xml = parser.parse_status_callback(
        callback(
            b"<sms><nr>+46701234567</nr><ref>1950940234</ref><state>UNDELIV</state>"
            b"<text>Hello</text><datetime>2021-08-08 13:51:13</datetime><customid/>"
            b"<smsparts>1</smsparts></sms>"
        )
    )
    assert form == get == xml
    assert form[0].status is Status.UNDELIVERED


@pytest.mark.parametrize(
    "body",
    [
        b"\x00not a report",
        report_form(ref=""),
        report_form(ref="abc"),
        report_form(state=""),
        b"state=DELIVRD",
        b"<sms><ref>1",
        b"",
    ],
)
def test_malformed_reports_are_value_errors(parser: SmsTeknikProvider, body: bytes) -> None:
    """No SMSID, no state, garbage or broken XML is refused with a clear message."""
    with pytest.raises(ValueError, match="SMS Teknik"):
        parser.parse_status_callback(callback(body))


async def test_the_fakes_report_is_read_back_to_the_sent_message(
    provider: SmsTeknikProvider, fake: SmsTeknikFake
) -> None:
    """The report the fake posts (form, GET or XML) names the SMSID we returned when sending."""
    [result] = await provider.send([outbound()])
    [sms] = fake.messages
    captured: list[CallbackRequest] = []

    async def capture(request: httpx.Request) -> httpx.Response:
        captured.append(
            CallbackRequest(
                request.method,
                str(request.url),
                dict(request.headers),
                dict(request.url.params),
                await request.aread(),
            )
        )
        return httpx.Response(200, text="OK")

    async with httpx.AsyncClient(transport=httpx.MockTransport(capture)) as client:
        for kind in ("3", "2", "4"):
            sms.fields["deliverystatustype"] = kind
            await fake.send_report(client, sms, delivered=kind != "4")

    assert [c.method for c in captured] == ["POST", "GET", "POST"]
    assert urlsplit(captured[0].url).path == urlsplit(STATUS_URL).path
    reports = [provider.parse_status_callback(c)[0] for c in captured]
    assert {r.provider_message_id for r in reports} == {result.provider_message_id}
    assert [r.status for r in reports] == [Status.DELIVERED, Status.DELIVERED, Status.UNDELIVERED]
    now = datetime.now(STOCKHOLM).timestamp()
    assert all(r.occurred_at is not None and abs(r.occurred_at - now) < 60 for r in reports)


# -- replies (inbound) -----------------------------------------------------------------------


def test_a_forwarded_reply_is_read_with_numbers_in_e164(parser: SmsTeknikProvider) -> None:
    """nr is the sender; '00…' and bare digits become '+…'; the ref identifies the reply."""
    body = urlencode(
        {"nr": "0046701234567", "to": "46700000000", "text": "Ja tack", "ref": "77"}
    ).encode()
    [sms] = parser.parse_inbound(callback(body))

    assert (sms.sender, sms.recipient, sms.text) == ("+46701234567", "+46700000000", "Ja tack")
    assert sms.provider_message_id == "77"


def test_reply_field_name_variants_and_latin1_bodies_are_accepted(
    parser: SmsTeknikProvider,
) -> None:
    """from/message/id variants work, and a Windows-1252 body is not garbled."""
    body = b"from=%2B46701234567&message=H%E4lsningar&id=x9"
    [sms] = parser.parse_inbound(callback(body))
    assert (sms.sender, sms.text, sms.provider_message_id) == ("+46701234567", "Hälsningar", "x9")

    raw = "nr=+46701234567&text=Hälsningar".encode("cp1252")
    [latin] = parser.parse_inbound(callback(raw.replace(b"+", b"%2B")))
    assert latin.text == "Hälsningar"


def test_a_reply_without_an_id_gets_a_stable_one(parser: SmsTeknikProvider) -> None:
    """The same forwarded reply posted twice gets the same id, so it is stored once."""
    body = report_form(ref="").replace(b"ref=&", b"")
    first = parser.parse_inbound(callback(body.replace(b"state=DELIVRD&", b"")))
    again = parser.parse_inbound(callback(body.replace(b"state=DELIVRD&", b"")))
    assert first[0].provider_message_id == again[0].provider_message_id
    assert first[0].provider_message_id.startswith("derived-")


@pytest.mark.parametrize("body", [b"text=Hello", b"nr=%2B46701234567", b"\x00garbage"])
def test_a_reply_without_sender_or_text_is_a_value_error(
    parser: SmsTeknikProvider, body: bytes
) -> None:
    """A reply needs who sent it and what they wrote."""
    with pytest.raises(ValueError, match="SMS Teknik"):
        parser.parse_inbound(callback(body))


def test_callbacks_are_answered_200(parser: SmsTeknikProvider) -> None:
    """SMS Teknik only needs a 200; the body says OK."""
    for kind in ("status", "inbound"):
        answer = parser.callback_answer(kind, CallbackRequest("POST", "http://x/", {}, {}, b""), [])
        assert (answer.status_code, answer.body) == (200, "OK")


# -- configuration ---------------------------------------------------------------------------


async def test_superoffice_plugin_keys_fill_the_module_fields(tmp_path: Path) -> None:
    """smsteknik_serviceId/username/password (and multisms, maxmultisms 0) configure it."""
    plugin = "\n".join(
        [
            "smsteknik_serviceId = Acme Åkeri",
            "smsteknik_username = acme",
            "smsteknik_password = secret",
            "smsteknik_multisms = 1",
            "smsteknik_maxmultisms = 0",
        ]
    )
    async with running_service(tmp_path) as harness:
        h: Harness = harness
        await h.configure(module="smsteknik", plugin_configuration=plugin)
        fields = (await h.get("/api/v1/settings")).json()["module_settings"]["smsteknik"]
        stored = h.service.settings.load().module_settings["smsteknik"]

    assert (fields["company_id"], fields["username"]) == ("Acme Åkeri", "acme")
    assert fields["password"] != "secret"
    assert stored["password"].get_secret_value() == "secret"
    assert (fields["long_messages"], fields["max_parts"]) == (True, 6)
