"""SMPP: an SMPP 3.4 client (ESME) that keeps a bound session to an SMSC.

PDU/session library: smpp34 (Rust core, asyncio API). Of the three on PyPI, smpplib is
synchronous (a thread per session, one read loop we would have to drive) and aiosmpplib is
asyncio but pure Python and keeps its own queue/broker model we would fight with. smpp34 gives a
bound `Smsc` whose `submit_sm` is awaitable with sequence windowing, enquire_link and response
timers in its core, `next()` for deliver_sm, TLS, and a server side the tests use as the peer.

How it behaves:
- A background task binds (transceiver, or transmitter + receiver) and rebinds with backoff
  when the session drops; the library answers enquire_link and sends its own.
- `send` submits every part of every message of a batch at once, at most `window_size` in
  flight. A message's provider id is the message_id of its first part; receipts for any part
  are matched through all part ids (hex and decimal forms). A message is delivered when every
  part has a DELIVRD receipt; the first failed part's receipt decides otherwise.
- Receipts and mobile-originated messages arrive over the session and are handed to
  `ProviderContext.on_reports` / `on_inbound`; concatenated MO parts are reassembled first.
- A part refused or lost after an earlier part was accepted makes the whole message retry,
  so that part's predecessors may reach the phone twice: SMPP has no idempotent submit.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import random
import re
import struct
import time
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass, field
from typing import ClassVar, TypeVar

import smpp34
from pydantic import Field, SecretStr

from smsdesk.domain.encoding import (
    Encoding,
    analyse,
    from_gsm7_septets,
    to_gsm7_septets,
)
from smsdesk.domain.message import Status
from smsdesk.domain.sms import InboundSms, ModuleSettings, OutboundSms, StatusReport
from smsdesk.providers.base import (
    AuthenticationError,
    ModuleInfo,
    PermanentError,
    Provider,
    ProviderError,
    RateLimitedError,
    SendResult,
    TemporaryError,
)

log = logging.getLogger(__name__)
T = TypeVar("T")
BIND_TRANSMITTER = 0x00000002
CLOSE_TIMEOUT = 10.0  # seconds a stopping session may take before a close goes on without it
INBOUND_CAPACITY = 20_000  # deliver_sm waiting for the reader (receipts come in bursts)

# command_status values (SMPP 3.4 §5.1.3).
RINVPASWD, RINVSYSID, RBINDFAIL, RINVSYSTYP = 0x0E, 0x0F, 0x0D, 0x53
RTHROTTLED, RMSGQFUL = 0x58, 0x14
AUTH_STATUSES = {RINVPASWD, RINVSYSID, RBINDFAIL, RINVSYSTYP}
THROTTLE_STATUSES = {RTHROTTLED, RMSGQFUL}
PERMANENT_STATUSES = {
    0x01: "message length is invalid",
    0x0A: "source address is invalid",
    0x0B: "destination address is invalid",
    0x33: "number of destinations is invalid",
    0x48: "source address TON is invalid",
    0x49: "source address NPI is invalid",
    0x50: "destination address TON is invalid",
    0x51: "destination address NPI is invalid",
    0x61: "scheduled delivery time is invalid",
    0x62: "validity period is invalid",
}

RECEIPT_STATES = {
    "DELIVRD": Status.DELIVERED,
    "EXPIRED": Status.EXPIRED,
    "DELETED": Status.UNDELIVERED,
    "UNDELIV": Status.UNDELIVERED,
    "REJECTD": Status.UNDELIVERED,
    "UNKNOWN": Status.UNDELIVERED,
    "ACCEPTD": Status.SENT,
    "ENROUTE": Status.SENT,
}
MESSAGE_STATE_NAMES = {
    1: "ENROUTE",
    2: "DELIVRD",
    3: "EXPIRED",
    4: "DELETED",
    5: "UNDELIV",
    6: "ACCEPTD",
    7: "UNKNOWN",
    8: "REJECTD",
}
_RECEIPT_FIELD = re.compile(r"(id|stat|err):(\S*)", re.IGNORECASE)

TLV_MESSAGE_PAYLOAD: int = getattr(smpp34, "TLV_MESSAGE_PAYLOAD", 0x0424)
TLV_SAR_MSG_REF_NUM: int = getattr(smpp34, "TLV_SAR_MSG_REF_NUM", 0x020C)
TLV_SAR_TOTAL_SEGMENTS: int = getattr(smpp34, "TLV_SAR_TOTAL_SEGMENTS", 0x020E)
TLV_SAR_SEGMENT_SEQNUM: int = getattr(smpp34, "TLV_SAR_SEGMENT_SEQNUM", 0x020F)
TLV_RECEIPTED_MESSAGE_ID: int = getattr(smpp34, "TLV_RECEIPTED_MESSAGE_ID", 0x001E)
TLV_MESSAGE_STATE: int = getattr(smpp34, "TLV_MESSAGE_STATE", 0x0427)

DC_GSM7, DC_LATIN1, DC_UCS2 = 0x00, 0x03, 0x08
ESM_UDHI = 0x40


class BindMode(enum.StrEnum):
    TRANSCEIVER = "transceiver"
    TRANSMITTER_RECEIVER = "transmitter+receiver"


class LongMessages(enum.StrEnum):
    UDH = "udh"
    SAR = "sar"
    PAYLOAD = "payload"


class SmppSettings(ModuleSettings):
    """Where the SMSC is, how to bind, and how to encode and split messages."""

    host: str = Field("", title="Host", description="SMSC host name or address.")
    port: int = Field(2775, ge=1, le=65535, title="Port", description="SMSC TCP port.")
    system_id: str = Field(
        "", max_length=15, title="System ID", description="Account name given by the SMSC."
    )
    password: SecretStr = Field(
        SecretStr(""), title="Password", description="Account password (at most 8 characters)."
    )
    system_type: str = Field(
        "", max_length=12, title="System type", description="Left empty unless the SMSC asks."
    )
    bind_mode: BindMode = Field(
        BindMode.TRANSCEIVER,
        title="Bind mode",
        description="One transceiver session, or a transmitter and a receiver session.",
    )
    data_coding: int = Field(
        DC_GSM7,
        title="Default data coding",
        description="For texts that fit GSM-7: 0 (GSM 03.38 default alphabet) or 3 (Latin-1). "
        "Other texts always go as UCS-2 (8).",
    )
    gsm7_packed: bool = Field(
        False,
        title="Packed GSM-7",
        description="Pack GSM-7 septets (8 characters in 7 bytes); most SMSCs expect unpacked.",
    )
    window_size: int = Field(
        10,
        ge=1,
        le=1000,
        title="Window size",
        description="How many submit_sm may await their answer at once.",
    )
    enquire_link_interval: float = Field(
        30.0,
        gt=0,
        le=3600,
        title="Enquire link interval (seconds)",
        description="How often the session is checked when nothing else is sent.",
    )
    reconnect_backoff: float = Field(
        1.0,
        gt=0,
        le=600,
        title="Reconnect backoff (seconds)",
        description="First wait before binding again; doubles up to 60 s while binds fail.",
    )
    throttle_backoff: float = Field(
        1.0,
        ge=0,
        le=3600,
        title="Throttle backoff (seconds)",
        description="How long to wait after the SMSC answers 'throttled' or 'queue full'.",
    )
    tls: bool = Field(False, title="TLS", description="Connect with TLS.")
    timeout: float = Field(
        10.0,
        gt=0,
        le=300,
        title="Timeout (seconds)",
        description="How long to wait for a bind or a submit_sm answer.",
    )
    delivery_report: bool = Field(
        True,
        title="Delivery report",
        description="Ask for delivery receipts (registered_delivery 1).",
    )
    long_messages: LongMessages = Field(
        LongMessages.UDH,
        title="Long messages",
        description="udh: concatenation header with 8-bit reference; sar: sar_* TLVs; "
        "payload: the whole text in one message_payload TLV.",
    )

    def wants_delivery_reports(self) -> bool:
        """The module's delivery-report switch."""
        return self.delivery_report


