"""Twilio: Programmable Messaging through the Messages API (one message per request).

Sending is a form POST to /2010-04-01/Accounts/{AccountSid}/Messages.json with HTTP Basic
authentication (account SID + auth token, or an API key SID + secret). Twilio has no batch
endpoint. Each message carries its own StatusCallback URL; Twilio signs every callback with
X-Twilio-Signature, an HMAC-SHA1 keyed with the auth token over the URL it called, so the
auth token is needed even when an API key sends.

How Twilio's answers become our errors::

    201 Message resource                      accepted, provider id = its "sid" (SM…)
    401 / 20003, 20005, 10001, 20404          AuthenticationError (every message would fail)
    429 / 20429, 21611                        RateLimitedError
    5xx, network, timeout                     TemporaryError (in http.request)
    other 4xx {code, message, more_info}      PermanentError, Twilio's code kept

A sent message's status can also be asked for (reconciliation of lost callbacks): GET
/2010-04-01/Accounts/{AccountSid}/Messages/{MessageSid}.json, whose "status" and "error_code"
map the same way as a callback's MessageStatus and ErrorCode; 404 means Twilio does not know it.

Choices where Twilio's documentation is silent or vague (see the module's report):
- "failed" and "canceled" status callbacks map to UNDELIVERED: the message was already handed
  to Twilio (SENT), and UNDELIVERED is the final "did not reach the phone" state our lifecycle
  allows from there; the raw code ("failed:30001") keeps the distinction. ErrorCode 30036
  (validity period elapsed) maps to EXPIRED. "partially_delivered" maps to UNDELIVERED, since
  the text did not arrive whole. "receiving"/"received" belong to inbound messages and are
  ignored in status callbacks.
- RawDlrDoneDate (YYMMDDhhmm) carries no time zone; it is read as UTC.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import math
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, ClassVar
from urllib.parse import parse_qs, parse_qsl, quote, urlsplit, urlunsplit

import httpx
from pydantic import Field, SecretStr

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
from smsdesk.providers.callbacks import header
from smsdesk.providers.errors import ErrorTable, Meaning, account_level
from smsdesk.providers.fields import secret_field
from smsdesk.providers.http import HttpModuleSettings, api_base, request, short
from smsdesk.providers.numbers import from_provider
from smsdesk.providers.timestamps import http_date, local_time

log = logging.getLogger(__name__)

TWILIO_API = "https://api.twilio.com"
MAX_BODY_CHARS = 1600  # Twilio counts UTF-16 units: an emoji takes two
MAX_VALIDITY_SECONDS = 36000
SHORT_CODE_MAX_DIGITS = 8
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response/>'

STATUSES: dict[str, Status | None] = {
    "accepted": Status.SENT,
    "scheduled": Status.SENT,
    "queued": Status.SENT,
    "sending": Status.SENT,
    "sent": Status.SENT,
    "delivered": Status.DELIVERED,
    "read": Status.DELIVERED,
    "undelivered": Status.UNDELIVERED,
    "failed": Status.UNDELIVERED,
    "canceled": Status.UNDELIVERED,
    "partially_delivered": Status.UNDELIVERED,
    "receiving": None,  # inbound only
    "received": None,
}
VALIDITY_EXPIRED = "30036"
DELIVERY_ERRORS = {
    "30001": "queue overflow at Twilio",
    "30002": "the Twilio account is suspended",
    "30003": "the phone is unreachable (switched off or out of coverage)",
    "30004": "the message was blocked (the recipient blocks this sender)",
    "30005": "unknown phone number (it may not exist any more)",
    "30006": "a landline or a carrier that cannot receive SMS",
    "30007": "the carrier filtered the message as spam",
    "30008": "unknown error at the carrier",
    VALIDITY_EXPIRED: "the validity period elapsed before it could be sent",
}

_ACCOUNT = (
    "check the account SID and auth token (or API key SID and secret) in the module settings."
)
_SENDER = (
    "the sender is not an SMS-capable number, short code or alphanumeric sender ID of this Twilio "
    "account; change the sender in the SMS configuration or set a messaging service SID."
)
# Twilio error code -> (our error class, how to fix it).
ERRORS: dict[int, tuple[type[ProviderError], str]] = {
    10001: (AuthenticationError, "the Twilio account is not active; reactivate it at Twilio."),
    20003: (AuthenticationError, _ACCOUNT),
    20005: (AuthenticationError, "the Twilio account is not active; reactivate it at Twilio."),
    20404: (AuthenticationError, "the account SID is not known to Twilio; " + _ACCOUNT),
    20429: (RateLimitedError, "too many requests; sending slows down and tries again."),
    21611: (RateLimitedError, "the sender has too many queued messages; trying again later."),
    21211: (PermanentError, "the recipient's number is not valid; correct it and send again."),
    21212: (PermanentError, _SENDER),
    21601: (PermanentError, _SENDER),
    21602: (PermanentError, "the text is empty."),
    21603: (PermanentError, "no sender; set the sender or a messaging service SID."),
    21604: (PermanentError, "no recipient number."),
    21606: (PermanentError, _SENDER),
    21608: (PermanentError, "trial accounts only send to verified numbers; upgrade the account."),
    21609: (
        PermanentError,
        "Twilio cannot use our delivery report URL; set the service's public URL to an "
        "https:// address Twilio reaches over the internet (host name without '_').",
    ),
    21610: (PermanentError, "the recipient unsubscribed (replied STOP) from this sender."),
    21612: (PermanentError, "Twilio cannot route SMS to this number from this sender."),
    21614: (PermanentError, "the number cannot receive SMS (not a mobile number)."),
    21617: (PermanentError, "the text is longer than Twilio's 1600 characters."),
    21624: (PermanentError, "the validity period is out of range."),
    21659: (PermanentError, _SENDER),
    21660: (PermanentError, _SENDER),
    90007: (PermanentError, "the validity period is out of range."),
    21408: (
        PermanentError,
        "sending to this country is not enabled; enable it in the Twilio console under "
        "Messaging > Settings > Geo permissions.",
    ),
}
# Refusals of what this account may do (its senders, countries, trial limits), not of the
# message: another connection may send it.
ACCOUNT_LEVEL = frozenset({21212, 21408, 21601, 21606, 21608, 21612, 21659, 21660})
_REFUSED = "Twilio refused the message (error {code}): {said}"


def _meaning(code: int, kind: type[ProviderError], hint: str) -> Meaning:
    meaning = Meaning(kind, f"{_REFUSED} — {hint}{{more}}")
    return account_level(meaning) if code in ACCOUNT_LEVEL else meaning


CODES = ErrorTable(
    {code: _meaning(code, kind, hint) for code, (kind, hint) in ERRORS.items()},
    default=Meaning(PermanentError, _REFUSED + "{more}"),
)
# The shared meanings of HTTP 401 and 429, with Twilio's codes for them.
HTTP_ERRORS = ErrorTable(
    {
        401: Meaning(
            AuthenticationError,
            "Twilio refused the credentials (error 20003): " + _ACCOUNT + " Twilio said: {said}",
            code="20003",
        ),
        429: Meaning(
            RateLimitedError,
            "Twilio asks us to slow down (error 20429): The provider asks us to slow down "
            "(HTTP 429): {said}",
            code="20429",
        ),
    },
    unsaid="(no reason given)",
)


class TwilioSettings(HttpModuleSettings):
    """A Twilio account's credentials and, optionally, the messaging service that sends."""

    plugin_keys: ClassVar[dict[str, str]] = {
        "twilio_account_sid": "account_sid",
        "twilio_auth_token": "auth_token",
    }

    account_sid: str = Field(
        "",
        pattern=r"^(AC[0-9a-fA-F]{32})?$",
        title="Account SID",
        description="Your Twilio account SID (AC followed by 32 characters), from the console.",
    )
    auth_token: SecretStr = secret_field(
        "Auth token",
        "The account's auth token; it also checks that callbacks come from Twilio, "
        "so enter it even when an API key sends.",
    )
    api_key_sid: str = Field(
        "",
        pattern=r"^(SK[0-9a-fA-F]{32})?$",
        title="API key SID",
        description="Optional: an API key (SK…) to send with instead of the auth token.",
    )
    api_key_secret: SecretStr = secret_field("API key secret", "The secret of that API key.")
    messaging_service_sid: str = Field(
        "",
        pattern=r"^(MG[0-9a-fA-F]{32})?$",
        title="Messaging service SID",
        description="Optional: send through this messaging service (MG…), which picks the "
        "sender from its pool; the configured sender is then not used.",
    )


