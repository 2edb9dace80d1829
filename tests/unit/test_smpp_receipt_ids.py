"""Receipt ids are read in the one way the SMSC writes them; a receipt is never given to a guess."""

from __future__ import annotations

import pytest

from smsdesk.domain.message import Status
from smsdesk.domain.sms import StatusReport
from smsdesk.providers.smpp.receipts import PartReceipts, ReceiptIdBase

AUTO, AS_IS, DECIMAL, HEX = (
    ReceiptIdBase.AUTO,
    ReceiptIdBase.AS_IS,
    ReceiptIdBase.DECIMAL,
    ReceiptIdBase.HEX,
)


def receipt(message_id: str) -> StatusReport:
    return StatusReport(message_id, Status.DELIVERED, "DELIVRD")


def first_id(receipts: PartReceipts, receipt_id: str) -> str | None:
    found = receipts.find(receipt(receipt_id))
    return found.tracked.first_id if found.tracked is not None else None


def padded(n: int) -> str:
    return f"{n:08x}"


@pytest.mark.parametrize("base", [AUTO, AS_IS])
def test_hex_ids_from_one_match_their_own_receipt(base: ReceiptIdBase) -> None:
    """The collision found: receipt "0000000d" marked "00000013" (0x0d = 13) delivered."""
    receipts = PartReceipts(base)
    for n in range(1, 40):
        receipts.track([padded(n)])
    assert first_id(receipts, "0000000d") == padded(13)
    assert first_id(receipts, "00000013") == padded(0x13)  # letters seen: read as is
    assert receipts.reading is AS_IS


def test_before_auto_knows_the_base_a_receipt_for_two_messages_is_refused() -> None:
    receipts = PartReceipts(AUTO)
    receipts.track(["13"])
    receipts.track(["19"])  # 0x13 = 19: "19" read as decimal is hex "13"
    found = receipts.find(receipt("19"))
    assert found.ambiguous and found.tracked is None
    assert first_id(receipts, "5") is None


def test_ids_that_look_alike_in_both_bases_go_to_their_own_message_once_set() -> None:
    decimal = PartReceipts(DECIMAL)  # hex answered, decimal in receipts
    as_is = PartReceipts(AS_IS)
    for receipts in (decimal, as_is):
        receipts.track(["13"])
        receipts.track(["19"])
    assert first_id(decimal, "19") == "13" and first_id(decimal, "25") == "19"
    assert first_id(as_is, "19") == "19" and first_id(as_is, "13") == "13"
    assert first_id(decimal, "13") is None  # no message 0x0d was sent


def test_decimal_submit_ids_with_hex_receipts() -> None:
    receipts = PartReceipts(HEX)
    receipts.track(["4097"])
    assert first_id(receipts, "1001") == "4097"
    assert first_id(receipts, "4097") is None


def test_auto_learns_decimal_receipts_from_receipts_only_that_reading_matches() -> None:
    receipts = PartReceipts(AUTO)
    for n in range(0x1001, 0x1011):
        receipts.track([format(n, "x")])  # "100a" has letters: not decimal submit ids
    for n in range(0x1001, 0x1004):
        found = receipts.find(receipt(str(n)))
        assert found.tracked is not None and not found.certain  # waited for, then applied
        assert found.reading is DECIMAL
        receipts.vote(DECIMAL)
    assert receipts.reading is DECIMAL
    found = receipts.find(receipt(str(0x1005)))
    assert found.certain and found.tracked is not None and found.tracked.first_id == "1005"


def test_a_receipt_id_with_letters_is_not_decimal() -> None:
    receipts = PartReceipts(AUTO)
    receipts.track(["10"])
    receipts.track(["16"])
    found = receipts.find(receipt("a"))  # only hex receipts of decimal ids can say "a"
    assert found.tracked is not None and found.tracked.first_id == "10"
    assert found.reading is HEX and not found.certain  # "a" could be a message not yet answered
