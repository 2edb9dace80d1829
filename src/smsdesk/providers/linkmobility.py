"""LINK Mobility's "Common" SMS REST API: /send, /sendbatch, delivery reports and MO over gates.

JSON over HTTPS with Basic auth. Every request names the account's platformId and
platformPartnerId; LINK splits and encodes the text itself (dcs TEXT). Delivery reports and
inbound SMS are POSTed as JSON to "gates" that LINK Support points at our webhook URLs; a report
comes once per segment with id "{messageId}${n}".

What an answer means, as this module reads it::

    HTTP 200 resultCode 1005 (and other 1000-range "in progress" codes)   accepted
    106100 / 106101 / 106102 / 106200 / 106201 / 401 / 403 / 404         AuthenticationError
    106000 / 106300 / 106301, 0-6, 105, 5xx, timeouts                     TemporaryError
    3 (throttling), 429                                                   RateLimitedError
    2000-2207, 3000-3002, 4000-4007, 106202, other 400s                   PermanentError

UNCONFIRMED (no primary source): the error body shape {status, description,
translatedDescription} (seen in two third-party clients, not in LINK's PDF); how a single /send
refuses one bad destination (read here as a 400 error body or a 200 whose resultCode is not an
"in progress" code); refId and priority per message inside sendbatch (the community spec only
lists them for /send); any validity limit (we never ask for more than LINK's 48 h default).
"""

from __future__ import annotations

import copy
import json
import math
import re
import time
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import httpx
from pydantic import SecretStr

from smsdesk.domain.message import Status
from smsdesk.domain.sms import InboundSms, OutboundSms, StatusReport
from smsdesk.providers.base import (
    AuthenticationError,
    CallbackRequest,
    ModuleInfo,
    PermanentError,
    Provider,
    ProviderError,
    RateLimitedError,
    SendResult,
    TemporaryError,
    Transport,
)
from smsdesk.providers.callbacks import json_body
from smsdesk.providers.errors import ErrorTable, Meaning, account_level
from smsdesk.providers.fields import secret_field, text_field, url_field
from smsdesk.providers.http import HttpModuleSettings, api_base, request, short, status_error
from smsdesk.providers.numbers import from_provider
from smsdesk.providers.timestamps import iso_time

DEFAULT_BASE_URL = "https://wsx.sp247.net/sms"
MAX_SEGMENTS = 254
DEFAULT_VALIDITY_MS = 172_800_000  # LINK's default, 48 hours
PRIORITIES = {1: "HIGH", 2: "NORMAL", 3: "LOW"}
_ALPHA_SENDER = re.compile(r"^[A-Za-z][A-Za-z0-9]{1,10}$")
_SHORT_NUMBER_DIGITS = 6  # numeric senders this short are short codes, longer ones MSISDNs

