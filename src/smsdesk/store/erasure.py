"""Everything held about one person (a customer, or a number nobody holds): found and erased.

A person is a customer id (or none) and their numbers in E.164. What belongs to them:

- the customer row and its numbers; their requests and the requests' conversations;
- every outbound message to one of their numbers or in one of their requests, its timeline,
  and delivery reports still waiting for it;
- every inbound SMS from one of their numbers (as the provider wrote it: +E.164, digits only
  or with 00), of theirs or in one of their requests;
- in the stored answers of Idempotency-Key requests, their messages (each becomes
  `{"id": ..., "status": "erased"}`) and their numbers (`[erased]`); the record itself stays,
  so a client retrying a batch that also went to others does not send it twice;
- webhook deliveries whose payload names the customer, a number or a request of theirs;
- rows of any other table tied to their customer, requests, messages or inbound SMS by a
  `customer_id`, `request_id`, `message_id` or `inbound_id` column (e.g. notifications to
  agents about their requests, read marks), and live-feed events keyed by one of those ids.

An opt-out of one of their numbers is kept as a keyed hash (`optouts.keep_as_erased`). The
audit trail is not touched: its entries name ids and counts, never a number or a text.

`erase` runs in the caller's transaction, so the person goes at once or not at all. It refuses
(`MessageBeingSent`) while a dispatcher has one of their messages leased; queued ones are
erased with the rest. On PostgreSQL their messages are locked first, so a dispatcher cannot
claim one meanwhile (it skips locked rows). Searching webhook deliveries and idempotency
records for their values reads those tables whole: an erasure is rare, and they are purged by
retention.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection

from smsdesk.store import optouts
from smsdesk.store.tables import (
    customer_numbers,
    customers,
    idempotency_keys,
    inbound_messages,
    live_events,
    mailing_recipients,
    message_events,
    messages,
    metadata,
    opt_outs,
    request_messages,
    requests,
    unmatched_reports,
    webhook_deliveries,
)

_CHUNK = 500  # values per IN (...) list
_PATTERNS = 50  # LIKE patterns per query

# Tables `erase` handles one by one; any other table is searched by its linking columns.
_HANDLED = frozenset(
    t.name
    for t in (
        customers,
        customer_numbers,
        requests,
        request_messages,
        messages,
        message_events,
        inbound_messages,
        live_events,
        idempotency_keys,
        webhook_deliveries,
        unmatched_reports,
        opt_outs,
    )
)
_LINKS = ("customer_id", "request_id", "message_id", "inbound_id")


class MessageBeingSent(Exception):
    """A message to the person is being handed to a provider right now."""

    def __init__(self, count: int) -> None:
        super().__init__(
            "A message to this customer is being sent right now; try again in a minute."
        )
        self.message = str(self)
        self.count = count


@dataclass(frozen=True, slots=True)
class Person:
    customer_id: str | None
    numbers: tuple[str, ...]  # E.164

    def sender_forms(self) -> list[str]:
        """Each number as providers write a sender: +E.164, digits only, and 00 + digits."""
        forms: list[str] = []
        for number in self.numbers:
            digits = number.lstrip("+")
            forms.extend((number, digits, "00" + digits))
        return forms


@dataclass(slots=True)
class Holdings:
    """Ids of the rows held about a person."""

    request_ids: list[str] = field(default_factory=list)
    messages: list[Any] = field(default_factory=list)  # rows: id, status, module, provider id
    inbound_ids: list[str] = field(default_factory=list)

    @property
    def message_ids(self) -> list[str]:
        return [row.id for row in self.messages]


def _chunks(values: Sequence[Any], size: int = _CHUNK) -> Iterator[Sequence[Any]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def _quoted_like(column: Any, values: Sequence[str]) -> Any:
    """`column` contains one of `values` as a whole JSON string ("value")."""
    return sa.or_(*(column.contains(f'"{v}"', autoescape=True) for v in values))


def holdings(conn: Connection, person: Person, *, lock: bool = False) -> Holdings:
    """The person's requests, messages and inbound SMS; `lock` locks the messages (PostgreSQL)."""
    found = Holdings()
    if person.customer_id is not None:
        found.request_ids = list(
            conn.execute(
                sa.select(requests.c.id)
                .where(requests.c.customer_id == person.customer_id)
                .order_by(requests.c.created_at)
            ).scalars()
        )
    m = messages
    wanted: list[sa.ColumnElement[bool]] = []
    if person.numbers:
        wanted.append(m.c.recipient.in_(person.numbers))
    wanted += [m.c.request_id.in_(chunk) for chunk in _chunks(found.request_ids)]
    if wanted:
        query = (
            sa.select(m.c.id, m.c.status, m.c.module, m.c.provider_message_id)
            .where(sa.or_(*wanted))
            .order_by(m.c.id)
        )
        if lock and conn.dialect.name == "postgresql":
            query = query.with_for_update()
        found.messages = list(conn.execute(query).all())
    i = inbound_messages
    senders: list[sa.ColumnElement[bool]] = []
    if person.numbers:
        senders.append(i.c.sender.in_(person.sender_forms()))
    if person.customer_id is not None:
        senders.append(i.c.customer_id == person.customer_id)
    senders += [i.c.request_id.in_(chunk) for chunk in _chunks(found.request_ids)]
    if senders:
        found.inbound_ids = list(
            conn.execute(sa.select(i.c.id).where(sa.or_(*senders)).order_by(i.c.id)).scalars()
        )
    return found