@dataclass(frozen=True, slots=True)
class Part:
    """One submit_sm as it goes on the wire."""

    short_message: bytes
    data_coding: int
    esm_class: int = 0
    tlvs: tuple[smpp34.Tlv, ...] = ()


@dataclass(slots=True)
class _Tracked:
    """A sent message whose part receipts are still being collected."""

    first_id: str
    parts: int
    delivered: set[str] = field(default_factory=set)
    done: bool = False


async def within(awaitable: Awaitable[T], timeout: float) -> T:
    """`awaitable`'s result, or TimeoutError after `timeout` seconds without waiting for it.

    asyncio.wait_for waits for a cancelled awaitable to finish; smpp34's futures may not
    finish when cancelled (a stop or connect in progress), which hung a provider's close.
    """
    task = asyncio.ensure_future(awaitable)
    try:
        done, _ = await asyncio.wait({task}, timeout=timeout)
    except asyncio.CancelledError:
        task.cancel()
        raise
    if not done:
        task.cancel()
        raise TimeoutError
    return task.result()


def _status_of(exc: BaseException) -> int | None:
    match = re.search(r"\(0x([0-9A-Fa-f]+)\)", str(exc))
    return int(match.group(1), 16) if match else None


def id_forms(message_id: str) -> set[str]:
    """The forms a receipt may give an id in: as is, and read as hex or decimal the other way."""
    raw = message_id.strip().strip("\0").lower()
    forms = {raw.lstrip("0") or "0"}
    with contextlib.suppress(ValueError):
        forms.add(str(int(raw, 16)))
    if raw.isdigit():
        forms.add(format(int(raw), "x"))
    return forms


