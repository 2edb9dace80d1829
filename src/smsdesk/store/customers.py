"""Customers and their mobile numbers in the database; one number belongs to one customer.

Functions that change data take a connection and run as writer jobs, so they commit with
nothing else half-done; reads take any connection. Input is checked by `customers.checks`
first (names, languages and numbers normalised to E.164), so these only see clean values.

Errors:
    DomainError            bad input, with the field it concerns (an API 422)
    └── NumberTaken        a number already belongs to another customer (an API 409)
    CustomerNotFound       no customer with that id (an API 404)
    CustomerInUse          the customer has requests, so it is kept (an API 409)
    NumbersChanged         a row's number was taken meanwhile by another process
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy import Connection
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from smsdesk.domain.errors import DomainError
from smsdesk.domain.ids import new_id
from smsdesk.store.tables import customer_numbers, customer_tags, customers, requests
from smsdesk.store.writer import Writer

T = TypeVar("T")


class NumberTaken(DomainError):
    """A number that already belongs to another customer."""

    field = "numbers"

    def __init__(self, number: str, customer_id: str, customer_name: str) -> None:
        super().__init__(
            f"{number} already belongs to customer '{customer_name}' ({customer_id}); "
            "remove it there first or edit that customer instead."
        )
        self.number = number
        self.customer_id = customer_id
        self.customer_name = customer_name


class CustomerNotFound(LookupError):
    def __init__(self, customer_id: str) -> None:
        super().__init__(f"There is no customer with id '{customer_id}'.")
        self.message = str(self)


class CustomerInUse(Exception):
    def __init__(self, customer_id: str, request_count: int) -> None:
        super().__init__(
            f"Customer {customer_id} has {request_count} request(s) and is kept so their "
            "history stays complete; remove or change its numbers instead."
        )
        self.message = str(self)


class NumbersChanged(Exception):
    """A number was given to a customer by another process meanwhile (a unique-number clash)."""


@dataclass(frozen=True)
class Customer:
    id: str
    name: str
    language: str
    created_from_sms: bool
    created_at: float
    updated_at: float
    numbers: tuple[str, ...]
    tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class CustomerChanges:
    """Checked changes to a customer; None leaves a field as it is, numbers replace all."""

    name: str | None = None
    language: str | None = None
    numbers: tuple[str, ...] | None = None
    add_numbers: tuple[str, ...] = field(default=())
    tags: tuple[str, ...] | None = None  # replaces all tags


def owners(conn: Connection, numbers: Iterable[str]) -> dict[str, tuple[str, str]]:
    """number -> (customer id, customer name) for those of `numbers` that belong to someone."""
    wanted = list(numbers)
    if not wanted:
        return {}
    rows = conn.execute(
        sa.select(customer_numbers.c.number, customers.c.id, customers.c.name)
        .join(customers, customers.c.id == customer_numbers.c.customer_id)
        .where(customer_numbers.c.number.in_(wanted))
    )
    return {row.number: (row.id, row.name) for row in rows}


def _refuse_taken(conn: Connection, numbers: Iterable[str], customer_id: str | None) -> None:
    for number, (owner_id, owner_name) in owners(conn, numbers).items():
        if owner_id != customer_id:
            raise NumberTaken(number, owner_id, owner_name)


def insert_customer(
    conn: Connection,
    *,
    name: str,
    language: str,
    numbers: Sequence[str],
    now: float,
    created_from_sms: bool = False,
    tags: Sequence[str] = (),
) -> str:
    """Add a customer with checked values; NumberTaken if a number is someone else's."""
    _refuse_taken(conn, numbers, None)
    customer_id = new_id()
    conn.execute(
        customers.insert().values(
            id=customer_id,
            name=name,
            language=language,
            created_from_sms=created_from_sms,
            created_at=now,
            updated_at=now,
        )
    )
    conn.execute(
        customer_numbers.insert(), [{"number": n, "customer_id": customer_id} for n in numbers]
    )
    _insert_tags(conn, customer_id, tags)
    return customer_id


def _insert_tags(conn: Connection, customer_id: str, tags: Iterable[str]) -> None:
    rows = [{"customer_id": customer_id, "tag": tag} for tag in dict.fromkeys(tags)]
    if rows:
        conn.execute(customer_tags.insert(), rows)


def tags_of(conn: Connection, customer_id: str) -> list[str]:
    return list(
        conn.execute(
            sa.select(customer_tags.c.tag)
            .where(customer_tags.c.customer_id == customer_id)
            .order_by(customer_tags.c.tag)
        ).scalars()
    )


