"""A fake of Twilio's Messages API: POST /2010-04-01/Accounts/{AccountSid}/Messages.json.

It checks HTTP Basic authentication (account SID + auth token, or API key SID + secret),
validates the form as Twilio does (with Twilio's error codes and JSON error body), answers 201
with a Message resource, and signs its status callbacks and inbound forwards with
X-Twilio-Signature over the exact URL it calls. GET .../Messages/{MessageSid}.json answers the
message resource with its current status (404 with Twilio's error body for an unknown SID), so
a report the fake was told to lose (`lose_report`) can still be learnt by asking.
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets
import time
from collections import deque
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any, ClassVar
from urllib.parse import urlencode, urlsplit

import httpx
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from smsdesk.domain.encoding import Encoding, analyse
from smsdesk.domain.phone import region_of
from smsdesk.providers.twilio import MAX_BODY_CHARS, MAX_VALIDITY_SECONDS, signature
from smsdesk.testing.fakes.base import FailureMode, FakeProvider, FakeSms, ReceivedRequest

API_VERSION = "2010-04-01"
E164 = re.compile(r"^\+[1-9]\d{6,14}$")
SHORT_CODE = re.compile(r"^\d{3,8}$")
ALPHANUMERIC = re.compile(r"^(?=.*[A-Za-z])[A-Za-z0-9 \-+_&]{1,11}$")
DOCS = "https://www.twilio.com/docs/errors/"


def sid(prefix: str) -> str:
    """A Twilio SID: two letters and 32 hex digits."""
    return prefix + secrets.token_hex(16)


def twilio_error(status: int, code: int, message: str, **headers: str) -> JSONResponse:
    """Twilio's error body: {code, message, more_info, status}."""
    body = {"code": code, "message": message, "more_info": f"{DOCS}{code}", "status": status}
    return JSONResponse(body, status, headers=headers or None)


def bad_callback_url(url: str) -> bool:
    """Whether Twilio would refuse a StatusCallback URL (error 21609)."""
    if len(url) > 4000:
        return True
    parts = urlsplit(url)
    return parts.scheme not in ("http", "https") or not parts.hostname or "_" in parts.hostname


