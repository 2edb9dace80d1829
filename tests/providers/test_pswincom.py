"""The PSWinCom XML gateway module against its fake on loopback, and canned gateway answers."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
import sqlalchemy as sa
from defusedxml import ElementTree
from hypothesis import given, settings
from hypothesis import strategies as st
from starlette.applications import Starlette

from smsdesk.domain.encoding import analyse
from smsdesk.domain.ids import new_id
from smsdesk.domain.message import Status
from smsdesk.domain.settings import MASK
from smsdesk.domain.sms import OutboundSms
from smsdesk.outbox.accept import module_defaults
from smsdesk.process_config import AppConfig
from smsdesk.providers.base import (
    AuthenticationError,
    CallbackRequest,
    PermanentError,
    ProviderContext,
    RateLimitedError,
    TemporaryError,
)
from smsdesk.providers.pswincom import (
    FAILOVER_URL,
    PRODUCTION_URL,
    REPORT_STATES,
    OriginalPsWinComSettings,
    PsWinComProvider,
    PsWinComSettings,
    delivery_time,
)
from smsdesk.service import Service
from smsdesk.store.tables import inbound_messages
from smsdesk.testing import free_port
from smsdesk.testing.fakes import FailureMode
from smsdesk.testing.fakes.pswincom import BAD_LOGON, PsWinComFake, bad_receiver
from smsdesk.web.app import create_app
from tests.support.harness import BASE_URL, Harness, running_service

NUMBER = "+4799887766"
OSLO = ZoneInfo("Europe/Oslo")
PARSER = PsWinComProvider(PsWinComSettings(), httpx.AsyncClient(), ProviderContext(Path(".")))


def outbound(**changes: Any) -> OutboundSms:
    text = changes.pop("text", "Hello from smsdesk")
    analysed = analyse(text)
    fields: dict[str, Any] = {
        "message_id": new_id(),
        "to": NUMBER,
        "sender": "Smsdesk",
        "text": text,
        "encoding": analysed.encoding.value,
        "segments": analysed.segments,
        "priority": 2,
        **changes,
    }
    return OutboundSms(**fields)


@pytest.fixture(scope="module")
def fake() -> Iterator[PsWinComFake]:
    with PsWinComFake() as server:
        yield server


@pytest.fixture
def gateway(fake: PsWinComFake) -> Iterator[PsWinComFake]:
    """The module's fake with nothing recorded and nothing pending."""
    fake.reset()
    yield fake
    fake.release_held()


@pytest.fixture
async def connect(
    gateway: PsWinComFake, tmp_path: Path
) -> AsyncIterator[Callable[..., PsWinComProvider]]:
    """Build a provider pointed at the fake, with settings changed as asked."""
    async with httpx.AsyncClient() as http:

        def build(**changes: Any) -> PsWinComProvider:
            settings = PsWinComSettings(**{**gateway.module_settings(), **changes})
            return PsWinComProvider(settings, http, ProviderContext(tmp_path))

        yield build


def canned(body: str, status: int = 200) -> PsWinComProvider:
    """A provider whose gateway answers `body` whatever is sent."""
    transport = httpx.MockTransport(lambda request: httpx.Response(status, text=body))
    settings = PsWinComSettings(username="u", password="p")
    return PsWinComProvider(
        settings, httpx.AsyncClient(transport=transport), ProviderContext(Path("."))
    )


def posted(gateway: PsWinComFake, index: int = -1) -> Any:
    """The SESSION element of a send request the fake received."""
    return ElementTree.fromstring(gateway.send_requests()[index].body)


# -- the request ---------------------------------------------------------------------------


async def test_a_batch_is_one_session_with_credentials_and_numbered_messages(
    connect: Callable[..., PsWinComProvider], gateway: PsWinComFake
) -> None:
    """All messages go in one SESSION post, numbered from 1, RCV without '+', REF kept."""
    batch = [outbound(to=f"+479988776{i}", text=f"Message {i}") for i in range(3)]
    results = await connect().send(batch)

    [request] = gateway.send_requests()
    assert request.headers["content-type"] == "text/xml; charset=iso-8859-1"
    assert request.body.startswith(b"<?xml version='1.0' encoding='iso-8859-1'?>")
    session = posted(gateway)
    assert session.findtext("CLIENT") == gateway.username
    assert session.findtext("PW") == gateway.password
    messages = session.findall("MSGLST/MSG")
    assert [m.findtext("ID") for m in messages] == ["1", "2", "3"]
    assert [m.findtext("RCV") for m in messages] == [f"479988776{i}" for i in range(3)]
    assert [child.tag for child in messages[0]] == ["ID", "TEXT", "RCPREQ", "SND", "RCV"]
    assert [r.provider_message_id for r in results] == [s.provider_id for s in gateway.messages]
    assert all(r.accepted and r.raw_code == "OK" for r in results)
    assert len(results[0].provider_message_id or "") >= 36


