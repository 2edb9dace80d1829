"""Kannel: an SMS gateway the customer runs, reached through smsbox's `/cgi-bin/sendsms`.

One GET per message (Kannel splits long texts itself), authenticated by a `sendsms-user` of
kannel.conf. Kannel's answer carries no message id, so our message id travels inside the
dlr-url and is the provider message id everywhere. Numbers go as +E.164 (sent URL-encoded:
a bare '+' in a query is a space, which Kannel reads as a separator between receivers).
Kannel cuts texts longer than the sendsms-user's max-messages (default 1) without saying so,
so such texts are failed here instead (setting "Maximum SMS parts").

How Kannel's answers become our errors::

    202 "0: Accepted for delivery"            accepted
    202 "3: Queued for later delivery"        accepted (Kannel keeps it until an SMSC is up)
    403 "Authorization failed for sendsms"    AuthenticationError   keep queued, tell the admin
    401                                       AuthenticationError   (in http.request)
    403 "Not routable. Do not try again."     PermanentError
    400 (receiver/sender missing, ...)        PermanentError with Kannel's text
    503 "Temporal failure, try again later."  TemporaryError        (in http.request)
    connection refused (smsbox down), timeout TemporaryError        (in http.request)

Delivery reports: the dlr-url is our status webhook plus `ref=<message id>&type=%d&answer=%A
&smscid=%F&ts=%T`; smsbox fills in the escapes and calls it with GET. `%d` is one bit of the
dlr-mask: 1 delivered to the phone -> DELIVERED; 2 not delivered to the phone -> UNDELIVERED;
4 queued on the SMSC and 8 delivered to the SMSC -> SENT (intermediate); 16 not delivered to
the SMSC -> UNDELIVERED, because Kannel had already accepted the message (it is SENT for us)
and a sent message can only end DELIVERED, UNDELIVERED or EXPIRED. A type 2 whose SMSC
answer (%A, the SMPP receipt text) says stat:EXPIRED becomes EXPIRED.

Inbound SMS: Kannel has no per-message MO callback; the admin points an `sms-service` at our
inbound webhook (see INBOUND_QUERY). Without `mo-recode` Kannel passes UCS-2 texts as
UTF-16BE bytes with `%C` = UTF-16BE, so the text is decoded by the charset it names.

Priority: Kannel's `priority` (0-3) is SMPP's priority_flag, and bearerbox queues the higher
number first. GSM treats 1-3 alike as "priority" and 0 as normal, so ours maps 1 (fastest) -> 1,
2 (normal) -> 0, and 3 (low) sends none: Kannel's "undefined" queues after every explicit
priority and goes out with the SMSC link's own default.
"""

from __future__ import annotations

import codecs
import math
import time
from collections.abc import Sequence
from typing import ClassVar, Literal
from urllib.parse import parse_qsl, urlsplit

from pydantic import Field, SecretStr

from smsdesk.domain.message import Status
from smsdesk.domain.sms import InboundSms, OutboundSms, StatusReport
from smsdesk.providers.base import (
    AuthenticationError,
    CallbackRequest,
    ModuleInfo,
    PermanentError,
    Provider,
    ProviderError,
    SendResult,
    TemporaryError,
    Transport,
)
from smsdesk.providers.callbacks import stable_id
from smsdesk.providers.errors import ErrorTable, Meaning, account_level
from smsdesk.providers.fields import number_field, secret_field, switch_field, text_field, url_field
from smsdesk.providers.http import HttpModuleSettings, endpoint, request, short
from smsdesk.providers.numbers import from_provider
from smsdesk.providers.timestamps import unix_seconds

DEFAULT_BASE = "http://127.0.0.1:13013"
SEND_PATH = "/cgi-bin/sendsms"
DLR_QUERY = "type=%d&answer=%A&smscid=%F&ts=%T"
INBOUND_QUERY = "from=%p&to=%P&text=%a&id=%I&ts=%T&coding=%c&charset=%C"
PRIORITIES: dict[int, int | None] = {1: 1, 2: 0, 3: None}