def _normal(message_id: str) -> str:
    return message_id.strip().strip("\0").lower().lstrip("0") or "0"


def pack_septets(septets: bytes, fill_bits: int = 0) -> bytes:
    """GSM 03.38 packing; `fill_bits` align the first septet after a UDH."""
    value, bits = 0, fill_bits
    out = bytearray()
    for septet in septets:
        value |= (septet & 0x7F) << bits
        bits += 7
        while bits >= 8:
            out.append(value & 0xFF)
            value >>= 8
            bits -= 8
    if bits:
        out.append(value & 0xFF)
    return bytes(out)


def unpack_septets(data: bytes, fill_bits: int = 0) -> bytes:
    value = int.from_bytes(data, "little") >> fill_bits
    count = (len(data) * 8 - fill_bits) // 7
    return bytes((value >> (7 * i)) & 0x7F for i in range(count))


def decode_text(data: bytes, data_coding: int) -> str:
    """Decode a deliver_sm body by its data coding (unpacked GSM-7, Latin-1, UCS-2)."""
    if data_coding == DC_UCS2:
        return data.decode("utf-16-be", "replace")
    if data_coding in (DC_LATIN1, 0x04):
        return data.decode("latin-1")
    if data_coding == 0x01:
        return data.decode("ascii", "replace")
    return from_gsm7_septets(data)


def source_address(sender: str) -> tuple[str, int, int]:
    """Sender → (address, TON, NPI): alphanumeric 5/0, short code 3/0, else international 1/1."""
    digits = sender.lstrip("+")
    if not digits.isdigit():
        return sender[:11], 5, 0
    if len(digits) <= 8 and not sender.startswith("+"):
        return digits, 3, 0
    return digits, 1, 1