async def test_latin1_gsm_text_goes_as_latin1_bytes_without_op(
    connect: Callable[..., PsWinComProvider], gateway: PsWinComFake
) -> None:
    """Norwegian letters are GSM-7 and Latin-1: plain text, sent as ISO-8859-1 bytes."""
    await connect().send([outbound(text="Hei Ærø æøå!")])

    assert "Hei \xc6r\xf8 \xe6\xf8\xe5!".encode("latin-1") in gateway.send_requests()[0].body
    [message] = posted(gateway).findall("MSGLST/MSG")
    assert message.find("OP") is None
    [sms] = gateway.messages
    assert (sms.text, sms.unicode) == ("Hei Ærø æøå!", False)


async def test_unicode_text_goes_as_op_9_with_ucs2_hex(
    connect: Callable[..., PsWinComProvider], gateway: PsWinComFake
) -> None:
    """Text GSM-7 cannot carry is OP 9, its TEXT the UTF-16BE bytes in hex."""
    text = "Привет ✓ 你好 🙂"
    await connect().send([outbound(text=text)])

    [message] = posted(gateway).findall("MSGLST/MSG")
    assert message.findtext("OP") == "9"
    assert message.findtext("TEXT") == text.encode("utf-16-be").hex()
    [sms] = gateway.messages
    assert (sms.text, sms.unicode) == (text, True)


@pytest.mark.parametrize("text", ["Only 5€ today", "Ω and Δ", "Price: 10 € {net}"])
async def test_gsm_text_outside_latin1_goes_as_unicode_not_lost(
    connect: Callable[..., PsWinComProvider], gateway: PsWinComFake, text: str
) -> None:
    """GSM-7 characters that Latin-1 lacks (euro sign, Greek) would be lost as plain text."""
    assert analyse(text).encoding.value == "gsm7"
    await connect().send([outbound(text=text)])

    [sms] = gateway.messages
    assert (sms.text, sms.unicode) == (text, True)


@settings(max_examples=40, deadline=None)
@given(
    text=st.text(
        alphabet=st.characters(exclude_categories=("Cs", "Cc"), include_characters="\r\n"),
        min_size=1,
        max_size=300,
    )
)
def test_any_text_arrives_intact(fake: PsWinComFake, text: str) -> None:
    """Whatever the text, the gateway reads back exactly what was written."""

    async def send() -> str:
        async with httpx.AsyncClient() as http:
            settings = PsWinComSettings(**fake.module_settings())
            provider = PsWinComProvider(settings, http, ProviderContext(Path(".")))
            [result] = await provider.send([outbound(text=text)])
        assert result.accepted, result.error
        return fake.find(result.provider_message_id or "").text

    assert asyncio.run(send()) == text


async def test_delivery_reports_are_requested_only_when_wanted(
    connect: Callable[..., PsWinComProvider], gateway: PsWinComFake
) -> None:
    """RCPREQ Y only when the module and the message both want a report."""
    await connect().send([outbound(), outbound(delivery_report=False)])
    await connect(delivery_report=False).send([outbound()])
    await connect(no_status_report=True).send([outbound()])

    assert [sms.report_requested for sms in gateway.messages] == [True, False, False, False]


async def test_validity_becomes_ttl_in_minutes(
    connect: Callable[..., PsWinComProvider], gateway: PsWinComFake
) -> None:
    """expires_at is sent as TTL minutes from now; no expiry, no TTL."""
    await connect().send(
        [outbound(expires_at=time.time() + 3600), outbound(), outbound(expires_at=time.time())]
    )

    messages = posted(gateway).findall("MSGLST/MSG")
    assert [m.findtext("TTL") for m in messages] == ["60", None, "1"]


