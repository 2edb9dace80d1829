"""A fake Textlocal: the send command, its checks and error codes, receipts and inbox forwards.

It answers as api.txtlocal.com documents: JSON with `"status": "success"` or `"failure"` and
numbered `errors` (plus `warnings` for refused numbers), with HTTP 200 either way (the HTTP
status of failures is not documented). Text with characters outside GSM 03.38 sent without
`unicode=true` is accepted but recorded garbled ('?' for each such character), as the handset
would show it: the real service does not refuse it either, and a module that forgets the flag
must not pass the contract. Throttling is answered with HTTP 429 and Retry-After (Textlocal's own
throttling answer is not documented). Commands it does not know get error 2, as the real API.
"""

from __future__ import annotations

import re
import time
from typing import Any, ClassVar

import httpx
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from smsdesk.domain.encoding import Encoding, analyse, ucs2_characters
from smsdesk.testing.fakes.base import FailureMode, FakeProvider, FakeSms

API_KEY = "fake-textlocal-api-key"
USERNAME = "desk@example.com"
PASSWORD = "fake-textlocal-password"
HASH = "fake-textlocal-secure-hash"
DEFAULT_SENDER = "Txtlocal"
MAX_MESSAGE_CHARS = 766

_ALPHANUMERIC_SENDER = re.compile(r"[A-Za-z0-9 ]{3,11}")
_NUMERIC_SENDER = re.compile(r"[0-9]{3,13}")
_NUMBER = re.compile(r"[0-9]{7,15}")


def failure(code: int, message: str, **extra: Any) -> JSONResponse:
    """Textlocal's failure answer (HTTP 200: its status for failures is undocumented)."""
    return JSONResponse(
        {"errors": [{"code": code, "message": message}], **extra, "status": "failure"}
    )


def valid_sender(sender: str) -> bool:
    """3-11 letters, digits or spaces, or 3-13 digits, as the send command documents."""
    return bool(
        _NUMERIC_SENDER.fullmatch(sender)
        or (_ALPHANUMERIC_SENDER.fullmatch(sender) and not sender.isspace())
    )