def _delete_in(conn: Connection, table: sa.Table, column: str, values: Sequence[Any]) -> int:
    removed = 0
    for chunk in _chunks(values):
        removed += conn.execute(table.delete().where(table.c[column].in_(chunk))).rowcount
    return removed


def _delete_mentioning(conn: Connection, table: sa.Table, column: str, values: list[str]) -> int:
    removed = 0
    for chunk in _chunks(values, _PATTERNS):
        removed += conn.execute(table.delete().where(_quoted_like(table.c[column], chunk))).rowcount
    return removed


def deliveries_mentioning(conn: Connection, person: Person, found: Holdings) -> list[sa.Row[Any]]:
    """Webhook deliveries whose payload names the customer, a number or a request of theirs."""
    values = _mentions(person, found)
    rows: dict[str, sa.Row[Any]] = {}
    d = webhook_deliveries
    for chunk in _chunks(values, _PATTERNS):
        for row in conn.execute(sa.select(d).where(_quoted_like(d.c.payload, chunk))):
            rows[row.id] = row
    return sorted(rows.values(), key=lambda row: row.id)


def _mentions(person: Person, found: Holdings) -> list[str]:
    values = person.sender_forms() + found.request_ids
    if person.customer_id is not None:
        values.append(person.customer_id)
    return values


def _redact_answers(conn: Connection, person: Person, message_ids: list[str]) -> int:
    """Take the person out of stored Idempotency-Key answers; how many answers changed."""
    ik = idempotency_keys
    forms = sorted(person.sender_forms(), key=len, reverse=True)
    erased_ids = set(message_ids)
    changed = 0
    for chunk in _chunks(person.sender_forms() + message_ids, _PATTERNS):
        rows = conn.execute(
            sa.select(ik.c.api_key_id, ik.c.key, ik.c.response).where(
                sa.or_(*(ik.c.response.contains(v, autoescape=True) for v in chunk))
            )
        ).all()
        for row in rows:
            answer = json.loads(row.response)
            redacted = _redacted(answer, erased_ids, forms)
            if redacted != answer:
                text = json.dumps(redacted, ensure_ascii=False, separators=(",", ":"))
                conn.execute(
                    ik.update()
                    .where(ik.c.api_key_id == row.api_key_id, ik.c.key == row.key)
                    .values(response=text)
                )
                changed += 1
    return changed


def _redacted(value: Any, erased_ids: set[str], forms: list[str]) -> Any:
    if isinstance(value, dict):
        if value.get("id") in erased_ids:
            return {"id": value["id"], "status": "erased"}
        return {k: _redacted(v, erased_ids, forms) for k, v in value.items()}
    if isinstance(value, list):
        return [_redacted(v, erased_ids, forms) for v in value]
    if isinstance(value, str):
        for form in forms:
            value = value.replace(form, "[erased]")
    return value


def _unmatched_reports(conn: Connection, found: Holdings) -> int:
    by_module: dict[str, list[str]] = {}
    for row in found.messages:
        if row.provider_message_id:
            by_module.setdefault(row.module, []).append(row.provider_message_id)
    removed = 0
    u = unmatched_reports
    for module, ids in by_module.items():
        for chunk in _chunks(ids):
            removed += conn.execute(
                u.delete().where(u.c.module == module, u.c.provider_message_id.in_(chunk))
            ).rowcount
    return removed


def _linked_elsewhere(conn: Connection, person: Person, found: Holdings) -> dict[str, int]:
    """Rows of the tables not handled by name that are tied to the person by an id column."""
    ids = {
        "customer_id": [person.customer_id] if person.customer_id else [],
        "request_id": found.request_ids,
        "message_id": found.message_ids,
        "inbound_id": found.inbound_ids,
    }
    counts: dict[str, int] = {}
    for table in reversed(metadata.sorted_tables):
        if table.name in _HANDLED or table.name.startswith(("audit_", "erased_")):
            continue
        for column in _LINKS:
            if column in table.c and ids[column]:
                removed = _delete_in(conn, table, column, ids[column])
                if removed:
                    name = str(table.name)  # a plain str: the JSON answer takes it as a key
                    counts[name] = counts.get(name, 0) + removed
    return counts


