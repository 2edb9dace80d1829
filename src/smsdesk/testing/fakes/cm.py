"""A fake of CM.com's Business Messaging API: `POST /v1.0/message` with a product token.

It checks what CM checks, in CM's order, and answers with CM's reply shape: `details`,
`errorCode` and one entry per recipient with `status` Accepted/Rejected and `messageErrorCode`.
Delivery reports (JSON by default, XML on request) and inbound messages go to the URLs a
customer sets in CM's Channels app. CM's throttling answer is UNCONFIRMED; the fake answers
HTTP 429 with Retry-After.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from typing import Any, ClassVar, Literal
from xml.sax.saxutils import escape, quoteattr

import httpx
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from smsdesk.domain.encoding import Encoding, analyse
from smsdesk.testing.fakes.base import FailureMode, FakeProvider, FakeSms

PRODUCT_TOKEN = "5f0c9d2e-8b1a-4c7e-9f3d-2a6b8c4e1d70"
NO_ACCOUNT = "No account found for the given authentication"
_NUMBER = re.compile(r"^00[1-9]\d{6,14}$")
_ALPHANUMERIC_SENDER = re.compile(r"^(?=.*[A-Za-z])[A-Za-z0-9 ]{1,11}$")
_NUMERIC_SENDER = re.compile(r"^\+?\d{1,16}$")
_REFERENCE = re.compile(r"^[A-Za-z0-9]{1,32}$")
_BODY_TYPES = {"auto", "plain"}


def _answer(status: int, code: int, details: str, messages: list[dict[str, Any]]) -> Response:
    return JSONResponse(
        {"details": details, "errorCode": code, "messages": messages}, status_code=status
    )


def _entry(
    number: str, reference: str | None, parts: int, code: int, why: str | None
) -> dict[str, Any]:
    return {
        "to": number,
        "status": "Rejected" if code else "Accepted",
        "reference": reference,
        "parts": 0 if code else parts,
        "messageDetails": why,
        "messageErrorCode": code,
    }


class CmFake(FakeProvider):
    """CM's gateway on loopback: strict about the token, the shape, numbers and senders."""

    module: ClassVar[str] = "cm"
    send_paths: ClassVar[tuple[str, ...]] = ("/v1.0/message",)

    def __init__(self) -> None:
        super().__init__()
        self.product_token = PRODUCT_TOKEN
        self.report_format: Literal["json", "xml"] = "json"
        self.retry_after = 1

    def reset(self) -> None:
        """Forget what earlier tests did, so one started fake can serve many tests."""
        super().reset()
        self.report_format = "json"

    def routes(self) -> list[BaseRoute]:
        return [Route("/v1.0/message", self._send, methods=["POST"])]

    def module_settings(self) -> dict[str, Any]:
        return {"product_token": self.product_token, "base_url": self.url, "timeout": 1.0}

    # -- sending -----------------------------------------------------------------------------

    async def _send(self, request: Request) -> Response:
        received = await self.received(request)
        failure = self.next_failure()
        if failure is FailureMode.TIMEOUT:
            await self.hold()
            return PlainTextResponse("Service Unavailable", status_code=503)
        if failure is FailureMode.SERVER_ERROR:
            return _answer(500, 500, "Internal server error", [])
        if failure is FailureMode.THROTTLE:
            return PlainTextResponse(
                "Too many requests", status_code=429, headers={"Retry-After": str(self.retry_after)}
            )
        if failure is FailureMode.AUTH:
            return _answer(400, 101, NO_ACCOUNT, [])
        try:
            payload = received.json()
            messages = payload["messages"]
        except (ValueError, KeyError, TypeError):
            return _answer(400, 202, "The request was malformed: no messages object", [])
        if not isinstance(messages, dict):
            return _answer(400, 202, "The request was malformed: messages is not an object", [])
        if self._token(received.headers, messages) != self.product_token:
            return _answer(400, 101, NO_ACCOUNT, [])
        items = messages.get("msg")
        if not isinstance(items, list) or not items or not all(isinstance(i, dict) for i in items):
            return _answer(400, 203, "The msg array is missing, empty or malformed", [])
        entries: list[dict[str, Any]] = []
        for index, item in enumerate(items):
            entries.extend(
                self._take(item, refuse_first=failure is FailureMode.PARTIAL and not index)
            )
        rejected = [e for e in entries if e["messageErrorCode"]]
        if not rejected:
            return _answer(200, 0, f"Created {len(entries)} message(s)", entries)
        if len(rejected) < len(entries):
            return _answer(200, 201, "Not all messages were sent", entries)
        first = rejected[0]
        return _answer(400, first["messageErrorCode"], first["messageDetails"], entries)

    @staticmethod
    def _token(headers: Mapping[str, str], messages: dict[str, Any]) -> str | None:
        """CM takes the token from the X-CM-PRODUCTTOKEN header or from the body."""
        if "x-cm-producttoken" in headers:
            return headers["x-cm-producttoken"]
        auth = messages.get("authentication")
        token = auth.get("producttoken") if isinstance(auth, dict) else None
        return str(token) if token is not None else None

    def _take(self, item: dict[str, Any], *, refuse_first: bool) -> list[dict[str, Any]]:
        """Check one msg and accept it for each recipient, or say why not."""
        reference = item.get("reference")
        recipients = item.get("to")
        if not isinstance(recipients, list) or not recipients:
            return [_entry("", reference, 0, 302, "The to field is missing or empty")]
        numbers = [str(r.get("number", "")) if isinstance(r, dict) else "" for r in recipients]
        problem = self._message_problem(item)
        if problem is not None:
            return [_entry(n, reference, 0, *problem) for n in numbers]
        body = item["body"]
        analysed = analyse(body["content"])
        entries = []
        for number in numbers:
            if refuse_first or not _NUMBER.match(number) or self._refused(number):
                refuse_first = False
                entries.append(_entry(number, reference, 0, 303, f"Gsm '{number}' is not valid"))
                continue
            self.accept(self._record(item, number, analysed.encoding is Encoding.UCS2))
            entries.append(_entry(number, reference, analysed.segments, 0, None))
        return entries

    @staticmethod
    def _message_problem(item: dict[str, Any]) -> tuple[int, str] | None:
        sender = item.get("from")
        if not isinstance(sender, str) or not (
            _ALPHANUMERIC_SENDER.match(sender) or _NUMERIC_SENDER.match(sender)
        ):
            return 301, "The from field is invalid: up to 11 letters and digits or 16 digits"
        body = item.get("body")
        content = body.get("content") if isinstance(body, dict) else None
        if not isinstance(body, dict) or not isinstance(content, str) or not content:
            return 304, "A body without content was found"
        if body.get("type", "auto") not in _BODY_TYPES:
            return 304, "The body type is not known"
        most = item.get("maximumNumberOfMessageParts", 8)
        if not isinstance(most, int) or not 1 <= most <= 8:
            return 305, "maximumNumberOfMessageParts must be a number from 1 to 8"
        if analyse(content).segments > most:
            return 304, "The body needs more parts than maximumNumberOfMessageParts allows"
        reference = item.get("reference")
        if reference is not None and not _REFERENCE.match(str(reference)):
            return 305, "The reference must be 1 to 32 letters and digits"
        return None

    def _refused(self, number: str) -> bool:
        return "+" + number[2:] in self.refused_numbers

    def _record(self, item: dict[str, Any], number: str, unicode: bool) -> FakeSms:
        reference = item.get("reference")
        return FakeSms(
            provider_id=str(reference) if reference else self.new_id("CM"),
            to="+" + number[2:],
            sender=str(item["from"]),
            text=item["body"]["content"],
            reference=str(reference) if reference else None,
            unicode=unicode or item.get("dcs") == 8,
            report_requested=True,  # CM reports every message once a webhook is configured
            callback_url=None,
            fields=item,
        )

    # -- callbacks ---------------------------------------------------------------------------

    async def send_report(
        self, client: httpx.AsyncClient, sms: FakeSms, delivered: bool, *, forged: bool = False
    ) -> httpx.Response:
        """POST a status report as CM does, in the format chosen in the Channels app."""
        code, error, text = ("2", "0", "Delivered") if delivered else ("3", "5", "Undeliverable")
        received = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())
        to = "00" + sms.to.removeprefix("+")
        url = self.report_url(sms, forged)
        if self.report_format == "xml":
            xml = (
                f"<MESSAGES><MSG RECEIVED={quoteattr(received)}><TO>{to}</TO>"
                f"<REFERENCE>{escape(sms.reference or '')}</REFERENCE><STATUS><CODE>{code}</CODE>"
                f"<ERRORCODE>{error}</ERRORCODE><ERRORDESCRIPTION>{text}</ERRORDESCRIPTION>"
                "</STATUS><OPERATOR>20416</OPERATOR></MSG></MESSAGES>"
            )
            return await client.post(url, content=xml, headers={"content-type": "text/xml"})
        report = {
            "received": received,
            "to": to,
            "reference": sms.reference,
            "status": {"code": code, "errorCode": error, "errorDescription": text},
            "operator": "20416",
        }
        return await client.post(url, json={"messages": {"msg": report}})

    async def send_inbound(
        self,
        client: httpx.AsyncClient,
        sender: str,
        recipient: str,
        text: str,
        *,
        forged: bool = False,
    ) -> httpx.Response:
        """POST an incoming SMS the way CM's MO webhook does."""
        body = {
            "from": {"number": "00" + sender.removeprefix("+")},
            "to": {"number": "00" + recipient.removeprefix("+")},
            "message": {"text": text},
            "reference": None,
            "groupings": ["", "", ""],
            "timeUtc": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()),
            "channel": "SMS",
        }
        return await client.post(self.forward_url(forged), json=body)
