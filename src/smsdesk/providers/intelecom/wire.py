"""The Intelecom / Puzzel SMS gateway's REST formats: the send request, its answer, callbacks.

What both Intelecom modules send and read; see the package's docstring for the sources and the
choices made where they are silent.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from smsdesk.domain.message import Status
from smsdesk.domain.sms import InboundSms, OutboundSms, StatusReport
from smsdesk.providers.base import (
    AuthenticationError,
    CallbackRequest,
    PermanentError,
    ProviderError,
    SendResult,
    TemporaryError,
)
from smsdesk.providers.callbacks import (
    folded,
    json_body,
    local_name,
    xml_fields,
    xml_root,
)
from smsdesk.providers.errors import ErrorTable, Meaning, account_level
from smsdesk.providers.http import short
from smsdesk.providers.intelecom.settings import (
    IntelecomSettings,
    OriginalIntelecomSettings,
)
from smsdesk.providers.numbers import from_provider
from smsdesk.providers.timestamps import local_time, named_zone

DEFAULT_BASE_URL = "https://smsgw.puzzel.com"
SEND_PATH = "/gw/rs/sendMessages"
MAX_PARTS = 6  # "a maximum of six concatenated messages" (about.md, Message Content)
SHORT_NUMBER_DIGITS = 6  # numeric senders up to this long are short numbers (NETWORK)
_ALPHANUMERIC_ORIGINATOR = re.compile(r"^[A-Za-z0-9 %&+.,-]{1,11}$")
_EXPIRED_CODES = frozenset({361, 362})  # validity period expired; timed out in the SMSC
_DELIVERED_CODES = frozenset({0, 390})  # 390: sent, just not billed
# Without time-zone data, no time is read: the router stamps the arrival time.
_GATEWAY_ZONE = named_zone("Europe/Oslo")
# A send answer without a status per message, by HTTP status.
HTTP_ERRORS = ErrorTable(
    {
        (403, 404, 405): Meaning(
            AuthenticationError,
            "The Intelecom gateway refused the request (HTTP {key}): check the base URL and "
            "that the service may use the REST API. It said: {said}",
        ),
        (400, 413, 415, 422): Meaning(
            PermanentError,
            "The Intelecom gateway refused the request (HTTP {key}): {said}",
        ),
    },
    default=Meaning(
        TemporaryError,
        "The Intelecom gateway answered HTTP {key} without a status per message: {said}",
    ),
    code="http-{key}",
    unsaid="nothing",
)
# A message's statusCode in a send answer, when it was not accepted.
STATUS_ERRORS = ErrorTable(
    {
        2: Meaning(
            AuthenticationError,
            "Intelecom refused the credentials (status 2, {said}): check User name and "
            "Password in the module settings.",
        ),
        3: Meaning(
            AuthenticationError,
            "Intelecom does not allow this for Service ID {service} (status 3, ILLEGAL_ACTION: "
            "{said}): check the Service ID, or ask Puzzel support what the service may do.",
        ),
        4: Meaning(
            AuthenticationError,
            "Intelecom does not accept Service ID {service} for these credentials (status 4, "
            "ILLEGAL_SERVICE: {said}): check the Service ID in the module settings.",
        ),
        5: Meaning(
            PermanentError,
            "Intelecom refused the message (status 5, SYNTAX_ERROR: {said}).",
        ),
        # The gateway's own failure, answered instead of enqueuing the message.
        6: account_level(
            Meaning(
                TemporaryError,
                "Intelecom had an internal error (status 6: {said}); it will be tried again.",
            )
        ),
    },
    default=Meaning(
        TemporaryError,
        "Intelecom answered status {status} ({said}), which smsdesk does not know; it will be "
        "tried again.",
    ),
)


@dataclass(frozen=True, slots=True)
class GatewayAccount:
    """What a send needs from either module's settings."""

    service_id: str
    username: str
    password: str
    base_url: str
    timeout: float
    delivery_report: bool
    new_session: bool = False
    differentiator: str = ""

    @classmethod
    def of(
        cls,
        s: IntelecomSettings | OriginalIntelecomSettings,
        *,
        new_session: bool = False,
        differentiator: str = "",
    ) -> GatewayAccount:
        """The account either module's settings hold, with the options only one of them has."""
        return cls(
            s.service_id,
            s.username,
            s.password.get_secret_value(),
            s.base_url,
            s.timeout,
            s.delivery_report,
            new_session,
            differentiator,
        )


def gateway_priority(priority: int) -> int:
    """Ours: 1 fastest .. 3 slowest; the gateway's: 1 low .. 3 high."""
    return 4 - min(max(priority, 1), 3)


def validity_seconds(code: int) -> int:
    """How long the gateway keeps trying a message with this validity code (about.md)."""
    if code <= 143:
        return (code + 1) * 300
    if code <= 167:
        return 12 * 3600 + (code - 143) * 1800
    return (code - 166) * 86400


