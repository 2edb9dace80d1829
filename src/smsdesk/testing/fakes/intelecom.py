"""A fake of Puzzel's (Intelecom's) SMS Gateway REST API: `POST /gw/rs/sendMessages`.

It takes JSON (the body smsdesk sends), checks the service ID and credentials, the shape and
each message's recipient, content, originator and settings, and answers with one
`messageStatus` per message (JSON when `Accept: application/json`, else XML, as the gateway
does). Delivery reports and inbound SMS are posted batched to the URLs configured in Puzzel's
portal: JSON by default, XML or one GET per item on request (`callback_format`).

A message whose clientReference the gateway already has is answered with status 25
(duplicate) and not enqueued again (providers.md: "25 duplicate"); the fake remembers every
reference until `reset()`, and answers with the first message's id (UNCONFIRMED).

Not faithful, by choice: web-form and XML requests and the GET send variant are refused (415 /
405); which code a wrong service ID gets is UNCONFIRMED (the fake answers 4, ILLEGAL_SERVICE);
throttling is UNCONFIRMED (the fake answers HTTP 429 with Retry-After).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any, ClassVar, Literal
from xml.sax.saxutils import escape
from zoneinfo import ZoneInfo

import httpx
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from smsdesk.domain.encoding import Encoding, analyse
from smsdesk.testing.fakes.base import FailureMode, FakeProvider, FakeSms

SERVICE_ID = 4711
USERNAME = "smsdesk"
PASSWORD = "fake-puzzel-password"
DEFAULT_ORIGINATOR = "1960"  # the service's short number, used when none is given
MAX_PARTS = 6
STATUS_TEXT = {
    1: "Message enqueued for sending",
    2: "No access. Authentication failed.",
    3: "An illegal operation was tried.",
    4: "An illegal service was tried.",
    5: "The request contained syntax errors.",
    6: "An internal error occured in the gateway.",
    24: "Too many messages sent to the same MSISDN. Message is queued for manual approval.",
    25: "Duplicate message error.",
}
_RECIPIENT = re.compile(r"^\+[1-9]\d{6,14}$")
_ORIGINATOR = {
    "ALPHANUMERIC": re.compile(r"^[A-Za-z0-9 %&+.,-]{1,11}$"),
    "INTERNATIONAL": re.compile(r"^\+[1-9]\d{6,14}$"),
    "NETWORK": re.compile(r"^\d{1,14}$"),
}
_PARAMETER_KEYS = {
    "businessModel",
    "dcs",
    "udh",
    "pid",
    "flash",
    "parsing-type",
    "skip_customer_report_delivery",
    "strex_verification_timeout",
    "strex_merchant_sell_option",
    "strex_confirm_channel",
    "strex_authorization_token",
}


class Refused(Exception):
    """A message the gateway answers with an error status instead of enqueuing it."""

    def __init__(self, code: int, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail


class IntelecomFake(FakeProvider):
    """Puzzel's SMS gateway on loopback, with its spam filter and answer scripting."""

    module: ClassVar[str] = "intelecom"
    send_paths: ClassVar[tuple[str, ...]] = ("/gw/rs/sendMessages",)

    def __init__(self) -> None:
        super().__init__()
        self.service_id = SERVICE_ID
        self.username = USERNAME
        self.password = PASSWORD
        self.retry_after = 1
        self.quota_per_number: int | None = None  # the spam filter: more is held (status 24)
        self.callback_format: Literal["json", "xml", "get"] = "json"
        self._scripted: list[tuple[int, bool]] = []
        self._reported: set[str] = set()

    def routes(self) -> list[BaseRoute]:
        return [Route("/gw/rs/sendMessages", self._send, methods=["POST"])]

    def module_settings(self) -> dict[str, Any]:
        return {
            "service_id": str(self.service_id),
            "username": self.username,
            "password": self.password,
            "base_url": self.url,
            "timeout": 1.0,
        }

    def reset(self) -> None:
        """Forget everything received and every control, so one running fake serves many tests."""
        super().reset()
        with self.lock:
            self._scripted.clear()
            self._reported.clear()
            self.quota_per_number = None
            self.callback_format = "json"

    def answer_next(self, status_code: int, *, with_message_id: bool = True) -> None:
        """Answer every message of the next send request with this status (test control)."""
        with self.lock:
            self._scripted.append((status_code, with_message_id))

    # -- sending -----------------------------------------------------------------------------

    async def _send(self, request: Request) -> Response:
        received = await self.received(request)
        failure = self.next_failure()
        if failure is FailureMode.TIMEOUT:
            await self.hold()
            return PlainTextResponse("Service Unavailable", status_code=503)
        if failure is FailureMode.SERVER_ERROR:
            return PlainTextResponse("Internal Server Error", status_code=500)
        if failure is FailureMode.THROTTLE:
            headers = {"Retry-After": str(self.retry_after)}
            return PlainTextResponse("Too Many Requests", status_code=429, headers=headers)
        if not received.headers.get("content-type", "").startswith("application/json"):
            return PlainTextResponse("Unsupported Media Type", status_code=415)
        try:
            body = received.json()
        except ValueError:
            return PlainTextResponse("Bad Request: the body is not JSON", status_code=400)
        as_json = "application/json" in received.headers.get("accept", "")
        if not isinstance(body, dict):
            return _reply([_status(5, "The request must be an object", None, None)], "", as_json)
        statuses = self._statuses(body, failure)
        return _reply(statuses, str(body.get("batchReference") or self.new_id("b")), as_json)

    def _statuses(self, body: dict[str, Any], failure: FailureMode | None) -> list[dict[str, Any]]:
        messages = body.get("message")
        if not isinstance(messages, list) or not messages:
            return [_status(5, "message: at least one message is required", None, None)]
        refusal = self._request_refusal(body, failure)
        with self.lock:
            scripted = self._scripted.pop(0) if self._scripted else None
        statuses = []
        for index, message in enumerate(messages):
            item = message if isinstance(message, dict) else {}
            recipient, reference = item.get("recipient"), item.get("clientReference")
            try:
                if refusal is not None:
                    raise refusal
                if failure is FailureMode.PARTIAL and index == 0:
                    raise Refused(5, f"Invalid recipient: {recipient} is not a valid MSISDN")
                sms = self._checked(item)
            except Refused as exc:
                statuses.append(_status(exc.code, exc.detail, recipient, reference, index))
                continue
            statuses.append(self._enqueue(sms, scripted, index))
        return statuses

    def _request_refusal(self, body: dict[str, Any], failure: FailureMode | None) -> Refused | None:
        """What refuses every message: the common parameters."""
        service = body.get("serviceId")
        if not isinstance(service, int) or isinstance(service, bool):
            return Refused(5, "serviceId: an integer is required")
        if failure is FailureMode.AUTH or (
            body.get("username") != self.username or body.get("password") != self.password
        ):
            return Refused(2, STATUS_TEXT[2])
        if service != self.service_id:
            return Refused(4, f"{STATUS_TEXT[4]} ({service})")
        return None

    def _checked(self, message: dict[str, Any]) -> FakeSms:
        """An SMS as the gateway would enqueue it, or Refused with its status code."""
        recipient = message.get("recipient")
        if not isinstance(recipient, str) or not _RECIPIENT.match(recipient):
            raise Refused(5, f"Invalid recipient: {recipient!r} is not an E.164 MSISDN with +")
        if recipient in self.refused_numbers:
            raise Refused(5, f"Invalid recipient: {recipient} is not a valid MSISDN")
        content = message.get("content")
        if not isinstance(content, str) or not content:
            raise Refused(5, "content: a non-empty text is required")
        if not isinstance(message.get("price", 0), int):
            raise Refused(5, "price: an integer is required")
        settings = message.get("settings") or {}
        if not isinstance(settings, dict):
            raise Refused(5, "settings: an object is required")
        originator = _originator(settings.get("originatorSettings"))
        unicode = _unicode(content, settings)
        parameters = _parameters(settings.get("parameter"))
        priority = settings.get("priority")
        if priority is not None and priority not in (1, 2, 3):
            raise Refused(5, f"priority: {priority!r} is not 1, 2 or 3")
        validity = settings.get("validity")
        if validity is not None and (not isinstance(validity, int) or not 0 <= validity <= 173):
            raise Refused(5, f"validity: {validity!r} is not 0 to 173")
        skip = parameters.get("skip_customer_report_delivery", "").lower() == "true"
        return FakeSms(
            provider_id="",
            to=recipient,
            sender=originator,
            text=content,
            reference=message.get("clientReference"),
            unicode=unicode,
            report_requested=not skip,
            priority=None if priority is None else str(priority),
            fields={
                "validity": validity,
                "settings": settings,
                "price": message.get("price", 0),
            },
        )

    def _enqueue(
        self, sms: FakeSms, scripted: tuple[int, bool] | None, index: int
    ) -> dict[str, Any]:
        code, with_id = scripted or (1, True)
        with self.lock:
            sent_before = len(self.sent_to(sms.to))
            earlier = self.by_reference(sms.reference) if sms.reference else []
        if scripted is None and earlier:
            # The gateway's duplicate check on clientReference (status 25): nothing new is
            # enqueued. Which messageId the real gateway gives then is UNCONFIRMED; the fake
            # gives the first message's.
            return _status(
                25, STATUS_TEXT[25], sms.to, sms.reference, index, earlier[0].provider_id
            )
        if code == 1 and self.quota_per_number is not None and sent_before >= self.quota_per_number:
            code = 24
        message_id = self.new_id("7a0", 9)
        if code in (1, 24, 25):
            sms.provider_id = message_id
            if code != 25:
                self.accept(sms)
        return _status(
            code,
            STATUS_TEXT.get(code, "Unknown status"),
            sms.to,
            sms.reference,
            index,
            message_id if code in (1, 24) or (code == 25 and with_id) else None,
        )

    # -- callbacks ---------------------------------------------------------------------------

    async def send_report(
        self, client: httpx.AsyncClient, sms: FakeSms, delivered: bool, *, forged: bool = False
    ) -> httpx.Response:
        item = self.report_item(sms, 0 if delivered else 351)
        return await self._post(client, self.report_url(sms, forged), "dr", [item])

    async def deliver_reports(self, client: httpx.AsyncClient) -> httpx.Response | None:
        """Report every accepted SMS that asked for a report, in one batch, as the gateway does."""
        with self.lock:
            due = [
                s
                for s in self.messages
                if s.report_requested and s.provider_id not in self._reported
            ]
            self._reported.update(s.provider_id for s in due)
        if not due:
            return None
        items = [self.report_item(sms, 0) for sms in due]
        return await self._post(client, self.report_url(due[0], False), "dr", items)

    def report_item(self, sms: FakeSms, code: int) -> dict[str, Any]:
        return {
            "messageid": sms.provider_id,
            "customerbatchreference": "",
            "customermessagereference": sms.reference or "",
            "serviceid": self.service_id,
            "servicename": "smsdesk fake",
            "mcc": 242,
            "mnc": 1,
            "type": 6,
            "statuscode": code,
            "statusdescription": "OK. Message processed successfully."
            if code == 0
            else "Unknown recipient number",
            "extstatuscode": "0" if code == 0 else "1",
            "extstatusdescription": "Delivered" if code == 0 else "Unknown subscriber",
        }

    async def send_inbound(
        self,
        client: httpx.AsyncClient,
        sender: str,
        recipient: str,
        text: str,
        *,
        forged: bool = False,
    ) -> httpx.Response:
        keyword, _, rest = text.partition(" ")
        now = datetime.now(ZoneInfo("Europe/Oslo")).strftime("%Y%m%d %H:%M:%S")
        item = {
            "messageid": self.new_id("7b0", 9),
            "serviceid": self.service_id,
            "servicename": "smsdesk fake",
            "sno": recipient.removeprefix("+"),
            "originator": sender,
            "mcc": 242,
            "mnc": 1,
            "content": text,
            "command": keyword,
            "strippedcontent": rest,
            "type": 1,
            "timestamp": now,
            "sctimestamp": now,
            "sessionid": "",
        }
        return await self._post(client, self.forward_url(forged), "mo", [item])

    async def _post(
        self, client: httpx.AsyncClient, url: str, root: str, items: list[dict[str, Any]]
    ) -> httpx.Response:
        if self.callback_format == "xml":
            return await client.post(
                url, content=_xml(root, items), headers={"content-type": "application/xml"}
            )
        if self.callback_format == "get":
            return await client.get(url, params={k: str(v) for k, v in items[0].items()})
        return await client.post(url, json={root: items})


