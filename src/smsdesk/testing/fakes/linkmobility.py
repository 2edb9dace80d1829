"""A fake of LINK Mobility's "Common" SMS REST API: /send, /sendbatch and its JSON gates.

Strict where LINK documents rules: Basic auth (106100), platformId/platformPartnerId
(106200/106201), sender by sourceTON, '+' destinations, ignoreResponse (absent or true: 204).
Refusals of one message use LINK's result codes (2000 invalid source, 2106 number error); the
error body is {status, description, translatedDescription} as third-party clients show it.
Delivery reports go once per segment, as "{messageId}${n}", to the gate URL (`status_url`).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import secrets
import time
from datetime import UTC, datetime
from typing import Any, ClassVar

import httpx
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from smsdesk.domain.encoding import Encoding, analyse
from smsdesk.testing.fakes.base import FailureMode, FakeProvider, FakeSms

USERNAME = "smsdesk-link"
PASSWORD = "link-secret-pw"
PLATFORM_ID = "COMMON_API"
PLATFORM_PARTNER_ID = "4711"
OPERATOR = "nl.kpn"

_MSISDN = re.compile(r"^\+[1-9]\d{6,14}$")
_SOURCE_RULES = {
    "ALPHANUMERIC": re.compile(r"^[A-Za-z][A-Za-z0-9]{1,10}$"),
    "MSISDN": _MSISDN,
    "SHORTNUMBER": re.compile(r"^\d{1,8}$"),
}
_DCS = {"TEXT", "GSM", "UCS2", "BINARY"}
_PRIORITIES = {"HIGH", "NORMAL", "LOW"}
_SHARED = (
    "platformId",
    "platformPartnerId",
    "useDeliveryReport",
    "deliveryReportGates",
    "relativeValidityTime",
    "absoluteValidityTime",
    "ignoreResponse",
    "customParameters",
)


class Refusal(Exception):
    """A request LINK refuses as a whole: HTTP status, LINK code and its description."""

    def __init__(self, http_status: int, code: int, description: str) -> None:
        super().__init__(description)
        self.http_status, self.code, self.description = http_status, code, description


def error_body(http_status: int, code: int, description: str) -> JSONResponse:
    return JSONResponse(
        {"status": code, "description": description, "translatedDescription": None},
        status_code=http_status,
    )


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class LinkMobilityFake(FakeProvider):
    """LINK's Common API on loopback; base_url is the fake's root (paths /send, /sendbatch)."""

    module: ClassVar[str] = "linkmobility"
    send_paths: ClassVar[tuple[str, ...]] = ("/send", "/sendbatch")

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/send", self._send, methods=["POST"]),
            Route("/sendbatch", self._send_batch, methods=["POST"]),
        ]

    def module_settings(self) -> dict[str, Any]:
        return {
            "username": USERNAME,
            "password": PASSWORD,
            "platform_id": PLATFORM_ID,
            "platform_partner_id": PLATFORM_PARTNER_ID,
            "base_url": self.url,
            "timeout": 1.0,
        }

    # -- the API ---------------------------------------------------------------------------

    async def _send(self, request: Request) -> Response:
        return await self._handle(request, batch=False)

    async def _send_batch(self, request: Request) -> Response:
        return await self._handle(request, batch=True)

    async def _handle(self, request: Request, *, batch: bool) -> Response:
        received = await self.received(request)
        failure = self.next_failure()
        early = await self._failure_answer(failure)
        if early is not None:
            return early
        try:
            self._check_auth(received.headers.get("authorization", ""))
            body = self._body(received.headers.get("content-type", ""), received.body)
            self._check_shared(body)
            messages = self._messages(body, batch)
        except Refusal as refusal:
            return error_body(refusal.http_status, refusal.code, refusal.description)
        shared = {key: body[key] for key in _SHARED if key in body}
        results = [
            self._take(message, shared, refuse=failure is FailureMode.PARTIAL and i == 0)
            for i, message in enumerate(messages)
        ]
        if body.get("ignoreResponse", True) is not False:
            return Response(status_code=204)
        if batch:
            batch_keys = ("messageId", "refId", "resultCode", "message")
            return JSONResponse([{k: r[k] for k in batch_keys} for r in results])
        [result] = results
        if result["resultCode"] != 1005:  # one refused message: the request failed
            return error_body(400, result["resultCode"], result["message"])
        single_keys = ("messageId", "resultCode", "description", "smsCount")
        return JSONResponse({k: result[k] for k in single_keys})

    async def _failure_answer(self, failure: FailureMode | None) -> Response | None:
        if failure is FailureMode.SERVER_ERROR:
            return error_body(500, 106000, "Unknown error. Please contact Support.")
        if failure is FailureMode.TIMEOUT:
            await self.hold()
            return Response("Service Unavailable", status_code=503)
        if failure is FailureMode.THROTTLE:
            return JSONResponse(
                {"status": 429, "description": "Too many requests"},
                status_code=429,
                headers={"Retry-After": "1"},
            )
        if failure is FailureMode.AUTH:
            return self._auth_refusal()
        return None

    def _auth_refusal(self) -> Response:
        return error_body(
            401, 106100, "Invalid authentication. Please check your username and password."
        )

    def _check_auth(self, header: str) -> None:
        scheme, _, encoded = header.partition(" ")
        try:
            user, _, password = base64.b64decode(encoded, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            user = password = ""
        if scheme.lower() != "basic" or (user, password) != (USERNAME, PASSWORD):
            raise Refusal(
                401, 106100, "Invalid authentication. Please check your username and password."
            )

    def _body(self, content_type: str, raw: bytes) -> dict[str, Any]:
        if not content_type.startswith("application/json"):
            raise Refusal(400, 400, "Parse error: the body must be application/json.")
        try:
            body = json.loads(raw)
        except ValueError as exc:
            raise Refusal(400, 400, f"Parse error: {exc}") from None
        if not isinstance(body, dict):
            raise Refusal(400, 400, "Parse error: the body must be a JSON object.")
        return body

    def _check_shared(self, body: dict[str, Any]) -> None:
        if body.get("platformId") != PLATFORM_ID:
            raise Refusal(400, 106200, "Invalid or missing platformId.")
        if body.get("platformPartnerId") != PLATFORM_PARTNER_ID:
            raise Refusal(400, 106201, "Invalid or missing platformPartnerId.")
        validity = body.get("relativeValidityTime", 0)
        if not isinstance(validity, int) or isinstance(validity, bool) or validity < 0:
            raise Refusal(400, 400, "Parse error: relativeValidityTime must be milliseconds.")
        gates = body.get("deliveryReportGates", [])
        if not isinstance(gates, list) or not all(isinstance(g, str) for g in gates):
            raise Refusal(400, 400, "Parse error: deliveryReportGates must be a list of ids.")
        for flag in ("useDeliveryReport", "ignoreResponse"):
            if not isinstance(body.get(flag, True), bool):
                raise Refusal(400, 400, f"Parse error: {flag} must be true or false.")

    def _messages(self, body: dict[str, Any], batch: bool) -> list[dict[str, Any]]:
        if not batch:
            return [body]
        messages = body.get("sendRequestMessages")
        if not isinstance(messages, list) or not 1 <= len(messages) <= 1000:
            raise Refusal(400, 400, "Parse error: sendRequestMessages must hold 1 to 1000.")
        if not all(isinstance(m, dict) for m in messages):
            raise Refusal(400, 400, "Parse error: each message must be an object.")
        return messages

    def _problem(self, message: dict[str, Any], refuse: bool) -> tuple[int, str] | None:
        """LINK's result code and text for a message it refuses, or None."""
        ton = message.get("sourceTON", "ALPHANUMERIC")
        rule = _SOURCE_RULES.get(ton) if isinstance(ton, str) else None
        source = message.get("source")
        if rule is None or not isinstance(source, str) or not rule.match(source):
            return 2000, "Invalid source"
        destination = message.get("destination")
        if message.get("destinationTON", "MSISDN") != "MSISDN":
            return 2100, "Destination type not supported"
        if not isinstance(destination, str) or not _MSISDN.match(destination):
            return 2106, "Number error"
        if refuse or destination in self.refused_numbers:
            return 2106, "Number error"
        if message.get("dcs", "TEXT") not in _DCS or not isinstance(message.get("userData"), str):
            return 4003, "Invalid user data"
        if message.get("priority", "NORMAL") not in _PRIORITIES:
            return 4001, "Invalid priority"
        return None

    def _take(
        self, message: dict[str, Any], shared: dict[str, Any], refuse: bool
    ) -> dict[str, Any]:
        """Accept or refuse one message; the per-message result LINK answers."""
        ref = message.get("refId")
        problem = self._problem(message, refuse)
        if problem is not None:
            return {
                "messageId": None,
                "refId": ref,
                "resultCode": problem[0],
                "message": problem[1],
            }
        text = message["userData"]
        segments = analyse(text).segments if text else 1
        message_id = base64.b64encode(secrets.token_bytes(18)).decode()
        unicode = message.get("dcs", "TEXT") == "UCS2" or (
            message.get("dcs", "TEXT") == "TEXT" and analyse(text).encoding is Encoding.UCS2
        )
        fields = {**shared, **message, "segments": segments}
        self.accept(
            FakeSms(
                provider_id=message_id,
                to=message["destination"],
                sender=message["source"],
                text=text,
                reference=str(ref) if ref is not None else None,
                unicode=unicode,
                report_requested=shared.get("useDeliveryReport", True) is not False,
                priority=message.get("priority"),
                fields=fields,
            )
        )
        return {
            "messageId": message_id,
            "refId": ref,
            "resultCode": 1005,
            "description": "Queued",
            "message": "Queued",
            "smsCount": segments,
        }

    # -- the gates ---------------------------------------------------------------------------

    def report_bodies(self, sms: FakeSms, result_code: int) -> list[dict[str, Any]]:
        """One report per segment, as LINK sends them."""
        segments = int(sms.fields.get("segments", 1))
        stamp = _now()
        return [
            {
                "refId": sms.reference,
                "id": f"{sms.provider_id}${n}",
                "operator": OPERATOR,
                "sentTimestamp": stamp,
                "timestamp": stamp,
                "resultCode": result_code,
                "operatorResultCode": "0" if result_code == 1001 else "1",
                "segments": segments,
                "gateCustomParameters": {},
                "customParameters": {},
            }
            for n in range(1, segments + 1)
        ]

    async def send_report(
        self, client: httpx.AsyncClient, sms: FakeSms, delivered: bool, *, forged: bool = False
    ) -> httpx.Response:
        url = self.report_url(sms, forged)
        answer: httpx.Response | None = None
        for body in self.report_bodies(sms, 1001 if delivered else 1006):
            answer = await client.post(url, json=body)
            if not answer.is_success:
                break
        assert answer is not None
        return answer

    async def send_inbound(
        self,
        client: httpx.AsyncClient,
        sender: str,
        recipient: str,
        text: str,
        *,
        forged: bool = False,
    ) -> httpx.Response:
        message_id = base64.b64encode(secrets.token_bytes(18)).decode()
        body = {
            "destination": recipient,
            "subNumber": None,
            "source": sender,
            "content": {"type": "SMS", "userData": text, "encoding": "TEXT"},
            "operator": OPERATOR,
            "timestamp": _now(),
            "messageId": message_id,
            "operatorTimestamp": _now(),
            "operatorMessageId": f"op-{int(time.time() * 1000)}",
            "route": {
                "type": "SUBNUMBER_ROUTE",
                "id": "route-1",
                "refId": None,
                "gateIds": ["gate-mo"],
                "platformId": PLATFORM_ID,
                "platformPartnerId": PLATFORM_PARTNER_ID,
                "number": recipient,
            },
            "gateCustomParameters": {},
            "customParameters": {},
        }
        return await client.post(self.forward_url(forged), json=body)