def tag_counts(conn: Connection) -> list[tuple[str, int]]:
    """Every tag in use with the number of customers carrying it, by tag."""
    query = (
        sa.select(customer_tags.c.tag, sa.func.count())
        .group_by(customer_tags.c.tag)
        .order_by(customer_tags.c.tag)
    )
    return [(tag, count) for tag, count in conn.execute(query)]


def _lock(conn: Connection, customer_id: str) -> sa.Row[Any]:
    """The customer's row, locked until commit (PostgreSQL) so inbound SMS wait for us."""
    row = conn.execute(
        sa.select(customers).where(customers.c.id == customer_id).with_for_update()
    ).first()
    if row is None:
        raise CustomerNotFound(customer_id)
    return row


def numbers_of(conn: Connection, customer_id: str) -> list[str]:
    return list(
        conn.execute(
            sa.select(customer_numbers.c.number)
            .where(customer_numbers.c.customer_id == customer_id)
            .order_by(customer_numbers.c.number)
        ).scalars()
    )


def update_customer(
    conn: Connection, customer_id: str, changes: CustomerChanges, now: float
) -> list[str]:
    """Apply `changes`; the names of the fields that really changed (empty: nothing did)."""
    row = _lock(conn, customer_id)
    changed: list[str] = []
    values: dict[str, Any] = {}
    if changes.name is not None and changes.name != row.name:
        values["name"] = changes.name
    if changes.language is not None and changes.language != row.language:
        values["language"] = changes.language
    changed.extend(values)
    current = numbers_of(conn, customer_id)
    wanted = list(changes.numbers) if changes.numbers is not None else list(current)
    wanted += [n for n in changes.add_numbers if n not in wanted]
    if set(wanted) != set(current):
        added = [n for n in wanted if n not in current]
        _refuse_taken(conn, added, customer_id)
        removed = [n for n in current if n not in wanted]
        if removed:
            conn.execute(customer_numbers.delete().where(customer_numbers.c.number.in_(removed)))
        if added:
            conn.execute(
                customer_numbers.insert(),
                [{"number": n, "customer_id": customer_id} for n in added],
            )
        changed.append("numbers")
    if changes.tags is not None and sorted(set(changes.tags)) != tags_of(conn, customer_id):
        conn.execute(customer_tags.delete().where(customer_tags.c.customer_id == customer_id))
        _insert_tags(conn, customer_id, changes.tags)
        changed.append("tags")
    if changed:
        values["updated_at"] = now
        conn.execute(customers.update().where(customers.c.id == customer_id).values(**values))
    return changed


def remove_number(conn: Connection, customer_id: str, number: str, now: float) -> None:
    """Take one number from a customer; the last number cannot be removed."""
    _lock(conn, customer_id)
    current = numbers_of(conn, customer_id)
    if number not in current:
        raise DomainError(f"{number} is not a number of customer {customer_id}.", field="number")
    if len(current) == 1:
        raise DomainError(
            f"{number} is the customer's only number; add another first or delete the customer.",
            field="number",
        )
    conn.execute(customer_numbers.delete().where(customer_numbers.c.number == number))
    conn.execute(customers.update().where(customers.c.id == customer_id).values(updated_at=now))


def delete_customer(conn: Connection, customer_id: str) -> None:
    """Delete a customer and its numbers; CustomerInUse if it has requests."""
    _lock(conn, customer_id)
    count = conn.execute(
        sa.select(sa.func.count())
        .select_from(requests)
        .where(requests.c.customer_id == customer_id)
    ).scalar_one()
    if count:
        raise CustomerInUse(customer_id, count)
    conn.execute(customer_numbers.delete().where(customer_numbers.c.customer_id == customer_id))
    conn.execute(customer_tags.delete().where(customer_tags.c.customer_id == customer_id))
    conn.execute(customers.delete().where(customers.c.id == customer_id))


def _with_numbers(conn: Connection, rows: Sequence[sa.Row[Any]]) -> list[Customer]:
    numbers: dict[str, list[str]] = {row.id: [] for row in rows}
    if numbers:
        for number, customer_id in conn.execute(
            sa.select(customer_numbers.c.number, customer_numbers.c.customer_id)
            .where(customer_numbers.c.customer_id.in_(list(numbers)))
            .order_by(customer_numbers.c.number)
        ):
            numbers[customer_id].append(number)
    tags: dict[str, list[str]] = {row.id: [] for row in rows}
    if tags:
        for tag, customer_id in conn.execute(
            sa.select(customer_tags.c.tag, customer_tags.c.customer_id)
            .where(customer_tags.c.customer_id.in_(list(tags)))
            .order_by(customer_tags.c.tag)
        ):
            tags[customer_id].append(tag)
    return [
        Customer(
            id=row.id,
            name=row.name,
            language=row.language,
            created_from_sms=bool(row.created_from_sms),
            created_at=row.created_at,
            updated_at=row.updated_at,
            numbers=tuple(numbers[row.id]),
            tags=tuple(tags[row.id]),
        )
        for row in rows
    ]


