"""The SMPP module's wire values on their own: submit_sm parameters, receipts, MO and statuses.

What a user would notice: which data coding a text goes as, that a long text arrives whole,
how the sender shows on the phone, which status a receipt gives a message, which error an SMSC
answer becomes. No session and no SMSC: these are the pure functions the session sends.
"""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smsdesk.domain.encoding import analyse, from_gsm7_septets, to_gsm7_septets
from smsdesk.domain.message import Status
from smsdesk.domain.sms import OutboundSms, StatusReport
from smsdesk.providers.base import (
    AuthenticationError,
    PermanentError,
    RateLimitedError,
    TemporaryError,
)
from smsdesk.providers.smpp import codec, statuses
from smsdesk.providers.smpp.codec import LongMessages
from smsdesk.providers.smpp.receipts import PartReceipts, ReceiptIdBase, receipt_form

FAST = settings(max_examples=150, deadline=None)
GSM_TEXT = "Lorem ipsum {dolor} sit amet € "
texts = st.text(max_size=700) | st.text(alphabet=GSM_TEXT + "åäöÅÄÖ@£$", max_size=1200)


def sms(text: str = "Hej", *, to: str = "+46701234567", priority: int = 0) -> OutboundSms:
    return OutboundSms("m1", to, "", text, "gsm7", 1, priority)


def encode(
    text: str,
    *,
    data_coding: int = 0,
    long: LongMessages = LongMessages.UDH,
    packed: bool = False,
    reference: int = 7,
) -> list[codec.Part]:
    return codec.encode_message(
        text, data_coding=data_coding, gsm7_packed=packed, long_messages=long, reference=reference
    )


def as_mo(part: codec.Part) -> codec.MoPart:
    """A submitted part read back the way an MO deliver_sm is read."""
    return codec.parse_mo(
        "46701234567", "12345", part.short_message, part.data_coding, part.esm_class, part.tlvs
    )


def reassembled(parts: list[codec.Part]) -> str:
    read = [as_mo(p) for p in parts]
    if len(read) == 1 and not read[0].is_partial:
        return read[0].text
    assert all(r.is_partial for r in read)
    assert len({r.concat[0] for r in read if r.concat}) == 1  # one reference for all parts
    return codec.join_parts({r.concat[2]: r.text for r in read if r.concat})


# -- data coding -------------------------------------------------------------------------------


def test_gsm7_text_goes_as_data_coding_0_unpacked() -> None:
    [part] = encode("Hej på dig {ok}")
    assert part.data_coding == 0 and part.esm_class == 0 and part.tlvs == ()
    assert part.short_message == to_gsm7_septets("Hej på dig {ok}")
    assert len(part.short_message) == 17  # '{' and '}' take an escape each


def test_text_outside_gsm7_goes_as_ucs2() -> None:
    [part] = encode("Привет 👋")
    assert part.data_coding == 8
    assert part.short_message.decode("utf-16-be") == "Привет 👋"


def test_latin1_default_is_used_only_when_latin1_can_hold_the_text() -> None:
    [latin] = encode("Hej på dig", data_coding=3)
    assert (latin.data_coding, latin.short_message) == (3, "Hej på dig".encode("latin-1"))
    [euro] = encode("Pris 5 €", data_coding=3)  # GSM-7 has €, Latin-1 has not
    assert euro.data_coding == 0 and from_gsm7_septets(euro.short_message) == "Pris 5 €"


def test_packed_gsm7_puts_8_characters_in_7_bytes() -> None:
    [part] = encode("abcdefgh", packed=True)
    assert len(part.short_message) == 7
    assert from_gsm7_septets(codec.unpack_septets(part.short_message)) == "abcdefgh"


@FAST
@given(st.binary(max_size=300).map(lambda b: bytes(x & 0x7F for x in b)), st.integers(0, 6))
def test_septet_packing_round_trips(septets: bytes, fill_bits: int) -> None:
    unpacked = codec.unpack_septets(codec.pack_septets(septets, fill_bits), fill_bits)
    assert unpacked[: len(septets)] == septets
    assert len(unpacked) - len(septets) in (0, 1)  # 7 spare bits read as one '@' more


# -- long texts --------------------------------------------------------------------------------


def test_long_gsm7_text_is_split_with_one_udh_reference() -> None:
    text = (GSM_TEXT * 12).strip()
    parts = encode(text, reference=0x1FF)
    assert len(parts) == analyse(text).segments == 3
    assert [p.short_message[:6] for p in parts] == [
        bytes([5, 0, 3, 0xFF, 3, seq]) for seq in (1, 2, 3)
    ]
    assert all(p.esm_class == 0x40 and len(p.short_message) - 6 <= 153 for p in parts)
    assert reassembled(parts) == text


