"""Customers: a name, a language and one or more mobile numbers (E.164, one owner each).

Customers are made by administrators (API, CLI, CSV import) or automatically from an inbound
SMS (flagged `created_from_sms`, see `customers.from_sms`). These helpers are what the API and
the CLI call: they check input against the SMS configuration (default country code, default
language) and run changes through the service's writer. The database work itself is in
`store.customers`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import TypeVar

from sqlalchemy import Connection

from smsdesk.customers.checks import check_language, check_name, check_numbers, check_tags
from smsdesk.domain.errors import DomainError
from smsdesk.domain.phone import normalise_msisdn
from smsdesk.host import Host
from smsdesk.store import customers as store
from smsdesk.store.customers import (
    Customer,
    CustomerChanges,
    CustomerInUse,
    CustomerNotFound,
    NumberTaken,
)

T = TypeVar("T")


__all__ = [
    "Customer",
    "CustomerInUse",
    "CustomerNotFound",
    "NumberTaken",
    "add_number",
    "create_customer",
    "delete_customer",
    "find_by_number",
    "get_customer",
    "normalise_for_lookup",
    "remove_number",
    "search_customers",
    "tag_counts",
    "update_customer",
]


def _country_code(service: Host) -> str | None:
    return service.settings.load().default_country_code or None


def get_customer(service: Host, customer_id: str) -> Customer:
    with service.engine.connect() as conn:
        found = store.get_customer(conn, customer_id)
    if found is None:
        raise CustomerNotFound(customer_id)
    return found


def create_customer(
    service: Host,
    *,
    name: str,
    numbers: Iterable[str],
    language: str | None = None,
    tags: Iterable[str] = (),
) -> Customer:
    """Add a customer; local numbers get the default country code. NumberTaken names the owner."""
    config = service.settings.load()
    checked_name = check_name(name)
    checked_language = check_language(language or config.inbound.language)
    checked = check_numbers(numbers, config.default_country_code or None)
    checked_tags = check_tags(tags)
    now = service.clock()
    customer_id = _written(
        service,
        lambda conn: store.insert_customer(
            conn,
            name=checked_name,
            language=checked_language,
            numbers=checked,
            now=now,
            tags=checked_tags,
        ),
        checked,
    )
    return get_customer(service, customer_id)


def update_customer(
    service: Host,
    customer_id: str,
    *,
    name: str | None = None,
    language: str | None = None,
    numbers: Sequence[str] | None = None,
    tags: Sequence[str] | None = None,
) -> Customer:
    """Change the name, the language, and/or replace all numbers or all tags."""
    changes = CustomerChanges(
        name=check_name(name) if name is not None else None,
        language=check_language(language) if language is not None else None,
        numbers=check_numbers(numbers, _country_code(service)) if numbers is not None else None,
        tags=check_tags(tags) if tags is not None else None,
    )
    now = service.clock()
    _written(
        service,
        lambda conn: store.update_customer(conn, customer_id, changes, now),
        changes.numbers or (),
    )
    return get_customer(service, customer_id)


def add_number(service: Host, customer_id: str, number: str) -> Customer:
    checked = check_numbers([number], _country_code(service), field="number")
    changes = CustomerChanges(add_numbers=checked)
    now = service.clock()
    _written(service, lambda conn: store.update_customer(conn, customer_id, changes, now), checked)
    return get_customer(service, customer_id)


def remove_number(service: Host, customer_id: str, number: str) -> Customer:
    e164 = normalise_for_lookup(service, number)
    now = service.clock()
    service.writer.run_sync(lambda conn: store.remove_number(conn, customer_id, e164, now))
    return get_customer(service, customer_id)


def delete_customer(service: Host, customer_id: str) -> None:
    """Delete a customer and its numbers; CustomerInUse if it has requests."""
    service.writer.run_sync(lambda conn: store.delete_customer(conn, customer_id))


def normalise_for_lookup(service: Host, number: str) -> str:
    try:
        return normalise_msisdn(number, _country_code(service))
    except DomainError as exc:
        raise DomainError(exc.message, field="number") from None


def find_by_number(service: Host, number: str) -> Customer | None:
    """The customer a number belongs to; the number may be written as the customer would."""
    e164 = normalise_for_lookup(service, number)
    with service.engine.connect() as conn:
        return store.customer_by_number(conn, e164)


def tag_counts(service: Host) -> list[tuple[str, int]]:
    """Every customer tag in use, with how many customers carry it."""
    with service.engine.connect() as conn:
        return store.tag_counts(conn)


def search_customers(
    service: Host, search: str | None = None, *, before: str | None = None, limit: int = 50
) -> list[Customer]:
    """Newest first; `search` matches part of a name or number, or a number as typed locally."""
    also = None
    if search and any(ch.isdigit() for ch in search):
        try:
            also = normalise_msisdn(search, _country_code(service))
        except DomainError:
            also = None
    with service.engine.connect() as conn:
        return store.list_customers(
            conn, search=search, also_number=also, before=before, limit=limit
        )


def _written(service: Host, job: Callable[[Connection], T], numbers: Sequence[str]) -> T:
    return store.written(service.writer, service.engine, job, numbers)