# DLR type (%d) -> our status and the word shown when Kannel gives no SMSC answer.
DLR_TYPES: dict[str, tuple[Status, str]] = {
    "1": (Status.DELIVERED, "delivered to the phone"),
    "2": (Status.UNDELIVERED, "not delivered to the phone"),
    "4": (Status.SENT, "queued on the SMSC"),
    "8": (Status.SENT, "delivered to the SMSC"),
    "16": (Status.UNDELIVERED, "not delivered to the SMSC"),
}
_ACCEPTED = ("0:", "3:", "Sent.")
_REFUSED = Meaning(PermanentError, "Kannel will not send this message (HTTP {status}). {said}")
# Kannel's sendsms answers other than "accepted", by HTTP status ("auth": a 403 that names the
# sendsms user's authorization).
ERRORS = ErrorTable(
    {
        "auth": Meaning(
            AuthenticationError,
            "Kannel refused the sendsms user name or password (HTTP 403); check them against "
            "the sendsms-user group in kannel.conf (and its user-allow-ip). {said}",
        ),
        # No SMSC route for it in kannel.conf: this Kannel cannot send it, another may.
        "unroutable": account_level(_REFUSED),
        (400, 403): _REFUSED,
    },
    default=Meaning(
        TemporaryError,
        "Kannel gave an answer that is not a sendsms reply (HTTP {status}); check the "
        "smsbox URL in the module settings. {said}",
    ),
    said="Kannel said: {}",
    unsaid="Kannel gave no reason.",
)


# smsbox calls a dlr-url once and drops the report when that fails (Kannel's default
# http-request-retry is 0), and Kannel cannot be asked later: reports that come while smsdesk is
# down would leave their messages *sent* for good. docs/KANNEL.md has the whole kannel.conf.
DELIVERY_REPORT_HELP = (
    "Ask Kannel for delivery reports through the dlr-url. Kannel's smsbox drops a report it "
    "cannot deliver (smsdesk stopped or restarting): set http-request-retry = 3600 and "
    "http-queue-delay = 1 in the smsbox group of kannel.conf, so that each report is tried "
    "again for at least an hour."
)


class KannelSettings(HttpModuleSettings):
    """Kannel's smsbox and a sendsms-user of its kannel.conf.

    For inbound SMS add to kannel.conf an `sms-service` with `keyword = default`,
    `max-messages = 0` and `get-url = "<inbound webhook URL>?from=%p&to=%P&text=%a&id=%I&ts=%T
    &coding=%c&charset=%C"` (the inbound webhook URL is shown with the module's callbacks).
    """

    base_url: str = url_field(
        "smsbox URL",
        "Kannel's smsbox sendsms interface, e.g. http://127.0.0.1:13013 (its sendsms-port); "
        "empty means http://127.0.0.1:13013.",
    )
    username: str = text_field(
        "sendsms user name", "The username of a sendsms-user group in kannel.conf."
    )
    password: SecretStr = secret_field(
        "sendsms password", "The password of that sendsms-user group."
    )
    smsc: str = text_field(
        "SMSC id",
        "Route through this smsc-id of kannel.conf; empty lets Kannel choose.",
        pattern=r"^[A-Za-z0-9_.\-]*$",
    )
    coding: Literal["auto", "ucs2"] = Field(
        "auto",
        title="Coding",
        description=(
            "auto: GSM-7 (coding 0) when the text fits the GSM alphabet, else UCS-2 (coding 2); "
            "ucs2: always UCS-2."
        ),
    )
    max_parts: int = number_field(
        1,
        "Maximum SMS parts",
        "The max-messages of the sendsms-user in kannel.conf (Kannel's default is 1). "
        "Kannel cuts longer texts silently, so smsdesk refuses them instead.",
        ge=1,
        le=255,
    )
    delivery_report: bool = switch_field(True, "Delivery report", DELIVERY_REPORT_HELP)
    dlr_mask: int = number_field(
        19,
        "DLR mask",
        "Which reports Kannel sends: 1 delivered, 2 not delivered, 4 queued on the SMSC, "
        "8 delivered to the SMSC, 16 not delivered to the SMSC, added up. 19 means final "
        "reports only; 4 and 8 add callbacks that change nothing shown.",
        ge=1,
        le=31,
    )
    send_validity: bool = switch_field(
        True, "Send validity", "Pass each message's remaining validity to Kannel (in minutes)."
    )

    def wants_delivery_reports(self) -> bool:
        """The module's delivery-report switch."""
        return self.delivery_report