def test_long_ucs2_parts_fit_in_140_bytes() -> None:
    text = "Привет мир! " * 20
    parts = encode(text)
    assert len(parts) == analyse(text).segments > 1
    assert all(p.data_coding == 8 and len(p.short_message) <= 140 for p in parts)
    assert reassembled(parts) == text


def test_long_text_with_sar_tlvs() -> None:
    text = (GSM_TEXT * 12).strip()
    parts = encode(text, long=LongMessages.SAR, reference=0x0102)
    tlvs = [dict(p.tlvs) for p in parts]
    assert [t[0x020C] for t in tlvs] == [b"\x01\x02"] * 3
    assert [t[0x020E] for t in tlvs] == [b"\x03"] * 3
    assert [t[0x020F] for t in tlvs] == [b"\x01", b"\x02", b"\x03"]
    assert all(p.esm_class == 0 for p in parts)
    assert reassembled(parts) == text


def test_long_text_as_one_message_payload() -> None:
    text = (GSM_TEXT * 12).strip()
    [part] = encode(text, long=LongMessages.PAYLOAD)
    assert part.short_message == b""
    assert part.tlvs == ((0x0424, to_gsm7_septets(text)),)
    assert reassembled([part]) == text


@FAST
@given(texts, st.sampled_from([0, 3]), st.sampled_from(list(LongMessages)), st.integers(0, 255))
def test_any_text_reassembles_from_its_parts(
    text: str, data_coding: int, long: LongMessages, reference: int
) -> None:
    parts = encode(text, data_coding=data_coding, long=long, reference=reference)
    assert reassembled(parts) == text
    if long is LongMessages.PAYLOAD:
        assert len(parts) == 1
    elif parts[0].data_coding != 3:  # Latin-1 splits by bytes: 140 in one, else 134 a part
        assert len(parts) == max(1, analyse(text).segments)


# -- addresses and the whole submit_sm ---------------------------------------------------------


@pytest.mark.parametrize(
    ("sender", "expected"),
    [
        ("Smsdesk", ("Smsdesk", 5, 0)),  # alphanumeric
        ("A very long sender", ("A very long", 5, 0)),  # alphanumeric senders stop at 11
        ("+46701234567", ("46701234567", 1, 1)),  # international
        ("46701234567", ("46701234567", 1, 1)),
        ("+4670", ("4670", 1, 1)),
        ("72000", ("72000", 3, 0)),  # short code
    ],
)
def test_sender_ton_and_npi(sender: str, expected: tuple[str, int, int]) -> None:
    assert codec.source_address(sender) == expected


def test_build_submits_fills_every_parameter() -> None:
    [sm] = codec.build_submits(
        sms("Hej", priority=1),
        sender="Smsdesk",
        registered_delivery=1,
        data_coding=0,
        gsm7_packed=False,
        long_messages=LongMessages.UDH,
        reference=1,
    )
    assert (sm.destination_addr, sm.dest_addr_ton, sm.dest_addr_npi) == ("46701234567", 1, 1)
    assert (sm.source_addr, sm.source_addr_ton, sm.source_addr_npi) == ("Smsdesk", 5, 0)
    assert (sm.priority_flag, sm.registered_delivery, sm.data_coding) == (1, 1, 0)
    assert sm.short_message == to_gsm7_septets("Hej")


def test_build_submits_gives_every_part_the_same_addresses() -> None:
    submits = codec.build_submits(
        sms((GSM_TEXT * 12).strip()),
        sender="+4790000000",
        registered_delivery=0,
        data_coding=0,
        gsm7_packed=False,
        long_messages=LongMessages.UDH,
        reference=1,
    )
    assert len(submits) == 3
    assert {(s.source_addr, s.source_addr_ton, s.priority_flag) for s in submits} == {
        ("4790000000", 1, 0)
    }


