"""LINK Mobility's PSWinCom XML gateway: one SESSION document carries up to 100 SMS.

Sources: wiki.pswin.com ("Gateway XML API", "Message types", "Send message response XML",
delivery-report and receive pages), PSWinCom/LinkMobility.PSWin.Client (XmlTransport,
PSWin.Receiver), PSWinCom/PSWinComGatewayClient (the DTDs), dignio/smsframework-pswin.

- Send: POST an ISO-8859-1 XML document to https://xml.pswin.com/ with CLIENT/PW and a MSGLST.
  RCV is digits with the country code and no "+". Plain text (no OP) may only hold GSM-7
  characters written in Latin-1; anything else goes as OP 9, the text as UCS-2 hex.
- Reply: LOGON OK|FAIL (+REASON), then per MSG its ID, REF (keys the delivery report) and
  STATUS OK|FAIL (+INFO). REF is our provider_message_id.
- Failover: https://xml2.pswin.com is tried only when the main host cannot be reached at all;
  after a timeout the gateway may already have the messages, so that is retried later instead.
- Reports and inbound SMS arrive as XML posts (XMLHTTP2) or, on older accounts, as forms;
  both are answered with one <MSG><ID/><STATUS>OK</STATUS></MSG> per message received.

UNCONFIRMED (no primary source; the most plausible behaviour was chosen):
- Throttling is not documented; an HTTP 429 (Retry-After honoured) is read as "slow down".
- INFO texts of refused messages are not documented; a refusal is permanent unless its INFO
  speaks of something passing (busy, temporary, try again, ...).
- Unicode length: plain text is cut by the gateway after 16 parts (2144 characters); UCS-2 is
  assumed to have the same 16-part cap (16 x 67 characters).
- The timezone of DELIVERYTIME is taken as Norwegian local time (CET/CEST).
- Inbound SMS carry no unique reference (ID only numbers them within one post), so each gets a
  fresh id: a repeated post would be stored twice rather than a repeated text being lost.
"""

from __future__ import annotations

import math
import re
import time
import uuid
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar
from xml.etree.ElementTree import Element, SubElement, tostring

import httpx
from pydantic import SecretStr, field_validator, model_validator

from smsdesk.domain.message import Status
from smsdesk.domain.sms import InboundSms, OutboundSms, StatusReport
from smsdesk.providers.base import (
    AuthenticationError,
    CallbackAnswer,
    CallbackRequest,
    ModuleInfo,
    PermanentError,
    Provider,
    ProviderContext,
    ProviderError,
    SendResult,
    TemporaryError,
    Transport,
)
from smsdesk.providers.callbacks import (
    charset,
    folded,
    form_fields,
    header,
    xml_fields,
    xml_root,
    xml_text,
)
from smsdesk.providers.errors import ErrorTable, Meaning, account_level
from smsdesk.providers.fields import (
    OriginalScreenSettings,
    secret_field,
    switch_field,
    text_field,
    url_field,
)
from smsdesk.providers.http import (
    HttpModuleSettings,
    api_base,
    request,
    short,
    status_error,
)
from smsdesk.providers.numbers import from_provider
from smsdesk.providers.timestamps import CENTRAL_EUROPEAN, local_time, named_zone

PRODUCTION_URL = "https://xml.pswin.com"
FAILOVER_URL = "https://xml2.pswin.com"
XML_CONTENT_TYPE = "text/xml; charset=iso-8859-1"

MAX_PLAIN_CHARACTERS = 16 * 134  # the gateway cuts longer plain texts (wiki: 2144)
MAX_UCS2_UNITS = 16 * 67  # UNCONFIRMED: the same 16-part cap for UCS-2

# PSWin's allowed characters in an alphanumeric sender (wiki "Gateway XML API", SND).
_SENDER_CHARS = re.compile(r"^[A-Za-z0-9!\"#%&'()*+ \-./?><;]{1,11}$")
_TEMPORARY_INFO = re.compile(
    r"temporar|try again|later|busy|unavailable|timeout|timed out|throttl|overload", re.I
)