def encode_message(
    sms: OutboundSms, settings: SmppSettings, reference: int, registered: int
) -> list[Part]:
    """Encode and split one message into the submit_sm bodies it needs."""
    analysed = analyse(sms.text)
    latin1 = settings.data_coding == DC_LATIN1 and analysed.encoding is Encoding.GSM7
    if latin1:
        try:
            sms.text.encode("latin-1")
        except UnicodeEncodeError:
            latin1 = False
    if analysed.encoding is Encoding.UCS2:
        coding = DC_UCS2
        chunks = [p.encode("utf-16-be") for p in analysed.parts]
        whole = sms.text.encode("utf-16-be")
    elif latin1:
        coding = DC_LATIN1
        whole = sms.text.encode("latin-1")
        size = 140 if len(whole) <= 140 else 134
        chunks = [whole[i : i + size] for i in range(0, len(whole), size)]
    else:
        coding = DC_GSM7
        chunks = [to_gsm7_septets(p) for p in analysed.parts]
        whole = to_gsm7_septets(sms.text)
    packed = coding == DC_GSM7 and settings.gsm7_packed
    if len(chunks) <= 1 or settings.long_messages is LongMessages.PAYLOAD:
        if len(chunks) > 1:
            payload = pack_septets(whole) if packed else whole
            tlv = smpp34.Tlv(TLV_MESSAGE_PAYLOAD, payload)
            return [Part(b"", coding, tlvs=(tlv,))]
        body = chunks[0] if chunks else b""
        return [Part(pack_septets(body) if packed else body, coding)]
    total = len(chunks)
    parts: list[Part] = []
    for seq, chunk in enumerate(chunks, 1):
        if settings.long_messages is LongMessages.SAR:
            tlvs = (
                smpp34.Tlv(TLV_SAR_MSG_REF_NUM, reference.to_bytes(2, "big")),
                smpp34.Tlv(TLV_SAR_TOTAL_SEGMENTS, bytes([total])),
                smpp34.Tlv(TLV_SAR_SEGMENT_SEQNUM, bytes([seq])),
            )
            parts.append(Part(pack_septets(chunk) if packed else chunk, coding, tlvs=tlvs))
            continue
        udh = bytes([5, 0, 3, reference & 0xFF, total, seq])
        body = pack_septets(chunk, fill_bits=1) if packed else chunk
        parts.append(Part(udh + body, coding, ESM_UDHI))
    return parts


def parse_receipt(event: smpp34.DeliverSmEvent) -> StatusReport:
    """A receipt from its TLVs or its text; ValueError when it names no message or state."""
    text = event.short_message.decode("latin-1", "replace")
    fields = {k.lower(): v for k, v in _RECEIPT_FIELD.findall(text)}
    receipted = state = None
    for tlv in event.tlvs:
        if tlv.tag == TLV_RECEIPTED_MESSAGE_ID:
            receipted = tlv.value.rstrip(b"\0").decode("latin-1")
        elif tlv.tag == TLV_MESSAGE_STATE and tlv.value:
            state = MESSAGE_STATE_NAMES.get(tlv.value[0])
    message_id = receipted or fields.get("id")
    stat = (state or fields.get("stat", "")).upper()
    if not message_id or stat not in RECEIPT_STATES:
        raise ValueError(f"receipt names no message id or no known state: {text!r}")
    err = fields.get("err", "")
    return StatusReport(
        provider_message_id=message_id,
        status=RECEIPT_STATES[stat],
        raw_code=f"{stat}:{err}" if err else stat,
        description=stat,
        occurred_at=time.time(),
    )


@dataclass(slots=True)
class _Assembly:
    parts: dict[int, str]
    total: int
    started: float


