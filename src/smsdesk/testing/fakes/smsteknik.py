"""A fake SMS Teknik XML API: `POST /send/xml/?id=…&user=…&pass=…` with an `<sms-teknik>` body.

Like the real API it answers HTTP 200 with plain text: one entry per recipient separated by
`;`, the SMSID (digits) or `0:<reason>`; a request refused as a whole gets a single `0:…`.
It checks the credentials (`0:Access denied`), the account's credit (`0:No SMS Left`), that
the body is XML (`0:Parse error, …`), that `<udmessage>` is there (`0:The required XML-tag
<udmessage> is missing`) and not empty (`0:Message could't be empty`, sic), and each number:
8 to 16 characters including a leading '+' (`0:Invalid phonenumber - #…#`, as in SMS Teknik's
example), a defined E.164 range when `usee164` is 1 (`0:Invalid phonenumber (e164) - #…#`),
and not blocked (`0:Number is blocked`). Operation type 5 is Unicode.

Reports go as deliverystatustype asks: 2 GET query, 3 POST form, 4 XML; replies go as a POST
form to the inbound URL. UNCONFIRMED (no public source): the reply-forward field names
(nr, to, text, datetime, ref, customid), the sender check's answer (`0:Invalid sender`), and
throttling as HTTP 429 with Retry-After.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar
from urllib.parse import urlencode
from xml.sax.saxutils import escape

import httpx
import phonenumbers
from defusedxml import ElementTree
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import BaseRoute, Route

from smsdesk.domain.encoding import analyse
from smsdesk.providers.smsteknik import STOCKHOLM, valid_sender
from smsdesk.testing.fakes.base import FailureMode, FakeProvider, FakeSms

SEND_PATH = "/send/xml/"
COMPANY = "Smsdesk Åkeri AB"
USERNAME = "smsdesk"
PASSWORD = "p@ss;&=word"
ACCESS_DENIED = "0:Access denied"
_NUMBER = re.compile(r"^\+?\d+$")


class Refused(ValueError):
    """The whole request is refused with one `0:<reason>` answer."""


@dataclass(slots=True)
class Submission:
    """A readable `<sms-teknik>` document."""

    text: str
    sender: str
    recipients: list[str]
    fields: dict[str, str] = field(default_factory=dict)

    @property
    def unicode(self) -> bool:
        return self.fields.get("operationtype", "0") == "5"


def parse_submission(body: bytes) -> Submission:
    """Read the XML the way SMS Teknik does; raise Refused with its answer."""
    try:
        root = ElementTree.fromstring(body)
    except ElementTree.ParseError as exc:
        raise Refused(f"0:Parse error, {exc}") from None
    if root.tag != "sms-teknik":
        raise Refused(f"0:Parse error, unexpected root element <{root.tag}>")
    fields = {child.tag: (child.text or "").strip() for child in root if child.tag != "items"}
    message = root.find("udmessage")
    if message is None:
        raise Refused("0:The required XML-tag <udmessage> is missing")
    text = message.text or ""
    if not text.strip():
        raise Refused("0:Message could't be empty")
    recipients = [
        (node.text or "").strip()
        for node in root.iterfind("items/recipient/*")
        if node.tag in ("nr", "orgaddress")
    ]
    if not recipients:
        raise Refused("0:No Valid recipients")
    sender = fields.get("smssender", "")
    if sender and not valid_sender(sender):
        raise Refused(f"0:Invalid sender - #{sender}#")
    return Submission(text, sender, recipients, fields)


def to_e164(number: str) -> str:
    """A number as SMS Teknik reads it: '+…' or '00…' international, '0…' Swedish."""
    if number.startswith("00"):
        return "+" + number[2:]
    if number.startswith("0"):
        return "+46" + number[1:]
    return number if number.startswith("+") else "+" + number


def number_problem(number: str, check_e164: bool) -> str | None:
    """SMS Teknik's reason for refusing a number, or None."""
    compact = number.replace(" ", "").replace("-", "")
    if not _NUMBER.match(compact) or not 8 <= len(to_e164(compact)) <= 16:
        return f"0:Invalid phonenumber - #{number}#"
    if check_e164:
        try:
            valid = phonenumbers.is_valid_number(phonenumbers.parse(to_e164(compact)))
        except phonenumbers.NumberParseException:
            valid = False
        if not valid:
            return f"0:Invalid phonenumber (e164) - #{number}#"
    return None


def stockholm_now() -> str:
    return datetime.now(STOCKHOLM).strftime("%Y-%m-%d %H:%M:%S")


