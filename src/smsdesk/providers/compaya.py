"""Compaya (CPSMS, Denmark): the CPSMS v2 JSON API at https://api.cpsms.dk/v2.

One text per request: `POST /v2/send` takes one `message` for a list of recipients, and every
message of ours has its own text and its own report URL, so `max_batch` is 1. Authentication is
HTTP Basic with the account's user name and an API key generated in the CPSMS control panel
(INDSTILLINGER -> API); the legacy gateway's password does not work on v2.

CPSMS answers without a message id of its own, and its delivery report is the `dlr_url` called
with `status` and `receiver` appended. So each `dlr_url` carries our message id (`?ref=<id>`;
the documentation allows own parameters), and our message id is the provider message id.

How answers map to errors::

    200 / 207 success entry for our number  accepted
    errorCode or HTTP 400, 406, 409, other  PermanentError       (CPSMS's code and text kept)
    401 credentials, 403 IP check           AuthenticationError  (fix the settings or the IP list)
    402 no credit, 404 no such method       AuthenticationError  (account or configuration: every
                                                                  message would fail alike, so keep
                                                                  them queued and tell the admin)
    429 (not documented), 5xx, timeouts     TemporaryError / RateLimitedError

UNCONFIRMED: the body of whole-request errors (401, 402, 403…) is not documented; both
`{"error": {"code", "message"}}` and `{"error": [{"to", "errorCode", "errMsg"}]}` are read.
UNCONFIRMED: whether CPSMS appends `?status=` or `&status=` to a dlr_url that already has a
query; both are read. Report statuses are the v2 table (1 delivered, 2 failed, 3 buffered,
4 abandoned); 8 (error) is the legacy gateway's and is read as undelivered. CPSMS documents
the report as POSTed with the parameters in the query; GET and form bodies are read as well.
A 2xx answer that is not CPSMS's JSON is retried (a rare duplicate rather than a lost SMS).
CPSMS has no validity period and no priority, so `expires_at` and `priority` are not sent.

Status queries read the account's log, `GET /v2/getlog/<fromDate>/<toDate>` (unix seconds; a
list of `{to, from, pointPrice, userReference, dlrStatus, dlrStatusText, timeSent}`), matched
on `userReference` (our message id). CPSMS allows one log request every 2 minutes: one query
covers up to `status_query_batch` messages, and this provider refuses (RateLimitedError) to ask
again sooner. UNCONFIRMED: how CPSMS answers a log request made too soon.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, ClassVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from pydantic import SecretStr

from smsdesk.domain.message import Status
from smsdesk.domain.sms import OutboundSms, StatusReport
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
from smsdesk.providers.errors import ErrorTable, Meaning, account_level
from smsdesk.providers.fields import secret_field, text_field
from smsdesk.providers.http import HttpModuleSettings, answer_json, api_base, request, short

DEFAULT_BASE_URL = "https://api.cpsms.dk"
MAX_CHARACTERS = 1530  # "the length of 10 SMS'es joined together"
MAX_PARTS = 10
REFERENCE_PARAMETER = "ref"
LOG_INTERVAL = 120.0  # CPSMS: "restricted to 1 request every 2 minutes"
LOG_LOOKBACK = 8 * 24 * 3600  # how far back a status query reads the log
_REFERENCE = re.compile(r"^[0-9A-Za-z_-]{1,32}$")

# The dlr_url status table of API v2 (and the legacy gateway's 8).
DLR_STATUSES: dict[str, tuple[Status, str]] = {
    "1": (Status.DELIVERED, "Delivery successful"),
    "2": (Status.UNDELIVERED, "Delivery failed"),
    "3": (Status.SENT, "Message buffered"),
    "4": (Status.UNDELIVERED, "Delivery abandoned"),
    "8": (Status.UNDELIVERED, "Error (legacy gateway status)"),
}


class CompayaSettings(HttpModuleSettings):
    """The CPSMS account: user name and API key (v2); the legacy password is kept for import."""

    plugin_keys: ClassVar[dict[str, str]] = {
        "compaya_username": "username",
        "compaya_password": "password",
    }

    username: str = text_field(
        "User name", "The CPSMS user name (the one you log in to cpsms.dk with)."
    )
    api_key: SecretStr = secret_field(
        "API key", "Generated in the CPSMS control panel under INDSTILLINGER -> API."
    )
    password: SecretStr = secret_field(
        "Password (legacy gateway)",
        "Only used by the old CPSMS gateway; API v2 needs the API key instead.",
    )


def _recipient(number: str) -> str:
    """CPSMS wants the number with its country code and without '+' or '00'."""
    digits = number.strip().removeprefix("+")
    return digits[2:] if digits.startswith("00") else digits


def _with_reference(url: str, message_id: str) -> str:
    """The report URL with our message id added, so the report says which message it is."""
    parts = urlsplit(url)
    query = [*parse_qsl(parts.query, keep_blank_values=True), (REFERENCE_PARAMETER, message_id)]
    return urlunsplit(parts._replace(query=urlencode(query)))


def _entries(value: Any) -> Iterator[Mapping[str, Any]]:
    """The objects of a success/error value: one object, a list, or a list of lists."""
    if isinstance(value, Mapping):
        yield value
    elif isinstance(value, list):
        for item in value:
            yield from _entries(item)


def _error_parts(entry: Mapping[str, Any], fallback_code: int) -> tuple[str, str]:
    code = entry.get("errorCode", entry.get("code", fallback_code))
    text = entry.get("errMsg", entry.get("message", entry.get("msg", "")))
    return str(code), str(text or "")


_CREDENTIALS = Meaning(
    AuthenticationError,
    "CPSMS refused the credentials (401): check the user name and the API key in the module "
    "settings; the API key is generated in the CPSMS control panel (INDSTILLINGER -> API).{said}",
)
# CPSMS's error codes, which are HTTP statuses, in its answers' bodies.
ERRORS = ErrorTable(
    {
        401: _CREDENTIALS,
        402: Meaning(
            AuthenticationError,
            "The CPSMS account has no SMS credit left (402): buy credit at cpsms.dk; the "
            "messages stay queued until then.{said}",
        ),
        403: Meaning(
            AuthenticationError,
            "CPSMS refused this server's IP address (403, IP validation): allow the server's "
            "public IP address in the CPSMS control panel (INDSTILLINGER -> API).{said}",
        ),
        404: Meaning(
            AuthenticationError,
            "CPSMS does not know the API method (404): check the base URL in the module "
            f"settings (empty means {DEFAULT_BASE_URL}).{{said}}",
        ),
    },
    # CPSMS's own failure, answered instead of taking the message.
    prefixes={
        "5": account_level(
            Meaning(TemporaryError, "CPSMS failed ({code}); trying again later.{said}")
        )
    },
    default=Meaning(PermanentError, "CPSMS refused the message ({code}): {text}"),
    said=" CPSMS said: {}",
)
# A 401 answer: CPSMS's credentials error, whatever the body says.
HTTP_ERRORS = ErrorTable({401: _CREDENTIALS}, said=" CPSMS said: {}")


def _error_for(code: str, text: str) -> ProviderError:
    """One CPSMS error code (its codes are HTTP statuses) as the error class it calls for."""
    return ERRORS.error(code, reason=text, text=text or "no reason given")


class CompayaProvider(Provider):
    """Sends through CPSMS API v2, one message per request, and reads its dlr_url reports."""

    transport = Transport.HTTP
    max_batch: ClassVar[int] = 1  # one text per request; our messages never share a text
    supports_status_query: ClassVar[bool] = True
    status_query_batch: ClassVar[int] = 500  # one log request answers for all of them
    status_query_interval: ClassVar[float] = LOG_INTERVAL
    settings: CompayaSettings
    _log_read_at: float = -math.inf  # time.monotonic() of this provider's last log request

    async def send(self, batch: Sequence[OutboundSms]) -> list[SendResult]:
        results: list[SendResult] = []
        for sms in batch:
            try:
                results.append(await self._send_one(sms))
            except PermanentError as exc:
                results.append(SendResult(sms.message_id, error=exc, raw_code=exc.code))
        return results

    def _credentials(self) -> tuple[str, str]:
        username = self.settings.username.strip()
        api_key = self.settings.api_key.get_secret_value()
        if api_key and username:
            return username, api_key
        if not api_key and self.settings.password.get_secret_value():
            raise AuthenticationError(
                "Only the CPSMS password is set, but CPSMS's API v2 authenticates with the API "
                "key: generate one in the CPSMS control panel (INDSTILLINGER -> API) and enter "
                "it in the module settings.",
                code="no-api-key",
            )
        raise AuthenticationError(
            "The CPSMS user name or API key is missing: enter both in the module settings "
            "(the API key is generated in the CPSMS control panel, INDSTILLINGER -> API).",
            code="no-credentials",
        )

    def payload(self, sms: OutboundSms) -> dict[str, Any]:
        """The JSON body of `POST /v2/send` for one message."""
        if len(sms.text) > MAX_CHARACTERS or sms.segments > MAX_PARTS:
            raise PermanentError(
                f"The text has {len(sms.text)} characters in {sms.segments} SMS parts; CPSMS "
                f"sends at most {MAX_CHARACTERS} characters (10 parts). Shorten the text.",
                code="too-long",
            )
        body: dict[str, Any] = {
            "to": _recipient(sms.to),
            "message": sms.text,
            "encoding": "UTF-8",  # the body is UTF-8 JSON; ISO-8859-1 would garble the rest
            "flash": 0,
            "reference": sms.message_id,
        }
        sender = sms.sender.strip()
        if sender:
            digits = sender.removeprefix("+")
            body["from"] = digits if digits.isdigit() else sender
        if sms.delivery_report and sms.status_callback_url:
            body["dlr_url"] = _with_reference(sms.status_callback_url, sms.message_id)
        return body

    async def _send_one(self, sms: OutboundSms) -> SendResult:
        body = self.payload(sms)
        auth = self._credentials()
        url = f"{api_base(self.settings.base_url, DEFAULT_BASE_URL)}/v2/send"
        response = await request(
            self.http,
            "POST",
            url,
            timeout=self.settings.timeout,
            errors=HTTP_ERRORS,
            json=body,
            auth=auth,
        )
        answer = answer_json(response)
        if not isinstance(answer, Mapping):
            if response.is_success:
                raise TemporaryError(
                    f"CPSMS answered HTTP {response.status_code} with something that is not its "
                    f"JSON answer: {short(response.text)}",
                    code=f"http-{response.status_code}",
                )
            raise _error_for(str(response.status_code), short(response.text))
        return self._outcome(sms, body["to"], response.status_code, answer)

    def _outcome(
        self, sms: OutboundSms, number: str, http_status: int, answer: Mapping[str, Any]
    ) -> SendResult:
        """Our number's entry in a CPSMS answer: accepted, or the error it names."""
        errors = list(_entries(answer.get("error")))
        successes = list(_entries(answer.get("success")))
        # One recipient per request: an entry is ours even if CPSMS wrote the number
        # differently (retrying an accepted SMS would send it twice).
        mine = [e for e in errors if str(e.get("to", number)) == number]
        if mine or (errors and not successes):
            code, text = _error_parts((mine or errors)[0], http_status)
            raise _error_for(code, text)
        if successes and http_status < 300:
            return SendResult(sms.message_id, sms.message_id, raw_code=str(http_status))
        if http_status < 300:
            raise TemporaryError(
                f"CPSMS answered HTTP {http_status} without an entry for {number}: "
                f"{short(json.dumps(answer))}",
                code=f"http-{http_status}",
            )
        raise _error_for(str(http_status), short(json.dumps(answer)))

    async def query_status(self, provider_message_ids: Sequence[str]) -> list[StatusReport]:
        """Read the last days of the account's log; final statuses of these messages only."""
        wanted = set(provider_message_ids)
        if not wanted:
            return []
        wait = self._log_read_at + LOG_INTERVAL - time.monotonic()
        if wait > 0:
            raise RateLimitedError(
                f"CPSMS allows its log to be read once every 2 minutes; next in {wait:.0f} s.",
                code="getlog-interval",
                retry_after=wait,
            )
        auth = self._credentials()
        now = int(time.time())
        base = api_base(self.settings.base_url, DEFAULT_BASE_URL)
        # An hour past now: the provider's clock may be ahead of ours.
        url = f"{base}/v2/getlog/{now - LOG_LOOKBACK}/{now + 3600}"
        self._log_read_at = time.monotonic()
        response = await request(
            self.http, "GET", url, timeout=self.settings.timeout, errors=HTTP_ERRORS, auth=auth
        )
        if not response.is_success:
            raise _error_for(str(response.status_code), short(response.text))
        entries = answer_json(response)
        if not isinstance(entries, list):
            raise TemporaryError(
                f"CPSMS answered its log request with something that is not a list: "
                f"{short(response.text)}",
                code=f"http-{response.status_code}",
            )
        return [report for entry in entries if (report := _log_report(entry, wanted))]

    def parse_status_callback(self, request: CallbackRequest) -> list[StatusReport]:
        params = _report_parameters(request)
        status = params.get("status", "").strip()
        reference = params.get(REFERENCE_PARAMETER) or params.get("reference") or ""
        if not status:
            raise ValueError("The CPSMS delivery report has no 'status' parameter.")
        if not _REFERENCE.match(reference):
            raise ValueError(
                f"The CPSMS delivery report has no valid '{REFERENCE_PARAMETER}' parameter (our "
                "message id), so it cannot be matched to a message."
            )
        if status not in DLR_STATUSES:
            raise ValueError(f"Unknown CPSMS delivery status {status!r}.")
        mapped, text = DLR_STATUSES[status]
        receiver = params.get("receiver", "")
        description = f"{text} (receiver {receiver})" if receiver else text
        return [StatusReport(reference, mapped, raw_code=status, description=description)]


