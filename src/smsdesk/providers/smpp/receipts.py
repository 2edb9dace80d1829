"""Which sent message a delivery receipt belongs to, and when a message's receipts are conclusive.

A message of several parts gets one SMSC id per part, and receipts come per part, in any order,
with the id written however the SMSC likes (hex, decimal, zero-padded, NUL-terminated). The
message's own provider id is its first part's; it is reported once, when every part was
delivered or when the first part fails for good.
"""

from __future__ import annotations

import contextlib
from collections import OrderedDict
from dataclasses import dataclass, field

from smsdesk.domain.message import Status
from smsdesk.domain.sms import StatusReport

MAX_TRACKED_IDS = 500_000  # id forms remembered; the oldest go first


@dataclass(slots=True)
class Tracked:
    """A sent message whose part receipts are still being collected."""

    first_id: str
    parts: int
    delivered: set[str] = field(default_factory=set)
    done: bool = False


def normal_id(message_id: str) -> str:
    """An id as a receipt is looked up by: trimmed, lower case, without leading zeros."""
    return message_id.strip().strip("\0").lower().lstrip("0") or "0"


def hex_and_decimal_id_forms(message_id: str) -> set[str]:
    """The forms a receipt may give an id in: as is, and read as hex or decimal the other way.

    Known problem, kept as it is for now: every id is registered both as the SMSC wrote it and
    converted between hex and decimal, so one message's id in one base can equal another's in
    the other ("10" is also registered as "16" and "a"), and a receipt may then match the wrong
    message. Fixing it means knowing per SMSC which base its receipts use.
    """
    raw = message_id.strip().strip("\0").lower()
    forms = {raw.lstrip("0") or "0"}
    with contextlib.suppress(ValueError):
        forms.add(str(int(raw, 16)))
    if raw.isdigit():
        forms.add(format(int(raw), "x"))
    return forms


class PartReceipts:
    """The sent messages' part ids, remembered so that their receipts can be matched."""

    def __init__(self, capacity: int = MAX_TRACKED_IDS) -> None:
        self._parts: OrderedDict[str, Tracked] = OrderedDict()
        self._capacity = capacity

    def track(self, ids: list[str]) -> None:
        """Remember the SMSC ids of one message's parts, the first being the message's own."""
        tracked = Tracked(ids[0], len(ids))
        for message_id in ids:
            for form in hex_and_decimal_id_forms(message_id):
                self._parts[form] = tracked
        while len(self._parts) > self._capacity:
            self._parts.popitem(last=False)

    def find(self, report: StatusReport) -> Tracked | None:
        """The sent message a receipt names a part of, or None when it is not (yet) known."""
        return self._parts.get(normal_id(report.provider_message_id))

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