# -- receipts ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message_id", "status", "raw_code"),
    [
        (
            "id:0A1B2C3D sub:001 dlvrd:001 submit date:2401011200 done date:2401011201 "
            "stat:DELIVRD err:000 text:Hej på dig",
            "0A1B2C3D",
            Status.DELIVERED,
            "DELIVRD:000",
        ),
        (
            "id:12345 sub:001 dlvrd:000 stat:UNDELIV err:001",
            "12345",
            Status.UNDELIVERED,
            "UNDELIV:001",
        ),
        ("ID:77 SUB:001 DLVRD:000 STAT:expired ERR:000", "77", Status.EXPIRED, "EXPIRED:000"),
        ("id:5 stat:REJECTD err:0B", "5", Status.UNDELIVERED, "REJECTD:0B"),
        ("id:5 stat:DELETED", "5", Status.UNDELIVERED, "DELETED"),
        ("id:5 stat:UNKNOWN err:", "5", Status.UNDELIVERED, "UNKNOWN"),
        ("id:5 stat:ACCEPTD err:000", "5", Status.SENT, "ACCEPTD:000"),
        ("id:5 stat:ENROUTE", "5", Status.SENT, "ENROUTE"),
    ],
)
def test_receipt_texts_of_several_smsc_styles(
    text: str, message_id: str, status: Status, raw_code: str
) -> None:
    report = codec.parse_receipt(text.encode("latin-1"), (), 1700000000.0)
    assert report == StatusReport(message_id, status, raw_code, raw_code.split(":")[0], 1.7e9)


def test_receipt_tlvs_win_over_the_text() -> None:
    tlvs = [(0x001E, b"abc123\0"), (0x0427, b"\x02")]
    report = codec.parse_receipt(b"id:999 stat:UNDELIV err:001", tlvs, 0.0)
    assert (report.provider_message_id, report.status) == ("abc123", Status.DELIVERED)
    assert report.raw_code == "DELIVRD:001"  # the text's err is kept


def test_receipt_from_tlvs_only() -> None:
    report = codec.parse_receipt(b"", [(0x001E, b"7F\0"), (0x0427, b"\x03")], 0.0)
    assert (report.provider_message_id, report.status, report.raw_code) == (
        "7F",
        Status.EXPIRED,
        "EXPIRED",
    )


@pytest.mark.parametrize(
    ("text", "tlvs"),
    [
        (b"this is no receipt", []),
        (b"stat:DELIVRD err:000", []),  # no id
        (b"id:123 stat:WHATEVER", []),  # no known state
        (b"id:123", [(0x0427, b"\x09")]),  # a message_state SMPP does not define
        (b"", []),
    ],
)
def test_malformed_receipt_raises_value_error(text: bytes, tlvs: list[tuple[int, bytes]]) -> None:
    with pytest.raises(ValueError, match="no message id or no known state"):
        codec.parse_receipt(text, tlvs, 0.0)


@pytest.mark.parametrize(
    ("esm_class", "receipt"),
    [(0x04, True), (0x08, True), (0x20, True), (0x00, False), (0x40, False), (0x03, False)],
)
def test_receipts_are_told_from_mo_by_esm_class(esm_class: int, receipt: bool) -> None:
    assert codec.is_receipt(esm_class) is receipt


# -- receipt matching --------------------------------------------------------------------------


def test_an_id_is_read_in_one_base_only() -> None:
    assert receipt_form("000A\0", ReceiptIdBase.AS_IS) == "a"
    assert receipt_form("000A\0", ReceiptIdBase.DECIMAL) == "10"
    assert receipt_form("000A", ReceiptIdBase.HEX) is None  # not a decimal number
    assert receipt_form("10", ReceiptIdBase.HEX) == "a"
    assert receipt_form("xyz", ReceiptIdBase.DECIMAL) is None


def test_message_is_delivered_only_when_every_part_is() -> None:
    receipts = PartReceipts(ReceiptIdBase.DECIMAL)
    receipts.track(["0A", "0B"])
    first = StatusReport("10", Status.DELIVERED, "DELIVRD")
    tracked = receipts.find(first).tracked
    assert tracked is not None
    assert PartReceipts.conclude(tracked, first) is None
    second = StatusReport("11", Status.DELIVERED, "DELIVRD:000")  # 0x0B written in decimal
    tracked = receipts.find(second).tracked
    assert tracked is not None
    assert PartReceipts.conclude(tracked, second) == StatusReport(
        "0A", Status.DELIVERED, "DELIVRD:000"
    )
    assert PartReceipts.conclude(tracked, second) is None  # reported once