def _log_report(entry: Any, wanted: set[str]) -> StatusReport | None:
    """A log entry of one of the `wanted` messages as a report, if its status is final."""
    if not isinstance(entry, Mapping) or entry.get("userReference") not in wanted:
        return None
    status = str(entry.get("dlrStatus"))
    if status not in DLR_STATUSES or not DLR_STATUSES[status][0].is_final:
        return None
    mapped, text = DLR_STATUSES[status]
    said = str(entry.get("dlrStatusText") or "")
    description = f"{text} ({said})" if said and said != text else text
    return StatusReport(
        str(entry["userReference"]), mapped, raw_code=status, description=description
    )


def _report_parameters(request: CallbackRequest) -> dict[str, str]:
    """The report's parameters: form fields, then the URL's query, whose '?' may be doubled.

    CPSMS appends `?status=x&receiver=y` to the dlr_url; on a URL that already has a query the
    result may hold a second '?', which is read here as a separator like '&'.
    """
    params = {**request.form, **request.query}
    _, _, query = request.url.partition("?")
    query = query.partition("#")[0].replace("?", "&")
    params.update(parse_qsl(query, keep_blank_values=True))
    return params


MODULE = ModuleInfo(
    "compaya",
    "Compaya (CPSMS)",
    "CPSMS (Compaya) SMS API v2, Denmark: user name and API key, delivery reports via dlr_url.",
    CompayaSettings,
    CompayaProvider,
)
