"""The customer step of processing a batch of inbound SMS: who wrote, made known if need be.

A sender whose number belongs to nobody becomes a customer named after the number (flagged
`created_from_sms`), so every conversation has a customer an administrator can rename later.
The batch reads what it needs once and writes the new customers together at the end.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import Connection

from smsdesk.domain.ids import new_id
from smsdesk.store import customers as store


class SmsCustomers:
    """The customers of one batch's senders: those found, and those it will create."""

    def __init__(self, conn: Connection, language: str, now: float) -> None:
        self.conn = conn
        self.language = language  # of customers made from an SMS: the SMS mailbox's
        self.now = now
        self.created = 0
        self._of: dict[str, str] = {}  # number -> customer id
        self._new: list[dict[str, Any]] = []
        self._new_numbers: list[dict[str, Any]] = []

    def load(self, numbers: Iterable[str], chosen: dict[str, str]) -> set[str]:
        """Find the senders' customers (`chosen` overrides some) and lock them; their ids."""
        self._of = store.customer_ids_by_number(self.conn, numbers)
        self._of.update(chosen)
        customer_ids = set(self._of.values())
        store.lock_customers(self.conn, customer_ids)
        return customer_ids

    def known(self, number: str) -> str | None:
        """The customer a number belongs to, if any (also one this batch creates)."""
        return self._of.get(number)

    def customer_for(self, number: str) -> tuple[str, bool]:
        """The customer with this number, created (flagged as from SMS) if there is none."""
        found = self._of.get(number)
        if found is not None:
            return found, False
        customer_id = new_id()
        self._new.append(
            {
                "id": customer_id,
                "name": number,
                "language": self.language,
                "created_from_sms": True,
                "created_at": self.now,
                "updated_at": self.now,
            }
        )
        self._new_numbers.append({"number": number, "customer_id": customer_id})
        self._of[number] = customer_id
        self.created += 1
        return customer_id, True

    def write(self) -> None:
        """Store the customers this batch created, before anything that refers to them."""
        store.insert_customers(self.conn, self._new, self._new_numbers)