STATE_TEXTS: Mapping[str, str] = {
    "DELIVRD": "Delivered to the phone.",
    "ACCEPTD": "Accepted by the operator.",
    "ENROUTE": "On its way to the phone.",
    "EXPIRED": "The validity period ran out before the phone could be reached.",
    "DELETED": "The message was deleted.",
    "UNDELIV": "Undeliverable: not a valid number or no route to it.",
    "UNKNOWN": "No information about delivery is available.",
    "REJECTD": "The message was rejected.",
    "FAILED": "No operator accepted the message, or the gateway failed.",
    "NULL": "The operator sent no delivery report.",
    "BARRED": "The number is barred, blocked or not in use.",
    "BARREDT": "The number is temporarily blocked (e.g. an empty prepaid account).",
    "BARREDC": "The receiver has blocked premium (CPA) messages.",
    "BARREDA": "The receiver is below the message's age limit.",
    "BARREDP": "The receiver's prepaid subscription is not supported.",
    "ZEROBAL": "The receiver's prepaid account is empty.",
    "ZERO_BAL": "The receiver's prepaid account is empty.",
    "INV_NET": "The number is not recognised by the target operator.",
}
# Only DELIVRD is positive; ACCEPTD/ENROUTE say it is on its way. Every other state is the
# final word on a message the network did not take (wiki "Delivery report statuses": reports
# give the final state), so it counts as undelivered, whatever the reason.
REPORT_STATES: Mapping[str, Status] = {
    state: {
        "DELIVRD": Status.DELIVERED,
        "ACCEPTD": Status.SENT,
        "ENROUTE": Status.SENT,
        "EXPIRED": Status.EXPIRED,
    }.get(state, Status.UNDELIVERED)
    for state in STATE_TEXTS
}

# A send answer other than HTTP 200.
HTTP_ERRORS = ErrorTable(
    {
        403: Meaning(
            AuthenticationError,
            "PSWinCom refused access (HTTP 403): {said}. Check the user name and password, and "
            "ask LINK Mobility whether this server's IP address is allowed.",
        ),
        400: Meaning(
            PermanentError, "PSWinCom refused the request as malformed (HTTP 400): {said}"
        ),
    },
    # Another page answered (a 3xx or 4xx; a 5xx is the shared table's): nothing was taken.
    default=account_level(
        Meaning(
            TemporaryError,
            "PSWinCom answered HTTP {key} instead of its XML answer: {said}. Check the base URL "
            "in the module settings.",
        )
    ),
    code="http-{key}",
)


class OriginalPsWinComSettings(OriginalScreenSettings):
    """The fields of the original product's *Original PsWinCom* screen, one for one."""

    plugin_keys: ClassVar[dict[str, str]] = {
        "pswin_username": "username",
        "pswin_password": "password",
    }

    username: str = text_field("User name", "The user name you received from PsWinCom.")
    password: SecretStr = secret_field("Password", "The password you received from PsWinCom.")