# resultCode → what it means; written for the admin reading a message's timeline.
RESULT_TEXT: dict[int, str] = {
    0: "unknown error",
    1: "temporary routing error",
    2: "permanent routing error",
    3: "maximum throttling exceeded",
    4: "timeout",
    5: "operator error of unknown kind",
    6: "operator error",
    104: "configuration error at LINK",
    105: "internal error at LINK",
    1000: "sent to the operator",
    1001: "delivered (billed)",
    1002: "expired",
    1003: "deleted",
    1004: "the phone's memory is full",
    1005: "queued",
    1006: "not delivered",
    1007: "delivered, billing delayed",
    1008: "billed",
    1009: "billed but not delivered",
    1010: "expired without a report from the operator",
    1011: "billed and sent to the operator",
    1012: "delayed",
    1013: "sent to the operator, billing delayed",
    2000: "invalid sender",
    2001: "short-number senders are not supported",
    2002: "alphanumeric senders are not supported",
    2003: "MSISDN senders are not supported",
    2100: "short-number recipients are not supported",
    2101: "alphanumeric recipients are not supported",
    2102: "MSISDN recipients are not supported",
    2103: "operation blocked",
    2104: "unknown subscriber",
    2105: "recipient blocked",
    2106: "number error",
    2107: "recipient temporarily blocked",
    2200: "charging error",
    2201: "subscriber balance too low",
    2202: "subscriber overcharged",
    2203: "subscriber too young",
    2204: "prepaid subscribers not allowed",
    2205: "service rejected by the subscriber",
    2206: "subscriber not registered",
    2207: "subscriber balance at its maximum",
    3000: "GSM encoding not supported",
    3001: "UCS-2 encoding not supported",
    3002: "binary encoding not supported",
    4000: "delivery reports not supported",
    4001: "invalid message content",
    4002: "invalid tariff",
    4003: "invalid user data",
    4004: "invalid user data header",
    4005: "invalid data coding",
    4006: "invalid VAT",
    4007: "content not supported by the recipient",
    106000: "unknown error at LINK",
    106100: "invalid authentication",
    106101: "access denied",
    106102: "LINK cannot access the SMSC credentials of the account",
    106200: "invalid or missing platformId",
    106201: "invalid or missing platformPartnerId",
    106202: "invalid or missing currency for a premium message",
    106300: "no gates available",
    106301: "the gate asked for is unavailable",
}
IN_PROGRESS = frozenset({1000, 1005, 1007, 1008, 1011, 1012, 1013})
REPORT_STATUS: dict[int, Status] = {
    1001: Status.DELIVERED,
    **dict.fromkeys(IN_PROGRESS, Status.SENT),
    1002: Status.EXPIRED,
    1010: Status.EXPIRED,
}
_AUTH_FIX = {
    106100: "check the user name and password in the module settings",
    106101: "check the user name and password in the module settings",
    106102: "ask LINK Support to check the account's SMSC credentials",
    106200: "check the Platform ID in the module settings (LINK Support gives it)",
    106201: "check the Platform partner ID in the module settings (LINK Support gives it)",
}
_TEMPORARY = frozenset({0, 1, 4, 5, 6, 105, 2107, 106000})
# Refusals of the account, not of the message (no gate, LINK's configuration, a kind of sender
# the account may not use): LINK did not take it, and another connection may send it.
_ACCOUNT_TEMPORARY = frozenset({106300, 106301})
_ACCOUNT_PERMANENT = frozenset({104, 2001, 2002, 2003})
_AGAIN = "{said}; sending again later."
_UNSENDABLE = Meaning(PermanentError, "{said}; this message cannot be sent as it is.")
# LINK's result codes ({said} is LINK's refusal in words); a code LINK did not document is
# permanent in a 400 answer or a message's result, an account problem otherwise.
ERRORS = ErrorTable(
    {
        **dict.fromkeys(RESULT_TEXT, _UNSENDABLE),
        **dict.fromkeys(_TEMPORARY, Meaning(TemporaryError, _AGAIN)),
        **dict.fromkeys(_ACCOUNT_TEMPORARY, account_level(Meaning(TemporaryError, _AGAIN))),
        **dict.fromkeys(_ACCOUNT_PERMANENT, account_level(_UNSENDABLE)),
        3: Meaning(RateLimitedError, _AGAIN),
        **{
            code: Meaning(AuthenticationError, f"{{said}}; {fix}.")
            for code, fix in _AUTH_FIX.items()
        },
    }
)
_CREDENTIALS = Meaning(
    AuthenticationError,
    "LINK Mobility refused the credentials: {what}; check the user name and password in the "
    "module settings.",
)
_UNKNOWN_ACCOUNT_PROBLEM = Meaning(
    AuthenticationError, "{said}; check the account settings with LINK Support."
)
# Answers without a LINK code in their body, by HTTP status.
HTTP_ERRORS = ErrorTable(
    {
        404: Meaning(
            AuthenticationError,
            "LINK Mobility has no API at {url} (HTTP 404); check the base URL in the module "
            "settings.",
        ),
        403: Meaning(
            AuthenticationError,
            "LINK Mobility refused the request (HTTP 403): {said}; check the module settings.",
        ),
    },
    default=Meaning(
        PermanentError,
        "LINK Mobility refused the request (HTTP {key}): {said}; check the module settings.",
    ),
    code="http-{key}",
)


