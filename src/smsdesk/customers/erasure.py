"""Erasing a customer (or a number nobody holds): everything about them goes in one transaction.

What goes and what stays is listed in `store.erasure`. An opt-out stays as a keyed hash of the
number, so the number still receives nothing; a START from it later opts it in again, as from
any number. The erasure is recorded in the audit trail in the same transaction, with the
customer's id and the count of each kind of row, never a number, a name or a text.

A message being handed to a provider right now (leased by a dispatcher) cannot be taken back:
the erasure is refused with `MessageBeingSent` and can be tried again a moment later. Queued
and scheduled messages are erased, so they are never sent.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from sqlalchemy import Connection

from smsdesk.customers import normalise_for_lookup
from smsdesk.domain.audit import Actor
from smsdesk.host import Host
from smsdesk.store import audit
from smsdesk.store import erasure as store
from smsdesk.store.customers import CustomerNotFound
from smsdesk.store.erasure import MessageBeingSent, Person

__all__ = ["Erased", "ErasureHost", "MessageBeingSent", "erase_customer", "erase_number"]


class ErasureHost(Host, Protocol):
    """A host with the installation's key for keyed hashes (opt-outs kept, the audit chain)."""

    @property
    def hash_key(self) -> bytes: ...


@dataclass(frozen=True, slots=True)
class Erased:
    """What an erasure removed: the customer's id (None for a number alone) and counts."""

    customer_id: str | None
    counts: dict[str, int]


def erase_customer(service: ErasureHost, customer_id: str, actor: Actor) -> Erased:
    """Erase the customer with this id; CustomerNotFound if there is none."""
    key = service.hash_key
    now = service.clock()

    def job(conn: Connection) -> Erased:
        person = store.person_of_customer(conn, customer_id)
        if person is None:
            raise CustomerNotFound(customer_id)
        return _erase(conn, person, key, now, actor)

    return service.writer.run_sync(job)


def erase_number(service: ErasureHost, number: str, actor: Actor) -> Erased:
    """Erase the customer holding `number` (as typed); without one, everything of the number."""
    e164 = normalise_for_lookup(service, number)
    key = service.hash_key
    now = service.clock()

    def job(conn: Connection) -> Erased:
        return _erase(conn, store.person_of_number(conn, e164), key, now, actor)

    return service.writer.run_sync(job)


def _erase(conn: Connection, person: Person, key: bytes, now: float, actor: Actor) -> Erased:
    counts = store.erase(conn, person, key, now)
    audit.append(
        conn,
        key,
        actor,
        "customer.erased",
        now,
        target_kind="customer" if person.customer_id else "number",
        target_id=person.customer_id,
        details={"counts": counts},
    )
    return Erased(person.customer_id, counts)
