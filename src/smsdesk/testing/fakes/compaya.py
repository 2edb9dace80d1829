"""A fake CPSMS (Compaya) API v2: `POST /v2/send` with Basic auth, and dlr_url reports.

Like the real API it reads the body as JSON whatever the content type says, checks the
credentials (user name : API key), the required `to` and `message`, the sender's length and
each recipient's number, and answers 200 (all sent), 207 (some refused) or 400 (none sent) with
CPSMS's `success` / `error` lists. Whole-request errors are `{"error": {"code", "message"}}`
(that shape is UNCONFIRMED; CPSMS documents only the per-recipient one). HTTP 429 for
throttling is UNCONFIRMED for CPSMS too. CPSMS forwards no inbound SMS.

`GET /v2/getlog[/<fromDate>/<toDate>][/<to>]` answers the log of accepted messages with their
delivery status, which the fake knows even for a report it was told to lose (`lose_report`).
It allows one log request every `log_interval` seconds (2 minutes, as CPSMS documents) and
answers a request made sooner with 429 (how CPSMS answers it is UNCONFIRMED).
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from dataclasses import dataclass
from typing import Any, ClassVar
from urllib.parse import urlencode, urlsplit

import httpx
import phonenumbers
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from smsdesk.domain.encoding import Encoding, analyse
from smsdesk.testing.fakes.base import FailureMode, FakeProvider, FakeSms, ReceivedRequest

USERNAME = "smsdesk-fake"
API_KEY = "0f3a9c2e-fake-4e1b-9d7a-cpsms0api0key"
INVALID_NUMBER = "Phone number length and country code do not match."
MAX_MESSAGE = 1530
ENCODINGS = ("UTF-8", "ISO-8859-1")


class BadRequest(ValueError):
    """The request as a whole is refused with HTTP 400."""


@dataclass(frozen=True, slots=True)
class Submission:
    """A valid `/v2/send` body."""

    recipients: list[str]
    message: str
    sender: str
    reference: str | None
    dlr_url: str | None
    fields: dict[str, Any]


def error_response(
    status: int, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    """A whole-request error as the fake answers it."""
    return JSONResponse({"error": {"code": status, "message": message}}, status, headers)


def _read_body(body: bytes) -> dict[str, Any]:
    try:
        fields = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise BadRequest("The request body must be a JSON object.") from None
    if not isinstance(fields, dict):
        raise BadRequest("The request body must be a JSON object.")
    encoding = fields.get("encoding", "UTF-8")
    if encoding not in ENCODINGS:
        raise BadRequest("encoding must be UTF-8 or ISO-8859-1.")
    if encoding == "ISO-8859-1":  # the bytes are read as Latin-1, as CPSMS does
        reread: dict[str, Any] = json.loads(body.decode("latin-1"))
        return reread
    return fields


def _recipients(value: Any) -> list[str]:
    items = value if isinstance(value, list) else [value]
    if not items or any(not isinstance(i, str | int) or isinstance(i, bool) for i in items):
        raise BadRequest("to is required: a number or a list of numbers with country code.")
    numbers = [str(i).strip() for i in items]
    if not all(numbers):
        raise BadRequest("to is required: a number or a list of numbers with country code.")
    return numbers


def _check_sender(sender: Any) -> str:
    if sender is None:
        return ""
    if not isinstance(sender, str) or not sender:
        raise BadRequest("from must be a text.")
    limit = 20 if sender.isdigit() else 11
    if len(sender) > limit:
        raise BadRequest(
            "from can be numeric with a limit of 20 characters or alphanumeric with a limit "
            "of 11 characters."
        )
    return sender


def parse_submission(body: bytes) -> Submission:
    """Check a `/v2/send` body the way CPSMS does; raise BadRequest for a 400."""
    fields = _read_body(body)
    if "to" not in fields or fields["to"] in (None, "", []):
        raise BadRequest("to is required.")
    recipients = _recipients(fields.pop("to"))
    message = fields.pop("message", None)
    if not isinstance(message, str) or not message:
        raise BadRequest("message is required.")
    if len(message) > MAX_MESSAGE:
        raise BadRequest(f"message can be at most {MAX_MESSAGE} characters.")
    sender = _check_sender(fields.pop("from", None))
    reference = fields.pop("reference", None)
    if reference is not None and (not isinstance(reference, str) or len(reference) > 32):
        raise BadRequest("reference can be at most 32 characters.")
    dlr_url = fields.pop("dlr_url", None)
    if dlr_url is not None and (
        not isinstance(dlr_url, str) or urlsplit(dlr_url).scheme not in ("http", "https")
    ):
        raise BadRequest("dlr_url must be an http(s) URL.")
    if fields.get("flash", 0) not in (0, 1):
        raise BadRequest("flash must be 0 or 1.")
    if not isinstance(fields.get("timestamp", 0), int):
        raise BadRequest("timestamp must be a unix timestamp.")
    return Submission(recipients, message, sender, reference, dlr_url, fields)


def valid_number(number: str) -> bool:
    """Digits with a country code, of a length that country's numbers have."""
    if not number.isascii() or not number.isdigit():
        return False
    try:
        parsed = phonenumbers.parse(f"+{number}")
    except phonenumbers.NumberParseException:
        return False
    return bool(phonenumbers.is_possible_number(parsed))