class PsWinComSettings(HttpModuleSettings):
    """The gateway account, whether reports are wanted, and where the gateway lives."""

    plugin_keys: ClassVar[dict[str, str]] = {
        "pswin_username": "username",
        "pswin_password": "password",
        "pswin_noStatusReport": "no_status_report",
        "pswin_seriesStart": "series_start",
        "pswin_seriesEnd": "series_end",
        "pswin_NoSmsSession": "no_sms_session",
    }

    username: str = text_field(
        "User name", "The gateway user name LINK Mobility (PSWinCom) gave you."
    )
    password: SecretStr = secret_field(
        "Password", "The gateway password that goes with the user name."
    )
    delivery_report: bool = switch_field(
        True,
        "Delivery reports",
        "Ask the gateway for a delivery report on each message. Reports go to the "
        "URL set as DR destination (XMLHTTP2) in PSWin's account web.",
    )
    no_status_report: bool = switch_field(
        False,
        "No status report (legacy)",
        "The old pswin_noStatusReport key: when set, no delivery reports are "
        "requested, whatever 'Delivery reports' says.",
    )
    failover_url: str = url_field(
        "Failover URL",
        "Tried only when the base URL cannot be reached at all. Empty means "
        f"{FAILOVER_URL} when the base URL is the production host, else none.",
    )
    series_start: str = text_field(
        "Series start (legacy)",
        "The old pswin_seriesStart key, kept for compatibility; not used.",
        max_length=40,
    )
    series_end: str = text_field(
        "Series end (legacy)",
        "The old pswin_seriesEnd key, kept for compatibility; not used.",
        max_length=40,
    )
    no_sms_session: str = text_field(
        "No SMS session (legacy)",
        "The old pswin_NoSmsSession key, kept for compatibility; not used.",
        max_length=40,
    )

    @field_validator("no_status_report", mode="before")
    @classmethod
    def _blank_is_off(cls, value: object) -> object:
        """The original configuration left the key blank for 'no'."""
        return False if isinstance(value, str) and not value.strip() else value

    @model_validator(mode="after")
    def _legacy_key_turns_reports_off(self) -> PsWinComSettings:
        """Make `delivery_report` the effective choice, which is what the outbox reads."""
        if self.no_status_report and self.delivery_report:
            self.delivery_report = False
        return self

    def wants_delivery_reports(self) -> bool:
        """The module's delivery-report switch."""
        return self.delivery_report


def gateway_settings(settings: PsWinComSettings | OriginalPsWinComSettings) -> PsWinComSettings:
    """The Original PsWinCom screen has only an account: it uses the production gateway."""
    if isinstance(settings, PsWinComSettings):
        return settings
    return PsWinComSettings(username=settings.username, password=settings.password)


