"""SMS Teknik (Sweden): the XML API at api.smsteknik.se.

One SMS per request: `POST {base}/send/xml/?id=…&user=…&pass=…` with an `<sms-teknik>` document.
The XML can name several recipients, but only for the same text and with one `customid`, so a
batch of different messages cannot share a request (max_batch = 1). The answer is plain text,
one entry per recipient separated by `;`: digits are the SMSID, `0:<reason>` a refusal.

How the answers map to our errors::

    0:Access denied                        AuthenticationError (company, user or password)
    0:No SMS Left                          RateLimitedError, 10 min: the whole account is out of
                                           credit, so the module pauses and messages stay queued
    0:Invalid phonenumber[ (e164)]…        PermanentError (the number)
    0:Number is blocked / No Valid recip.  PermanentError (the number)
    0:Parse error… / <udmessage> missing   PermanentError (a bug in this module: report it)
    0:Message could't be empty             PermanentError (the text)
    any other 0:…, or an unreadable answer TemporaryError

Delivery reports (deliverystatustype 3, as we ask) come as a POST form `nr, ref (= SMSID), state,
text, datetime, customid, smsparts`; the same fields as a GET query (type 2) or as `<sms>…</sms>`
XML (type 4) are accepted too. `datetime` is local Stockholm time.

UNCONFIRMED, with the choice made:
- the company name (`id`) is URL-encoded as UTF-8: the reference said Latin-1, but the public
  clients found (bass4, SMS::Send SMSGatewayXml) all send UTF-8;
- the reply-forward (inbound) format is not documented publicly; we read a form or query or
  XML with the report's field names (nr = sender, text, datetime, ref) and accept common
  variants (from/sender/msisdn, to/recipient/destination, message/msg, id/smsid);
- the meaning of `<ttl>` is not documented, so no validity period is sent;
- throttling is not documented; HTTP 429 (and Retry-After) is handled by the shared client.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar
from xml.sax.saxutils import escape

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
    RateLimitedError,
    SendResult,
    TemporaryError,
    Transport,
)
from smsdesk.providers.callbacks import folded, form_fields, stable_id, xml_fields, xml_root
from smsdesk.providers.errors import ErrorTable, Meaning, account_level
from smsdesk.providers.fields import number_field, secret_field, switch_field, text_field, url_field
from smsdesk.providers.http import (
    HttpModuleSettings,
    api_base,
    request,
    short,
    status_error,
)
from smsdesk.providers.numbers import from_provider
from smsdesk.providers.timestamps import CENTRAL_EUROPEAN, local_time, named_zone

DEFAULT_BASE_URL = "https://api.smsteknik.se"
SEND_PATH = "/send/xml/"
MAX_PARTS = 6
NO_SMS_LEFT_PAUSE = 600.0
_SENDER_NAME = re.compile(r"^[A-Za-z0-9 \-+_&.,]{1,11}$")
_XML_FORBIDDEN = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")

# SMPP-style states, plus the ones SMS Teknik's own example code lists (REJECTED, FAILED,
# BLOCKED final; DELETED, INVALID, RETRY, BLANC temporary).
REPORT_STATUSES: dict[str, Status] = {
    "DELIVRD": Status.DELIVERED,
    "EXPIRED": Status.EXPIRED,
    "UNDELIV": Status.UNDELIVERED,
    "REJECTD": Status.UNDELIVERED,
    "REJECTED": Status.UNDELIVERED,
    "FAILED": Status.UNDELIVERED,
    "BLOCKED": Status.UNDELIVERED,
    "UNKNOWN": Status.UNDELIVERED,
    "ACCEPTD": Status.SENT,
    "ENROUTE": Status.SENT,
    "DELETED": Status.SENT,
    "INVALID": Status.SENT,
    "RETRY": Status.SENT,
    "BLANC": Status.SENT,
}

# A send answer other than HTTP 200.
HTTP_ERRORS = ErrorTable(
    {
        403: Meaning(
            AuthenticationError,
            "SMS Teknik refused access (HTTP 403): check the company, user name and password in "
            "the module settings. It said: {said}",
        )
    },
    # Another page answered (a 3xx or 4xx; a 5xx is the shared table's): nothing was taken.
    default=account_level(
        Meaning(
            TemporaryError,
            "SMS Teknik answered HTTP {key}; check the base URL in the module settings. It said: "
            "{said}",
        )
    ),
    code="http-{key}",
)
_INVALID_NUMBER = Meaning(
    PermanentError, "SMS Teknik refused {to} as invalid: check the number. {said}"
)
_OUR_BUG = Meaning(
    PermanentError,
    "SMS Teknik could not read the request smsdesk sent; this is a bug in the SMS Teknik "
    "module, please report it. {said}",
)
# The reason of a `0:<reason>` answer, by how it starts (in lower case).
ERRORS = ErrorTable(
    {},
    prefixes={
        "access denied": Meaning(
            AuthenticationError,
            "SMS Teknik refused the credentials: check the company (id), user name and "
            "password in the module settings. {said}",
        ),
        "no sms left": Meaning(
            RateLimitedError,
            "The SMS Teknik account has no SMS left: buy more at SMS Teknik. Messages stay "
            f"queued and are tried again in {NO_SMS_LEFT_PAUSE / 60:g} minutes. {{said}}",
            retry_after=NO_SMS_LEFT_PAUSE,
        ),
        "invalid phonenumber (e164)": Meaning(
            PermanentError,
            "SMS Teknik refused {to}: its number range is not defined in E.164. Check the "
            "number. {said}",
        ),
        "invalid phonenumber": _INVALID_NUMBER,
        "no valid recipients": _INVALID_NUMBER,
        "number is blocked": Meaning(
            PermanentError, "SMS Teknik has blocked the number {to}. {said}"
        ),
        "message could": Meaning(
            PermanentError, "SMS Teknik refuses an empty message: write a text. {said}"
        ),
        "parse error": _OUR_BUG,
        "the required xml-tag": _OUR_BUG,
        "invalid sender": Meaning(
            PermanentError, "SMS Teknik refused the sender: change it. {said}"
        ),
    },
    default=Meaning(
        TemporaryError,
        "SMS Teknik refused the message for a reason smsdesk does not know; it will be tried "
        "again. {said}",
    ),
    said="SMS Teknik said: {}",
    unsaid="SMS Teknik said: ",
)


class SmsTeknikSettings(HttpModuleSettings):
    """Credentials of the SMS Teknik account and how long messages may be."""

    plugin_keys: ClassVar[dict[str, str]] = {
        "smsteknik_serviceId": "company_id",
        "smsteknik\\serviceId": "company_id",  # as written in SuperOffice's web.config sample
        "smsteknik_username": "username",
        "smsteknik_password": "password",
        "smsteknik_multisms": "long_messages",
        "smsteknik_maxmultisms": "max_parts",
    }

    company_id: str = text_field(
        "Company (id)", "The company name SMS Teknik gave you; the API calls it id."
    )
    username: str = text_field("User name", "The API user name from SMS Teknik.")
    password: SecretStr = secret_field("Password", "The API password from SMS Teknik.")
    long_messages: bool = switch_field(
        True, "Long messages", "Send texts longer than one SMS as several parts (up to 6)."
    )
    max_parts: int = number_field(
        MAX_PARTS,
        "Most parts per message",
        "Longer texts are refused; SMS Teknik sends at most 6 parts (918 characters).",
        ge=1,
        le=MAX_PARTS,
    )
    reply_forward_url: str = url_field(
        "Reply forward URL",
        "Ask SMS Teknik to forward replies here: paste this module's inbound URL. "
        "Needs SMS Teknik's reply service; empty sends without a reply number.",
        max_length=500,
    )

    @field_validator("max_parts", mode="before")
    @classmethod
    def _no_cap_means_all(cls, value: Any) -> Any:
        """The original products wrote 0 for 'no cap of our own'."""
        return MAX_PARTS if str(value).strip() == "0" else value


class SmsTeknikProvider(Provider):
    """Sends through SMS Teknik's XML API and reads its delivery reports and replies."""

    transport = Transport.HTTP
    max_batch: ClassVar[int] = 1
    settings: SmsTeknikSettings

    async def send(self, batch: Sequence[OutboundSms]) -> list[SendResult]:
        return [await self._send_one(sms) for sms in batch]

    async def _send_one(self, sms: OutboundSms) -> SendResult:
        try:
            document = self.build_document(sms)
            response = await request(
                self.http,
                "POST",
                api_base(self.settings.base_url, DEFAULT_BASE_URL) + SEND_PATH,
                timeout=self.settings.timeout,
                params=self._credentials(),
                content=document.encode("utf-8"),
                headers={"content-type": "text/xml; charset=utf-8"},
            )
            if response.status_code != 200:
                raise status_error(response, HTTP_ERRORS)
            provider_id = read_answer(response.text, sms.to)
        except ProviderError as exc:
            return SendResult(sms.message_id, error=exc, raw_code=exc.code)
        return SendResult(sms.message_id, provider_id, raw_code=provider_id)

    def _credentials(self) -> dict[str, str]:
        s = self.settings
        if not (s.company_id and s.username and s.password.get_secret_value()):
            raise AuthenticationError(
                "The SMS Teknik module has no complete credentials: enter the company (id), "
                "user name and password in the module settings.",
                code="no-credentials",
            )
        return {"id": s.company_id, "user": s.username, "pass": s.password.get_secret_value()}

    def build_document(self, sms: OutboundSms) -> str:
        """The `<sms-teknik>` XML for one message; refuses what SMS Teknik never accepts."""
        self._check(sms)
        multi = sms.segments > 1
        report_url = sms.status_callback_url if sms.delivery_report else None
        reply_url = self.settings.reply_forward_url
        fields: list[tuple[str, str]] = [
            ("operationtype", "5" if sms.encoding == "ucs2" else "0"),
            ("flash", "0"),
            ("multisms", "1" if multi else "0"),
            ("maxmultisms", str(self.settings.max_parts) if multi else "0"),
            ("send_date", ""),
            ("send_time", ""),
            ("customid", sms.message_id),
        ]
        tail: list[tuple[str, str]] = [
            ("smssender", sms.sender),
            ("deliverystatustype", "3" if report_url else "0"),
            ("deliverystatusaddress", report_url or ""),
            ("usereplynumber", "1" if reply_url else "0"),
            ("usereplyforwardtype", "3" if reply_url else "0"),
            ("usereplyforwardurl", reply_url),
            ("usereplycustomid", sms.message_id if reply_url else ""),
            ("usee164", "0"),
        ]
        lines = ['<?xml version="1.0" encoding="utf-8"?>', "<sms-teknik>"]
        lines += [f"<{name}>{escape(value)}</{name}>" for name, value in fields]
        lines.append(f"<udmessage>{cdata(sms.text)}</udmessage>")
        lines += [f"<{name}>{escape(value)}</{name}>" for name, value in tail]
        lines.append(f"<items><recipient><nr>{escape(sms.to)}</nr></recipient></items>")
        lines.append("</sms-teknik>")
        return "\n".join(lines)

    def _check(self, sms: OutboundSms) -> None:
        allowed = self.settings.max_parts if self.settings.long_messages else 1
        if sms.segments > allowed:
            raise PermanentError(
                f"The text needs {sms.segments} SMS parts; the SMS Teknik module allows "
                f"{allowed}. Shorten the text or raise 'Most parts per message' (at most 6).",
                code="too-many-parts",
            )
        if not sms.text:
            raise PermanentError("The message is empty: write a text.", code="empty-text")
        if _XML_FORBIDDEN.search(sms.text):
            raise PermanentError(
                "The text contains a control character (such as a form feed) that SMS Teknik's "
                "XML API cannot carry: remove it.",
                code="unsendable-character",
            )
        if sms.sender and not valid_sender(sms.sender):
            raise PermanentError(
                f"SMS Teknik accepts as sender a name of up to 11 letters or digits or a number "
                f"of up to 15 digits, not '{sms.sender}': change the sender.",
                code="invalid-sender",
            )

    def parse_status_callback(self, request: CallbackRequest) -> list[StatusReport]:
        fields = callback_fields(request)
        ref = fields.get("ref", "").strip()
        state = fields.get("state", "").strip().upper()
        if not ref.isdigit():
            raise ValueError("An SMS Teknik report needs 'ref', the SMSID (a number).")
        if not state:
            raise ValueError("An SMS Teknik report needs 'state' (such as DELIVRD).")
        return [
            StatusReport(
                provider_message_id=ref,
                status=REPORT_STATUSES.get(state, Status.SENT),
                raw_code=state,
                description=state if state in REPORT_STATUSES else f"{state} (not a known state)",
                occurred_at=stockholm_timestamp(fields.get("datetime", "")),
            )
        ]

    def parse_inbound(self, request: CallbackRequest) -> list[InboundSms]:
        fields = callback_fields(request)
        sender = first(fields, "nr", "from", "sender", "msisdn", "originator", "orgaddress")
        text = first(fields, "text", "message", "msg", "udmessage", "body")
        if not sender:
            raise ValueError("An SMS Teknik reply needs the sender's number in 'nr'.")
        if text is None:
            raise ValueError("An SMS Teknik reply needs its text in 'text'.")
        recipient = first(fields, "to", "recipient", "destination", "receiver", "shortcode") or ""
        when = first(fields, "datetime", "date", "received") or ""
        reference = first(fields, "ref", "id", "smsid", "messageid", "msgid")
        if not reference:  # no id: derive one, so a forwarded reply posted twice is kept once
            reference = stable_id(
                "derived-", sender, recipient, when, text, length=24, separator="\n"
            )
        return [
            InboundSms(
                provider_message_id=reference,
                sender=from_provider(sender),
                recipient=from_provider(recipient),
                text=text,
                received_at=stockholm_timestamp(when),
            )
        ]

    def callback_answer(
        self, kind: str, request: CallbackRequest, parsed: Sequence[StatusReport | InboundSms]
    ) -> CallbackAnswer:
        return CallbackAnswer(200, "OK")