def _status(
    code: int,
    detail: str,
    recipient: Any,
    reference: Any,
    index: int = 0,
    message_id: str | None = None,
) -> dict[str, Any]:
    return {
        "statusCode": code,
        "statusMessage": detail,
        "clientReference": reference,
        "recipient": recipient,
        "messageId": message_id,
        "sessionId": None,
        "sequenceIndex": index + 1,
    }


def _reply(statuses: list[dict[str, Any]], batch: str, as_json: bool) -> Response:
    if as_json:
        return JSONResponse({"batchReference": batch, "messageStatus": statuses})
    entries = "".join(
        "<messageStatus>"
        + "".join(
            f"<{key}>{escape(str(value))}</{key}>"
            for key, value in status.items()
            if value is not None
        )
        + "</messageStatus>"
        for status in statuses
    )
    return Response(
        '<?xml version="1.0" standalone="yes"?><ns2:response xmlns:ns2='
        '"http://chimera.intele.com/gw/xsd/SMSGateway/Response/2013/02">'
        f"<batchReference>{escape(batch)}</batchReference>{entries}</ns2:response>",
        media_type="application/xml",
    )


def _originator(settings: Any) -> str:
    if settings is None:
        return DEFAULT_ORIGINATOR
    if not isinstance(settings, dict):
        raise Refused(5, "originatorSettings: an object is required")
    kind, value = settings.get("originatorType"), settings.get("originator")
    pattern = _ORIGINATOR.get(str(kind))
    if pattern is None:
        raise Refused(5, f"originatorType: {kind!r} is not INTERNATIONAL, ALPHANUMERIC or NETWORK")
    if not isinstance(value, str) or not pattern.match(value):
        raise Refused(5, f"originator: {value!r} is not a valid {kind} originator")
    return value