def erase(conn: Connection, person: Person, key: bytes, now: float) -> dict[str, int]:
    """Remove everything held about `person` in this transaction; the count of each kind.

    MessageBeingSent (nothing changed) if one of their messages is leased by a dispatcher.
    """
    found = holdings(conn, person, lock=True)
    sending = sum(1 for row in found.messages if row.status == "sending")
    if sending:
        raise MessageBeingSent(sending)
    message_ids = found.message_ids
    counts: dict[str, int] = {}
    counts.update(_linked_elsewhere(conn, person, found))
    counts["webhook_deliveries"] = _delete_mentioning(
        conn, webhook_deliveries, "payload", _mentions(person, found)
    )
    counts["idempotency_keys"] = _redact_answers(conn, person, message_ids)
    counts["unmatched_reports"] = _unmatched_reports(conn, found)
    keys = found.request_ids + message_ids + found.inbound_ids
    counts["live_events"] = _delete_in(
        conn, live_events, "key", keys + ([person.customer_id] if person.customer_id else [])
    )
    counts["message_events"] = _delete_in(conn, message_events, "message_id", message_ids)
    counts["messages"] = _delete_in(conn, messages, "id", message_ids)
    counts["conversation_entries"] = _delete_in(
        conn, request_messages, "request_id", found.request_ids
    )
    counts["requests"] = _delete_in(conn, requests, "id", found.request_ids)
    counts["inbound_sms"] = _delete_in(conn, inbound_messages, "id", found.inbound_ids)
    # Mailing recipients added by number, with no customer: found by the number itself.
    counts["mailing_recipients"] = counts.get("mailing_recipients", 0) + _delete_in(
        conn, mailing_recipients, "number", list(person.numbers)
    )
    counts["opt_outs_kept_as_hash"] = sum(
        optouts.keep_as_erased(conn, number, key, now) for number in person.numbers
    )
    if person.customer_id is not None:
        counts["numbers"] = _delete_in(conn, customer_numbers, "customer_id", [person.customer_id])
        counts["customers"] = _delete_in(conn, customers, "id", [person.customer_id])
    else:
        counts["numbers"] = len(person.numbers)
        counts["customers"] = 0
    return counts


def person_of_customer(conn: Connection, customer_id: str) -> Person | None:
    """The customer and their numbers, or None if there is no such customer."""
    row = conn.execute(sa.select(customers.c.id).where(customers.c.id == customer_id)).first()
    if row is None:
        return None
    numbers = conn.execute(
        sa.select(customer_numbers.c.number)
        .where(customer_numbers.c.customer_id == customer_id)
        .order_by(customer_numbers.c.number)
    ).scalars()
    return Person(customer_id, tuple(numbers))


def person_of_number(conn: Connection, number: str) -> Person:
    """The customer holding `number` (E.164) with all their numbers, or the number alone."""
    owner = conn.execute(
        sa.select(customer_numbers.c.customer_id).where(customer_numbers.c.number == number)
    ).scalar()
    if owner is not None:
        person = person_of_customer(conn, owner)
        if person is not None:
            return person
    return Person(None, (number,))


# -- reading, for an export ----------------------------------------------------------------------


def customer_row(conn: Connection, customer_id: str) -> sa.Row[Any] | None:
    return conn.execute(sa.select(customers).where(customers.c.id == customer_id)).first()


def _rows_in(
    conn: Connection, column: sa.Column[Any], ids: Sequence[str], order: Sequence[str]
) -> list[sa.Row[Any]]:
    """The rows of `column`'s table whose `column` is one of `ids`, sorted by `order`."""
    rows: list[sa.Row[Any]] = []
    for chunk in _chunks(ids):
        rows += conn.execute(sa.select(column.table).where(column.in_(chunk))).all()
    return sorted(rows, key=lambda row: tuple(getattr(row, name) for name in order))


def request_rows(conn: Connection, request_ids: Sequence[str]) -> list[sa.Row[Any]]:
    return _rows_in(conn, requests.c.id, request_ids, ("created_at", "id"))


def conversation_rows(conn: Connection, request_ids: Sequence[str]) -> list[sa.Row[Any]]:
    return _rows_in(conn, request_messages.c.request_id, request_ids, ("id",))


def message_rows(conn: Connection, message_ids: Sequence[str]) -> list[sa.Row[Any]]:
    return _rows_in(conn, messages.c.id, message_ids, ("created_at", "id"))


def timeline_rows(conn: Connection, message_ids: Sequence[str]) -> list[sa.Row[Any]]:
    return _rows_in(conn, message_events.c.message_id, message_ids, ("id",))


def inbound_rows(conn: Connection, inbound_ids: Sequence[str]) -> list[sa.Row[Any]]:
    return _rows_in(conn, inbound_messages.c.id, inbound_ids, ("received_at", "id"))


def opt_out_rows(conn: Connection, numbers: Iterable[str]) -> dict[str, sa.Row[Any] | None]:
    """Each number's opt-out entry (None when it may receive SMS)."""
    return {number: optouts.get_opt_out(conn, number) for number in numbers}
