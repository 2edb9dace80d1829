"""SMPP 3.4 as plain values: what goes into submit_sm, and what a deliver_sm or a receipt says.

Kept free of I/O, asyncio and smpp34's session objects so that the parts a user notices (data
coding, how a long text is split, the sender's TON/NPI, how a receipt is read) can be checked
on their own; the session and the provider only move these values to and from the wire.
What a command_status means is in `statuses`.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from smsdesk.domain.encoding import Encoding, analyse, from_gsm7_septets, to_gsm7_septets
from smsdesk.domain.message import Status
from smsdesk.domain.sms import OutboundSms, StatusReport

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

# Optional parameter tags (SMPP 3.4 §5.3.2).
TLV_MESSAGE_PAYLOAD = 0x0424
TLV_SAR_MSG_REF_NUM = 0x020C
TLV_SAR_TOTAL_SEGMENTS = 0x020E
TLV_SAR_SEGMENT_SEQNUM = 0x020F
TLV_RECEIPTED_MESSAGE_ID = 0x001E
TLV_MESSAGE_STATE = 0x0427

DC_GSM7, DC_LATIN1, DC_UCS2 = 0x00, 0x03, 0x08
ESM_UDHI = 0x40

Tlvs = tuple[tuple[int, bytes], ...]


class LongMessages(enum.StrEnum):
    """How a text longer than one SMS goes to the SMSC."""

    UDH = "udh"
    SAR = "sar"
    PAYLOAD = "payload"


@dataclass(frozen=True, slots=True)
class Part:
    """One submit_sm body as it goes on the wire."""

    short_message: bytes
    data_coding: int
    esm_class: int = 0
    tlvs: Tlvs = ()


@dataclass(frozen=True, slots=True)
class SubmitSm:
    """Every submit_sm parameter we set for one part of one message."""

    destination_addr: str
    short_message: bytes
    source_addr: str
    source_addr_ton: int
    source_addr_npi: int
    dest_addr_ton: int
    dest_addr_npi: int
    esm_class: int
    priority_flag: int
    registered_delivery: int
    data_coding: int
    tlvs: Tlvs


@dataclass(frozen=True, slots=True)
class MoPart:
    """A mobile-originated deliver_sm read: its text and, for a part of a long one, its place."""

    sender: str
    recipient: str
    text: str
    concat: tuple[int, int, int] | None = None  # (reference, total, sequence number)

    @property
    def is_partial(self) -> bool:
        """True when this is one of several parts that must be joined before use."""
        return self.concat is not None and self.concat[1] > 1


# -- text --------------------------------------------------------------------------------------


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
    """The septets of packed GSM-7 (the inverse of `pack_septets`)."""
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


# -- submit_sm ---------------------------------------------------------------------------------


def source_address(sender: str) -> tuple[str, int, int]:
    """Sender → (address, TON, NPI): alphanumeric 5/0, short code 3/0, else international 1/1."""
    digits = sender.lstrip("+")
    if not digits.isdigit():
        return sender[:11], 5, 0
    if len(digits) <= 8 and not sender.startswith("+"):
        return digits, 3, 0
    return digits, 1, 1


def destination_address(to: str) -> tuple[str, int, int]:
    """Recipient → (address, TON, NPI): always an international number without its '+'."""
    return to.lstrip("+"), 1, 1


def _chunks(text: str, data_coding: int) -> tuple[int, list[bytes], bytes]:
    """(data coding used, the bytes of each part, the bytes of the whole text)."""
    analysed = analyse(text)
    latin1 = data_coding == DC_LATIN1 and analysed.encoding is Encoding.GSM7
    if latin1:
        try:
            text.encode("latin-1")
        except UnicodeEncodeError:
            latin1 = False
    if analysed.encoding is Encoding.UCS2:
        return DC_UCS2, [p.encode("utf-16-be") for p in analysed.parts], text.encode("utf-16-be")
    if latin1:
        whole = text.encode("latin-1")
        size = 140 if len(whole) <= 140 else 134
        return DC_LATIN1, [whole[i : i + size] for i in range(0, len(whole), size)], whole
    return DC_GSM7, [to_gsm7_septets(p) for p in analysed.parts], to_gsm7_septets(text)


def encode_message(
    text: str,
    *,
    data_coding: int,
    gsm7_packed: bool,
    long_messages: LongMessages,
    reference: int,
) -> list[Part]:
    """Encode and split one text into the submit_sm bodies it needs.

    GSM-7 texts go as `data_coding` (0, or 3 when Latin-1 can hold them), others as UCS-2;
    a long text becomes parts with a concatenation UDH, sar_* TLVs, or one message_payload.
    """
    coding, chunks, whole = _chunks(text, data_coding)
    packed = coding == DC_GSM7 and gsm7_packed
    if len(chunks) <= 1 or long_messages is LongMessages.PAYLOAD:
        if len(chunks) > 1:
            payload = pack_septets(whole) if packed else whole
            return [Part(b"", coding, tlvs=((TLV_MESSAGE_PAYLOAD, payload),))]
        body = chunks[0] if chunks else b""
        return [Part(pack_septets(body) if packed else body, coding)]
    total = len(chunks)
    parts: list[Part] = []
    for seq, chunk in enumerate(chunks, 1):
        if long_messages is LongMessages.SAR:
            tlvs = (
                (TLV_SAR_MSG_REF_NUM, reference.to_bytes(2, "big")),
                (TLV_SAR_TOTAL_SEGMENTS, bytes([total])),
                (TLV_SAR_SEGMENT_SEQNUM, bytes([seq])),
            )
            parts.append(Part(pack_septets(chunk) if packed else chunk, coding, tlvs=tlvs))
            continue
        udh = bytes([5, 0, 3, reference & 0xFF, total, seq])
        body = pack_septets(chunk, fill_bits=1) if packed else chunk
        parts.append(Part(udh + body, coding, ESM_UDHI))
    return parts


def build_submits(
    sms: OutboundSms,
    *,
    sender: str,
    registered_delivery: int,
    data_coding: int,
    gsm7_packed: bool,
    long_messages: LongMessages,
    reference: int,
) -> list[SubmitSm]:
    """The submit_sm of each part of `sms`, sent from `sender`; ValueError if it cannot encode."""
    parts = encode_message(
        sms.text,
        data_coding=data_coding,
        gsm7_packed=gsm7_packed,
        long_messages=long_messages,
        reference=reference,
    )
    source, ton, npi = source_address(sender)
    destination, dest_ton, dest_npi = destination_address(sms.to)
    return [
        SubmitSm(
            destination_addr=destination,
            short_message=part.short_message,
            source_addr=source,
            source_addr_ton=ton,
            source_addr_npi=npi,
            dest_addr_ton=dest_ton,
            dest_addr_npi=dest_npi,
            esm_class=part.esm_class,
            priority_flag=1 if sms.priority > 0 else 0,
            registered_delivery=registered_delivery,
            data_coding=part.data_coding,
            tlvs=part.tlvs,
        )
        for part in parts
    ]


# -- deliver_sm --------------------------------------------------------------------------------


def is_receipt(esm_class: int) -> bool:
    """Whether a deliver_sm's esm_class marks it as a delivery receipt rather than an MO."""
    return esm_class & 0x3C in (0x04, 0x08, 0x10, 0x20)