class TxtlocalFake(FakeProvider):
    """Textlocal's send API on loopback; receipts and inbound forwards as its servers post them."""

    module: ClassVar[str] = "txtlocal"
    send_paths: ClassVar[tuple[str, ...]] = ("/send/", "/send")

    def __init__(self) -> None:
        super().__init__()
        self.balance = 1000  # credits; a send that costs more is refused with error 7
        self._batch = 100000

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/send/", self._send, methods=["GET", "POST"]),
            Route("/send", self._send, methods=["GET", "POST"]),
            Route("/{command:path}", self._unknown_command, methods=["GET", "POST"]),
        ]

    def module_settings(self) -> dict[str, Any]:
        return {"api_key": API_KEY, "base_url": self.url, "timeout": 1.0}

    async def _unknown_command(self, request: Request) -> Response:
        await self.received(request)
        return failure(2, "Unrecognised command")

    async def _send(self, request: Request) -> Response:
        received = await self.received(request)
        mode = self.next_failure()
        if mode is FailureMode.SERVER_ERROR:
            return PlainTextResponse("Internal Server Error", status_code=500)
        if mode is FailureMode.TIMEOUT:
            await self.hold()
            return PlainTextResponse("Service Unavailable", status_code=503)
        if mode is FailureMode.THROTTLE:
            return PlainTextResponse("Too Many Requests", 429, headers={"Retry-After": "1"})
        fields = {**received.query, **{k: v[-1] for k, v in received.form().items()}}
        if mode is FailureMode.AUTH or not self._logged_in(fields):
            return failure(3, "Invalid login details")
        # PARTIAL needs a batch; the send command takes one text, so it is ignored here.
        return self._answer_send(fields)

    def _logged_in(self, fields: dict[str, str]) -> bool:
        key = fields.get("apikey") or fields.get("apiKey")
        if key is not None:
            return key == API_KEY
        secret = fields.get("password") or fields.get("hash")
        return fields.get("username") == USERNAME and secret in (PASSWORD, HASH)

    def _answer_send(self, fields: dict[str, str]) -> Response:
        numbers = [n.strip() for n in fields.get("numbers", "").split(",") if n.strip()]
        message = fields.get("message", "")
        sender = fields.get("sender", DEFAULT_SENDER)
        if not numbers:
            return failure(4, "No recipients specified")
        if not message:
            return failure(5, "No message content")
        if len(message) > MAX_MESSAGE_CHARS:
            return failure(6, "Message too long")
        if not valid_sender(sender):
            return failure(43, "Invalid sender name")
        if any(not _NUMBER.fullmatch(n) for n in numbers):
            return failure(32, "Invalid number format")
        refused = [n for n in numbers if f"+{n}" in self.refused_numbers]
        warnings = [{"code": 3, "message": "Invalid number", "numbers": ",".join(refused)}]
        valid = [n for n in numbers if n not in refused]
        if not valid:
            return failure(51, "No valid numbers specified", warnings=warnings)
        unicode = fields.get("unicode", "").lower() in ("true", "1")
        parts = self._parts(message, unicode)
        cost = parts * len(valid)
        if cost > self.balance:
            return failure(7, "Insufficient credits")
        test = fields.get("test", "").lower() in ("true", "1")
        if not test:
            self.balance -= cost
        with self.lock:
            self._batch += 1
            batch_id = self._batch
        sent = [self._record(n, message, sender, unicode, fields, test) for n in valid]
        answer: dict[str, Any] = {
            "test_mode": test,
            "balance": self.balance,
            "batch_id": batch_id,
            "cost": 0 if test else cost,
            "num_messages": len(sent),
            "message": {"num_parts": parts, "sender": sender, "content": message},
            "receipt_url": fields.get("receipt_url", ""),
            "custom": fields.get("custom", ""),
            "messages": [{"id": sms.provider_id, "recipient": int(n)} for n, sms in sent],
            "status": "success",
        }
        if refused:
            answer["warnings"] = warnings
        return JSONResponse(answer)

    @staticmethod
    def _parts(message: str, unicode: bool) -> int:
        analysed = analyse(message)
        if unicode and analysed.encoding is Encoding.GSM7:
            analysed = analyse(message + "\u4e00")  # the same length counted as UCS-2
        return max(1, analysed.segments)

    def _record(
        self,
        number: str,
        message: str,
        sender: str,
        unicode: bool,
        fields: dict[str, str],
        test: bool,
    ) -> tuple[str, FakeSms]:
        """Keep one accepted SMS (test-mode sends are answered but never sent)."""
        garbled = not unicode and bool(ucs2_characters(message))
        text = (
            "".join("?" if c in ucs2_characters(message) else c for c in message)
            if garbled
            else message
        )
        receipt_url = fields.get("receipt_url") or None
        sms = FakeSms(
            provider_id=self.new_id(width=10),
            to=f"+{number}",
            sender=sender,
            text=text,
            reference=fields.get("custom") or None,
            unicode=unicode,
            report_requested=bool(receipt_url or self.status_url),
            callback_url=receipt_url,
            fields={**fields, "garbled": garbled},
        )
        if not test:
            self.accept(sms)
        return number, sms

    async def send_report(
        self, client: httpx.AsyncClient, sms: FakeSms, delivered: bool, *, forged: bool = False
    ) -> httpx.Response:
        """POST the receipt form Textlocal sends: number, status, customID, datetime."""
        form = {
            "number": sms.to.removeprefix("+"),
            "status": "D" if delivered else "U",
            "customID": sms.reference or "",
            "datetime": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()),
        }
        return await client.post(self.report_url(sms, forged), data=form)

    async def send_inbound(
        self,
        client: httpx.AsyncClient,
        sender: str,
        recipient: str,
        text: str,
        *,
        forged: bool = False,
    ) -> httpx.Response:
        """POST the inbox forward Textlocal sends for a message to a dedicated number."""
        form = {
            "inNumber": recipient.removeprefix("+"),
            "sender": sender.removeprefix("+"),
            "keyword": "",
            "content": text,
            "comments": text,
            "email": "",
            "credits": str(self.balance),
        }
        return await client.post(self.forward_url(forged), data=form)