def read_answer(body: str, to: str) -> str:
    """The SMSID from SMS Teknik's answer for one recipient, or the error it stands for."""
    entry = body.strip().split(";")[0].strip()
    if entry.isdigit() and entry != "0":
        return entry
    if not entry.startswith("0:"):
        raise TemporaryError(
            f"SMS Teknik gave an answer that is neither an SMSID nor an error: {short(body)!r}.",
            code="unreadable-answer",
        )
    raise error_for(entry, to)


def error_for(entry: str, to: str) -> ProviderError:
    """Our error for one `0:<reason>` entry; the entry itself is kept as the code."""
    reason = entry[2:].strip()
    return ERRORS.error(reason.lower(), reason=reason, code=entry[:100], to=to)


def cdata(text: str) -> str:
    """The text as CDATA; a `]]>` inside is split over two sections."""
    return "<![CDATA[" + text.replace("]]>", "]]]]><![CDATA[>") + "]]>"


def valid_sender(sender: str) -> bool:
    """Up to 11 letters and digits, or a number of up to 15 digits (with or without '+')."""
    digits = sender.removeprefix("+")
    if digits.isascii() and digits.isdigit():
        return len(digits) <= 15
    return bool(_SENDER_NAME.match(sender))


def decode_body(body: bytes) -> str:
    """Callback bodies in UTF-8, or in Windows-1252 when they are not valid UTF-8."""
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        return body.decode("cp1252", "replace")


