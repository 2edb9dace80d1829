"""The kannel module against Kannel's documented sendsms answers and callback formats.

The real Kannel is exercised in tests/integration/test_kannel.py; here are the answers a test
Kannel cannot easily be made to give (not routable, temporal failure, queued).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import httpx
import pytest
import sqlalchemy as sa

from smsdesk.domain.message import Status
from smsdesk.domain.sms import OutboundSms
from smsdesk.providers.base import (
    AuthenticationError,
    CallbackRequest,
    PermanentError,
    ProviderContext,
    ProviderError,
    TemporaryError,
)
from smsdesk.providers.kannel import KannelProvider, KannelSettings
from smsdesk.store.tables import unmatched_reports
from tests.support.harness import running_service

STATUS_URL = "http://smsdesk.test/webhooks/kannel/status/s3cret"


def sms(**changes: Any) -> OutboundSms:
    fields: dict[str, Any] = {
        "message_id": "01M893FVE04ZX1S6SP3C4AF7YA",
        "to": "+46701234567",
        "sender": "SMSDESK",
        "text": "hej",
        "encoding": "gsm7",
        "segments": 1,
        "priority": 2,
        "status_callback_url": STATUS_URL,
    }
    return OutboundSms(**{**fields, **changes})


def provider(answer: tuple[int, str], seen: list[httpx.Request], **settings: Any) -> KannelProvider:
    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(answer[0], text=answer[1])

    client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    fields = {"base_url": "http://kannel.test:13013", "username": "u", "password": "p"}
    config = KannelSettings(**{**fields, **settings})
    return KannelProvider(config, client, ProviderContext(data_dir=Path(".")))


def query(request: httpx.Request) -> dict[str, str]:
    return {key: values[0] for key, values in parse_qs(request.url.query.decode()).items()}


@pytest.mark.parametrize("answer", ["0: Accepted for delivery", "3: Queued for later delivery"])
async def test_accepted_and_queued_answers_are_sent(answer: str) -> None:
    """Both 202 answers mean Kannel has the message; our id is the provider id."""
    seen: list[httpx.Request] = []
    [result] = await provider((202, answer), seen).send([sms()])
    assert result.accepted and result.provider_message_id == sms().message_id
    assert seen[0].url.path == "/cgi-bin/sendsms"


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        ((403, "Authorization failed for sendsms"), AuthenticationError),
        ((403, "Not routable. Do not try again."), PermanentError),
        ((400, "Missing receiver number, rejected"), PermanentError),
        ((503, "Temporal failure, try again later."), TemporaryError),
        ((404, "<html>not found</html>"), TemporaryError),
    ],
)
async def test_refusals_map_to_errors(answer: tuple[int, str], error: type[ProviderError]) -> None:
    """Each of Kannel's refusals becomes the error that decides retry, failure or admin alert."""
    with pytest.raises(error) as raised:
        await provider(answer, []).send([sms()])
    assert type(raised.value) is error
    assert answer[1] in raised.value.message


async def test_query_carries_coding_priority_validity_routing_and_dlr_url() -> None:
    """What the sendsms request says for a high-priority Unicode text with a report."""
    seen: list[httpx.Request] = []
    expires = time.time() + 3600
    message = sms(text="Привет", encoding="ucs2", priority=1, expires_at=expires)
    await provider((202, "0: Accepted for delivery"), seen, smsc="operator1").send([message])
    sent = query(seen[0])
    assert sent["to"] == "+46701234567" and sent["from"] == "SMSDESK"
    assert sent["text"] == "Привет" and sent["charset"] == "UTF-8" and sent["coding"] == "2"
    assert sent["priority"] == "1" and sent["smsc"] == "operator1"
    assert sent["validity"] in ("60", "61")
    assert sent["dlr-mask"] == "19"
    assert sent["dlr-url"] == (
        f"{STATUS_URL}?ref={message.message_id}&type=%d&answer=%A&smscid=%F&ts=%T"
    )


async def test_low_priority_and_no_report_leave_the_fields_out() -> None:
    """Low priority sends no priority (Kannel's lowest); no report means no dlr-url."""
    seen: list[httpx.Request] = []
    message = sms(priority=3, status_callback_url=None, delivery_report=False)
    await provider((202, "0: Accepted for delivery"), seen).send([message])
    sent = query(seen[0])
    assert "priority" not in sent and "dlr-url" not in sent and "dlr-mask" not in sent
    assert sent["coding"] == "0"