class PsWinComProvider(Provider):
    """Sends batches as one XML session; reads XML and form reports and inbound SMS."""

    # LINK's own client sends 100 messages per session; larger documents gain little and a
    # slow answer would hold more messages in doubt.
    transport = Transport.HTTP
    max_batch: ClassVar[int] = 100
    settings: PsWinComSettings

    def __init__(
        self,
        settings: PsWinComSettings | OriginalPsWinComSettings,
        http: httpx.AsyncClient,
        context: ProviderContext,
    ) -> None:
        super().__init__(gateway_settings(settings), http, context)

    # -- sending -----------------------------------------------------------------------------

    async def send(self, batch: Sequence[OutboundSms]) -> list[SendResult]:
        if not self.settings.username or not self.settings.password.get_secret_value():
            raise AuthenticationError(
                "No user name or password is set: enter the user name and password you "
                "received from PsWinCom in the module settings.",
                code="no-credentials",
            )
        refused: dict[str, ProviderError] = {}
        messages: list[tuple[str, OutboundSms]] = []
        for sms in batch:
            problem = unsendable(sms)
            if problem is not None:
                refused[sms.message_id] = problem
            else:
                messages.append((str(len(messages) + 1), sms))
        answers: dict[str, SendResult] = {}
        if messages:
            response = await self._post(self._session_document(messages))
            answers = self._read_answer(response, messages)
        results = []
        for sms in batch:
            if sms.message_id in refused:
                error = refused[sms.message_id]
                results.append(SendResult(sms.message_id, error=error, raw_code=error.code))
            else:
                results.append(answers[sms.message_id])
        return results

    def _session_document(self, messages: Sequence[tuple[str, OutboundSms]]) -> bytes:
        session = Element("SESSION")
        SubElement(session, "CLIENT").text = self.settings.username
        SubElement(session, "PW").text = self.settings.password.get_secret_value()
        listing = SubElement(session, "MSGLST")
        now = time.time()
        for message_number, sms in messages:
            listing.append(self._message_element(message_number, sms, now))
        body: bytes = tostring(session, encoding="iso-8859-1", xml_declaration=True)
        # A literal CR would be read back as LF by any XML parser; GSM-7 texts may hold one.
        return body.replace(b"\r", b"&#13;")

    def _message_element(self, message_number: str, sms: OutboundSms, now: float) -> Element:
        """One MSG, its children in the DTD's order."""
        msg = Element("MSG")
        SubElement(msg, "ID").text = message_number
        unicode = needs_ucs2(sms)
        SubElement(msg, "TEXT").text = sms.text.encode("utf-16-be").hex() if unicode else sms.text
        if unicode:
            SubElement(msg, "OP").text = "9"
        if self.settings.delivery_report and sms.delivery_report:
            SubElement(msg, "RCPREQ").text = "Y"
        SubElement(msg, "SND").text = sms.sender.removeprefix("+")
        SubElement(msg, "RCV").text = gateway_number(sms.to)
        if sms.expires_at is not None:
            SubElement(msg, "TTL").text = str(max(1, math.ceil((sms.expires_at - now) / 60)))
        return msg

    async def _post(self, body: bytes) -> httpx.Response:
        """POST to the gateway; on a connection failure (nothing sent) try the failover host."""
        headers = {"Content-Type": XML_CONTENT_TYPE}
        timeout = self.settings.timeout
        main = api_base(self.settings.base_url, PRODUCTION_URL)
        try:
            return await request(
                self.http, "POST", f"{main}/", timeout=timeout, content=body, headers=headers
            )
        except TemporaryError as exc:
            failover = self._failover_base()
            if not exc.not_taken or exc.code != "connection" or not failover:
                raise
        return await request(
            self.http, "POST", f"{failover}/", timeout=timeout, content=body, headers=headers
        )

    def _failover_base(self) -> str:
        if self.settings.failover_url:
            return self.settings.failover_url.rstrip("/")
        production = api_base(self.settings.base_url, PRODUCTION_URL) == PRODUCTION_URL
        return FAILOVER_URL if production else ""

    def _read_answer(
        self, response: httpx.Response, messages: Sequence[tuple[str, OutboundSms]]
    ) -> dict[str, SendResult]:
        """One result per message from the SESSION answer; a refused logon fails them all."""
        root = _parse_send_answer(response)
        if xml_text(root, "LOGON").upper() != "OK":
            reason = xml_text(root, "REASON") or "no reason given"
            raise AuthenticationError(
                f"PSWinCom refused the logon ({reason}). Check the user name and password "
                "in the module settings; if they are right, ask LINK Mobility whether the "
                "account is active and allows this server's IP address.",
                code="LOGON-FAIL",
            )
        outcomes = {xml_text(msg, "ID"): msg for msg in root.iter("MSG")}
        results: dict[str, SendResult] = {}
        for message_number, sms in messages:
            msg = outcomes.get(message_number)
            results[sms.message_id] = _message_result(sms, msg)
        return results

    # -- callbacks ---------------------------------------------------------------------------

    def parse_status_callback(self, request: CallbackRequest) -> list[StatusReport]:
        if _is_xml(request):
            items = _xml_messages(request.body, "delivery report")
            return [_report(xml_fields(msg), "delivery report") for msg in items]
        return [_report(_form_fields(request), "delivery report form")]

    def parse_inbound(self, request: CallbackRequest) -> list[InboundSms]:
        now = time.time()
        if _is_xml(request):
            items = _xml_messages(request.body, "inbound message")
            return [_inbound(xml_fields(msg), "TEXT", now) for msg in items]
        return [_inbound(_form_fields(request), "TXT", now)]

    def callback_answer(
        self, kind: str, request: CallbackRequest, parsed: Sequence[StatusReport | InboundSms]
    ) -> CallbackAnswer:
        """An XML post is acknowledged message by message, or PSWin sends it again; a form
        gets an empty 200."""
        if not _is_xml(request):
            return CallbackAnswer()
        items = _xml_messages(request.body, "callback")
        return _acknowledgement([xml_text(msg, "ID") for msg in items])


