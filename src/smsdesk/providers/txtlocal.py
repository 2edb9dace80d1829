"""Textlocal (Txtlocal): one form POST to /send/ per SMS; receipts and replies come back as forms.

Facts (api.txtlocal.com/docs: sendsms, handlingreceipts, inboundmessages, bulkjson, helpfulinfo;
the Textlocal knowledge base; third-party clients) and the choices made where they stop:

- Authentication is `apikey`, or the legacy `username` + `password` of the Messenger login.
- Receipts carry the recipient, a status letter, `customID` and a datetime, never Textlocal's
  own message id. We therefore send our message id as `custom` and use it as the provider
  message id, so receipts match whether they come to `receipt_url` or the account's receipt URL.
- `max_batch = 1`: the bulk JSON endpoint documents only `number`, `text` and `unicode` per
  message (no per-message `custom`, so its receipts could not be matched), and its answer
  format is known only from third-party code.
- UNCONFIRMED, chosen as most plausible: failures come with HTTP 200 (the body's `status`
  decides); throttling is HTTP 429 with Retry-After; `validity` is a Unix timestamp (from the
  netsplit client), sent only when it ends before the operators' default 48 hours; the length
  limit of `custom`; error 80 "invalid template" (India); the receipt datetime is read as UTC.
- Inbound forwards carry no message id (nor a time): we derive one from a hash of every
  forwarded field, so a forward repeated as-is is stored once. A later identical reply usually
  differs in `credits` (the balance sent along); if nothing at all differs it is stored once.
- Codes 33 and 192 come from a third-party client's table (not the send page); 7 is temporary
  rather than an authentication error because topping up fixes it without new credentials.

Textlocal answer → our error::

    status "success"                 accepted (provider id = our message id)
    error 3 invalid login            AuthenticationError
    error 7 insufficient credits     TemporaryError: kept queued until topped up or expired
    error 192 not at this time       TemporaryError (India's sending hours)
    error 1, 2 unknown command       TemporaryError: the base URL is wrong, messages wait
    any other error code             PermanentError with Textlocal's code and text
    "success", only warnings         PermanentError (code warning-N, e.g. 3 invalid number)
    not JSON (e.g. an HTML page)     TemporaryError: the base URL is wrong, messages wait
    HTTP 401 / 429 / 5xx / network   via providers.http.request()
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar
from urllib.parse import quote, urlencode

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
    SendResult,
    TemporaryError,
    Transport,
)
from smsdesk.providers.callbacks import query_and_form, stable_id
from smsdesk.providers.errors import ErrorTable, Meaning, account_level
from smsdesk.providers.fields import secret_field, switch_field, text_field, url_field
from smsdesk.providers.http import HttpModuleSettings, answer_json, api_base, request, short
from smsdesk.providers.numbers import from_provider
from smsdesk.providers.timestamps import local_time

DEFAULT_BASE_URL = "https://api.txtlocal.com"
MAX_MESSAGE_CHARS = 766
DEFAULT_VALIDITY = 48 * 3600  # operators' default; a longer `validity` would change nothing

REPORT_STATUSES: dict[str, tuple[Status, str]] = {
    "D": (Status.DELIVERED, "Delivered to the handset."),
    "U": (Status.UNDELIVERED, "Undelivered: the phone was off or out of reach for 48 hours."),
    "I": (Status.UNDELIVERED, "Invalid: the number is not allocated to a mobile network."),
    "E": (Status.EXPIRED, "Expired at the operator after the validity set when sending."),
    "?": (Status.SENT, "Awaiting a delivery receipt from the network."),
    "P": (Status.SENT, "Pending: the message is on its way."),
}

_BASE_URL_HINT = "check the Base URL in the module settings (e.g. https://api.txtlocal.com)"
ERRORS: dict[int, tuple[type[ProviderError], str]] = {
    1: (TemporaryError, f"Textlocal received no command; {_BASE_URL_HINT}."),
    2: (TemporaryError, f"Textlocal does not know this command; {_BASE_URL_HINT}."),
    3: (
        AuthenticationError,
        "Textlocal refused the login: check the API key (or the user name and password) in "
        "the module settings, and that the key allows this server's IP address.",
    ),
    4: (PermanentError, "Textlocal found no recipient in the request."),
    5: (PermanentError, "Textlocal found no message text in the request."),
    6: (PermanentError, "The message is too long for Textlocal (766 characters at most)."),
    7: (
        TemporaryError,
        "The Textlocal account has too few credits: top it up; the message stays queued.",
    ),
    32: (PermanentError, "Textlocal refused the number format; check the recipient's number."),
    33: (PermanentError, "Textlocal refused the request: too many numbers."),
    43: (
        PermanentError,
        "Textlocal refused the sender name: use one approved for the account (3-11 letters "
        "or digits, or up to 13 digits) in the SMS configuration.",
    ),
    44: (PermanentError, "Textlocal needs a sender name: set one in the SMS configuration."),
    51: (PermanentError, "Textlocal found no valid number: check the recipient's number."),
    80: (PermanentError, "Textlocal found no approved template matching this text (India)."),
    192: (TemporaryError, "Textlocal does not send at this time of day; trying again later."),
}
_SAID = " Textlocal said: {said} (code {code})."
# Refusals of the account (a wrong base URL, no credits, a sender it may not use), not of
# the message: Textlocal did not take it, and another connection may send it.
ACCOUNT_LEVEL = frozenset({1, 2, 7, 43})


def _meaning(code: int, kind: type[ProviderError], explanation: str) -> Meaning:
    meaning = Meaning(kind, explanation + _SAID)
    return account_level(meaning) if code in ACCOUNT_LEVEL else meaning


CODES = ErrorTable(
    {code: _meaning(code, kind, explanation) for code, (kind, explanation) in ERRORS.items()},
    default=Meaning(PermanentError, "Textlocal refused the message; see its reason." + _SAID),
)

_ALPHANUMERIC_SENDER = re.compile(r"[A-Za-z0-9 ]{3,11}")
_NUMERIC_SENDER = re.compile(r"[0-9]{3,13}")


class TxtlocalSettings(HttpModuleSettings):
    """How smsdesk reaches a Textlocal account."""

    plugin_keys: ClassVar[dict[str, str]] = {
        "txtlocal_username": "username",
        "txtlocal_password": "password",
    }

    base_url: str = url_field(
        "Base URL",
        "Empty means https://api.txtlocal.com; Textlocal India accounts use "
        "https://api.textlocal.in.",
    )
    api_key: SecretStr = secret_field(
        "API key",
        "Created in Messenger under Settings > API keys; used instead of the "
        "user name and password when set.",
    )
    username: str = text_field(
        "User name", "Legacy login: the email address you log in to Textlocal with.", max_length=200
    )
    password: SecretStr = secret_field(
        "Password", "Legacy login: your Textlocal password (only used without an API key)."
    )
    test_mode: bool = switch_field(
        False, "Test mode", "Textlocal checks and answers but sends nothing and uses no credits."
    )


def textlocal_sender(sender: str) -> str | None:
    """The sender as Textlocal takes it, or None to use the account's default sender."""
    value = sender.strip()
    if not value:
        return None
    digits = value.removeprefix("+")
    if _NUMERIC_SENDER.fullmatch(digits):
        return digits
    if _ALPHANUMERIC_SENDER.fullmatch(value):
        return value
    raise PermanentError(
        f"Textlocal takes a sender of 3-11 letters, digits or spaces, or a number of 3-13 "
        f"digits; '{sender}' is neither. Change the sender in the SMS configuration.",
        code="invalid-sender",
    )


