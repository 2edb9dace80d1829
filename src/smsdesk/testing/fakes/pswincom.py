"""A fake of PSWinCom's XML gateway (https://xml.pswin.com/) and of its callbacks.

It checks what the gateway checks: the logon (CLIENT/PW, else LOGON FAIL with a REASON), the
elements each MSG needs, RCV as at least 9 digits without "+", the sender's length and
characters, plain text limited to GSM-7 in Latin-1, and OP 9 text as UCS-2 hex. Reports and
inbound SMS are XML posts (XMLHTTP2) to the URLs set in PSWin's account web, and the fake
checks that smsdesk acknowledges each message by its ID.

UNCONFIRMED: throttling is answered HTTP 429 with Retry-After (no documented answer); the
REASON and INFO texts follow a third-party mock of the gateway, not PSWin's own pages.
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

import httpx
from defusedxml import DefusedXmlException, ElementTree
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from smsdesk.domain.encoding import analyse
from smsdesk.testing.fakes.base import FailureMode, FakeProvider, FakeSms

BAD_LOGON = "Username/password is incorrect."
SENDER_CHARS = re.compile(r"^[A-Za-z0-9!\"#%&'()*+ \-./?><;]{1,11}$")
_OSLO = ZoneInfo("Europe/Oslo")


def bad_receiver(receiver: str) -> str:
    return f"Receiver address ({receiver}) must be at least 9 digits including country-code."


class PsWinComFake(FakeProvider):
    """PSWin's XML gateway on loopback: one SESSION post per batch, reports as XML posts."""

    module: ClassVar[str] = "pswincom"
    send_paths: ClassVar[tuple[str, ...]] = ("/",)
    username: ClassVar[str] = "smsdesk-test"
    password: ClassVar[str] = "pswin-fake-password"

    def __init__(self) -> None:
        super().__init__()
        self.acknowledgements: list[str] = []  # smsdesk's answers to reports and inbound SMS

    def routes(self) -> list[BaseRoute]:
        return [Route("/", self._session, methods=["POST"])]

    def module_settings(self) -> dict[str, Any]:
        return {
            "username": self.username,
            "password": self.password,
            "base_url": self.url,
            "timeout": 1.0,
        }

    # -- the gateway -------------------------------------------------------------------------

    async def _session(self, request: Request) -> Response:
        received = await self.received(request)
        failure = self.next_failure()
        if failure is FailureMode.SERVER_ERROR:
            return Response("Internal Server Error", 500, media_type="text/plain")
        if failure is FailureMode.TIMEOUT:
            await self.hold()
            return Response("Service Unavailable", 503, media_type="text/plain")
        if failure is FailureMode.THROTTLE:
            return Response(
                "Too Many Requests", 429, headers={"Retry-After": "1"}, media_type="text/plain"
            )
        if failure is FailureMode.AUTH:
            return _session_answer("FAIL", BAD_LOGON, [])
        try:
            root = ElementTree.fromstring(received.body.rstrip(b"\x00"))
        except (ElementTree.ParseError, DefusedXmlException) as exc:
            return Response(f"Malformed XML: {exc}", 400, media_type="text/plain")
        if root.tag != "SESSION":
            return Response("Root element must be SESSION", 400, media_type="text/plain")
        if _text(root, "CLIENT") != self.username or _text(root, "PW") != self.password:
            return _session_answer("FAIL", BAD_LOGON, [])
        listing = root.find("MSGLST")
        items = listing.findall("MSG") if listing is not None else []
        results = []
        for number, msg in enumerate(items, start=1):
            message_id = _text(msg, "ID") or str(number)
            refuse_first = failure is FailureMode.PARTIAL and number == 1
            results.append((message_id, *self._take(msg, refuse_first)))
        return _session_answer("OK", "", results)

    def _take(self, msg: Any, refuse: bool) -> tuple[str, str, str]:
        """(REF, STATUS, INFO) for one MSG; an accepted one is recorded."""
        fields = {child.tag: child.text or "" for child in msg}
        receiver, sender = fields.get("RCV", ""), fields.get("SND", "")
        if "TEXT" not in fields or "RCV" not in fields:
            return "", "FAIL", "TEXT and RCV are required."
        if not receiver.isdigit() or len(receiver) < 9 or len(receiver) > 15:
            return "", "FAIL", bad_receiver(receiver)
        if refuse or f"+{receiver}" in self.refused_numbers:
            return "", "FAIL", bad_receiver(receiver)
        if (
            sender
            and not (sender.isdigit() and len(sender) <= 15)
            and not (SENDER_CHARS.match(sender))
        ):
            return "", "FAIL", f"Invalid sender ({sender}): max 15 digits or 11 characters."
        operation = fields.get("OP", "1") or "1"
        if operation == "9":
            try:
                text = bytes.fromhex(fields["TEXT"]).decode("utf-16-be")
            except ValueError:
                return "", "FAIL", "OP 9 needs the text as UCS-2 (big endian) hex."
        elif operation == "1":
            text = fields["TEXT"]
            if analyse(text).encoding != "gsm7" or not _latin1(text):
                return "", "FAIL", "Plain text allows GSM 7-bit characters only; use OP 9."
        else:
            return "", "FAIL", f"Message type {operation} is not supported by this account."
        reference = str(uuid.uuid4()).upper()
        self.accept(
            FakeSms(
                provider_id=reference,
                to=f"+{receiver}",
                sender=sender,
                text=text,
                unicode=operation == "9",
                report_requested=fields.get("RCPREQ", "").upper() == "Y",
                fields=fields,
            )
        )
        return reference, "OK", ""

    # -- callbacks ---------------------------------------------------------------------------

    async def send_report(
        self, client: httpx.AsyncClient, sms: FakeSms, delivered: bool, *, forged: bool = False
    ) -> httpx.Response:
        return await self.send_states(
            client, [(sms, "DELIVRD" if delivered else "UNDELIV")], forged=forged
        )

    async def send_states(
        self,
        client: httpx.AsyncClient,
        reports: list[tuple[FakeSms, str]],
        *,
        forged: bool = False,
    ) -> httpx.Response:
        """Several reports in one post, as the gateway batches them; STATE as given."""
        now = datetime.now(_OSLO).strftime("%Y.%m.%d %H:%M:%S")
        items = []
        for number, (sms, state) in enumerate(reports, start=1):
            delivered_at = f"<DELIVERYTIME>{now}</DELIVERYTIME>" if state == "DELIVRD" else ""
            items.append(
                f"<MSG><ID>{number}</ID><REF>{sms.provider_id}</REF>"
                f"<RCV>{sms.to.removeprefix('+')}</RCV><STATE>{state}</STATE>{delivered_at}</MSG>"
            )
        body = _document("pswincom_report_request.dtd", items)
        url = self.report_url(reports[0][0], forged)
        response = await client.post(url, content=body, headers={"Content-Type": "application/xml"})
        self._check_acknowledgement(response, len(items))
        return response

    async def send_inbound(
        self,
        client: httpx.AsyncClient,
        sender: str,
        recipient: str,
        text: str,
        *,
        forged: bool = False,
    ) -> httpx.Response:
        item = (
            f"<MSG><ID>1</ID><TEXT>{_escape(text)}</TEXT><SND>{sender.removeprefix('+')}</SND>"
            f"<RCV>{recipient.removeprefix('+')}</RCV><NET>no.telenor</NET></MSG>"
        )
        body = _document("pswincom_receive_request.dtd", [item])
        response = await client.post(
            self.forward_url(forged),
            content=body,
            headers={
                "Content-Type": "application/xml",
                "PSW-Message-type": "MO",
                "PSW-Message-version": "2",
            },
        )
        self._check_acknowledgement(response, 1)
        return response

    def _check_acknowledgement(self, response: httpx.Response, count: int) -> None:
        """Keep smsdesk's answer; the gateway would resend messages it did not see acked."""
        if not response.is_success:
            return
        self.acknowledgements.append(response.text)
        root = ElementTree.fromstring(response.content)
        acked = [_text(msg, "ID") for msg in root.findall("MSG") if _text(msg, "STATUS") == "OK"]
        if acked != [str(n) for n in range(1, count + 1)]:
            raise AssertionError(f"PSWin fake: not every message acknowledged: {response.text}")