async def test_a_numeric_sender_goes_without_plus(
    connect: Callable[..., PsWinComProvider], gateway: PsWinComFake
) -> None:
    """SND is digits only, like RCV."""
    await connect().send([outbound(sender="+4712345678")])

    assert gateway.messages[0].sender == "4712345678"


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"sender": "My_Shop"}, "sender"),
        ({"sender": "Shop,Inc"}, "sender"),
        ({"to": "+4712"}, "receiver"),
        ({"text": "a" * 2145}, "too-long"),
        ({"text": "ж" * 1073}, "too-long"),
    ],
)
async def test_what_the_gateway_would_refuse_or_cut_is_refused_before_sending(
    connect: Callable[..., PsWinComProvider],
    gateway: PsWinComFake,
    changes: dict[str, Any],
    code: str,
) -> None:
    """Bad senders, short numbers and texts over 16 parts fail here; the rest still goes."""
    results = await connect().send([outbound(**changes), outbound()])

    assert isinstance(results[0].error, PermanentError)
    assert results[0].error.code == code == results[0].raw_code
    assert results[1].accepted
    [message] = posted(gateway).findall("MSGLST/MSG")
    assert message.findtext("ID") == "1"


async def test_the_longest_texts_the_gateway_takes_are_sent(
    connect: Callable[..., PsWinComProvider], gateway: PsWinComFake
) -> None:
    """2144 plain characters and 1072 UCS-2 characters are within the 16 parts."""
    results = await connect().send([outbound(text="a" * 2144), outbound(text="ж" * 1072)])

    assert all(r.accepted for r in results)


# -- errors ------------------------------------------------------------------------------------


async def test_a_refused_logon_is_an_authentication_error_with_the_reason(
    connect: Callable[..., PsWinComProvider], gateway: PsWinComFake
) -> None:
    """LOGON FAIL stops the whole batch and shows the gateway's REASON."""
    with pytest.raises(AuthenticationError) as caught:
        await connect(password="wrong").send([outbound(), outbound()])

    assert caught.value.code == "LOGON-FAIL"
    assert BAD_LOGON in caught.value.message
    assert "password" in caught.value.message
    assert gateway.messages == []


async def test_the_auth_failure_mode_is_read_as_refused_credentials(
    connect: Callable[..., PsWinComProvider], gateway: PsWinComFake
) -> None:
    """The fake's AUTH answer is the same LOGON FAIL."""
    gateway.fail_next(FailureMode.AUTH)
    with pytest.raises(AuthenticationError):
        await connect().send([outbound()])


async def test_throttling_asks_to_wait(
    connect: Callable[..., PsWinComProvider], gateway: PsWinComFake
) -> None:
    """HTTP 429 with Retry-After is a rate limit of that many seconds."""
    gateway.fail_next(FailureMode.THROTTLE)
    with pytest.raises(RateLimitedError) as caught:
        await connect().send([outbound()])

    assert caught.value.retry_after == 1.0


async def test_a_server_error_is_temporary(
    connect: Callable[..., PsWinComProvider], gateway: PsWinComFake
) -> None:
    """A 5xx is retried later."""
    gateway.fail_next(FailureMode.SERVER_ERROR)
    with pytest.raises(TemporaryError) as caught:
        await connect().send([outbound()])

    assert caught.value.code == "http-500"


async def test_a_timeout_is_temporary_and_does_not_fail_over(
    connect: Callable[..., PsWinComProvider], gateway: PsWinComFake
) -> None:
    """The gateway may have the messages after a timeout: no second host is tried."""
    other = PsWinComFake().start()
    try:
        gateway.fail_next(FailureMode.TIMEOUT)
        with pytest.raises(TemporaryError) as caught:
            await connect(timeout=1.0, failover_url=other.url).send([outbound()])
    finally:
        other.stop()

    assert caught.value.code == "timeout"
    assert other.requests == []


async def test_an_unreachable_host_fails_over(
    connect: Callable[..., PsWinComProvider], gateway: PsWinComFake
) -> None:
    """When the main host cannot be reached at all, the failover host gets the session."""
    down = f"http://127.0.0.1:{free_port()}"
    [result] = await connect(base_url=down, failover_url=gateway.url).send([outbound()])

    assert result.accepted
    assert len(gateway.messages) == 1