def parse_receipt(
    short_message: bytes, tlvs: Iterable[tuple[int, bytes]], received_at: float
) -> StatusReport:
    """A receipt from its TLVs or its text; ValueError when it names no message or state."""
    text = short_message.decode("latin-1", "replace")
    fields = {k.lower(): v for k, v in _RECEIPT_FIELD.findall(text)}
    receipted = state = None
    for tag, value in tlvs:
        if tag == TLV_RECEIPTED_MESSAGE_ID:
            receipted = value.rstrip(b"\0").decode("latin-1")
        elif tag == TLV_MESSAGE_STATE and value:
            state = MESSAGE_STATE_NAMES.get(value[0])
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
        occurred_at=received_at,
    )


def _udh_concat(header: bytes) -> tuple[int, int, int] | None:
    """(reference, total, sequence) from a UDH's 8- or 16-bit concatenation element."""
    concat = None
    i = 0
    while i + 1 < len(header):
        iei, length = header[i], header[i + 1]
        value = header[i + 2 : i + 2 + length]
        if iei == 0x00 and length == 3:
            concat = (value[0], value[1], value[2])
        elif iei == 0x08 and length == 4:
            concat = (int.from_bytes(value[:2], "big"), value[2], value[3])
        i += 2 + length
    return concat


def parse_mo(
    source_addr: str,
    destination_addr: str,
    short_message: bytes,
    data_coding: int,
    esm_class: int,
    tlvs: Iterable[tuple[int, bytes]],
) -> MoPart:
    """A mobile-originated deliver_sm: text decoded, UDH or sar_* concatenation read."""
    tlvs = list(tlvs)
    body = short_message
    for tag, value in tlvs:
        if tag == TLV_MESSAGE_PAYLOAD and not body:
            body = value
    concat: tuple[int, int, int] | None = None
    if esm_class & ESM_UDHI and body:
        concat = _udh_concat(body[1 : 1 + body[0]])
        body = body[1 + body[0] :]
    else:
        sar = dict(tlvs)
        if TLV_SAR_MSG_REF_NUM in sar:
            concat = (
                int.from_bytes(sar[TLV_SAR_MSG_REF_NUM], "big"),
                sar.get(TLV_SAR_TOTAL_SEGMENTS, b"\1")[0],
                sar.get(TLV_SAR_SEGMENT_SEQNUM, b"\1")[0],
            )
    return MoPart(source_addr, destination_addr, decode_text(body, data_coding), concat)


def join_parts(parts: Mapping[int, str]) -> str:
    """The whole text of a concatenated MO from its parts keyed by sequence number."""
    return "".join(parts[i] for i in sorted(parts))


def phone_number(address: str) -> str:
    """An MO sender as we store it: '+' before a full number, short codes and names as given."""
    return f"+{address}" if address.isdigit() and len(address) > 8 else address