def international_digits(number: str) -> str:
    """Textlocal wants international numbers as bare digits: +447123456789 → 447123456789."""
    return number.strip().removeprefix("+")


class TxtlocalProvider(Provider):
    """Sends through Textlocal's send command and reads its receipts and inbox forwards."""

    transport = Transport.HTTP
    max_batch: ClassVar[int] = 1
    settings: TxtlocalSettings

    async def send(self, batch: Sequence[OutboundSms]) -> list[SendResult]:
        results = []
        for sms in batch:
            try:
                results.append(await self._send_one(sms))
            except ProviderError as error:
                results.append(SendResult(sms.message_id, error=error, raw_code=error.code))
        return results

    async def _send_one(self, sms: OutboundSms) -> SendResult:
        body = urlencode(self.send_fields(sms), quote_via=quote)
        response = await request(
            self.http,
            "POST",
            f"{api_base(self.settings.base_url, DEFAULT_BASE_URL)}/send/",
            timeout=self.settings.timeout,
            content=body.encode(),
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
        answer = read_answer(response)
        if answer.get("status") != "success":
            raise answer_error(answer)
        textlocal_id = first_message_id(answer)
        if textlocal_id is None and answer.get("warnings"):
            raise answer_error(answer)
        raw = f"success:{textlocal_id}" if textlocal_id else "success"
        return SendResult(sms.message_id, provider_message_id=sms.message_id, raw_code=raw)

    def send_fields(self, sms: OutboundSms, now: float | None = None) -> dict[str, str]:
        """The form Textlocal's send command takes for one SMS."""
        if len(sms.text) > MAX_MESSAGE_CHARS:
            raise PermanentError(
                f"Textlocal sends at most {MAX_MESSAGE_CHARS} characters; this text has "
                f"{len(sms.text)}. Shorten it.",
                code="message-too-long",
            )
        fields = self.credentials()
        fields["numbers"] = international_digits(sms.to)
        fields["message"] = sms.text
        sender = textlocal_sender(sms.sender)
        if sender is not None:
            fields["sender"] = sender
        fields["custom"] = sms.message_id
        if sms.delivery_report and sms.status_callback_url:
            fields["receipt_url"] = sms.status_callback_url
        if sms.encoding == "ucs2":
            fields["unicode"] = "true"
        now = time.time() if now is None else now
        if sms.expires_at is not None and now < sms.expires_at < now + DEFAULT_VALIDITY:
            fields["validity"] = str(int(sms.expires_at))
        if self.settings.test_mode:
            fields["test"] = "true"
        return fields

    def credentials(self) -> dict[str, str]:
        """The API key, or else the legacy user name and password."""
        key = self.settings.api_key.get_secret_value().strip()
        if key:
            return {"apikey": key}
        username, password = self.settings.username.strip(), self.settings.password
        if username and password.get_secret_value():
            return {"username": username, "password": password.get_secret_value()}
        raise AuthenticationError(
            "No Textlocal credentials are set: enter an API key (or a user name and password) "
            "in the module settings.",
            code="no-credentials",
        )

    def parse_status_callback(self, request: CallbackRequest) -> list[StatusReport]:
        fields = query_and_form(request)  # forms, and GET queries as its old examples read
        custom = fields.get("customID", "").strip()
        letter = fields.get("status", "").strip().upper()
        if not custom:
            raise ValueError(
                "The Textlocal receipt has no customID, so it cannot be matched to a message "
                "(expected form fields: number, status, customID, datetime)."
            )
        if letter not in REPORT_STATUSES:
            raise ValueError(
                f"The Textlocal receipt has status '{letter}'; expected one of "
                f"{', '.join(REPORT_STATUSES)}."
            )
        status, description = REPORT_STATUSES[letter]
        return [
            StatusReport(
                provider_message_id=custom,
                status=status,
                raw_code=letter,
                description=description,
                occurred_at=receipt_time(fields.get("datetime", "")),
            )
        ]

    def parse_inbound(self, request: CallbackRequest) -> list[InboundSms]:
        fields = query_and_form(request)
        sender, recipient = fields.get("sender", "").strip(), fields.get("inNumber", "").strip()
        if not sender or not recipient or "content" not in fields:
            raise ValueError(
                "The Textlocal inbox forward lacks sender, inNumber or content; "
                "it cannot be stored."
            )
        return [
            InboundSms(
                inbound_id(fields),
                from_provider(sender),
                from_provider(recipient),
                fields["content"],
            )
        ]


def read_answer(response: httpx.Response) -> dict[str, Any]:
    """Textlocal's JSON answer; anything else means we did not reach its API."""
    answer = answer_json(response)
    if not isinstance(answer, dict):
        raise TemporaryError(
            f"Textlocal answered HTTP {response.status_code} without its JSON reply "
            f"({short(response.text, 120)}); {_BASE_URL_HINT}.",
            code=f"http-{response.status_code}",
            not_taken=not response.is_success,  # another page refused the request
            connection_level=True,
        )
    return answer


def first_message_id(answer: Mapping[str, Any]) -> str | None:
    """Textlocal's id of the first message sent, '' if it gave none, None if none was sent."""
    messages = answer.get("messages")
    if isinstance(messages, list) and messages and isinstance(messages[0], Mapping):
        return str(messages[0].get("id", ""))
    return None


def answer_error(answer: Mapping[str, Any]) -> ProviderError:
    """The error for a refusal: from its first error code, else from its warnings."""
    errors, warnings = problems(answer, "errors"), problems(answer, "warnings")
    if not errors and warnings:
        code, texts = problem_code(warnings), problem_texts(warnings)
        return PermanentError(
            f"Textlocal sent nothing: {texts} (warning {code}); check the recipient's number.",
            code=f"warning-{code}",
        )
    try:
        code_number = int(problem_code(errors))
    except ValueError:
        return TemporaryError(
            f"Textlocal answered without an error code: {short(str(dict(answer)), 200)}",
            code="no-code",
        )
    return CODES.error(code_number, reason=problem_texts(errors))


def problems(answer: Mapping[str, Any], key: str) -> list[Mapping[str, Any]]:
    """The `errors` or `warnings` of an answer, each a {code, message} object."""
    items = answer.get(key)
    return [p for p in items if isinstance(p, Mapping)] if isinstance(items, list) else []


def problem_code(items: list[Mapping[str, Any]]) -> str:
    return str(items[0].get("code", "")).strip() if items else ""


def problem_texts(items: list[Mapping[str, Any]]) -> str:
    return "; ".join(str(p.get("message", "")) for p in items) or "no reason given"


def receipt_time(value: str) -> float | None:
    """The receipt's MySQL datetime as a timestamp (UTC assumed), None when unreadable."""
    return local_time(value, "%Y-%m-%d %H:%M:%S")


def inbound_id(fields: Mapping[str, str]) -> str:
    """A stable id for a forward that has none: the same forward repeated gets the same id."""
    return stable_id("tl-", *(f"{key}={fields[key]}" for key in sorted(fields)), length=40)


MODULE = ModuleInfo(
    "txtlocal",
    "Textlocal",
    "Textlocal (Txtlocal) send API, with delivery receipts and inbox forwarding.",
    TxtlocalSettings,
    TxtlocalProvider,
)