async def test_without_a_failover_an_unreachable_host_is_temporary(
    connect: Callable[..., PsWinComProvider],
) -> None:
    """A custom base URL has no failover unless one is set."""
    with pytest.raises(TemporaryError) as caught:
        await connect(base_url=f"http://127.0.0.1:{free_port()}").send([outbound()])

    assert caught.value.code == "connection"


def test_the_production_host_fails_over_to_xml2() -> None:
    """The default gateway is xml.pswin.com with xml2.pswin.com as its failover."""
    assert (PRODUCTION_URL, FAILOVER_URL) == ("https://xml.pswin.com", "https://xml2.pswin.com")
    assert PARSER._failover_base() == FAILOVER_URL
    custom = PsWinComSettings(base_url="https://gw.example")
    assert PsWinComProvider(custom, PARSER.http, PARSER.context)._failover_base() == ""


async def test_a_partly_refused_session_keeps_each_messages_own_result(
    connect: Callable[..., PsWinComProvider], gateway: PsWinComFake
) -> None:
    """STATUS FAIL refuses one message with the gateway's INFO; the others are sent."""
    gateway.fail_next(FailureMode.PARTIAL)
    batch = [outbound(to=f"+479988770{i}") for i in range(3)]
    results = await connect().send(batch)

    assert isinstance(results[0].error, PermanentError)
    assert results[0].raw_code == "FAIL"
    assert bad_receiver("4799887700") in results[0].error.message
    assert [r.accepted for r in results] == [False, True, True]


async def test_a_refused_number_fails_permanently(
    connect: Callable[..., PsWinComProvider], gateway: PsWinComFake
) -> None:
    """A number the gateway refuses is a permanent failure with its INFO text."""
    gateway.refuse_number(NUMBER)
    [result] = await connect().send([outbound()])

    assert isinstance(result.error, PermanentError)
    assert result.error.code == "FAIL"
    assert "at least 9 digits" in result.error.message


def session_answer(*messages: str, logon: str = "OK", reason: str = "") -> str:
    return (
        f"<?xml version='1.0'?><SESSION><LOGON>{logon}</LOGON><REASON>{reason}</REASON>"
        f"<MSGLST>{''.join(messages)}</MSGLST></SESSION>"
    )


@pytest.mark.parametrize(
    ("info", "error_class"),
    [
        ("Receiver is barred", PermanentError),
        ("Gateway busy, try again later", TemporaryError),
        ("Temporary routing failure", TemporaryError),
        ("", PermanentError),
    ],
)
async def test_a_refused_message_is_permanent_unless_its_info_says_it_passes(
    info: str, error_class: type[Exception]
) -> None:
    """INFO decides: words like busy/temporary/try again make the refusal temporary."""
    answer = session_answer(f"<MSG><ID>1</ID><STATUS>FAIL</STATUS><INFO>{info}</INFO></MSG>")
    [result] = await canned(answer).send([outbound()])

    assert type(result.error) is error_class
    assert result.raw_code == "FAIL"
    assert (info or "no reason given") in str(result.error)


async def test_a_message_missing_from_the_answer_is_tried_again() -> None:
    """No result for an ID is temporary; an OK without REF keeps our id."""
    answer = session_answer("<MSG><ID>2</ID><STATUS>OK</STATUS><INFO/></MSG>")
    first, second = await canned(answer).send([outbound(), outbound(message_id="m-2")])

    assert isinstance(first.error, TemporaryError) and first.error.code == "no-result"
    assert second.provider_message_id == "m-2"


@pytest.mark.parametrize(
    ("status", "body", "error_class", "code"),
    [
        (403, "Forbidden", AuthenticationError, "http-403"),
        (401, "Unauthorized", AuthenticationError, "http-401"),
        (400, "Bad request", PermanentError, "http-400"),
        (404, "Not found", TemporaryError, "http-404"),
        (200, "<html>maintenance</html", TemporaryError, "bad-answer"),
        (200, "<html>maintenance</html>", TemporaryError, "bad-answer"),
        (503, "busy", TemporaryError, "http-503"),
    ],
)
async def test_answers_other_than_a_session_are_classified(
    status: int, body: str, error_class: type[Exception], code: str
) -> None:
    """HTTP errors and unreadable answers each become the error that says what to do."""
    with pytest.raises(error_class) as caught:
        await canned(body, status).send([outbound()])

    assert getattr(caught.value, "code", None) == code