def _unicode(content: str, settings: Mapping[str, Any]) -> bool:
    """Whether the content goes as UCS-2; refuses what the default parsing type refuses."""
    text = analyse(content)
    unicode = text.encoding is Encoding.UCS2
    if unicode and settings.get("autoDetectEncoding") is not True:
        raise Refused(5, "content: characters outside the GSM 7-bit alphabet")
    if text.segments > MAX_PARTS:
        raise Refused(5, f"content: {text.segments} parts; at most {MAX_PARTS} are allowed")
    return unicode


def _parameters(parameters: Any) -> dict[str, str]:
    if parameters is None:
        return {}
    if not isinstance(parameters, list):
        raise Refused(5, "parameter: a list of key/value objects is required")
    found = {}
    for parameter in parameters:
        key = parameter.get("key") if isinstance(parameter, dict) else None
        if key not in _PARAMETER_KEYS:
            raise Refused(5, f"parameter: unknown key {key!r}")
        found[key] = str(parameter.get("value", ""))
    return found


def _xml(root: str, items: list[dict[str, Any]]) -> bytes:
    messages = "".join(
        "<message>"
        + "".join(f"<{key}>{escape(str(value))}</{key}>" for key, value in item.items())
        + "</message>"
        for item in items
    )
    return f'<?xml version="1.0" encoding="UTF-8"?><{root}>{messages}</{root}>'.encode()