def test_a_failed_part_settles_the_message_and_interim_states_do_not() -> None:
    receipts = PartReceipts()
    receipts.track(["1", "2"])
    tracked = receipts.find(StatusReport("2", Status.SENT, "ENROUTE")).tracked
    assert tracked is not None
    assert PartReceipts.conclude(tracked, StatusReport("2", Status.SENT, "ENROUTE")) is None
    settled = PartReceipts.conclude(tracked, StatusReport("2", Status.UNDELIVERED, "UNDELIV"))
    assert settled == StatusReport("1", Status.UNDELIVERED, "UNDELIV")
    assert receipts.find(StatusReport("3", Status.DELIVERED, "DELIVRD")).tracked is None


def test_oldest_ids_are_forgotten_first() -> None:
    receipts = PartReceipts(capacity=2)
    receipts.track(["x1"])
    receipts.track(["x2"])
    receipts.track(["x3"])
    assert receipts.find(StatusReport("x1", Status.DELIVERED, "")).tracked is None
    assert receipts.find(StatusReport("x3", Status.DELIVERED, "")).tracked is not None


# -- mobile-originated -------------------------------------------------------------------------


def test_mo_in_ucs2_and_in_a_message_payload() -> None:
    ucs2 = codec.parse_mo("46701234563", "12345", "Ответ".encode("utf-16-be"), 8, 0, [])
    assert (ucs2.text, ucs2.concat, ucs2.is_partial) == ("Ответ", None, False)
    payload = codec.parse_mo("a", "b", b"", 0, 0, [(0x0424, to_gsm7_septets("Svar {ja}"))])
    assert payload.text == "Svar {ja}"


def test_mo_with_a_16_bit_concatenation_reference() -> None:
    udh = bytes([6, 8, 4, 0x12, 0x34, 2, 1])
    part = codec.parse_mo("a", "b", udh + to_gsm7_septets("Hej"), 0, 0x40, [])
    assert (part.text, part.concat, part.is_partial) == ("Hej", (0x1234, 2, 1), True)


@pytest.mark.parametrize(
    ("address", "shown"),
    [("46701234567", "+46701234567"), ("12345", "12345"), ("Bank", "Bank")],
)
def test_mo_sender_as_stored(address: str, shown: str) -> None:
    assert codec.phone_number(address) == shown


# -- command_status → errors -------------------------------------------------------------------


def test_submit_answers_become_ids_or_errors() -> None:
    assert statuses.submit_outcome(0, "abc", 1.0) == "abc"
    throttled = statuses.submit_outcome(0x58, None, 2.5)
    assert isinstance(throttled, RateLimitedError)
    assert (throttled.code, throttled.retry_after) == ("0x58", 2.5)
    assert "throttling" in throttled.message
    full = statuses.submit_outcome(0x14, None, 1.0)
    assert isinstance(full, RateLimitedError) and "full queue" in full.message
    refused = statuses.submit_outcome(0x0B, None, 1.0)
    assert isinstance(refused, PermanentError) and refused.code == "0x0B"
    assert "destination address is invalid" in refused.message
    other = statuses.submit_outcome(0x45, None, 1.0)
    assert type(other) is TemporaryError and other.code == "0x45"
    no_id = statuses.submit_outcome(0, "", 1.0)
    assert type(no_id) is TemporaryError and "no message_id" in no_id.message


def test_bind_failures_tell_credentials_from_the_network() -> None:
    wrong = statuses.bind_failure(Exception("bind refused (0x0E)"), "smsc:2775", 5)
    assert isinstance(wrong, AuthenticationError) and wrong.code == "0x0E"
    assert "password" in wrong.message
    silent = statuses.bind_failure(TimeoutError(), "smsc:2775", 5)
    assert type(silent) is TemporaryError and silent.code == "timeout"
    assert "within 5 s" in silent.message
    down = statuses.bind_failure(ConnectionRefusedError("refused"), "smsc:2775", 5)
    assert type(down) is TemporaryError and down.code == "connect"
    assert "host, port and TLS" in down.message


def test_hand_made_bind_and_its_refusal() -> None:
    pdu = statuses.bind_transmitter_pdu("smsdesk", "secret", "")
    length, command_id, status, sequence = struct.unpack(">IIII", pdu[:16])
    assert (length, command_id, status, sequence) == (len(pdu), 2, 0, 1)
    assert pdu[16:].split(b"\0")[:3] == [b"smsdesk", b"secret", b""]
    assert statuses.bind_refusal(struct.pack(">IIII", 16, 0x80000002, 0x0E, 1)) == 0x0E
    assert statuses.bind_refusal(struct.pack(">IIII", 16, 0x80000002, 0, 1)) is None
    assert statuses.bind_refusal(struct.pack(">IIII", 16, 0x80000009, 0x0E, 1)) is None