async def test_logon_fail_from_a_canned_answer_keeps_the_reason() -> None:
    """REASON is quoted in the authentication error."""
    with pytest.raises(AuthenticationError, match="Account closed"):
        await canned(session_answer(logon="FAIL", reason="Account closed")).send([outbound()])


# -- delivery reports --------------------------------------------------------------------------


def xml_request(
    body: str, content_type: str = "application/xml", **headers: str
) -> CallbackRequest:
    return CallbackRequest(
        "POST",
        "http://smsdesk.test/webhooks/pswincom/status/s",
        {"content-type": content_type, **headers},
        {},
        body.encode("iso-8859-1"),
    )


def report_msg(number: int, ref: str, state: str, when: str = "") -> str:
    delivered = f"<DELIVERYTIME>{when}</DELIVERYTIME>" if when else ""
    return (
        f"<MSG><ID>{number}</ID><REF>{ref}</REF><RCV>4512345678</RCV>"
        f"<STATE>{state}</STATE>{delivered}</MSG>"
    )


def test_the_documented_report_sample_is_read() -> None:
    """The wiki's sample, DOCTYPE included, gives one delivered report keyed by REF."""
    body = (
        '<?xml version="1.0"?>\n<!DOCTYPE MSGLST SYSTEM "pswincom_report_request.dtd">\n'
        "<MSGLST>\n  "
        + report_msg(1, "984342374", "DELIVRD", "2006.02.23 15:23:23")
        + "\n</MSGLST>"
    )
    [report] = PARSER.parse_status_callback(xml_request(body))

    assert report.provider_message_id == "984342374"
    assert (report.status, report.raw_code) == (Status.DELIVERED, "DELIVRD")
    assert report.occurred_at == datetime(2006, 2, 23, 15, 23, 23, tzinfo=OSLO).timestamp()
    assert "Delivered" in report.description


@pytest.mark.parametrize(("state", "status"), sorted(REPORT_STATES.items()))
def test_every_documented_state_is_mapped_and_kept(state: str, status: Status) -> None:
    """Only DELIVRD is delivered; ACCEPTD/ENROUTE are on the way; the rest is final failure."""
    [report] = PARSER.parse_status_callback(
        xml_request(f"<MSGLST>{report_msg(1, 'R1', state)}</MSGLST>")
    )

    assert (report.status, report.raw_code) == (status, state)
    assert report.description
    if state == "EXPIRED":
        assert status is Status.EXPIRED
    elif state not in ("DELIVRD", "ACCEPTD", "ENROUTE"):
        assert status is Status.UNDELIVERED


def test_an_unknown_state_counts_as_undelivered_with_its_code() -> None:
    """Reports carry final states, so an unlisted one is a message the network did not take."""
    [report] = PARSER.parse_status_callback(
        xml_request(f"<MSGLST>{report_msg(1, 'R1', 'NEWCODE')}</MSGLST>")
    )

    assert (report.status, report.raw_code) == (Status.UNDELIVERED, "NEWCODE")


def test_a_batched_report_is_acknowledged_message_by_message() -> None:
    """Several MSG in one post give several reports; the answer echoes each ID with OK."""
    body = (
        "<MSGLST>"
        + "".join(
            report_msg(n, f"REF-{n}", s)
            for n, s in [(1, "DELIVRD"), (2, "UNDELIV"), (7, "EXPIRED")]
        )
        + "</MSGLST>"
    )
    request = xml_request(body)
    reports = PARSER.parse_status_callback(request)
    answer = PARSER.callback_answer("status", request, reports)

    assert [(r.provider_message_id, r.status) for r in reports] == [
        ("REF-1", Status.DELIVERED),
        ("REF-2", Status.UNDELIVERED),
        ("REF-7", Status.EXPIRED),
    ]
    root = ElementTree.fromstring(answer.body)
    assert [(m.findtext("ID"), m.findtext("STATUS")) for m in root.findall("MSG")] == [
        ("1", "OK"),
        ("2", "OK"),
        ("7", "OK"),
    ]
    assert answer.media_type == "text/xml" and answer.status_code == 200