class CompayaFake(FakeProvider):
    """CPSMS API v2 on loopback."""

    module: ClassVar[str] = "compaya"
    supports_inbound: ClassVar[bool] = False
    send_paths: ClassVar[tuple[str, ...]] = ("/v2/send",)

    def __init__(self, username: str = USERNAME, api_key: str = API_KEY) -> None:
        super().__init__()
        self.username = username
        self.api_key = api_key
        self.log_interval = 120.0
        self.sent_at: dict[str, float] = {}  # provider id -> when it was accepted
        self._log_read_at = -self.log_interval

    def reset(self) -> None:
        super().reset()
        with self.lock:
            self.sent_at.clear()
            self._log_read_at = -self.log_interval

    def routes(self) -> list[BaseRoute]:
        log = [
            Route(path, self._getlog, methods=["GET"])
            for path in (
                "/v2/getlog",
                "/v2/getlog/{first}",
                "/v2/getlog/{first}/{second}",
                "/v2/getlog/{first}/{second}/{to}",
            )
        ]
        return [Route("/v2/send", self._send, methods=["POST"]), *log]

    def log_requests(self) -> list[ReceivedRequest]:
        with self.lock:
            return [r for r in self.requests if r.path.startswith("/v2/getlog")]

    async def _getlog(self, request: Request) -> JSONResponse:
        """The SMS log, optionally between two unix times and for one recipient."""
        received = await self.received(request)
        if not self.authorised(received.headers.get("authorization", "")):
            return error_response(401, "Unauthorized: wrong username or API key.")
        now = time.monotonic()
        with self.lock:
            if now < self._log_read_at + self.log_interval:
                return error_response(429, "The log may be requested once every 2 minutes.")
            self._log_read_at = now
        params = request.path_params
        to = params.get("to") or (params.get("first") if "second" not in params else None)
        try:
            start = int(params["first"]) if "second" in params else 0
            end = int(params["second"]) if "second" in params else 2**63
        except ValueError:
            return error_response(400, "fromDate and toDate must be unix timestamps.")
        with self.lock:
            entries = [
                self._log_entry(sms)
                for sms in self.messages
                if start <= int(self.sent_at.get(sms.provider_id, 0)) <= end
                and (to is None or sms.to == f"+{to}")
            ]
        return JSONResponse(entries, 200)

    def _log_entry(self, sms: FakeSms) -> dict[str, Any]:
        status, text = {None: (0, ""), True: (1, "Received"), False: (2, "Failed")}[sms.delivered]
        return {
            "to": sms.to.removeprefix("+"),
            "from": sms.sender,
            "pointPrice": 1,
            "userReference": sms.reference,
            "dlrStatus": status,
            "dlrStatusText": text,
            "timeSent": int(self.sent_at.get(sms.provider_id, 0)),
        }

    def module_settings(self) -> dict[str, Any]:
        return {
            "username": self.username,
            "api_key": self.api_key,
            "base_url": self.url,
            "timeout": 1.0,
        }

    def authorised(self, header: str) -> bool:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            decoded = base64.b64decode(token, validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return False
        return decoded == f"{self.username}:{self.api_key}"

    async def _send(self, request: Request) -> JSONResponse:
        received = await self.received(request)
        failure = self.next_failure()
        if failure is FailureMode.TIMEOUT:
            await self.hold()
            return error_response(503, "Service Unavailable")
        if failure is FailureMode.SERVER_ERROR:
            return error_response(500, "Internal Server Error")
        if failure is FailureMode.THROTTLE:
            return error_response(429, "Too Many Requests", {"Retry-After": "1"})
        if failure is FailureMode.AUTH or not self.authorised(
            received.headers.get("authorization", "")
        ):
            return error_response(401, "Unauthorized: wrong username or API key.")
        try:
            submission = parse_submission(received.body)
        except BadRequest as exc:
            return error_response(400, str(exc))
        return self._deliver(submission, refuse_first=failure is FailureMode.PARTIAL)

    def _deliver(self, submission: Submission, *, refuse_first: bool) -> JSONResponse:
        analysed = analyse(submission.message)
        successes: list[dict[str, Any]] = []
        errors: list[dict[str, Any]] = []
        for index, number in enumerate(submission.recipients):
            refused = (refuse_first and index == 0) or f"+{number}" in self.refused_numbers
            if refused or not valid_number(number):
                errors.append({"errorCode": 400, "errMsg": INVALID_NUMBER, "to": number})
                continue
            provider_id = submission.reference or self.new_id("CPSMS")
            with self.lock:
                self.sent_at[provider_id] = time.time()
            self.accept(
                FakeSms(
                    provider_id=provider_id,
                    to=f"+{number}",
                    sender=submission.sender,
                    text=submission.message,
                    reference=submission.reference,
                    unicode=analysed.encoding is Encoding.UCS2,
                    report_requested=submission.dlr_url is not None,
                    callback_url=submission.dlr_url,
                    fields=dict(submission.fields),
                )
            )
            successes.append({"to": number, "cost": analysed.segments})
        if not successes:
            return JSONResponse({"error": errors}, 400)
        if errors:
            return JSONResponse({"success": successes, "error": errors}, 207)
        return JSONResponse({"success": successes}, 200)

    async def send_status(
        self, client: httpx.AsyncClient, sms: FakeSms, status: str, *, forged: bool = False
    ) -> httpx.Response:
        """POST the dlr_url with `status` and `receiver` appended, as CPSMS does."""
        if status in ("1", "2", "4"):
            self.lose_report(sms, status == "1")  # the log knows it, reported or not
        url = self.report_url(sms, forged)
        joiner = "&" if urlsplit(url).query else "?"
        params = urlencode({"status": status, "receiver": sms.to.removeprefix("+")})
        return await client.post(f"{url}{joiner}{params}")

    async def send_report(
        self, client: httpx.AsyncClient, sms: FakeSms, delivered: bool, *, forged: bool = False
    ) -> httpx.Response:
        return await self.send_status(client, sms, "1" if delivered else "2", forged=forged)