class LinkMobilitySettings(HttpModuleSettings):
    """The account LINK Mobility Support set up: API user, platform ids and report gates."""

    plugin_keys: ClassVar[dict[str, str]] = {}

    username: str = text_field("User name", "The API user name LINK gave you.", max_length=200)
    password: SecretStr = secret_field("Password", "The API user's password.")
    platform_id: str = text_field(
        "Platform ID",
        "The platformId LINK Support gave you; most accounts use COMMON_API.",
        default="COMMON_API",
    )
    platform_partner_id: str = text_field(
        "Platform partner ID", "The platformPartnerId LINK Support gave you; needed to send."
    )
    delivery_report_gates: str = text_field(
        "Delivery report gates",
        "Gate ids (comma-separated) LINK sends delivery reports to; empty uses "
        "the account's default gate. Ask Support to point the gate at the status webhook URL.",
        max_length=500,
        pattern=r"^[\w\-, ]*$",
    )
    base_url: str = url_field(
        "Base URL",
        f"Empty means {DEFAULT_BASE_URL}; set a regional host such as "
        "https://n-eu.linkmobility.io/sms if LINK gave you one.",
    )

    def gates(self) -> list[str]:
        return [gate.strip() for gate in self.delivery_report_gates.split(",") if gate.strip()]


def result_text(code: int) -> str:
    return RESULT_TEXT.get(code, f"result code {code}")


def error_for_code(code: int, text: str, http_status: int | None = None) -> ProviderError:
    """The error a LINK result code stands for, with what to do about it."""
    said = f"LINK Mobility refused the message: {result_text(code)} ({code})"
    if text and text.lower() != result_text(code).lower():
        said += f", saying '{short(text, 200)}'"
    meaning = ERRORS.find(code)
    if meaning is None:
        meaning = _UNSENDABLE if http_status in (None, 400) else _UNKNOWN_ACCOUNT_PROBLEM
    return meaning.error(str(code), said=said)


def _code_in(text: str) -> int | None:
    """A LINK code written anywhere in a text that is not JSON as a whole."""
    match = re.search(r'"(?:status|errorCode|resultCode)"\s*:\s*"?(\d+)', text)
    return int(match.group(1)) if match else None


def _error_body_code(text: str) -> tuple[int | None, str]:
    """The code and description of an error body ({status, description, …}), if it has them."""
    try:
        body = json.loads(text)
    except ValueError:
        return _code_in(text), ""
    if not isinstance(body, dict):
        return None, ""
    for key in ("status", "errorCode", "resultCode"):
        value = body.get(key)
        if isinstance(value, int) or (isinstance(value, str) and value.isdigit()):
            return int(value), str(body.get("description") or body.get("message") or "")
    return None, str(body.get("description") or "")


def unsent(error: ProviderError) -> ProviderError:
    """`error` for the messages of the requests not made after it: LINK has none of them."""
    if error.not_taken:
        return error
    never_sent = copy.copy(error)
    never_sent.not_taken = True
    return never_sent


def sender_fields(sender: str) -> dict[str, str]:
    """source and sourceTON for a sender, or PermanentError when LINK would refuse it."""
    digits = sender.removeprefix("+")
    if digits.isascii() and digits.isdigit():
        if len(digits) <= _SHORT_NUMBER_DIGITS and not sender.startswith("+"):
            return {"source": digits, "sourceTON": "SHORTNUMBER"}
        return {"source": f"+{digits}", "sourceTON": "MSISDN"}
    if not _ALPHA_SENDER.match(sender):
        raise PermanentError(
            f"LINK Mobility accepts sender names of 2 to 11 letters and digits starting with "
            f"a letter, not '{sender}'; change the sender in the SMS settings.",
            code="sender",
        )
    return {"source": sender, "sourceTON": "ALPHANUMERIC"}


def validity_ms(sms: OutboundSms, now: float) -> int:
    """How long LINK may keep trying, in ms: until our expiry, never past its 48 h default."""
    if sms.expires_at is None:
        return DEFAULT_VALIDITY_MS
    remaining = math.floor((sms.expires_at - now) / 60) * 60_000  # whole minutes, so they batch
    return max(60_000, min(DEFAULT_VALIDITY_MS, remaining))