def callback_fields(request: CallbackRequest) -> dict[str, str]:
    """The fields of a report or reply: GET query, POST form or XML, names in lower case."""
    text = decode_body(request.body).strip()
    if text.startswith("<"):
        root = xml_root(text, "The SMS Teknik callback is not readable XML: {}.")
        return folded(xml_fields(root))
    try:
        # %-escapes in UTF-8, or in Windows-1252 when they are not valid UTF-8.
        return folded(form_fields(request, "utf-8", "cp1252", strict=True))
    except ValueError:
        raise ValueError("The SMS Teknik callback is neither a form nor XML.") from None


def first(fields: Mapping[str, str], *names: str) -> str | None:
    """The first of `names` present in `fields`, stripped."""
    for name in names:
        if name in fields:
            return fields[name].strip()
    return None


STOCKHOLM = named_zone("Europe/Stockholm", CENTRAL_EUROPEAN)


def stockholm_timestamp(value: str) -> float | None:
    """A MySQL-style 'YYYY-MM-DD HH:MM:SS' in Stockholm time as a Unix time; None if absent."""
    return local_time(value, "%Y-%m-%d %H:%M:%S", zone=STOCKHOLM)


MODULE = ModuleInfo(
    "smsteknik",
    "SMS Teknik",
    "SMS Teknik XML API (Sweden), with delivery reports and forwarded replies.",
    SmsTeknikSettings,
    SmsTeknikProvider,
)