# -- message checks and formats ------------------------------------------------------------


def needs_ucs2(sms: OutboundSms) -> bool:
    """Plain text must be GSM-7 written in Latin-1; anything else (e.g. euro sign) goes as UCS-2."""
    if sms.encoding != "gsm7":
        return True
    try:
        sms.text.encode("iso-8859-1")
    except UnicodeEncodeError:
        return True
    return False


def gateway_number(e164: str) -> str:
    """RCV: the international number as digits, without '+' or '00'."""
    return e164.removeprefix("+")


def unsendable(sms: OutboundSms) -> PermanentError | None:
    """What the gateway would refuse or cut; None when the message can go."""
    sender = sms.sender.removeprefix("+")
    if not (sender.isdigit() and len(sender) <= 15) and not _SENDER_CHARS.match(sender):
        return PermanentError(
            f"PSWinCom does not accept the sender '{sms.sender}': use up to 11 letters, digits, "
            "spaces or !\"#%&'()*+-./?><; (no _ or ,), or a number of up to 15 digits.",
            code="sender",
        )
    digits = gateway_number(sms.to)
    if not digits.isdigit() or len(digits) < 9:
        return PermanentError(
            f"PSWinCom needs a receiver of at least 9 digits with the country code, not "
            f"'{sms.to}'.",
            code="receiver",
        )
    if needs_ucs2(sms):
        units = len(sms.text.encode("utf-16-be")) // 2
        if units > MAX_UCS2_UNITS:
            return PermanentError(
                f"The text needs {units} UCS-2 characters; PSWinCom takes at most "
                f"{MAX_UCS2_UNITS} (16 parts). Shorten it.",
                code="too-long",
            )
    elif len(sms.text) > MAX_PLAIN_CHARACTERS:
        return PermanentError(
            f"The text has {len(sms.text)} characters; PSWinCom cuts texts after "
            f"{MAX_PLAIN_CHARACTERS} (16 parts). Shorten it.",
            code="too-long",
        )
    return None


def _parse_send_answer(response: httpx.Response) -> Any:
    """The SESSION element of a send answer, or the error its HTTP status stands for."""
    if response.status_code != 200:
        raise status_error(response, HTTP_ERRORS)
    try:
        root = xml_root(response.content.rstrip(b"\x00"), "{}")
    except ValueError as exc:
        raise TemporaryError(
            f"PSWinCom's answer is not readable XML ({exc}): {short(response.text)}",
            code="bad-answer",
        ) from exc
    if root.tag != "SESSION":
        raise TemporaryError(
            f"PSWinCom answered <{root.tag}> instead of <SESSION>: {short(response.text)}",
            code="bad-answer",
        )
    return root


def _message_result(sms: OutboundSms, msg: Any) -> SendResult:
    if msg is None:
        error: ProviderError = TemporaryError(
            "PSWinCom's answer has no result for this message; it will be tried again.",
            code="no-result",
        )
        return SendResult(sms.message_id, error=error, raw_code=error.code)
    status = xml_text(msg, "STATUS").upper()
    info = xml_text(msg, "INFO")
    if status == "OK":
        # REF is optional in the DTD; without it no report can be matched anyway.
        return SendResult(sms.message_id, xml_text(msg, "REF") or sms.message_id, raw_code="OK")
    text = f"PSWinCom refused the message: {info or 'no reason given'}"
    if _TEMPORARY_INFO.search(info):
        error = TemporaryError(text, code=status or "FAIL")
    else:
        error = PermanentError(text, code=status or "FAIL")
    return SendResult(sms.message_id, error=error, raw_code=error.code)


# -- callbacks -------------------------------------------------------------------------------


def _is_xml(request: CallbackRequest) -> bool:
    content_type = header(request, "content-type").lower()
    return "xml" in content_type or request.body.lstrip().startswith(b"<")