class TwilioFake(FakeProvider):
    """Twilio's Messages API, strict about credentials and fields, with signed callbacks."""

    module: ClassVar[str] = "twilio"

    def __init__(self) -> None:
        super().__init__()
        self.account_sid = sid("AC")
        self.auth_token = secrets.token_hex(16)
        self.api_key_sid = sid("SK")
        self.api_key_secret = secrets.token_urlsafe(24)
        self.number = "+31970102030"  # the account's own Twilio number, for inbound
        self._query_failures: deque[FailureMode] = deque()

    def fail_next_query(self, mode: FailureMode, times: int = 1) -> None:
        """Make the next `times` message fetches (status queries) fail in this way."""
        with self.lock:
            self._query_failures.extend([mode] * times)

    def reset(self) -> None:
        super().reset()
        with self.lock:
            self._query_failures.clear()

    def query_requests(self) -> list[ReceivedRequest]:
        """Requests that fetched one message resource (status queries)."""
        with self.lock:
            return [r for r in self.requests if r.method == "GET" and "/Messages/" in r.path]

    def is_send(self, path: str) -> bool:
        """The Messages endpoint (the path holds the account SID, so no ClassVar)."""
        return path.endswith("/Messages.json")

    def routes(self) -> list[BaseRoute]:
        return [
            Route(
                f"/{API_VERSION}/Accounts/{{account}}/Messages.json", self.create, methods=["POST"]
            ),
            Route(
                f"/{API_VERSION}/Accounts/{{account}}/Messages/{{sid}}.json",
                self.fetch,
                methods=["GET"],
            ),
        ]

    def module_settings(self) -> dict[str, Any]:
        return {
            "account_sid": self.account_sid,
            "auth_token": self.auth_token,
            "base_url": self.url,
            "timeout": 1.0,
        }

    # -- the API -----------------------------------------------------------------------------

    def _authenticated(self, header: str) -> bool:
        scheme, _, encoded = header.partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            user, _, password = base64.b64decode(encoded).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
        accepted = {self.account_sid: self.auth_token, self.api_key_sid: self.api_key_secret}
        expected = accepted.get(user)
        return expected is not None and secrets.compare_digest(password, expected)

    async def create(self, request: Request) -> Response:
        received = await self.received(request)
        failure = self.next_failure()
        if failure is FailureMode.TIMEOUT:
            await self.hold()
            return twilio_error(503, 20503, "Service Unavailable")
        if failure is FailureMode.SERVER_ERROR:
            return twilio_error(500, 20500, "An internal server error has occurred")
        if failure is FailureMode.THROTTLE:
            return twilio_error(429, 20429, "Too Many Requests", **{"Retry-After": "1"})
        if failure is FailureMode.AUTH or not self._authenticated(
            received.headers.get("authorization", "")
        ):
            return twilio_error(401, 20003, "Authenticate")
        account = request.path_params["account"]
        if account != self.account_sid:
            return twilio_error(404, 20404, f"The requested resource {received.path} was not found")
        if not received.headers.get("content-type", "").startswith(
            "application/x-www-form-urlencoded"
        ):
            return twilio_error(400, 21604, "A 'To' phone number is required.")
        form = {name: values[0] for name, values in received.form().items()}
        refusal = self._refusal(form, failure)
        if refusal is not None:
            return refusal
        return self._accept(form)

    async def fetch(self, request: Request) -> Response:
        """GET one message resource, with the status the fake knows for it."""
        received = await self.received(request)
        with self.lock:
            failure = self._query_failures.popleft() if self._query_failures else None
        if failure is FailureMode.TIMEOUT:
            await self.hold()
            return twilio_error(503, 20503, "Service Unavailable")
        if failure is FailureMode.SERVER_ERROR:
            return twilio_error(500, 20500, "An internal server error has occurred")
        if failure is FailureMode.THROTTLE:
            return twilio_error(429, 20429, "Too Many Requests", **{"Retry-After": "1"})
        if failure is FailureMode.AUTH or not self._authenticated(
            received.headers.get("authorization", "")
        ):
            return twilio_error(401, 20003, "Authenticate")
        not_found = twilio_error(
            404, 20404, f"The requested resource {received.path} was not found"
        )
        if request.path_params["account"] != self.account_sid:
            return not_found
        try:
            sms = self.find(request.path_params["sid"])
        except KeyError:
            return not_found
        return JSONResponse(self._resource(sms), 200)

    def _refusal(self, form: dict[str, str], failure: FailureMode | None) -> Response | None:
        """Twilio's checks, in the order it makes them, with its codes."""
        to, body = form.get("To", ""), form.get("Body", "")
        sender, service = form.get("From", ""), form.get("MessagingServiceSid", "")
        if not to:
            return twilio_error(400, 21604, "A 'To' phone number is required.")
        if not E164.match(to) or to in self.refused_numbers or failure is FailureMode.PARTIAL:
            return twilio_error(400, 21211, f"The 'To' number {to} is not a valid phone number.")
        if not sender and not service:
            return twilio_error(400, 21603, "A 'From' phone number is required.")
        if sender and not (
            E164.match(sender) or SHORT_CODE.match(sender) or ALPHANUMERIC.match(sender)
        ):
            return twilio_error(
                400,
                21212,
                f"The 'From' number {sender} is not a valid phone number, shortcode, or "
                "alphanumeric sender ID.",
            )
        if service and not re.fullmatch(r"MG[0-9a-f]{32}", service):
            return twilio_error(400, 21701, f"The Messaging Service Sid {service} is invalid.")
        if not body:
            return twilio_error(400, 21602, "Message body is required.")
        if len(body.encode("utf-16-le")) // 2 > MAX_BODY_CHARS:
            return twilio_error(
                400, 21617, "The concatenated message body exceeds the 1600 character limit."
            )
        callback = form.get("StatusCallback")
        if callback is not None and bad_callback_url(callback):
            return twilio_error(
                400, 21609, f"The StatusCallback URL {callback} is not a valid URL."
            )
        validity = form.get("ValidityPeriod")
        if validity is not None and not (
            validity.isdigit() and 1 <= int(validity) <= MAX_VALIDITY_SECONDS
        ):
            return twilio_error(400, 21624, "Invalid validity period value")
        return None

    def _accept(self, form: dict[str, str]) -> Response:
        message_sid = sid("SM")
        text = form["Body"]
        sender = form.get("From") or form["MessagingServiceSid"]
        sms = self.accept(
            FakeSms(
                provider_id=message_sid,
                to=form["To"],
                sender=sender,
                text=text,
                unicode=analyse(text).encoding is Encoding.UCS2,
                report_requested="StatusCallback" in form,
                callback_url=form.get("StatusCallback"),
                fields=dict(form),
            )
        )
        return JSONResponse(self._resource(sms), 201)

    def _resource(self, sms: FakeSms) -> dict[str, Any]:
        """The Message resource of `sms` as Twilio shows it now."""
        form = sms.fields
        text, message_sid = sms.text, sms.provider_id
        now = format_datetime(datetime.now(UTC))
        uri = f"/{API_VERSION}/Accounts/{self.account_sid}/Messages/{message_sid}"
        status = "queued" if "From" in form else "accepted"
        if sms.delivered is not None:
            status = "delivered" if sms.delivered else "undelivered"
        return {
            "account_sid": self.account_sid,
            "api_version": API_VERSION,
            "body": text,
            "date_created": now,
            "date_sent": None,
            "date_updated": now,
            "direction": "outbound-api",
            "error_code": 30003 if sms.delivered is False else None,
            "error_message": None,
            "from": form.get("From"),
            "messaging_service_sid": form.get("MessagingServiceSid"),
            "num_media": "0",
            # A messaging service picks the sender (and so the segments) after accepting.
            "num_segments": "0" if "From" not in form else str(analyse(text).segments),
            "price": None,
            "price_unit": "USD",
            "sid": message_sid,
            "status": status,
            "subresource_uris": {"media": f"{uri}/Media.json"},
            "to": form["To"],
            "uri": f"{uri}.json",
        }

    # -- callbacks ---------------------------------------------------------------------------

    async def _post_signed(
        self, client: httpx.AsyncClient, url: str, fields: dict[str, str], forged: bool
    ) -> httpx.Response:
        """POST a form as Twilio does, signed over `url`; forged: signed with a wrong token."""
        token = secrets.token_hex(16) if forged else self.auth_token
        headers = {
            "content-type": "application/x-www-form-urlencoded",
            "x-twilio-signature": signature(token, url, fields.items()),
            "i-twilio-idempotency-token": secrets.token_hex(16),
            "user-agent": "TwilioProxy/1.1",
        }
        return await client.post(url, content=urlencode(fields), headers=headers)

    async def send_report(
        self, client: httpx.AsyncClient, sms: FakeSms, delivered: bool, *, forged: bool = False
    ) -> httpx.Response:
        self.lose_report(sms, delivered)  # the outcome is known, and this time reported
        status = "delivered" if delivered else "undelivered"
        fields = {
            "MessageSid": sms.provider_id,
            "SmsSid": sms.provider_id,
            "MessageStatus": status,
            "SmsStatus": status,
            "AccountSid": self.account_sid,
            "From": sms.fields.get("From", self.number),
            "To": sms.to,
            "ApiVersion": API_VERSION,
            "RawDlrDoneDate": time.strftime("%y%m%d%H%M", time.gmtime()),
        }
        if "MessagingServiceSid" in sms.fields:
            fields["MessagingServiceSid"] = sms.fields["MessagingServiceSid"]
        if not delivered:
            fields["ErrorCode"] = "30003"
        # The secret URL stays right; a forged report fails on its signature alone.
        return await self._post_signed(client, self.report_url(sms, False), fields, forged)

    async def send_inbound(
        self,
        client: httpx.AsyncClient,
        sender: str,
        recipient: str,
        text: str,
        *,
        forged: bool = False,
    ) -> httpx.Response:
        message_sid = sid("SM")
        fields = {
            "ToCountry": region_of(recipient) or "",
            "ToState": "",
            "SmsMessageSid": message_sid,
            "NumMedia": "0",
            "ToCity": "",
            "FromZip": "",
            "SmsSid": message_sid,
            "FromState": "",
            "SmsStatus": "received",
            "FromCity": "",
            "Body": text,
            "FromCountry": region_of(sender) or "",
            "To": recipient,
            "ToZip": "",
            "NumSegments": str(analyse(text).segments or 1),
            "MessageSid": message_sid,
            "AccountSid": self.account_sid,
            "From": sender,
            "ApiVersion": API_VERSION,
        }
        return await self._post_signed(client, self.forward_url(False), fields, forged)
