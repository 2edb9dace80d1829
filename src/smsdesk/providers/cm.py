"""CM.com: the Business Messaging JSON API (`POST /v1.0/message`).

Up to 100 messages go out in one request, authenticated by the product token in the body.
Numbers travel as 00 + country + number. CM's answer carries no message id of its own, and its
status reports name the message by the `reference` we gave, so our message id is the reference
and the provider message id everywhere.

CM answers with an `errorCode` for the request and, per message, `status` Accepted/Rejected with
a `messageErrorCode`; they map to our errors like this::

    0                       accepted
    101, 103 (credentials)  AuthenticationError   keep queued, tell the admin
    102 (balance too low)   AuthenticationError   also an account problem only the admin can
                                                  fix; every message would fail the same way,
                                                  so keep them queued rather than fail them
    202, 203, 301-305, 4xx  PermanentError        the message (or request) will never pass
    500, 999                TemporaryError        CM's own failure; try again later
    HTTP 429                RateLimitedError      CM's throttling answer is UNCONFIRMED

Delivery reports and inbound SMS go to URLs configured in CM's Channels app, not per message,
so a message cannot ask for or refuse a report. Reports come as JSON or XML by POST.

UNCONFIRMED (no primary source found; most plausible choice made):
- report status codes 0 accepted, 1 rejected, 2 delivered, 3 failed, 4 read. "Rejected" comes
  after CM took the message, when our message is already sent, so it maps to UNDELIVERED (a
  sent message can no longer become FAILED);
- report times (`received`, `timeUtc`) are read as ISO dates in UTC;
- the inbound webhook has no id of the message itself (`reference` names the message replied
  to), so inbound ids are a hash of sender, recipient, time and text;
- numeric senders are sent as digits, with a leading + written as 00.
Unicode needs no flag: body type "auto" lets CM pick UCS-2 (CM's own SDKs say so).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import httpx
from pydantic import SecretStr, field_validator

from smsdesk.domain.message import Status
from smsdesk.domain.sms import InboundSms, OutboundSms, StatusReport
from smsdesk.providers.base import (
    AuthenticationError,
    CallbackAnswer,
    CallbackRequest,
    ModuleInfo,
    PermanentError,
    Provider,
    ProviderError,
    SendResult,
    TemporaryError,
    Transport,
)
from smsdesk.providers.callbacks import folded, json_body, stable_id, xml_root, xml_text
from smsdesk.providers.errors import ErrorTable, Meaning, account_level
from smsdesk.providers.fields import number_field, secret_field, text_field
from smsdesk.providers.http import HttpModuleSettings, endpoint, request, short
from smsdesk.providers.numbers import from_provider
from smsdesk.providers.timestamps import iso_time

PRODUCTION_HOST = "https://gw.messaging.cm.com"
SEND_PATH = "/v1.0/message"
NO_TOKEN = (
    "Set the CM product token in the module settings; the legacy customer id/user name/"
    "password are not used by CM's current API."
)
_UUID = re.compile(r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")

# Report status code -> our status and the word shown in the timeline.
REPORT_STATUSES: dict[str, tuple[Status, str]] = {
    "0": (Status.SENT, "accepted"),
    "1": (Status.UNDELIVERED, "rejected"),
    "2": (Status.DELIVERED, "delivered"),
    "3": (Status.UNDELIVERED, "failed"),
    "4": (Status.DELIVERED, "read"),
}
_PERMANENT_REASONS = {
    202: "the request was malformed",
    203: "the list of messages was malformed",
    301: "the sender is invalid: use up to 11 letters and digits or up to 16 digits",
    302: "the recipient field is invalid",
    303: "the recipient's number is invalid",
    304: "the message text is invalid or too long",
    305: "a field of the message is invalid",
    401: "the message was stopped by CM's spam filter",
    402: "the recipient is blacklisted",
    403: "the message was rejected",
}


def _refused_credentials(why: str) -> Meaning:
    return Meaning(
        AuthenticationError,
        f"CM refused the credentials ({why}, code {{code}}): check the product token in the "
        "module settings.{said}",
    )


def _retried(why: str) -> Meaning:
    return Meaning(TemporaryError, why + " (code {code}); the message will be tried again.{said}")


def _refused(why: str) -> Meaning:
    return Meaning(PermanentError, f"CM will not send it: {why} (code {{code}}).{{said}}")


# CM's error codes (the request's errorCode and each message's messageErrorCode).
ERRORS = ErrorTable(
    {
        101: _refused_credentials("the product token is not known to CM"),
        103: _refused_credentials("the product token is wrong"),
        102: Meaning(
            AuthenticationError,
            "CM refused to send because the account balance is too low (code 102): top up "
            "the CM account; the messages stay queued until then.{said}",
        ),
        # CM's own failure, answered instead of creating the messages: nothing was taken.
        500: account_level(_retried("CM had an internal error")),
        999: _retried("CM had an unknown error"),
        **{code: _refused(why) for code, why in _PERMANENT_REASONS.items()},
    },
    default=_refused("the message was refused"),
    said=" CM said: {}",
)


class CmSettings(HttpModuleSettings):
    """The product token the API uses, plus the legacy gateway keys kept for migration."""

    plugin_keys: ClassVar[dict[str, str]] = {
        "cm_serviceId": "customer_id",
        "cm_username": "username",
        "cm_password": "password",
    }

    product_token: SecretStr = secret_field(
        "Product token", "The product token (a UUID) from CM's Gateway or Channels app."
    )
    max_parts: int = number_field(
        8,
        "Maximum SMS parts",
        "Longest message CM may send, in SMS parts (CM allows at most 8).",
        ge=1,
        le=8,
    )
    customer_id: str = text_field(
        "Legacy customer ID",
        "From the old CM gateway; kept for reference, not used by the current API.",
    )
    username: str = text_field(
        "Legacy user name",
        "From the old CM gateway; kept for reference, not used by the current API.",
    )
    password: SecretStr = secret_field(
        "Legacy password",
        "From the old CM gateway; kept for reference, not used by the current API.",
    )

    @field_validator("product_token")
    @classmethod
    def _token_is_a_uuid(cls, value: SecretStr) -> SecretStr:
        token = value.get_secret_value().strip()
        if token and not _UUID.match(token):
            raise ValueError(
                "A CM product token looks like 01234567-89ab-cdef-0123-456789abcdef; "
                "copy it from CM's Gateway or Channels app."
            )
        return SecretStr(token)


def to_cm_number(e164: str) -> str:
    """+31612345678 -> 0031612345678, the international form CM asks for."""
    return "00" + e164.removeprefix("+")


def _cm_sender(sender: str) -> str:
    compact = sender.replace(" ", "")
    if compact.startswith("+") and compact[1:].isdigit():
        return "00" + compact[1:]
    return sender


def _validity(expires_at: float) -> str:
    """An absolute validity in UTC, in one of the forms CM documents."""
    return time.strftime("%Y-%m-%d %H:%M:%S GMT", time.gmtime(expires_at))


def error_for(code: int, details: str) -> ProviderError:
    """The error a CM error code stands for, with CM's text and what to do about it."""
    return ERRORS.error(code, reason=details)