async def test_text_longer_than_kannel_allows_fails_without_a_request() -> None:
    """Kannel would cut it silently; smsdesk fails it and says which setting to raise."""
    seen: list[httpx.Request] = []
    [result] = await provider((202, "0: Accepted"), seen).send([sms(segments=3)])
    assert isinstance(result.error, PermanentError) and "max-messages" in result.error.message
    assert seen == []


async def test_missing_credentials_are_an_authentication_error() -> None:
    with pytest.raises(AuthenticationError, match="user name and password"):
        await provider((202, ""), [], password="").send([sms()])


def callback(url: str) -> CallbackRequest:
    parts = urlsplit(url)
    values = {key: v[0] for key, v in parse_qs(parts.query, keep_blank_values=True).items()}
    return CallbackRequest("GET", url, {}, values, b"")


@pytest.mark.parametrize(
    ("kind", "status"),
    [
        ("1", Status.DELIVERED),
        ("2", Status.UNDELIVERED),
        ("4", Status.SENT),
        ("8", Status.SENT),
        ("16", Status.UNDELIVERED),
    ],
)
def test_dlr_types_map_to_statuses(kind: str, status: Status) -> None:
    url = f"{STATUS_URL}?ref=ABC&type={kind}&answer=ACK%2F&smscid=&ts=1795602007"
    [report] = provider((202, ""), []).parse_status_callback(callback(url))
    assert (report.provider_message_id, report.status, report.raw_code) == ("ABC", status, kind)
    assert report.description == "ACK/" and report.occurred_at == 1795602007


def test_expired_receipt_from_the_smsc_is_expired() -> None:
    """Kannel says type 2; the SMPP receipt it passes in %A tells the message expired."""
    answer = quote(
        "id:7 sub:001 dlvrd:000 submit date:2611251020 done date:2611261020 stat:EXPIRED"
    )
    url = f"{STATUS_URL}?ref=ABC&type=2&answer={answer}&ts=1"
    [report] = provider((202, ""), []).parse_status_callback(callback(url))
    assert report.status is Status.EXPIRED and "stat:EXPIRED" in report.description


@pytest.mark.parametrize("url", [f"{STATUS_URL}?type=1", f"{STATUS_URL}?ref=A&type=%d"])
def test_malformed_dlr_is_refused(url: str) -> None:
    """A report without our reference, or with an unsubstituted type, is malformed."""
    with pytest.raises(ValueError):
        provider((202, ""), []).parse_status_callback(callback(url))


def test_inbound_ucs2_text_is_decoded_by_the_charset_kannel_names() -> None:
    """Without mo-recode Kannel passes UCS-2 texts as UTF-16BE bytes."""
    text = quote("Да".encode("utf-16-be"))
    url = (
        "http://smsdesk.test/webhooks/kannel/inbound/s?from=%2B46701234503&to=12345"
        f"&text={text}&id=df683e62&ts=1795602037&coding=2&charset=UTF-16BE"
    )
    [inbound] = provider((202, ""), []).parse_inbound(callback(url))
    assert (inbound.sender, inbound.recipient, inbound.text) == ("+46701234503", "12345", "Да")
    assert inbound.provider_message_id == "df683e62" and inbound.received_at == 1795602037


def test_inbound_without_id_gets_a_stable_one() -> None:
    url = "http://x/inbound/s?from=46701234502&to=12345&text=hej+d%C3%A5&coding=0&charset=UTF-8"
    first = provider((202, ""), []).parse_inbound(callback(url))[0]
    again = provider((202, ""), []).parse_inbound(callback(url))[0]
    assert first.text == "hej då" and first.sender == "+46701234502"
    assert first.provider_message_id == again.provider_message_id != ""


async def test_webhook_keeps_unknown_reports_and_refuses_malformed_ones(tmp_path: Path) -> None:
    """Through the real webhook: an unknown ref is kept as unmatched, a broken report is a 400."""
    async with running_service(tmp_path) as harness:
        await harness.configure(module="kannel", module_settings={"kannel": {"username": "u"}})
        secret = harness.service.settings.callback_secret()
        base = f"/webhooks/kannel/status/{secret}"
        unknown = await harness.client.get(f"{base}?ref=NOT-OURS&type=1&answer=&ts=1")
        assert unknown.status_code == 200, unknown.text
        broken = await harness.client.get(f"{base}?ref=X&type=%25d")
        assert broken.status_code == 400 and "known types" in broken.text
        with harness.service.engine.connect() as conn:
            rows = list(conn.execute(sa.select(unmatched_reports)))
        assert [(r.module, r.provider_message_id, r.status) for r in rows] == [
            ("kannel", "NOT-OURS", "delivered")
        ]