class SmppProvider(Provider):
    """Sends over one bound session (or a transmitter/receiver pair) kept open in the background."""

    max_batch: ClassVar[int] = 200
    settings: SmppSettings

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self._task: asyncio.Task[None] | None = None
        self._readers: set[asyncio.Task[None]] = set()
        self._tx: smpp34.Smsc | None = None
        self._clients: list[smpp34.Client] = []
        self._bound = asyncio.Event()
        self._bind_error: ProviderError | None = None
        self._bind_attempted = asyncio.Event()
        self._window = asyncio.Semaphore(self.settings.window_size)
        self._reference = random.randrange(256)
        self._parts: OrderedDict[str, _Tracked] = OrderedDict()
        self._assemblies: dict[tuple[str, str, int, int], _Assembly] = {}
        self._background: set[asyncio.Task[None]] = set()
        self._throttled_until = 0.0
        self._pending_reports: list[StatusReport] = []
        self._reports_waiting = asyncio.Event()
        self._flusher: asyncio.Task[None] | None = None
        self._storing = False

    # -- session ---------------------------------------------------------------------------

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._keep_bound(), name="smpp-session")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            # Bounded: a session that smpp34 never lets finish must not hang a shutdown.
            done, _ = await asyncio.wait({self._task}, timeout=CLOSE_TIMEOUT)
            if not done:
                log.warning(
                    "SMPP session to %s did not end within %s s", self._where(), CLOSE_TIMEOUT
                )
            self._task = None
        for task in list(self._background):
            task.cancel()
        if self._flusher is not None:
            if self._pending_reports:  # let what arrived be stored before the provider goes
                self._reports_waiting.set()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._drained(), 5)
            self._flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._flusher
            self._flusher = None

    def _client(self, bind_type: str) -> smpp34.Client:
        s = self.settings
        return smpp34.Client(
            s.host,
            s.port,
            s.system_id,
            s.password.get_secret_value(),
            bind_type=bind_type,
            system_type=s.system_type,
            tls=s.tls,
            window_size=s.window_size,
            # Receipts queue here until the reader takes them; when it is full the library
            # answers deliver_sm with ESME_RSYSERR and the SMSC has to try again later.
            inbound_capacity=INBOUND_CAPACITY,
            connect_timeout_ms=int(s.timeout * 1000),
        )

    async def _bind(self) -> list[smpp34.Smsc]:
        types = ["TRX"] if self.settings.bind_mode is BindMode.TRANSCEIVER else ["TX", "RX"]
        sessions = []
        for bind_type in types:
            client = self._client(bind_type)
            self._clients.append(client)
            sessions.append(await within(client.connect(), self.settings.timeout))
        return sessions

    async def _keep_bound(self) -> None:
        backoff = self.settings.reconnect_backoff
        while True:
            try:
                sessions = await self._bind()
            except asyncio.CancelledError:
                await self._drop()
                raise
            except Exception as exc:
                silent = isinstance(exc, TimeoutError) or "bind timed out" in str(exc)
                if silent and (refused := await self._probe_bind()):
                    exc = smpp34.SmppError(f"bind refused (0x{refused:02X})")
                self._bind_error = self._bind_failure(exc)
                self._bind_attempted.set()
                log.warning("SMPP bind to %s failed: %s", self._where(), self._bind_error.message)
                await self._drop()
                await asyncio.sleep(backoff * random.uniform(0.8, 1.2))
                backoff = min(backoff * 2, 60.0)
                continue
            backoff = self.settings.reconnect_backoff
            self._bind_error = None
            self._tx = sessions[0]
            self._bound.set()
            self._bind_attempted.set()
            log.info("SMPP bound to %s as %s", self._where(), self.settings.system_id)
            try:
                readers = [asyncio.create_task(self._read(s)) for s in sessions]
                readers.append(asyncio.create_task(self._watch()))
                await asyncio.wait(readers, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for reader in readers:
                    reader.cancel()
                await asyncio.wait(readers, timeout=CLOSE_TIMEOUT)
                self._bound.clear()
                self._tx = None
                await self._drop(sessions)
            log.warning("SMPP session to %s ended; binding again", self._where())
            await asyncio.sleep(self.settings.reconnect_backoff * random.uniform(0.5, 1.0))

    async def _watch(self) -> None:
        """Ends when a client says its session is gone (the library sends enquire_link)."""
        while True:
            await asyncio.sleep(self.settings.enquire_link_interval)
            for client in self._clients:
                if not await client.is_alive():
                    return

    async def _drop(self, sessions: Sequence[smpp34.Smsc] = ()) -> None:
        for session in sessions:
            with contextlib.suppress(Exception):
                await within(session.unbind(), 2)
        for client in self._clients:
            with contextlib.suppress(Exception):
                await within(client.stop(), 2)
        self._clients = []

    def _where(self) -> str:
        return f"{self.settings.host}:{self.settings.port}"

    async def _probe_bind(self) -> int | None:
        """The status of a bind_transmitter answered with an error, or None.

        smpp34's client reports a bind_resp carrying an error status as a timeout; asking once
        more by hand tells a refused password from an SMSC that does not answer.
        """
        s = self.settings
        body = b"".join(
            [
                s.system_id.encode("latin-1", "replace") + b"\0",
                s.password.get_secret_value().encode("latin-1", "replace") + b"\0",
                s.system_type.encode("latin-1", "replace") + b"\0",
                bytes([0x34, 0, 0]),
                b"\0",
            ]
        )
        pdu = struct.pack(">IIII", 16 + len(body), BIND_TRANSMITTER, 0, 1) + body
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(s.host, s.port, ssl=True if s.tls else None), s.timeout
            )
        except (OSError, TimeoutError):
            return None
        try:
            writer.write(pdu)
            header = await asyncio.wait_for(reader.readexactly(16), s.timeout)
        except (OSError, TimeoutError, asyncio.IncompleteReadError):
            return None
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
        _, command_id, status, _ = struct.unpack(">IIII", header)
        if command_id == BIND_TRANSMITTER | 0x80000000 and status != 0:
            return int(status)
        return None

    def _bind_failure(self, exc: BaseException) -> ProviderError:
        status = _status_of(exc)
        if status in AUTH_STATUSES:
            return AuthenticationError(
                f"The SMSC at {self._where()} refused the bind ({exc}): check system ID, "
                "password and system type in the SMPP settings.",
                code=f"0x{status:02X}",
            )
        if isinstance(exc, TimeoutError):
            return TemporaryError(
                f"No bind answer from the SMSC at {self._where()} within "
                f"{self.settings.timeout:g} s.",
                code="timeout",
            )
        hint = "host, port and TLS"
        if "bind" in str(exc).lower():  # connected, but the bind was not answered as expected
            hint = "system ID, password and system type (and host, port and TLS)"
        return TemporaryError(
            f"Cannot bind to the SMSC at {self._where()}: {exc}. Check {hint}.",
            code=f"0x{status:02X}" if status is not None else "connect",
        )

    async def _session(self) -> smpp34.Smsc:
        """The bound transmitting session, waiting for a bind in progress up to the timeout."""
        await self.start()
        if not self._bound.is_set():
            with contextlib.suppress(TimeoutError):
                # A bind that times out is followed by a probe: up to two timeouts in all.
                await asyncio.wait_for(self._wait_bind(), 2 * self.settings.timeout + 1)
        if self._tx is None:
            if self._bind_error is not None:
                raise self._bind_error
            raise TemporaryError(f"Not bound to the SMSC at {self._where()} yet.", code="unbound")
        return self._tx

    async def _wait_bind(self) -> None:
        """Until bound, or until a bind attempt failed for good (credentials)."""
        while not self._bound.is_set():
            self._bind_attempted.clear()
            await self._bind_attempted.wait()
            if isinstance(self._bind_error, AuthenticationError):
                return

    # -- sending ---------------------------------------------------------------------------

    async def send(self, batch: Sequence[OutboundSms]) -> list[SendResult]:
        session = await self._session()
        return list(await asyncio.gather(*(self._send_one(session, sms) for sms in batch)))

    def _next_reference(self) -> int:
        self._reference = (self._reference + 1) % 256
        return self._reference

    async def _send_one(self, session: smpp34.Smsc, sms: OutboundSms) -> SendResult:
        s = self.settings
        registered = 1 if (s.delivery_report and sms.delivery_report) else 0
        try:
            parts = encode_message(sms, s, self._next_reference(), registered)
        except ValueError as exc:
            error = PermanentError(f"The text cannot be encoded for SMPP: {exc}", code="encoding")
            return SendResult(sms.message_id, error=error, raw_code=error.code)
        source, ton, npi = source_address(sms.sender or self.context.sender)
        destination = sms.to.lstrip("+")
        outcomes = await asyncio.gather(
            *(
                self._submit(session, part, source, ton, npi, destination, registered, sms)
                for part in parts
            )
        )
        errors = [o for o in outcomes if isinstance(o, ProviderError)]
        if errors:
            failure: ProviderError = next(
                (e for e in errors if isinstance(e, PermanentError)), errors[0]
            )
            return SendResult(sms.message_id, error=failure, raw_code=failure.code)
        ids = [o for o in outcomes if isinstance(o, str)]
        self._track(ids)
        return SendResult(sms.message_id, ids[0], raw_code="0")

    async def _submit(
        self,
        session: smpp34.Smsc,
        part: Part,
        source: str,
        ton: int,
        npi: int,
        destination: str,
        registered: int,
        sms: OutboundSms,
    ) -> str | ProviderError:
        timeout = self.settings.timeout
        async with self._window:
            try:
                resp = await within(
                    session.submit_sm(
                        destination,
                        part.short_message,
                        source_addr=source,
                        source_addr_ton=ton,
                        source_addr_npi=npi,
                        dest_addr_ton=1,
                        dest_addr_npi=1,
                        esm_class=part.esm_class,
                        priority_flag=1 if sms.priority > 0 else 0,
                        registered_delivery=registered,
                        data_coding=part.data_coding,
                        tlvs=list(part.tlvs),
                    ),
                    timeout,
                )
            except TimeoutError:
                return TemporaryError(
                    f"No submit_sm answer from the SMSC within {timeout:g} s.", code="timeout"
                )
            except smpp34.SmppError as exc:
                status = _status_of(exc)
                return TemporaryError(
                    f"The SMPP session failed during submit_sm: {exc}",
                    code=f"0x{status:02X}" if status is not None else "session",
                )
        status = resp.command_status
        if status == 0 and resp.message_id:
            return resp.message_id
        code = f"0x{status:02X}"
        if status in THROTTLE_STATUSES:
            backoff = self.settings.throttle_backoff
            what = "is throttling us" if status == RTHROTTLED else "has a full queue"
            return RateLimitedError(f"The SMSC {what} ({code}).", code=code, retry_after=backoff)
        if status in PERMANENT_STATUSES:
            return PermanentError(
                f"The SMSC refused the message: {PERMANENT_STATUSES[status]} ({code}).", code=code
            )
        if status == 0:
            return TemporaryError("The SMSC accepted but gave no message_id.", code=code)
        return TemporaryError(f"The SMSC refused submit_sm with status {code}.", code=code)

    def _track(self, ids: list[str]) -> None:
        tracked = _Tracked(ids[0], len(ids))
        for message_id in ids:
            for form in id_forms(message_id):
                self._parts[form] = tracked
        while len(self._parts) > 500_000:
            self._parts.popitem(last=False)

    # -- receiving -------------------------------------------------------------------------

    async def _read(self, session: smpp34.Smsc) -> None:
        while True:
            event = await session.next()
            if isinstance(event, smpp34.Disconnected):
                return
            try:
                await self._on_deliver(event)
            except Exception:
                log.exception("SMPP deliver_sm could not be handled")

    async def _on_deliver(self, event: smpp34.DeliverSmEvent) -> None:
        if event.esm_class & 0x3C in (0x04, 0x08, 0x10, 0x20):
            try:
                report = parse_receipt(event)
            except ValueError as exc:
                log.warning("malformed SMPP delivery receipt kept as unmatched: %s", exc)
                raw = event.short_message.hex()[:60] or "empty"
                await self._reports(
                    [StatusReport(f"malformed:{raw}", Status.SENT, "malformed", str(exc))]
                )
                return
            await self._match(report, retry=True)
            return
        sms = self._inbound(event)
        if sms is not None and self.context.on_inbound is not None:
            await self.context.on_inbound([sms])

    async def _match(self, report: StatusReport, *, retry: bool) -> None:
        tracked = self._parts.get(_normal(report.provider_message_id))
        if tracked is None:
            if retry:  # the receipt may overtake the submit_sm answer
                self._later(self._match_later(report))
                return
            await self._reports([report])
            return
        if tracked.done:
            return
        final = report.status
        if final is Status.DELIVERED:
            tracked.delivered.add(_normal(report.provider_message_id))
            if len(tracked.delivered) < tracked.parts:
                return
        elif not final.is_final:
            return
        tracked.done = True
        await self._reports(
            [
                StatusReport(
                    tracked.first_id,
                    report.status,
                    report.raw_code,
                    report.description,
                    report.occurred_at,
                )
            ]
        )

    async def _match_later(self, report: StatusReport) -> None:
        await asyncio.sleep(2.0)
        await self._match(report, retry=False)

    def _later(self, coro: object) -> None:
        task: asyncio.Task[None] = asyncio.create_task(coro)  # type: ignore[arg-type]
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _reports(self, reports: list[StatusReport]) -> None:
        """Queue reports for the flusher: the session reader must not wait on the database.

        An SMSC waits for deliver_sm_resp only so long; a reader that committed each receipt
        before reading the next fell behind under load and the SMSC gave up on receipts.
        """
        if self.context.on_reports is None:
            log.info("SMPP receipts dropped: no report handler (%d)", len(reports))
            return
        self._pending_reports.extend(reports)
        self._reports_waiting.set()
        if self._flusher is None:
            self._flusher = asyncio.create_task(self._flush_reports(), name="smpp-reports")

    async def _drained(self) -> None:
        while self._pending_reports or self._reports_waiting.is_set() or self._storing:
            await asyncio.sleep(0.01)

    async def _flush_reports(self) -> None:
        """Store queued reports in batches, one transaction for all that arrived meanwhile."""
        assert self.context.on_reports is not None
        while True:
            await self._reports_waiting.wait()
            self._reports_waiting.clear()
            batch, self._pending_reports = self._pending_reports, []
            if not batch:
                continue
            self._storing = True
            try:
                await self.context.on_reports(batch)
            except Exception:
                log.exception("storing %d SMPP receipts failed; keeping them", len(batch))
                self._pending_reports[:0] = batch
                await asyncio.sleep(1.0)
                self._reports_waiting.set()
            finally:
                self._storing = False

    def _inbound(self, event: smpp34.DeliverSmEvent) -> InboundSms | None:
        """An MO message, or None while parts of a concatenated one are still missing."""
        body = event.short_message
        for tlv in event.tlvs:
            if tlv.tag == TLV_MESSAGE_PAYLOAD and not body:
                body = tlv.value
        concat: tuple[int, int, int] | None = None
        coding = event.data_coding
        if event.esm_class & ESM_UDHI and body:
            header = body[1 : 1 + body[0]]
            body = body[1 + body[0] :]
            i = 0
            while i + 1 < len(header):
                iei, length = header[i], header[i + 1]
                value = header[i + 2 : i + 2 + length]
                if iei == 0x00 and length == 3:
                    concat = (value[0], value[1], value[2])
                elif iei == 0x08 and length == 4:
                    concat = (int.from_bytes(value[:2], "big"), value[2], value[3])
                i += 2 + length
        else:
            sar = {t.tag: t.value for t in event.tlvs}
            if TLV_SAR_MSG_REF_NUM in sar:
                concat = (
                    int.from_bytes(sar[TLV_SAR_MSG_REF_NUM], "big"),
                    sar.get(TLV_SAR_TOTAL_SEGMENTS, b"\1")[0],
                    sar.get(TLV_SAR_SEGMENT_SEQNUM, b"\1")[0],
                )
        text = decode_text(body, coding)
        sender, recipient = event.source_addr, event.destination_addr
        if concat is not None and concat[1] > 1:
            ref, total, seq = concat
            key = (sender, recipient, ref, total)
            now = time.monotonic()
            for stale in [k for k, a in self._assemblies.items() if now - a.started > 600]:
                log.warning("SMPP: incomplete concatenated MO from %s dropped", stale[0])
                del self._assemblies[stale]
            assembly = self._assemblies.setdefault(key, _Assembly({}, total, now))
            assembly.parts[seq] = text
            if len(assembly.parts) < total:
                return None
            del self._assemblies[key]
            text = "".join(assembly.parts[i] for i in sorted(assembly.parts))
        return InboundSms(f"smpp:{uuid.uuid4().hex}", _number(sender), recipient, text, time.time())


def _number(address: str) -> str:
    return f"+{address}" if address.isdigit() and len(address) > 8 else address


MODULE = ModuleInfo(
    "smpp",
    "SMPP",
    "SMPP 3.4 connection to an SMSC or gateway.",
    SmppSettings,
    SmppProvider,
)