def _text(element: Any, tag: str) -> str:
    found = element.find(tag)
    return (found.text or "").strip() if found is not None else ""


def _latin1(text: str) -> bool:
    try:
        text.encode("iso-8859-1")
    except UnicodeEncodeError:
        return False
    return True


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _document(dtd: str, items: list[str]) -> bytes:
    text = (
        f'<?xml version="1.0" encoding="iso-8859-1"?><!DOCTYPE MSGLST SYSTEM "{dtd}">'
        f"<MSGLST>{''.join(items)}</MSGLST>"
    )
    return text.encode("iso-8859-1", "xmlcharrefreplace")


def _session_answer(logon: str, reason: str, results: list[tuple[str, str, str, str]]) -> Response:
    """The gateway's SESSION answer: LOGON, REASON, and (ID, REF, STATUS, INFO) per MSG."""
    items = "".join(
        f"<MSG><ID>{message_id}</ID>{f'<REF>{ref}</REF>' if ref else ''}"
        f"<STATUS>{status}</STATUS><INFO>{_escape(info)}</INFO></MSG>"
        for message_id, ref, status, info in results
    )
    listing = f"<MSGLST>{items}</MSGLST>" if results else ""
    body = (
        f'<?xml version="1.0"?><SESSION><LOGON>{logon}</LOGON>'
        f"<REASON>{_escape(reason)}</REASON>{listing}</SESSION>"
    )
    return Response(body, 200, media_type="text/xml")