def _int_code(value: object) -> int | None:
    try:
        return int(str(value))
    except ValueError:
        return None


class CmProvider(Provider):
    """Sends through CM's Business Messaging API and reads its JSON/XML callbacks."""

    transport = Transport.HTTP
    max_batch: ClassVar[int] = 100
    settings: CmSettings

    @property
    def send_url(self) -> str:
        return endpoint(self.settings.base_url, PRODUCTION_HOST, SEND_PATH)

    async def send(self, batch: Sequence[OutboundSms]) -> list[SendResult]:
        token = self.settings.product_token.get_secret_value()
        if not token:
            raise AuthenticationError(NO_TOKEN, code="no-product-token")
        results: dict[str, SendResult] = {}
        sendable: list[OutboundSms] = []
        for sms in batch:
            if sms.segments > self.settings.max_parts:
                error = PermanentError(
                    f"The text needs {sms.segments} SMS parts but CM is set to send at most "
                    f"{self.settings.max_parts}; shorten the text or raise 'Maximum SMS parts' "
                    "(CM allows 8).",
                    code="too-many-parts",
                )
                results[sms.message_id] = SendResult(
                    sms.message_id, error=error, raw_code=error.code
                )
            else:
                sendable.append(sms)
        if sendable:
            results.update(await self._post(token, sendable))
        return [results[sms.message_id] for sms in batch]

    def _message(self, sms: OutboundSms) -> dict[str, Any]:
        item: dict[str, Any] = {
            "from": _cm_sender(sms.sender),
            "to": [{"number": to_cm_number(sms.to)}],
            "body": {"type": "auto", "content": sms.text},
            "reference": sms.message_id,
            "allowedChannels": ["SMS"],
            "minimumNumberOfMessageParts": 1,
            "maximumNumberOfMessageParts": self.settings.max_parts,
        }
        if sms.expires_at is not None:
            item["validity"] = _validity(sms.expires_at)
        return item

    async def _post(self, token: str, batch: Sequence[OutboundSms]) -> dict[str, SendResult]:
        payload = {
            "messages": {
                "authentication": {"producttoken": token},
                "msg": [self._message(sms) for sms in batch],
            }
        }
        response = await request(
            self.http, "POST", self.send_url, timeout=self.settings.timeout, json=payload
        )
        return read_answer(response, batch)

    def parse_status_callback(self, request: CallbackRequest) -> list[StatusReport]:
        return parse_status_report(request)

    def parse_inbound(self, request: CallbackRequest) -> list[InboundSms]:
        return parse_inbound_message(request)

    def callback_answer(
        self, kind: str, request: CallbackRequest, parsed: Sequence[StatusReport | InboundSms]
    ) -> CallbackAnswer:
        """CM only needs a 200; any other answer makes it send the callback again."""
        return CallbackAnswer(200, "", "text/plain")