def get_customer(conn: Connection, customer_id: str) -> Customer | None:
    rows = conn.execute(sa.select(customers).where(customers.c.id == customer_id)).all()
    found = _with_numbers(conn, rows)
    return found[0] if found else None


def customer_by_number(conn: Connection, number: str) -> Customer | None:
    """The customer an E.164 number belongs to."""
    owner = owners(conn, [number]).get(number)
    return get_customer(conn, owner[0]) if owner else None


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def list_customers(
    conn: Connection,
    *,
    search: str | None = None,
    also_number: str | None = None,
    before: str | None = None,
    limit: int = 50,
) -> list[Customer]:
    """Newest first; `search` matches part of the name (any case) or part of a number.

    `also_number` (the search normalised to E.164, if it is a number) matches exactly.
    """
    query = sa.select(customers).order_by(customers.c.id.desc())
    if before:
        query = query.where(customers.c.id < before)
    text = (search or "").strip()
    if text:
        conditions: list[Any] = [sa.func.lower(customers.c.name).like(_like(text.lower()), "\\")]
        digits = "".join(ch for ch in text if ch.isdigit())
        patterns: list[Any] = (
            [customer_numbers.c.number.like(_like(digits), "\\")] if digits else []
        )
        if also_number:
            patterns.append(customer_numbers.c.number == also_number)
        if patterns:
            conditions.append(
                customers.c.id.in_(
                    sa.select(customer_numbers.c.customer_id).where(sa.or_(*patterns))
                )
            )
        query = query.where(sa.or_(*conditions))
    return _with_numbers(conn, conn.execute(query.limit(limit)).all())


def customer_exists(conn: Connection, customer_id: str) -> bool:
    """Whether there is a customer with this id (without reading its numbers)."""
    found = conn.execute(sa.select(customers.c.id).where(customers.c.id == customer_id)).first()
    return found is not None


def customer_ids_by_number(conn: Connection, numbers: Iterable[str]) -> dict[str, str]:
    """number -> customer id for those of `numbers` (E.164) that belong to a customer."""
    wanted = set(numbers)
    if not wanted:
        return {}
    rows = conn.execute(
        sa.select(customer_numbers.c.number, customer_numbers.c.customer_id).where(
            customer_numbers.c.number.in_(wanted)
        )
    )
    return {number: customer for number, customer in rows}


def lock_customers(conn: Connection, customer_ids: Iterable[str]) -> None:
    """Lock the customers' rows until commit (PostgreSQL): two processes handling the same
    customer's SMS take turns, so they never open two requests for one conversation."""
    wanted = set(customer_ids)
    if wanted:
        conn.execute(
            sa.select(customers.c.id).where(customers.c.id.in_(wanted)).with_for_update()
        ).all()


def insert_customers(
    conn: Connection, rows: Sequence[dict[str, Any]], numbers: Sequence[dict[str, Any]]
) -> None:
    """Add complete customer rows and their number rows at once (customers made from SMS)."""
    if rows:
        conn.execute(customers.insert(), list(rows))
        conn.execute(customer_numbers.insert(), list(numbers))


def written(
    writer: Writer, engine: Engine, job: Callable[[Connection], T], numbers: Sequence[str]
) -> T:
    """Run `job`; a number taken meanwhile by another process becomes NumberTaken too."""
    try:
        return writer.run_sync(job)
    except IntegrityError:
        with engine.connect() as conn:
            taken = owners(conn, numbers)
        for number, (owner_id, owner_name) in taken.items():
            raise NumberTaken(number, owner_id, owner_name) from None
        raise


def in_savepoint(conn: Connection, work: Callable[[], T]) -> T:
    """Run `work` in a savepoint, undone if it raises DomainError or NumbersChanged.

    Lets one bad row of an import fail alone while the rest of the transaction goes on.
    """
    savepoint = conn.begin_nested()
    try:
        result = work()
    except DomainError:
        savepoint.rollback()
        raise
    except IntegrityError:
        savepoint.rollback()
        raise NumbersChanged from None
    savepoint.commit()
    return result