def kannel_coding(sms: OutboundSms, mode: str) -> int:
    """0 for GSM-7 texts, 2 (UCS-2) for the rest or when always UCS-2 is configured."""
    return 2 if mode == "ucs2" or sms.encoding != "gsm7" else 0


def dlr_url(status_url: str, message_id: str) -> str:
    """Our status webhook with the escapes smsbox replaces before it calls it."""
    separator = "&" if "?" in status_url else "?"
    return f"{status_url}{separator}ref={message_id}&{DLR_QUERY}"


def _validity_minutes(expires_at: float, now: float) -> int:
    return max(1, math.ceil((expires_at - now) / 60))


class KannelProvider(Provider):
    """Sends through Kannel's sendsms interface and reads its dlr-url and get-url calls."""

    transport = Transport.HTTP
    without_fake = (
        "Tested against a real Kannel (bearerbox, smsbox, fakesmsc) started by the test run: "
        "tests/integration/test_kannel.py."
    )
    max_batch: ClassVar[int] = 1
    settings: KannelSettings

    @property
    def send_url(self) -> str:
        return endpoint(self.settings.base_url, DEFAULT_BASE, SEND_PATH)

    async def send(self, batch: Sequence[OutboundSms]) -> list[SendResult]:
        if not self.settings.username or not self.settings.password.get_secret_value():
            raise AuthenticationError(
                "Set the Kannel sendsms user name and password in the module settings "
                "(a sendsms-user group of kannel.conf).",
                code="no-credentials",
            )
        return [await self._send_one(sms) for sms in batch]

    def params(self, sms: OutboundSms, now: float) -> dict[str, str]:
        """The sendsms query for one message."""
        settings = self.settings
        params = {
            "username": settings.username,
            "password": settings.password.get_secret_value(),
            "from": sms.sender,
            "to": sms.to,
            "text": sms.text,
            "charset": "UTF-8",
            "coding": str(kannel_coding(sms, settings.coding)),
        }
        priority = PRIORITIES.get(sms.priority)
        if priority is not None:
            params["priority"] = str(priority)
        if settings.smsc:
            params["smsc"] = settings.smsc
        if settings.send_validity and sms.expires_at is not None:
            params["validity"] = str(_validity_minutes(sms.expires_at, now))
        if settings.delivery_report and sms.delivery_report and sms.status_callback_url:
            params["dlr-mask"] = str(settings.dlr_mask)
            params["dlr-url"] = dlr_url(sms.status_callback_url, sms.message_id)
        return params

    async def _send_one(self, sms: OutboundSms) -> SendResult:
        if sms.segments > self.settings.max_parts:
            error = PermanentError(
                f"The text needs {sms.segments} SMS parts but Kannel is set to send at most "
                f"{self.settings.max_parts}; raise max-messages of the sendsms-user in "
                "kannel.conf and 'Maximum SMS parts' here, or shorten the text.",
                code="too-many-parts",
            )
            return SendResult(sms.message_id, error=error, raw_code=error.code)
        try:
            response = await request(
                self.http,
                "GET",
                self.send_url,
                timeout=self.settings.timeout,
                params=self.params(sms, time.time()),
            )
        except TemporaryError as exc:
            if exc.code != "connection":
                raise
            raise TemporaryError(
                f"Kannel's smsbox does not answer at {self.send_url} ({exc.message}); is "
                "smsbox running and is the smsbox URL right? The message will be tried again.",
                code="connection",
                not_taken=exc.not_taken,
                connection_level=exc.connection_level,
            ) from exc
        answer = response.text.strip()
        if response.status_code == 202 and answer.startswith(_ACCEPTED):
            return SendResult(sms.message_id, sms.message_id, raw_code=answer.split(":")[0])
        raise error_for(response.status_code, answer)

    def parse_status_callback(self, request: CallbackRequest) -> list[StatusReport]:
        return parse_status_report(dict(request.query))

    def parse_inbound(self, request: CallbackRequest) -> list[InboundSms]:
        return parse_inbound_message(request)