def read_answer(response: httpx.Response, batch: Sequence[OutboundSms]) -> dict[str, SendResult]:
    """Each message's fate from CM's answer; raise when the whole request failed alike."""
    try:
        body = folded(response.json())
        top_code = _int_code(body.get("errorcode"))
        if top_code is None:
            raise ValueError("no errorCode")
    except (ValueError, AttributeError, TypeError):
        raise TemporaryError(
            f"CM gave an answer that is not its JSON reply (HTTP {response.status_code}): "
            f"{short(response.text)}. Check the base URL in the module settings.",
            code=f"http-{response.status_code}",
            not_taken=not response.is_success,  # another page refused the request
            connection_level=True,
        ) from None
    details = str(body.get("details") or "")
    if top_code == 0 and response.is_success:
        return {
            sms.message_id: SendResult(sms.message_id, sms.message_id, raw_code="0")
            for sms in batch
        }
    whole = error_for(top_code, details)
    if not isinstance(whole, PermanentError):
        raise whole  # an account or CM problem: every message would fail alike
    entries = body.get("messages")
    per_message = _per_message(entries, batch) if isinstance(entries, list) else {}
    if not per_message:
        raise whole
    missing = TemporaryError(
        f"CM's answer (code {top_code}) did not say what became of this message; it will be "
        "tried again.",
        code=str(top_code),
    )
    return {
        sms.message_id: per_message.get(
            sms.message_id, SendResult(sms.message_id, error=missing, raw_code=missing.code)
        )
        for sms in batch
    }


def _per_message(entries: list[Any], batch: Sequence[OutboundSms]) -> dict[str, SendResult]:
    """Match CM's per-message answers to ours by reference, else by number, else by order."""
    by_id = {sms.message_id: sms for sms in batch}
    by_number = {to_cm_number(sms.to): sms for sms in batch}
    results: dict[str, SendResult] = {}
    for index, raw in enumerate(entries):
        if not isinstance(raw, Mapping):
            continue
        entry = folded(raw)
        sms = by_id.get(str(entry.get("reference") or "")) or by_number.get(
            str(entry.get("to") or "")
        )
        if sms is None and len(entries) == len(batch):
            sms = batch[index]
        if sms is None:
            continue
        code = _int_code(entry.get("messageerrorcode")) or 0
        if str(entry.get("status", "")).lower() == "accepted":
            results[sms.message_id] = SendResult(sms.message_id, sms.message_id, raw_code="0")
        else:
            error = error_for(code, str(entry.get("messagedetails") or ""))
            results[sms.message_id] = SendResult(sms.message_id, error=error, raw_code=str(code))
    return results


