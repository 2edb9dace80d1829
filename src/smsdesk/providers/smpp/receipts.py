"""Which sent message a delivery receipt belongs to, and when a message's receipts are conclusive.

A message of several parts gets one SMSC id per part, and receipts come per part, in any order.
An SMSC writes a receipt's id either as its submit_sm_resp gave it (`as_is`, give or take case,
leading zeros and a NUL) or converted: hex ids answered and decimal in receipts (`decimal`), or
the other way round (`hex`). Each message is filed under one reading only: filing it under
both made ids below 0x3e7 collide ("13" is also 0x13 = 19), so a receipt marked the wrong
message. With `auto` the reading is learnt from the ids seen; until it is known a receipt that
two readings would give to two different messages is refused (`Found.ambiguous`), never
applied to a guess. The message's own provider id is its first part's; it is reported once,
when every part was delivered or when a part fails for good.
"""

from __future__ import annotations

import enum
import string
from collections import OrderedDict
from dataclasses import dataclass, field

from smsdesk.domain.message import Status
from smsdesk.domain.sms import StatusReport

MAX_TRACKED_IDS = 500_000  # ids remembered per reading; the oldest go first
VOTES_TO_DECIDE = 3  # receipts only one reading could match before `auto` settles on it
_HEX = frozenset(string.hexdigits.lower())
_LETTERS = frozenset("abcdef")


class ReceiptIdBase(enum.StrEnum):
    """How a receipt's id is written compared with the submit_sm_resp id of its message."""

    AUTO = "auto"  # learnt from the ids seen
    AS_IS = "as_is"  # as the submit_sm_resp gave it (both hex, both decimal, or any text)
    DECIMAL = "decimal"  # submit_sm_resp in hex, receipts in decimal
    HEX = "hex"  # submit_sm_resp in decimal, receipts in hex


READINGS: tuple[ReceiptIdBase, ...] = (
    ReceiptIdBase.AS_IS,
    ReceiptIdBase.DECIMAL,
    ReceiptIdBase.HEX,
)


@dataclass(slots=True)
class Tracked:
    """A sent message whose part receipts are still being collected."""

    first_id: str
    parts: int
    delivered: set[str] = field(default_factory=set)
    done: bool = False


@dataclass(frozen=True, slots=True)
class Found:
    """What a receipt's id names: one message, two (`ambiguous`), or none yet.

    `certain` is False when some reading still in question found nothing: the receipt may
    have overtaken its own submit_sm_resp, so the caller waits a moment before applying it.
    """

    tracked: Tracked | None
    ambiguous: bool = False
    certain: bool = True
    reading: ReceiptIdBase | None = None


def normal_id(message_id: str) -> str:
    """An id as a receipt is looked up by: trimmed, lower case, without leading zeros."""
    return message_id.strip().strip("\0").lower().lstrip("0") or "0"


def receipt_form(message_id: str, reading: ReceiptIdBase) -> str | None:
    """How a receipt in `reading` writes a submit_sm_resp id; None when it cannot be that."""
    raw = normal_id(message_id)
    if reading is ReceiptIdBase.DECIMAL:
        return str(int(raw, 16)) if set(raw) <= _HEX else None
    if reading is ReceiptIdBase.HEX:
        return format(int(raw), "x") if raw.isdigit() else None
    return raw


def readings_left(possible: set[ReceiptIdBase], submit_id: str) -> set[ReceiptIdBase]:
    """What a submit_sm_resp id rules out: letters are not decimal, other text is not a number."""
    raw = normal_id(submit_id)
    if not set(raw) <= _HEX:
        return possible & {ReceiptIdBase.AS_IS}
    if set(raw) & _LETTERS:
        return possible - {ReceiptIdBase.HEX}
    return possible


def readings_left_by_receipt(possible: set[ReceiptIdBase], receipt_id: str) -> set[ReceiptIdBase]:
    """What a receipt's id rules out: a decimal receipt has no letters, no number has others."""
    raw = normal_id(receipt_id)
    if not set(raw) <= _HEX:
        return possible & {ReceiptIdBase.AS_IS}
    if set(raw) & _LETTERS:
        return possible - {ReceiptIdBase.DECIMAL}
    return possible


class PartReceipts:
    """The sent messages' part ids, filed under the reading(s) still possible for this SMSC."""

    def __init__(
        self, base: ReceiptIdBase = ReceiptIdBase.AUTO, capacity: int = MAX_TRACKED_IDS
    ) -> None:
        self._possible: set[ReceiptIdBase] = set(READINGS) if base is ReceiptIdBase.AUTO else {base}
        self._index: dict[ReceiptIdBase, OrderedDict[str, Tracked]] = {
            reading: OrderedDict() for reading in READINGS
        }
        self._votes: dict[ReceiptIdBase, int] = dict.fromkeys(READINGS, 0)
        self._capacity = capacity

    @property
    def reading(self) -> ReceiptIdBase | None:
        """The one reading in use, or None while `auto` has not settled."""
        return next(iter(self._possible)) if len(self._possible) == 1 else None

    def _narrow(self, left: set[ReceiptIdBase]) -> None:
        if left and left != self._possible:  # evidence never rules out every reading
            self._possible = left
            for reading in READINGS:
                if reading not in left:
                    self._index[reading].clear()

    def track(self, ids: list[str]) -> None:
        """Remember the SMSC ids of one message's parts, the first being the message's own."""
        for message_id in ids:
            self._narrow(readings_left(self._possible, message_id))
        tracked = Tracked(ids[0], len(ids))
        for reading in self._possible:
            index = self._index[reading]
            for message_id in ids:
                form = receipt_form(message_id, reading)
                if form is not None:
                    index[form] = tracked
            while len(index) > self._capacity:
                index.popitem(last=False)

    def find(self, report: StatusReport) -> Found:
        """The sent message a receipt names a part of, as far as the readings left can tell."""
        self._narrow(readings_left_by_receipt(self._possible, report.provider_message_id))
        key = normal_id(report.provider_message_id)
        hits = {r: self._index[r][key] for r in self._possible if key in self._index[r]}
        messages = {id(t): t for t in hits.values()}
        if len(messages) > 1:
            return Found(None, ambiguous=True)
        if not messages:
            return Found(None, certain=False)
        [tracked] = messages.values()
        single = next(iter(hits)) if len(hits) == 1 else None
        return Found(tracked, certain=len(hits) == len(self._possible), reading=single)

    def vote(self, reading: ReceiptIdBase) -> None:
        """A receipt only `reading` matched, after waiting for its submit answer: learn from it.

        A receipt that overtook its submit answer can still vote wrongly, so a clear majority
        decides, not a single vote.
        """
        self._votes[reading] += 1
        others = sum(v for r, v in self._votes.items() if r is not reading)
        if self._votes[reading] >= max(VOTES_TO_DECIDE, 3 * others):  # a stray one is noise
            self._narrow({reading})

    @staticmethod
    def conclude(tracked: Tracked, report: StatusReport) -> StatusReport | None:
        """The message's report once this part's receipt settles it, else None.

        Delivered when every part was; otherwise the first final failure of any part decides.
        Receipts that settle nothing (not final, or after the message was settled) give None.
        """
        if tracked.done:
            return None
        final = report.status
        if final is Status.DELIVERED:
            tracked.delivered.add(normal_id(report.provider_message_id))
            if len(tracked.delivered) < tracked.parts:
                return None
        elif not final.is_final:
            return None
        tracked.done = True
        return StatusReport(
            tracked.first_id,
            report.status,
            report.raw_code,
            report.description,
            report.occurred_at,
        )