async def test_concurrent_callbacks_get_their_own_acknowledgement() -> None:
    """Each request's answer is its own, even when callbacks interleave."""

    async def handle(ids: list[int]) -> list[str | None]:
        body = "<MSGLST>" + "".join(report_msg(n, f"R{n}", "DELIVRD") for n in ids) + "</MSGLST>"
        request = xml_request(body)
        reports = PARSER.parse_status_callback(request)
        await asyncio.sleep(0)
        root = ElementTree.fromstring(PARSER.callback_answer("status", request, reports).body)
        return [m.findtext("ID") for m in root.findall("MSG")]

    first, second = await asyncio.gather(handle([1, 2, 3]), handle([9]))
    assert (first, second) == (["1", "2", "3"], ["9"])


@pytest.mark.parametrize("method", ["POST", "GET"])
def test_the_http_flavour_report_is_read_from_a_form_or_the_query(method: str) -> None:
    """RCV, REF, STATE, DELIVERYTIME as fields; answered with an empty 200."""
    fields = "RCV=4712345678&REF=BB35EDF6-3D61-4DE5-9C95-C6E5E35D48EA&STATE=DELIVRD"
    fields += "&DELIVERYTIME=2013.03.01+23%3a01%3a00"
    if method == "POST":
        request = CallbackRequest(
            "POST",
            "http://x/s",
            {"content-type": "application/x-www-form-urlencoded"},
            {},
            fields.encode(),
        )
    else:
        query = dict(pair.split("=", 1) for pair in fields.replace("+", " ").split("&"))
        query["DELIVERYTIME"] = "2013.03.01 23:01:00"
        request = CallbackRequest("GET", "http://x/s", {}, query, b"")
    [report] = PARSER.parse_status_callback(request)
    answer = PARSER.callback_answer("status", request, [report])

    assert report.provider_message_id == "BB35EDF6-3D61-4DE5-9C95-C6E5E35D48EA"
    assert report.status is Status.DELIVERED
    assert report.occurred_at == datetime(2013, 3, 1, 23, 1, tzinfo=OSLO).timestamp()
    assert (answer.status_code, answer.body) == (200, "")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2006.02.23 15:23:23", datetime(2006, 2, 23, 15, 23, 23, tzinfo=OSLO)),
        ("2006.11.30 13:53", datetime(2006, 11, 30, 13, 53, tzinfo=OSLO)),
        ("201307011230", datetime(2013, 7, 1, 12, 30, tzinfo=OSLO)),
        ("", None),
        ("yesterday", None),
    ],
)
def test_delivery_times_in_each_format_are_norwegian_local_time(
    value: str, expected: datetime | None
) -> None:
    """Both documented layouts are read; a missing or odd time is no error."""
    assert delivery_time(value) == (expected.timestamp() if expected else None)


@pytest.mark.parametrize(
    "body",
    [
        "\x00not a report",
        "<MSGLST><MSG><ID>1</ID>",
        "<SESSION><MSG/></SESSION>",
        "<MSGLST></MSGLST>",
        "<MSGLST><MSG><ID>1</ID><STATE>DELIVRD</STATE></MSG></MSGLST>",
        "<MSGLST><MSG><ID>1</ID><REF>R</REF></MSG></MSGLST>",
        '<!DOCTYPE x [<!ENTITY a "aaaa">]><MSGLST><MSG><REF>&a;</REF></MSG></MSGLST>',
        "RCV=4712345678&STATE=DELIVRD",
    ],
)
def test_a_malformed_report_is_a_value_error(body: str) -> None:
    """Garbage, missing REF/STATE, an empty list and entity tricks are refused clearly."""
    content_type = "application/x-www-form-urlencoded" if "=" in body[:5] else "application/xml"
    with pytest.raises(ValueError, match="PSWinCom"):
        PARSER.parse_status_callback(xml_request(body, content_type))


@given(
    body=st.binary(max_size=200),
    content_type=st.sampled_from(
        ["application/xml", "application/x-www-form-urlencoded; charset=utf-8", "", "text/x"]
    ),
)
def test_no_input_breaks_the_callback_parsers(body: bytes, content_type: str) -> None:
    """Any bytes give reports and messages or a ValueError, never another exception."""
    request = CallbackRequest("POST", "http://x/s", {"content-type": content_type}, {}, body)
    with contextlib.suppress(ValueError):
        PARSER.parse_status_callback(request)
    with contextlib.suppress(ValueError):
        PARSER.parse_inbound(request)


# -- inbound ---------------------------------------------------------------------------------