def error_for(status_code: int, answer: str) -> ProviderError:
    """The error one of Kannel's sendsms answers stands for."""
    key: str | int = status_code
    if status_code == 403 and "authorization" in answer.lower():
        key = "auth"
    elif status_code == 403 and "not routable" in answer.lower():
        key = "unroutable"
    return ERRORS.error(key, reason=short(answer), code=f"http-{status_code}", status=status_code)


# -- callbacks ---------------------------------------------------------------------------------


def parse_status_report(query: dict[str, str]) -> list[StatusReport]:
    """One dlr-url call: `ref` is our message id, `type` the DLR type (%d)."""
    reference = query.get("ref", "").strip()
    kind = query.get("type", "").strip()
    if not reference:
        raise ValueError(
            "Kannel delivery report has no 'ref'; the dlr-url must carry ref=<message id>."
        )
    try:
        status, word = DLR_TYPES[kind]
    except KeyError:
        raise ValueError(
            f"Kannel delivery report for {reference} has type {kind!r}; known types are "
            f"{', '.join(DLR_TYPES)}."
        ) from None
    answer = query.get("answer", "").strip()
    if status is Status.UNDELIVERED and "stat:EXPIRED" in answer:
        status = Status.EXPIRED  # the SMSC's receipt (%A) says why it was not delivered
    return [
        StatusReport(reference, status, kind, answer or word, unix_seconds(query.get("ts", "")))
    ]


def _raw_query(url: str) -> dict[str, bytes]:
    """The query's values as bytes: Kannel's %a may be UTF-16BE, not UTF-8."""
    pairs = parse_qsl(urlsplit(url).query, keep_blank_values=True, encoding="latin-1")
    return {key: value.encode("latin-1") for key, value in pairs}


def _decode(data: bytes, charset: str, coding: str) -> str:
    name = charset.strip() or ("UTF-16BE" if coding == "2" else "UTF-8")
    try:
        codecs.lookup(name)
    except LookupError:
        name = "UTF-8"
    return data.decode(name, "replace")


def parse_inbound_message(request: CallbackRequest) -> list[InboundSms]:
    """One get-url call from an sms-service whose URL carries INBOUND_QUERY."""
    raw = _raw_query(request.url)
    values = {key: value.decode("utf-8", "replace") for key, value in raw.items()}
    sender, recipient = values.get("from", "").strip(), values.get("to", "").strip()
    if not sender or "text" not in raw:
        raise ValueError(
            "Kannel inbound message needs from and text; set the sms-service get-url to "
            f"<inbound webhook URL>?{INBOUND_QUERY}"
        )
    text = _decode(raw["text"], values.get("charset", ""), values.get("coding", ""))
    timestamp = values.get("ts", "")
    # Without %I in the get-url: an id from the content, so a repeated call is stored once.
    pid = values.get("id", "").strip() or stable_id(
        "kannel-mo-", sender, recipient, timestamp, text
    )
    received = unix_seconds(timestamp) or time.time()
    return [InboundSms(pid, from_provider(sender), from_provider(recipient), text, received)]


MODULE = ModuleInfo(
    "kannel",
    "Kannel",
    "Kannel gateway over its smsbox sendsms HTTP interface, with dlr-url and get-url callbacks.",
    KannelSettings,
    KannelProvider,
)