def _xml_messages(body: bytes, what: str) -> list[Any]:
    """The MSG elements of a MSGLST post; ValueError when it is not one."""
    root = xml_root(body.rstrip(b"\x00"), f"The PSWinCom {what} is not readable XML: {{}}.")
    if root.tag != "MSGLST":
        raise ValueError(f"The PSWinCom {what} has <{root.tag}> where <MSGLST> belongs.")
    items = root.findall("MSG")
    if not items:
        raise ValueError(f"The PSWinCom {what} holds no <MSG>.")
    return items


def _form_fields(request: CallbackRequest) -> dict[str, str]:
    """Query and form fields, decoded as Latin-1 unless the post names another charset."""
    fields = form_fields(
        request,
        charset(request, "iso-8859-1"),
        error="The PSWinCom form cannot be decoded as {0}: {1}.",
    )
    return folded(fields, "upper")


def _report(fields: Mapping[str, str], what: str) -> StatusReport:
    reference, state = fields.get("REF", "").strip(), fields.get("STATE", "").strip().upper()
    if not reference or not state:
        missing = " and ".join(n for n, v in (("REF", reference), ("STATE", state)) if not v)
        raise ValueError(f"The PSWinCom {what} lacks {missing}.")
    return StatusReport(
        provider_message_id=reference,
        # Reports give final states; an unknown one is a message the network did not take.
        status=REPORT_STATES.get(state, Status.UNDELIVERED),
        raw_code=state,
        description=STATE_TEXTS.get(state, f"PSWinCom state {state}."),
        occurred_at=delivery_time(fields.get("DELIVERYTIME", "")),
    )


def _inbound(fields: Mapping[str, str], text_field: str, now: float) -> InboundSms:
    sender, recipient = fields.get("SND", "").strip(), fields.get("RCV", "").strip()
    if not sender or not recipient or text_field not in fields:
        raise ValueError(f"The PSWinCom inbound message needs SND, RCV and {text_field}.")
    return InboundSms(
        provider_message_id=f"pswin-mo-{uuid.uuid4().hex}",
        sender=from_provider(sender),
        recipient=from_provider(recipient),
        text=fields[text_field],
        received_at=now,
    )


_GATEWAY_TZ = named_zone("Europe/Oslo", CENTRAL_EUROPEAN)
_DOTTED_FORMATS = ("%Y.%m.%d %H:%M:%S", "%Y.%m.%d %H:%M")
_COMPACT_FORMATS = {12: "%Y%m%d%H%M", 14: "%Y%m%d%H%M%S"}  # by length: strptime is lenient


def delivery_time(value: str) -> float | None:
    """DELIVERYTIME in the formats PSWin uses (Norwegian local time); None when absent."""
    value = value.strip()
    compact = _COMPACT_FORMATS.get(len(value)) if value.isdigit() else None
    return local_time(value, *((compact,) if compact else _DOTTED_FORMATS), zone=_GATEWAY_TZ)


def _acknowledgement(ids: Sequence[str]) -> CallbackAnswer:
    """<MSGLST> with STATUS OK for each message received, echoing its ID."""
    listing = Element("MSGLST")
    for number, message_id in enumerate(ids, start=1):
        msg = SubElement(listing, "MSG")
        SubElement(msg, "ID").text = message_id or str(number)
        SubElement(msg, "STATUS").text = "OK"
    body = tostring(listing, encoding="unicode")
    return CallbackAnswer(body=f'<?xml version="1.0"?>{body}', media_type="text/xml")


MODULE = ModuleInfo(
    "pswincom",
    "LINK Mobility (PSWinCom)",
    "PSWinCom (LINK Mobility) XML gateway.",
    PsWinComSettings,
    PsWinComProvider,
)
ORIGINAL_MODULE = ModuleInfo(
    "original_pswincom",
    "Original PsWinCom",
    "PSWinCom (LINK Mobility) XML gateway (on-site installations).",
    OriginalPsWinComSettings,
    PsWinComProvider,
)
