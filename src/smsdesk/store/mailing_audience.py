"""Customers chosen as a mailing's recipients by a filter, read a page at a time.

The filter has language, a tag, creation date and whether a request of theirs is open (open
or pending). Each customer gets one SMS, at the first of its numbers.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy import Connection

from smsdesk.store.requests import OPEN_STATUSES
from smsdesk.store.tables import customer_numbers, customer_tags, customers, requests


@dataclass(frozen=True, slots=True)
class CustomerFilter:
    language: str | None = None
    created_from: float | None = None  # seconds since the epoch, inclusive
    created_to: float | None = None  # exclusive
    has_open_request: bool | None = None  # None: either
    tag: str | None = None  # lower case, as stored


def customers_page(
    conn: Connection, wanted: CustomerFilter, *, after: str = "", limit: int = 1000
) -> list[tuple[str, str]]:
    """(customer id, number) of the customers matching `wanted`, by id after `after`."""
    first_number = (
        sa.select(sa.func.min(customer_numbers.c.number))
        .where(customer_numbers.c.customer_id == customers.c.id)
        .scalar_subquery()
    )
    query = (
        sa.select(customers.c.id, first_number.label("number"))
        .where(customers.c.id > after)
        .order_by(customers.c.id)
        .limit(limit)
    )
    if wanted.language:
        query = query.where(customers.c.language == wanted.language)
    if wanted.created_from is not None:
        query = query.where(customers.c.created_at >= wanted.created_from)
    if wanted.created_to is not None:
        query = query.where(customers.c.created_at < wanted.created_to)
    if wanted.tag:
        query = query.where(
            sa.exists().where(
                customer_tags.c.customer_id == customers.c.id, customer_tags.c.tag == wanted.tag
            )
        )
    if wanted.has_open_request is not None:
        open_request = sa.exists().where(
            requests.c.customer_id == customers.c.id, requests.c.status.in_(OPEN_STATUSES)
        )
        query = query.where(open_request if wanted.has_open_request else ~open_request)
    return [(cid, number) for cid, number in conn.execute(query) if number is not None]