def test_an_xml_inbound_post_gives_each_message_with_e164_numbers() -> None:
    """MO v2 XML in Latin-1: senders get '+', short codes stay, each MSG is acknowledged."""
    body = (
        '<?xml version="1.0" encoding="iso-8859-1"?>'
        '<!DOCTYPE MSGLST SYSTEM "pswincom_receive_request.dtd"><MSGLST>'
        "<MSG><ID>1</ID><TEXT>Ja, takk \xe6\xf8\xe5</TEXT><SND>4712345678</SND>"
        "<RCV>26112</RCV><NET>no.telenor</NET></MSG>"
        "<MSG><ID>2</ID><TEXT>Nei</TEXT><SND>004798765432</SND><RCV>4799887766</RCV></MSG>"
        "</MSGLST>"
    )
    request = xml_request(body, "application/xml", **{"psw-message-type": "MO"})
    first, second = PARSER.parse_inbound(request)
    answer = PARSER.callback_answer("inbound", request, [first, second])

    assert (first.sender, first.recipient, first.text) == ("+4712345678", "26112", "Ja, takk æøå")
    assert (second.sender, second.recipient) == ("+4798765432", "+4799887766")
    assert first.provider_message_id != second.provider_message_id
    root = ElementTree.fromstring(answer.body)
    assert [m.findtext("ID") for m in root.findall("MSG")] == ["1", "2"]


def test_an_http_flavour_inbound_form_is_read_as_latin1() -> None:
    """ID, SND, RCV, TXT, NET as a Latin-1 form (the HTTP interface's MO)."""
    body = b"ID=1&SND=4712345678&RCV=26112&TXT=Test+%e6%f8%e5&NET=no.telenor"
    request = CallbackRequest(
        "POST", "http://x/i", {"content-type": "application/x-www-form-urlencoded"}, {}, body
    )
    [sms] = PARSER.parse_inbound(request)

    assert (sms.sender, sms.recipient, sms.text) == ("+4712345678", "26112", "Test æøå")
    assert PARSER.callback_answer("inbound", request, [sms]).body == ""


@pytest.mark.parametrize(
    "body", [b"<MSGLST><MSG><ID>1</ID><TEXT>x</TEXT></MSG></MSGLST>", b"SND=4712345678&TXT=x"]
)
def test_an_inbound_message_without_numbers_is_a_value_error(body: bytes) -> None:
    """SND and RCV are required."""
    content_type = (
        "application/xml" if body.startswith(b"<") else "application/x-www-form-urlencoded"
    )
    request = CallbackRequest("POST", "http://x/i", {"content-type": content_type}, {}, body)
    with pytest.raises(ValueError, match="SND, RCV"):
        PARSER.parse_inbound(request)


# -- settings and plugin keys ------------------------------------------------------------------


def test_the_legacy_no_status_report_key_turns_reports_off() -> None:
    """pswin_noStatusReport is the inverse of delivery_report; blank means 'no'."""
    assert PsWinComSettings(no_status_report="true").delivery_report is False
    assert PsWinComSettings(no_status_report="").delivery_report is True
    assert PsWinComSettings().delivery_report is True


async def test_plugin_keys_configure_the_module_and_its_report_choice(
    tmp_path: Path, gateway: PsWinComFake
) -> None:
    """All six original keys are accepted; noStatusReport reaches the outbox and the gateway."""
    plugin = "\n".join(
        [
            f"pswin_username = {gateway.username}",
            f"pswin_password = {gateway.password}",
            "pswin_noStatusReport = true",
            "pswin_seriesStart = 1000",
            "pswin_seriesEnd = 1999",
            "pswin_NoSmsSession = 1",
        ]
    )
    async with running_service(tmp_path, listen=True) as harness:
        await harness.configure(
            module="pswincom",
            sender="Smsdesk",
            plugin_configuration=plugin,
            module_settings={"pswincom": {"base_url": gateway.url, "timeout": 1.0}},
        )
        shown = (await harness.get("/api/v1/settings")).json()
        fields = shown["module_settings"]["pswincom"]
        assert (fields["username"], fields["password"]) == (gateway.username, MASK)
        assert (fields["series_start"], fields["series_end"], fields["no_sms_session"]) == (
            "1000",
            "1999",
            "1",
        )
        assert fields["delivery_report"] is False
        config = harness.service.settings.load()
        assert module_defaults(config, "pswincom").delivery_report is False
        await harness.idle_scans(2)

        accepted = await harness.post("/api/v1/messages", {"to": NUMBER, "text": "No report"})
        await harness.wait_for(accepted.json()["id"], "sent")
    [sms] = gateway.messages
    assert sms.report_requested is False