class LinkMobilityProvider(Provider):
    """Sends through /send (one message) or /sendbatch (shared delivery report and validity)."""

    transport = Transport.HTTP
    max_batch: ClassVar[int] = 1000
    settings: LinkMobilitySettings

    async def send(self, batch: Sequence[OutboundSms]) -> list[SendResult]:
        results: dict[str, SendResult] = {}
        groups: dict[tuple[bool, int], list[tuple[OutboundSms, dict[str, Any]]]] = {}
        now = time.time()
        for sms in batch:
            try:
                message = self._message(sms)
            except PermanentError as exc:
                results[sms.message_id] = SendResult(sms.message_id, error=exc, raw_code=exc.code)
                continue
            key = (sms.delivery_report, validity_ms(sms, now))
            groups.setdefault(key, []).append((sms, message))
        stopped: ProviderError | None = None
        for (report, validity), group in groups.items():
            if stopped is None:
                try:
                    results.update(await self._send_group(group, report, validity))
                    continue
                except PermanentError as exc:
                    error: ProviderError = exc
                except ProviderError as exc:
                    error = exc
                    stopped = unsent(exc)  # the next requests would fail the same way
            else:
                error = stopped
            for sms, _ in group:
                results[sms.message_id] = SendResult(
                    sms.message_id, error=error, raw_code=error.code
                )
        return [results[sms.message_id] for sms in batch]

    def _message(self, sms: OutboundSms) -> dict[str, Any]:
        if sms.segments > MAX_SEGMENTS:
            raise PermanentError(
                f"The text needs {sms.segments} SMS parts; LINK Mobility sends at most "
                f"{MAX_SEGMENTS}. Shorten the text.",
                code="too-long",
            )
        return {
            **sender_fields(sms.sender),
            "destination": sms.to,
            "userData": sms.text,
            "dcs": "TEXT",
            "refId": sms.message_id,
            "priority": PRIORITIES.get(sms.priority, "NORMAL"),
        }

    def _shared(self, report: bool, validity: int) -> dict[str, Any]:
        s = self.settings
        if not s.platform_id.strip() or not s.platform_partner_id.strip():
            missing = "Platform ID" if not s.platform_id.strip() else "Platform partner ID"
            raise AuthenticationError(
                f"The {missing} of the LINK Mobility module is empty; enter the value LINK "
                "Support gave you in the module settings.",
                code="settings",
            )
        shared: dict[str, Any] = {
            "platformId": s.platform_id.strip(),
            "platformPartnerId": s.platform_partner_id.strip(),
            "useDeliveryReport": report,
            "relativeValidityTime": validity,
            "ignoreResponse": False,
        }
        if report and s.gates():
            shared["deliveryReportGates"] = s.gates()
        return shared

    async def _post(self, path: str, body: dict[str, Any]) -> httpx.Response:
        s = self.settings
        url = f"{api_base(s.base_url, DEFAULT_BASE_URL)}/{path}"
        response = await request(
            self.http,
            "POST",
            url,
            timeout=s.timeout,
            own=(401,),
            json=body,
            auth=(s.username, s.password.get_secret_value()),
        )
        status = response.status_code
        if status == 401:  # keep LINK's own code where it gave one
            code = _code_in(short(response.text))
            what = f"{result_text(code)} ({code})" if code else "HTTP 401"
            raise _CREDENTIALS.error(str(code) if code else "http-401", what=what)
        if status < 300:
            return response
        code, text = _error_body_code(response.text)
        if status == 404 or code is None:
            raise status_error(response, HTTP_ERRORS, url=url)
        raise error_for_code(code, text, status)

    async def _send_group(
        self, group: list[tuple[OutboundSms, dict[str, Any]]], report: bool, validity: int
    ) -> dict[str, SendResult]:
        shared = self._shared(report, validity)
        if len(group) == 1:
            sms, message = group[0]
            response = await self._post("send", {**shared, **message})
            return {sms.message_id: self._single_result(sms, response)}
        body = {**shared, "sendRequestMessages": [message for _, message in group]}
        response = await self._post("sendbatch", body)
        return self._batch_results([sms for sms, _ in group], response)

    def _single_result(self, sms: OutboundSms, response: httpx.Response) -> SendResult:
        if response.status_code == 204 or not response.content:
            return SendResult(sms.message_id, raw_code=str(response.status_code))
        item = _json(response)
        if not isinstance(item, dict):
            raise TemporaryError(f"LINK Mobility answered {short(response.text)}, not a result.")
        return _item_result(sms, item)

    def _batch_results(
        self, batch: Sequence[OutboundSms], response: httpx.Response
    ) -> dict[str, SendResult]:
        if response.status_code == 204 or not response.content:
            return {sms.message_id: SendResult(sms.message_id, raw_code="204") for sms in batch}
        items = _json(response)
        if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
            raise TemporaryError(f"LINK Mobility answered {short(response.text)}, not results.")
        by_ref = {str(i["refId"]): i for i in items if i.get("refId") is not None}
        results = {}
        for position, sms in enumerate(batch):
            item = by_ref.get(sms.message_id)
            if item is None and not by_ref and position < len(items):
                item = items[position]
            if item is None:
                missing = TemporaryError(
                    "LINK Mobility's answer did not mention this message; sending it again.",
                    code="missing",
                )
                results[sms.message_id] = SendResult(sms.message_id, error=missing, raw_code=None)
            else:
                results[sms.message_id] = _item_result(sms, item)
        return results

    def parse_status_callback(self, request: CallbackRequest) -> list[StatusReport]:
        return [_report(item) for item in _json_items(request, "delivery report")]

    def parse_inbound(self, request: CallbackRequest) -> list[InboundSms]:
        return [_inbound(item) for item in _json_items(request, "inbound message")]


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        raise TemporaryError(
            f"LINK Mobility answered something that is not JSON: {short(response.text)}",
            code=f"http-{response.status_code}",
        ) from None