def validity_code(seconds: float) -> int:
    """The longest validity that ends no later than `seconds` from now (at least 5 minutes)."""
    minutes = int(max(seconds, 0) // 60)
    if minutes >= 2 * 1440:
        return min(166 + minutes // 1440, 173)
    if minutes >= 750:
        return min(143 + (minutes - 720) // 30, 167)
    return min(max(minutes // 5 - 1, 0), 143)


def originator_settings(sender: str) -> dict[str, str]:
    """The originator and its type, as the gateway wants them for our sender."""
    digits = sender.replace(" ", "").removeprefix("+")
    if digits.isascii() and digits.isdigit():
        if len(digits) <= SHORT_NUMBER_DIGITS:
            return {"originator": digits, "originatorType": "NETWORK"}
        return {"originator": f"+{digits}", "originatorType": "INTERNATIONAL"}
    if not _ALPHANUMERIC_ORIGINATOR.match(sender):
        raise PermanentError(
            f"Intelecom does not accept the sender '{sender}': a name may have at most 11 "
            "letters, digits, spaces and % & - + . , — change the sender in the SMS settings.",
            code="sender",
        )
    return {"originator": sender, "originatorType": "ALPHANUMERIC"}


def to_e164(number: str) -> str:
    """A gateway number as E.164 with '+'; short numbers (e.g. 1960) stay as they are."""
    value = number.strip().replace(" ", "")
    if value.startswith("00"):
        value = "+" + value[2:]
    digits = value.removeprefix("+")
    if not (digits.isascii() and digits.isdigit()):
        raise ValueError(f"'{number}' is not a phone number.")
    if value.startswith("+") or len(digits) > SHORT_NUMBER_DIGITS:
        return "+" + digits
    return digits


def report_status(code: int) -> Status:
    """Our status for a delivery report's statuscode (common.md, delivery reports)."""
    if code in _DELIVERED_CODES:
        return Status.DELIVERED
    if code in _EXPIRED_CODES:
        return Status.EXPIRED
    # 350-389 and 650-655 are failures; a report only comes after *sent*, so even 654
    # "invalid MSISDN" is undelivered here (sent → failed is not a transition we allow).
    return Status.UNDELIVERED


def check_account(account: GatewayAccount) -> None:
    missing = [
        name
        for name, value in (
            ("Service ID", account.service_id),
            ("User name", account.username),
            ("Password", account.password),
        )
        if not value
    ]
    if missing:
        raise AuthenticationError(
            f"The Intelecom credentials are incomplete: enter {', '.join(missing)} in the "
            "module settings.",
            code="settings",
        )


def message_entry(sms: OutboundSms, account: GatewayAccount) -> dict[str, Any]:
    """One entry of the request's `message` list; PermanentError if the gateway would refuse."""
    if sms.segments > MAX_PARTS:
        raise PermanentError(
            f"The text needs {sms.segments} SMS parts; Intelecom sends at most {MAX_PARTS} "
            "(918 GSM characters, or 402 for Unicode text). Shorten the text.",
            code="too-long",
        )
    settings: dict[str, Any] = {"priority": gateway_priority(sms.priority)}
    if sms.expires_at is not None:
        settings["validity"] = validity_code(sms.expires_at - time.time())
    if account.differentiator:
        settings["differentiator"] = account.differentiator
    originator = originator_settings(sms.sender)
    if account.new_session:
        settings["newSession"] = True
    if not account.new_session or originator["originatorType"] == "NETWORK":
        # A session needs the service's short number as sender; a name or long number would
        # be refused, so the gateway's own originator is used then.
        settings["originatorSettings"] = originator
    if sms.encoding == "ucs2":
        settings["autoDetectEncoding"] = True
    if not (sms.delivery_report and account.delivery_report):
        settings["parameter"] = [{"key": "skip_customer_report_delivery", "value": "true"}]
    return {
        "recipient": sms.to,
        "content": sms.text,
        "price": 0,
        "clientReference": sms.message_id,
        "settings": settings,
    }


def reply_statuses(http_status: int, text: str) -> list[dict[str, Any]]:
    """The `messageStatus` entries of a reply (JSON, or XML if Accept was ignored)."""
    statuses = _parse_statuses(text)
    if statuses:
        return statuses
    raise HTTP_ERRORS.error(http_status, reason=short(text))


def _parse_statuses(text: str) -> list[dict[str, Any]]:
    stripped = text.strip()
    try:
        if stripped.startswith("{"):
            statuses = json.loads(stripped).get("messageStatus")
            if not isinstance(statuses, list):
                return []
            return [status for status in statuses if isinstance(status, dict)]
        if stripped.startswith("<"):
            root = xml_root(stripped, "{}")
            return [
                {local_name(child.tag): child.text or "" for child in element}
                for element in root.iter()
                if local_name(element.tag) == "messageStatus"
            ]
    except (ValueError, AttributeError):
        return []
    return []


def by_sequence(statuses: list[dict[str, Any]], position: int) -> dict[str, Any] | None:
    for status in statuses:
        if str(status.get("sequenceIndex", "")) == str(position + 1):
            return status
    return statuses[position] if position < len(statuses) else None


def message_result(
    sms: OutboundSms, status: dict[str, Any] | None, account: GatewayAccount
) -> SendResult:
    """One message's outcome from its `messageStatus` entry."""
    if status is None:
        error: ProviderError = TemporaryError(
            "The Intelecom gateway's answer had no status for this message.",
            code="no-status",
        )
        return SendResult(sms.message_id, error=error, raw_code=error.code)
    raw = str(status.get("statusCode", status.get("statuscode", ""))).strip()
    said = str(status.get("statusMessage") or status.get("statusmessage") or "").strip()
    message_id = str(status.get("messageId") or "") or None
    if raw in ("1", "24", "25"):
        return SendResult(sms.message_id, message_id, raw_code=raw)
    error = _status_error(raw, said, account)
    return SendResult(sms.message_id, error=error, raw_code=raw)


def _status_error(raw: str, said: str, account: GatewayAccount) -> ProviderError:
    return STATUS_ERRORS.error(
        raw,
        reason=said,
        code=raw or "unknown",
        service=account.service_id,
        status=raw or "none",
    )


def callback_items(request: CallbackRequest, root: str) -> list[dict[str, str]]:
    """The reports or messages of a callback: batched JSON/XML POST, or one per GET."""
    body = request.body.strip()
    if body.startswith(b"{"):
        return _json_items(body, root)
    if body.startswith(b"<"):
        return _xml_items(body, root)
    if body and request.form:
        return [_fields(request.form)]
    if body:
        raise ValueError(f"The Intelecom callback is neither JSON nor XML: {body[:40]!r}.")
    if request.query:
        return [_fields(request.query)]
    raise ValueError("The Intelecom callback is empty.")


def _fields(values: Mapping[str, Any]) -> dict[str, str]:
    return {key: "" if value is None else str(value) for key, value in folded(values).items()}


def _json_items(body: bytes, root: str) -> list[dict[str, str]]:
    payload = json_body(body, "The Intelecom callback is not valid JSON: {}.")
    items = payload.get(root) if isinstance(payload, dict) else None
    if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
        raise ValueError(f"The Intelecom callback has no '{root}' list of objects.")
    return [_fields(item) for item in items]


def _xml_items(body: bytes, root: str) -> list[dict[str, str]]:
    element = xml_root(body, "The Intelecom callback is not valid XML: {}.")
    if local_name(element.tag) != root:
        raise ValueError(f"The Intelecom callback's root is <{element.tag}>, not <{root}>.")
    return [
        folded(xml_fields(message)) for message in element if local_name(message.tag) == "message"
    ]


def _required(item: Mapping[str, str], key: str, what: str) -> str:
    value = item.get(key, "").strip()
    if not value:
        raise ValueError(f"An Intelecom {what} without '{key}'.")
    return value


def report(item: Mapping[str, str]) -> StatusReport:
    message_id = _required(item, "messageid", "delivery report")
    if item.get("type", "6").strip() not in ("", "6"):
        raise ValueError(
            f"Callback type {item['type']} is not a delivery report (6); give Puzzel the "
            "inbound URL for inbound SMS."
        )
    raw = _required(item, "statuscode", "delivery report")
    try:
        code = int(raw)
    except ValueError:
        raise ValueError(f"An Intelecom delivery report with statuscode '{raw}'.") from None
    description = item.get("statusdescription", "").strip()
    operator = item.get("extstatuscode", "").strip()
    if operator:
        operator_text = item.get("extstatusdescription", "").strip()
        description += f" (operator code {operator}{': ' + operator_text if operator_text else ''})"
    return StatusReport(message_id, report_status(code), str(code), description.strip())


def inbound(item: Mapping[str, str]) -> InboundSms:
    message_id = _required(item, "messageid", "inbound SMS")
    # An alphanumeric or odd originator is kept as it is, for the inbound pipeline to mark
    # invalid: refusing it would make the gateway resend the whole batch, good SMS included.
    sender = from_provider(_required(item, "originator", "inbound SMS"))
    if "content" not in item:
        raise ValueError("An Intelecom inbound SMS without 'content'.")
    recipient = item.get("sno", "").strip()
    return InboundSms(
        message_id,
        sender,
        to_e164(recipient) if recipient else "",
        item["content"],
        _timestamp(item.get("timestamp", "")),
    )


def _timestamp(value: str) -> float | None:
    """`yyyyMMdd HH:mm:ss` in the gateway's (Norwegian) time; None when absent or odd."""
    if _GATEWAY_ZONE is None:
        return None
    return local_time(value, "%Y%m%d %H:%M:%S", zone=_GATEWAY_ZONE)