class SmsTeknikFake(FakeProvider):
    """SMS Teknik's XML send endpoint on loopback."""

    module: ClassVar[str] = "smsteknik"
    send_paths: ClassVar[tuple[str, ...]] = (SEND_PATH,)

    def __init__(
        self, company: str = COMPANY, username: str = USERNAME, password: str = PASSWORD
    ) -> None:
        super().__init__()
        self.company = company
        self.username = username
        self.password = password
        self._smsid = 1950940233
        self.credits: int | None = None  # SMS parts left on the account; None = unlimited
        self.blocked_numbers: set[str] = set()  # E.164 numbers SMS Teknik has blocked

    def routes(self) -> list[BaseRoute]:
        return [Route(SEND_PATH, self._send, methods=["POST"])]

    def module_settings(self) -> dict[str, Any]:
        return {
            "company_id": self.company,
            "username": self.username,
            "password": self.password,
            "base_url": self.url,
            "timeout": 1.0,
        }

    def reset(self) -> None:
        """Forget requests, messages, failures and account state (a fake shared by tests)."""
        super().reset()
        with self.lock:
            self.blocked_numbers.clear()
            self.credits = None

    def next_smsid(self) -> str:
        with self.lock:
            self._smsid += 1
            return str(self._smsid)

    async def _send(self, request: Request) -> PlainTextResponse:
        received = await self.received(request)
        failure = self.next_failure()
        if failure is FailureMode.TIMEOUT:
            await self.hold()
            return PlainTextResponse("Service Unavailable", 503)
        if failure is FailureMode.SERVER_ERROR:
            return PlainTextResponse("Internal Server Error", 500)
        if failure is FailureMode.THROTTLE:
            return PlainTextResponse("Too Many Requests", 429, {"Retry-After": "1"})
        query = received.query
        credentials = (query.get("id"), query.get("user"), query.get("pass"))
        if failure is FailureMode.AUTH or credentials != (
            self.company,
            self.username,
            self.password,
        ):
            return PlainTextResponse(ACCESS_DENIED)
        try:
            submission = parse_submission(received.body)
        except Refused as exc:
            return PlainTextResponse(str(exc))
        if self.credits is not None and self.credits <= 0:
            return PlainTextResponse("0:No SMS Left")
        answers = self._accept_each(submission, refuse_first=failure is FailureMode.PARTIAL)
        return PlainTextResponse(";".join(answers))

    def _accept_each(self, submission: Submission, *, refuse_first: bool) -> list[str]:
        fields = submission.fields
        parts = analyse(submission.text).segments
        report_type = fields.get("deliverystatustype", "0")
        answers = []
        for index, number in enumerate(submission.recipients):
            problem = number_problem(number, fields.get("usee164") == "1")
            e164 = to_e164(number.replace(" ", "").replace("-", ""))
            if problem is None and ((refuse_first and index == 0) or e164 in self.refused_numbers):
                problem = f"0:Invalid phonenumber - #{number}#"
            if problem is None and e164 in self.blocked_numbers:
                problem = "0:Number is blocked"
            if problem is not None:
                answers.append(problem)
                continue
            smsid = self.next_smsid()
            with self.lock:
                if self.credits is not None:
                    self.credits -= parts
            self.accept(
                FakeSms(
                    provider_id=smsid,
                    to=e164,
                    sender=submission.sender,
                    text=submission.text,
                    reference=fields.get("customid") or None,
                    unicode=submission.unicode,
                    report_requested=report_type in ("2", "3", "4"),
                    callback_url=fields.get("deliverystatusaddress") or None,
                    fields={**fields, "nr": number, "smsparts": parts},
                )
            )
            answers.append(smsid)
        return answers

    async def send_report(
        self, client: httpx.AsyncClient, sms: FakeSms, delivered: bool, *, forged: bool = False
    ) -> httpx.Response:
        report = {
            "nr": sms.fields.get("nr", sms.to),
            "ref": sms.provider_id,
            "state": "DELIVRD" if delivered else "UNDELIV",
            "text": sms.text,
            "datetime": stockholm_now(),
            "customid": sms.reference or "",
            "smsparts": str(sms.fields.get("smsparts", 1)),
        }
        url = self.report_url(sms, forged)
        kind = sms.fields.get("deliverystatustype", "3")
        if kind == "2":
            return await client.get(url, params=report)
        if kind == "4":
            return await client.post(
                url, content=report_xml(report), headers={"content-type": "text/xml"}
            )
        return await client.post(
            url,
            content=urlencode(report),
            headers={"content-type": "application/x-www-form-urlencoded"},
        )

    async def send_inbound(
        self,
        client: httpx.AsyncClient,
        sender: str,
        recipient: str,
        text: str,
        *,
        forged: bool = False,
    ) -> httpx.Response:
        reply = {
            "nr": sender,
            "to": recipient,
            "text": text,
            "datetime": stockholm_now(),
            "ref": self.next_smsid(),
            "customid": "",
        }
        return await client.post(
            self.forward_url(forged),
            content=urlencode(reply),
            headers={"content-type": "application/x-www-form-urlencoded"},
        )


def report_xml(report: dict[str, str]) -> bytes:
    """A report as deliverystatustype 4 sends it: `<sms><nr/><ref/>…</sms>`."""
    inner = "".join(f"<{name}>{escape(value)}</{name}>" for name, value in report.items())
    return f'<?xml version="1.0" encoding="utf-8"?><sms>{inner}</sms>'.encode()