def _item_result(sms: OutboundSms, item: Mapping[str, Any]) -> SendResult:
    """One message's result from {messageId, resultCode, description|message}."""
    try:
        code = _int(item.get("resultCode", 1005), "resultCode")
    except ValueError as exc:
        raise TemporaryError(f"LINK Mobility answered an unreadable result: {exc}") from None
    if code in IN_PROGRESS or code == 1001:
        message_id = item.get("messageId")
        return SendResult(sms.message_id, str(message_id) if message_id else None, None, str(code))
    error = error_for_code(code, str(item.get("description") or item.get("message") or ""))
    return SendResult(sms.message_id, error=error, raw_code=str(code))


def _int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError(f"{name} should be a number, not {value!r}")
    return int(value)


def _json_items(request: CallbackRequest, what: str) -> list[Mapping[str, Any]]:
    """The JSON object, or array of objects, a gate POSTed."""
    body = json_body(request.body, f"The LINK Mobility {what} is not JSON: {{}}")
    items = body if isinstance(body, list) else [body]
    if not items or not all(isinstance(item, dict) for item in items):
        raise ValueError(f"The LINK Mobility {what} should be a JSON object or a list of them.")
    return items


def _report(item: Mapping[str, Any]) -> StatusReport:
    report_id = item.get("id")
    if not isinstance(report_id, str) or not report_id:
        raise ValueError("A LINK Mobility delivery report needs its message 'id'.")
    try:
        code = _int(item["resultCode"], "resultCode")
    except (KeyError, ValueError) as exc:
        raise ValueError(
            f"A LINK Mobility delivery report needs a numeric resultCode: {exc}"
        ) from None
    message_id, dollar, segment = report_id.rpartition("$")
    if not (dollar and message_id and segment.isdigit()):
        message_id = report_id  # a report without the per-segment suffix
    description = result_text(code)
    if item.get("operatorResultCode") not in (None, ""):
        description += f" (operator code {item['operatorResultCode']})"
    return StatusReport(
        provider_message_id=message_id,
        status=REPORT_STATUS.get(code, Status.UNDELIVERED if code in RESULT_TEXT else Status.SENT),
        raw_code=str(code),
        description=description,
        occurred_at=iso_time(item.get("timestamp"), naive=None),
    )


def _inbound(item: Mapping[str, Any]) -> InboundSms:
    source, destination = item.get("source"), item.get("destination")
    content = item.get("content")
    message_id = item.get("messageId")
    if not isinstance(source, str) or not source or not isinstance(destination, str):
        raise ValueError("A LINK Mobility inbound message needs 'source' and 'destination'.")
    if not isinstance(content, dict) or not isinstance(content.get("userData", ""), str):
        raise ValueError("A LINK Mobility inbound message needs 'content' with its 'userData'.")
    if not isinstance(message_id, str) or not message_id:
        raise ValueError("A LINK Mobility inbound message needs its 'messageId'.")
    return InboundSms(
        provider_message_id=message_id,
        sender=from_provider(source),
        recipient=from_provider(destination),
        text=str(content.get("userData", "")),
        received_at=iso_time(item.get("timestamp"), naive=None),
    )


MODULE = ModuleInfo(
    "linkmobility",
    "LINK Mobility",
    "LINK Mobility SMS REST API (send and sendbatch).",
    LinkMobilitySettings,
    LinkMobilityProvider,
)