# -- the Original PsWinCom module --------------------------------------------------------------


class HostRouting(httpx.AsyncBaseTransport):
    """Sends each host to its own ASGI app: the gateway's host to the fake, as DNS would."""

    def __init__(self, hosts: dict[str, Any], default: Any) -> None:
        self.hosts = {name: httpx.ASGITransport(app) for name, app in hosts.items()}
        self.default = httpx.ASGITransport(default)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        transport = self.hosts.get(request.url.host, self.default)
        return await transport.handle_async_request(request)


async def test_original_pswincom_sends_to_the_production_gateway_with_its_account(
    gateway: PsWinComFake,
) -> None:
    """The Original screen's user name and password log on at https://xml.pswin.com/."""
    urls: list[str] = []

    async def remember(request: httpx.Request) -> None:
        urls.append(str(request.url))

    routing = HostRouting({"xml.pswin.com": Starlette(routes=gateway.routes())}, Starlette())
    async with httpx.AsyncClient(transport=routing, event_hooks={"request": [remember]}) as http:
        settings = OriginalPsWinComSettings(
            sms_endpoint="SUPPORT", username=gateway.username, password=gateway.password
        )
        provider = PsWinComProvider(settings, http, ProviderContext(Path(".")))
        [result] = await provider.send([outbound()])
        wrong = OriginalPsWinComSettings(username=gateway.username, password="nope")
        with pytest.raises(AuthenticationError):
            await PsWinComProvider(wrong, http, ProviderContext(Path("."))).send([outbound()])

    assert urls == ["https://xml.pswin.com/", "https://xml.pswin.com/"]
    assert result.provider_message_id == gateway.messages[0].provider_id
    assert gateway.messages[0].report_requested


async def test_original_pswincom_round_trip_through_its_own_webhooks(
    tmp_path: Path, gateway: PsWinComFake
) -> None:
    """Send, report and inbound SMS all work for original_pswincom under its own webhooks."""
    service = Service(AppConfig(data_dir=tmp_path, poll_interval=0.02))
    service.upgrade()
    app = create_app(service, manage_service=False)
    routing = HostRouting({"xml.pswin.com": Starlette(routes=gateway.routes())}, app)
    async with httpx.AsyncClient(transport=routing, base_url=BASE_URL) as client:
        await service.start(dispatcher=True, http=client, public_url=BASE_URL)
        try:
            _, key = service.keys.create("test admin", "admin")
            harness = Harness(service, client, key)
            secret = service.settings.callback_secret()
            base = f"{BASE_URL}/webhooks/original_pswincom"
            gateway.point_callbacks(f"{base}/status/{secret}", f"{base}/inbound/{secret}")
            plugin = f"pswin_username = {gateway.username}\npswin_password = {gateway.password}"
            await harness.configure(
                module="original_pswincom",
                sender="Smsdesk",
                plugin_configuration=plugin,
                module_settings={"original_pswincom": {"sms_endpoint": "SUPPORT"}},
            )
            await harness.idle_scans(2)  # the dispatcher takes up the new configuration
            accepted = (await harness.post("/api/v1/messages", {"to": NUMBER, "text": "Hi"})).json()
            sent = await harness.wait_for(accepted["id"], "sent")
            [sms] = gateway.messages
            assert sent["provider_message_id"] == sms.provider_id

            answer = await gateway.send_report(client, sms, True)
            assert answer.status_code == 200
            delivered = await harness.wait_for(accepted["id"], "delivered")
            assert delivered["status_code"] == "DELIVRD"

            answer = await gateway.send_inbound(client, "+4712345678", "+4799887766", "Takk!")
            assert answer.status_code == 200
            forged = await gateway.send_inbound(
                client, "+4712345678", "+4799887766", "x", forged=True
            )
            assert forged.status_code == 403
            with service.engine.connect() as conn:
                rows = list(conn.execute(sa.select(inbound_messages)))
            assert [(r.module, r.sender, r.body) for r in rows] == [
                ("original_pswincom", "+4712345678", "Takk!")
            ]
        finally:
            await service.stop()
            service.close()
    assert len(gateway.acknowledgements) == 2