# -- callbacks ---------------------------------------------------------------------------------


def _report(
    reference: str, code: str, error_code: str, text: str, received: object
) -> StatusReport:
    try:
        status, word = REPORT_STATUSES[code]
    except KeyError:
        raise ValueError(
            f"CM status report for {reference} has status code {code!r}; known codes are "
            f"{', '.join(sorted(REPORT_STATUSES))}."
        ) from None
    raw = f"{code}:{error_code}" if error_code else code
    return StatusReport(reference, status, raw, text or word, iso_time(received))


def _json_reports(payload: object) -> list[StatusReport]:
    messages = folded(payload).get("messages") if isinstance(payload, Mapping) else None
    items = folded(messages).get("msg") if isinstance(messages, Mapping) else None
    if items is None:
        raise ValueError("CM status report JSON has no messages.msg.")
    reports = []
    for raw in items if isinstance(items, list) else [items]:
        if not isinstance(raw, Mapping):
            raise ValueError("CM status report item is not an object.")
        item = folded(raw)
        status = item.get("status")
        if not isinstance(status, Mapping):
            raise ValueError("CM status report item has no status object.")
        status = folded(status)
        reference = str(item.get("reference") or "").strip()
        if not reference:
            continue  # a message not sent by smsdesk: nothing of ours to update
        code, error = str(status.get("code", "")).strip(), str(status.get("errorcode") or "")
        text = str(status.get("errordescription") or "")
        reports.append(_report(reference, code, error.strip(), text, item.get("received")))
    return reports


def _xml_reports(body: bytes) -> list[StatusReport]:
    root = xml_root(body, "CM status report is not well-formed XML: {}")
    items = [root] if root.tag.upper() == "MSG" else root.findall("MSG")
    if root.tag.upper() not in ("MESSAGES", "MSG") or not items:
        raise ValueError("CM status report XML has no <MESSAGES><MSG> elements.")
    reports = []
    for msg in items:
        reference = xml_text(msg, "REFERENCE")
        if not reference:
            continue
        if msg.find("STATUS") is None:
            raise ValueError(f"CM status report for {reference} has no <STATUS>.")
        reports.append(
            _report(
                reference,
                xml_text(msg, "STATUS/CODE"),
                xml_text(msg, "STATUS/ERRORCODE"),
                xml_text(msg, "STATUS/ERRORDESCRIPTION"),
                msg.get("RECEIVED"),
            )
        )
    return reports


def parse_status_report(request: CallbackRequest) -> list[StatusReport]:
    """Reports in either format CM offers; the body tells which one was chosen."""
    body = request.body.strip()
    if body.startswith(b"<"):
        return _xml_reports(body)
    if not body:
        raise ValueError(
            "The CM status report is empty; CM posts reports as JSON or XML in the body."
        )
    return _json_reports(json_body(body, "CM status report is neither JSON nor XML: {}"))


def parse_inbound_message(request: CallbackRequest) -> list[InboundSms]:
    """CM's inbound webhook: one JSON object per message."""
    try:
        item = folded(json.loads(request.body))
        sender = str(folded(item["from"])["number"])
        recipient = str(folded(item["to"])["number"])
        message = folded(item["message"])
    except (ValueError, UnicodeDecodeError, KeyError, TypeError, AttributeError) as exc:
        raise ValueError(
            f"CM inbound message is not the expected JSON (from.number, to.number, message): "
            f"{exc!r}"
        ) from None
    text = message.get("text") or ""
    if not isinstance(text, str):
        raise ValueError("CM inbound message has a message.text that is not text.")
    sent_at = str(item.get("timeutc") or "")
    # No id of its own: one from the content, so CM's retries of it are stored once.
    pid = stable_id("cm-mo-", sender, recipient, sent_at, text, str(item.get("reference") or ""))
    received = iso_time(sent_at) or time.time()
    return [InboundSms(pid, from_provider(sender), from_provider(recipient), text, received)]


MODULE = ModuleInfo(
    "cm",
    "CM.com",
    "CM.com Business Messaging API (JSON), authenticated by a product token.",
    CmSettings,
    CmProvider,
)