def signature(token: str, url: str, params: Iterable[tuple[str, str]] = ()) -> str:
    """Twilio's X-Twilio-Signature: base64 HMAC-SHA1 over the URL and the sorted form fields."""
    values: dict[str, set[str]] = {}
    for name, value in params:
        values.setdefault(name, set()).add(value)
    signed = url + "".join(name + v for name in sorted(values) for v in sorted(values[name]))
    digest = hmac.new(token.encode(), signed.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def url_variants(url: str) -> list[str]:
    """The URL as given, without its port, and with the scheme's default port added."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    userinfo = parts.netloc.rpartition("@")[0]
    prefix = f"{userinfo}@" if userinfo else ""
    default = {"https": 443, "http": 80}.get(parts.scheme)
    variants = [url, urlunsplit(parts._replace(netloc=prefix + host))]
    if parts.port is None and default is not None:
        variants.append(urlunsplit(parts._replace(netloc=f"{prefix}{host}:{default}")))
    return list(dict.fromkeys(variants))


def _sender(sender: str) -> str:
    """Our sender as Twilio's From: numbers in E.164, short codes and names as they are."""
    digits = sender.replace(" ", "").removeprefix("+")
    if digits.isascii() and digits.isdigit():
        return digits if len(digits) <= SHORT_CODE_MAX_DIGITS else "+" + digits
    return sender


def _status_report(
    sid: str, raw_status: str, error: str, channel_message: str, occurred_at: float | None
) -> StatusReport | None:
    """A Twilio status (from a callback or the message resource) as our report, if it is one."""
    status = STATUSES[raw_status]
    if status is None:
        return None
    if error == VALIDITY_EXPIRED:
        status = Status.EXPIRED
    description = raw_status
    if error:
        reason = DELIVERY_ERRORS.get(error, "see Twilio's error list")
        description = f"{raw_status}: {reason} (Twilio error {error})"
    if channel_message:
        description += f"; {channel_message}"
    return StatusReport(
        provider_message_id=sid,
        status=status,
        raw_code=f"{raw_status}:{error}" if error else raw_status,
        description=description,
        occurred_at=occurred_at,
    )


def _utf16_units(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


class TwilioProvider(Provider):
    """Sends one SMS per request through Twilio's Messages API and reads its callbacks."""

    transport = Transport.HTTP
    max_batch: ClassVar[int] = 1
    supports_status_query: ClassVar[bool] = True
    settings: TwilioSettings

    async def send(self, batch: Sequence[OutboundSms]) -> list[SendResult]:
        return [await self._send_one(sms) for sms in batch]

    def _credentials(self) -> tuple[str, str]:
        s = self.settings
        if not s.account_sid:
            raise AuthenticationError(
                "No Twilio account SID is set; enter it in the module settings.",
                code="no-credentials",
            )
        if s.api_key_sid and s.api_key_secret.get_secret_value():
            return s.api_key_sid, s.api_key_secret.get_secret_value()
        if s.auth_token.get_secret_value():
            return s.account_sid, s.auth_token.get_secret_value()
        raise AuthenticationError(
            "No Twilio auth token (or API key SID and secret) is set; enter it in the module "
            "settings.",
            code="no-credentials",
        )

    def form(self, sms: OutboundSms, now: float | None = None) -> dict[str, str]:
        """The Messages API form fields for one SMS."""
        if _utf16_units(sms.text) > MAX_BODY_CHARS:
            raise PermanentError(
                f"The text has {_utf16_units(sms.text)} characters (emoji count twice) and "
                f"Twilio accepts at most {MAX_BODY_CHARS}; shorten it.",
                code="21617",
            )
        fields = {"To": sms.to, "Body": sms.text}
        if self.settings.messaging_service_sid:
            fields["MessagingServiceSid"] = self.settings.messaging_service_sid
        else:
            fields["From"] = _sender(sms.sender)
        if sms.delivery_report and sms.status_callback_url:
            fields["StatusCallback"] = sms.status_callback_url
        if sms.expires_at is not None:
            left = math.ceil(sms.expires_at - (time.time() if now is None else now))
            fields["ValidityPeriod"] = str(min(max(left, 1), MAX_VALIDITY_SECONDS))
        return fields

    async def _send_one(self, sms: OutboundSms) -> SendResult:
        fields = self.form(sms)
        url = (
            f"{api_base(self.settings.base_url, TWILIO_API)}/2010-04-01/Accounts/"
            f"{self.settings.account_sid}/Messages.json"
        )
        auth = self._credentials()
        response = await request(
            self.http,
            "POST",
            url,
            timeout=self.settings.timeout,
            errors=HTTP_ERRORS,
            data=fields,
            auth=auth,
        )
        if response.is_success:
            return self._accepted(sms, response)
        raise self._refusal(response)

    def _accepted(self, sms: OutboundSms, response: httpx.Response) -> SendResult:
        try:
            resource = response.json()
            sid = str(resource["sid"])
        except (ValueError, KeyError, TypeError):
            raise TemporaryError(
                f"Twilio answered HTTP {response.status_code} without a message SID: "
                f"{short(response.text)}",
                code=f"http-{response.status_code}",
            ) from None
        return SendResult(sms.message_id, sid, raw_code=str(resource.get("status") or "queued"))

    def _refusal(self, response: httpx.Response) -> ProviderError:
        """The error for a 4xx answer, from Twilio's {code, message, more_info} body."""
        try:
            body: Any = response.json()
            code = int(body["code"])
            said = str(body.get("message") or "")
            more = str(body.get("more_info") or "")
        except (ValueError, KeyError, TypeError):
            return PermanentError(
                f"Twilio refused the message (HTTP {response.status_code}): {short(response.text)}",
                code=f"http-{response.status_code}",
            )
        return CODES.error(code, reason=short(said), more=f" See {more}" if more else "")

    # -- callbacks -----------------------------------------------------------------------

    def verify_callback(self, request: CallbackRequest, secret: str) -> bool:
        token = self.settings.auth_token.get_secret_value()
        if not token:
            log.warning("Twilio callback refused: set the auth token to check its signature")
            return False
        given = header(request, "x-twilio-signature")
        if not given:
            return False
        params: list[tuple[str, str]] = []
        content_type = header(request, "content-type")
        query = parse_qs(urlsplit(request.url).query)
        if "bodySHA256" in query:
            digest = hashlib.sha256(request.body).hexdigest()
            if not hmac.compare_digest(digest, query["bodySHA256"][0]):
                return False
        elif content_type.startswith("application/x-www-form-urlencoded"):
            try:
                params = parse_qsl(request.body.decode(), keep_blank_values=True)
            except UnicodeDecodeError:
                return False
        elif request.body:
            return False
        matches = [
            hmac.compare_digest(signature(token, url, params).encode(), given.encode())
            for candidate in self._signed_urls(request.url)
            for url in url_variants(candidate)
        ]
        return any(matches)

    def _signed_urls(self, url: str) -> list[str]:
        """Where Twilio may have sent this: the URL we saw, and the same path on our public URL.

        A reverse proxy can change the scheme, host or a path prefix of what we see.
        """
        candidates = [url]
        public = self.context.public_url.rstrip("/")
        parts = urlsplit(url)
        at = parts.path.find("/webhooks/")
        if public and at >= 0:
            tail = parts.path[at:] + (f"?{parts.query}" if parts.query else "")
            candidates.append(public + tail)
        return candidates

    @staticmethod
    def _fields(request: CallbackRequest) -> Mapping[str, str]:
        if request.form:
            return request.form
        if request.method.upper() == "GET":
            return request.query
        raise ValueError("Twilio callbacks are HTML forms; this one has no form fields.")

    def parse_status_callback(self, request: CallbackRequest) -> list[StatusReport]:
        fields = self._fields(request)
        sid = fields.get("MessageSid") or fields.get("SmsSid")
        raw_status = (fields.get("MessageStatus") or fields.get("SmsStatus") or "").lower()
        if not sid or not raw_status:
            raise ValueError("A Twilio status callback needs MessageSid and MessageStatus.")
        if raw_status not in STATUSES:
            raise ValueError(f"Unknown Twilio message status '{raw_status}'.")
        done = fields.get("RawDlrDoneDate", "")
        report = _status_report(
            sid,
            raw_status,
            fields.get("ErrorCode", "").strip(),
            fields.get("ChannelStatusMessage", ""),
            local_time(done, "%y%m%d%H%M") if done else None,
        )
        return [report] if report is not None else []

    async def query_status(self, provider_message_ids: Sequence[str]) -> list[StatusReport]:
        """Fetch each message resource; final statuses only, messages Twilio lacks left out."""
        reports = []
        for sid in provider_message_ids:
            report = await self._query_one(sid)
            if report is not None and report.status.is_final:
                reports.append(report)
        return reports

    async def _query_one(self, sid: str) -> StatusReport | None:
        url = (
            f"{api_base(self.settings.base_url, TWILIO_API)}/2010-04-01/Accounts/"
            f"{self.settings.account_sid}/Messages/{quote(sid, safe='')}.json"
        )
        response = await request(
            self.http, "GET", url, timeout=self.settings.timeout, auth=self._credentials()
        )
        if response.status_code == 404:
            return None
        if not response.is_success:
            raise self._refusal(response)
        try:
            resource = response.json()
            raw_status = str(resource["status"]).lower()
        except (ValueError, KeyError, TypeError):
            raise TemporaryError(
                f"Twilio answered HTTP {response.status_code} without a message status: "
                f"{short(response.text)}",
                code=f"http-{response.status_code}",
            ) from None
        if raw_status not in STATUSES:
            log.warning("Twilio gave an unknown status %r for %s", raw_status, sid)
            return None
        error = resource.get("error_code")
        updated = resource.get("date_updated")
        return _status_report(
            sid,
            raw_status,
            str(error) if error is not None else "",
            "",
            http_date(updated) if isinstance(updated, str) else None,
        )

    def parse_inbound(self, request: CallbackRequest) -> list[InboundSms]:
        fields = self._fields(request)
        sid = fields.get("MessageSid") or fields.get("SmsMessageSid") or fields.get("SmsSid")
        sender, recipient = fields.get("From", ""), fields.get("To", "")
        if not sid or not sender or not recipient or "Body" not in fields:
            raise ValueError("A Twilio inbound message needs MessageSid, From, To and Body.")
        return [
            InboundSms(
                sid,
                from_provider(sender, short_code_digits=SHORT_CODE_MAX_DIGITS),
                from_provider(recipient, short_code_digits=SHORT_CODE_MAX_DIGITS),
                fields["Body"],
            )
        ]

    def callback_answer(
        self, kind: str, request: CallbackRequest, parsed: Sequence[StatusReport | InboundSms]
    ) -> CallbackAnswer:
        if kind == "inbound":
            return CallbackAnswer(200, EMPTY_TWIML, "text/xml")
        return CallbackAnswer(200, "", "text/plain")


MODULE = ModuleInfo(
    "twilio",
    "Twilio",
    "Twilio Programmable Messaging (Messages API).",
    TwilioSettings,
    TwilioProvider,
)
