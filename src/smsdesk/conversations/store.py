"""Requests (tickets) and their conversations: reading them, changing them, replying by SMS.

Inbound SMS create and join requests in `inbound.pipeline`; this module is what agents do.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection

from smsdesk.domain.errors import DomainError
from smsdesk.domain.settings import REQUEST_PRIORITIES
from smsdesk.inbound.recognise import sender_number
from smsdesk.store import messages as repo
from smsdesk.store.tables import (
    customer_numbers,
    customers,
    inbound_messages,
    messages,
    request_messages,
    requests,
)

REQUEST_STATUSES = ("open", "pending", "closed")


class NotFound(LookupError):
    """No such request, customer or inbound message."""


@dataclass(frozen=True, slots=True)
class RequestFilter:
    status: str | None = None
    customer_id: str | None = None
    category: str | None = None


def list_requests(
    conn: Connection, flt: RequestFilter, *, before_id: str | None, limit: int
) -> list[sa.Row[Any]]:
    """Newest first, paged by id; each row carries the customer's name."""
    query = sa.select(requests, customers.c.name.label("customer_name")).join(
        customers, customers.c.id == requests.c.customer_id, isouter=True
    )
    if flt.status:
        query = query.where(requests.c.status == flt.status)
    if flt.customer_id:
        query = query.where(requests.c.customer_id == flt.customer_id)
    if flt.category:
        query = query.where(requests.c.category == flt.category)
    if before_id:
        query = query.where(requests.c.id < before_id)
    return list(conn.execute(query.order_by(requests.c.id.desc()).limit(limit)).all())


def get_request(conn: Connection, request_id: str) -> sa.Row[Any]:
    row = conn.execute(
        sa.select(requests, customers.c.name.label("customer_name"))
        .join(customers, customers.c.id == requests.c.customer_id, isouter=True)
        .where(requests.c.id == request_id)
    ).first()
    if row is None:
        raise NotFound(f"There is no request with id '{request_id}'.")
    return row


def conversation(conn: Connection, request_id: str) -> list[dict[str, Any]]:
    """The request's SMS in the order they joined it, outbound ones with their delivery status.

    Not by time: providers stamp inbound SMS in whole seconds (or their own clock), which
    would put a customer's answer before the reply it answers.
    """
    rows = conn.execute(
        sa.select(
            request_messages,
            messages.c.status.label("message_status"),
            messages.c.status_code,
            messages.c.error,
            messages.c.recipient,
        )
        .join(messages, messages.c.id == request_messages.c.message_id, isouter=True)
        .where(request_messages.c.request_id == request_id)
        .order_by(request_messages.c.id)
    ).all()
    return [
        {
            "direction": row.direction,
            "body": row.body,
            "at": row.at,
            "author": row.author,
            "inbound_id": row.inbound_id,
            "message_id": row.message_id,
            # Inbound entries are written by their sender's number, normalised.
            "number": row.author if row.direction == "in" else row.recipient,
            "status": row.message_status if row.direction == "out" else "received",
            "status_code": row.status_code,
            "error": row.error,
        }
        for row in rows
    ]


def update_request(conn: Connection, request_id: str, changes: dict[str, Any], now: float) -> None:
    """Change status, title, category or priority; every value is checked first."""
    allowed = {"status", "title", "category", "priority"}
    unknown = set(changes) - allowed
    if unknown:
        raise DomainError(
            f"Only {', '.join(sorted(allowed))} can be changed, not {', '.join(sorted(unknown))}.",
            field=sorted(unknown)[0],
        )
    if "status" in changes and changes["status"] not in REQUEST_STATUSES:
        raise DomainError(f"Status must be one of {', '.join(REQUEST_STATUSES)}.", field="status")
    if "priority" in changes and changes["priority"] not in REQUEST_PRIORITIES:
        raise DomainError(
            f"Priority must be one of {', '.join(REQUEST_PRIORITIES)}.", field="priority"
        )
    for name in ("title", "category"):
        if name in changes and not str(changes[name] or "").strip():
            raise DomainError(f"The {name} cannot be empty.", field=name)
    get_request(conn, request_id)
    if changes:
        conn.execute(
            requests.update().where(requests.c.id == request_id).values(**changes, updated_at=now)
        )


def reply_number(conn: Connection, request: sa.Row[Any], default_country_code: str) -> str:
    """Where a reply goes: the number the customer last wrote from, else their first number."""
    last = conn.execute(
        sa.select(inbound_messages.c.sender)
        .join(request_messages, request_messages.c.inbound_id == inbound_messages.c.id)
        .where(request_messages.c.request_id == request.id)
        .order_by(request_messages.c.at.desc(), request_messages.c.id.desc())
        .limit(1)
    ).scalar()
    if last is not None:
        try:
            return sender_number(last, default_country_code)
        except DomainError:
            pass
    first = conn.execute(
        sa.select(customer_numbers.c.number)
        .where(customer_numbers.c.customer_id == request.customer_id)
        .order_by(customer_numbers.c.number)
        .limit(1)
    ).scalar()
    if first is None:
        raise DomainError(
            "The request's customer has no mobile number; add one to the customer first.",
            field="to",
        )
    return str(first)


def record_reply(
    conn: Connection,
    request: sa.Row[Any],
    row: dict[str, Any],
    author: str,
    status: str | None,
    now: float,
) -> None:
    """Store the reply SMS (already prepared and checked) and add it to the conversation."""
    repo.insert_messages(conn, [row], "reply")
    conn.execute(
        request_messages.insert().values(
            request_id=request.id,
            direction="out",
            message_id=row["id"],
            body=row["body"],
            author=author,
            at=now,
        )
    )
    values: dict[str, Any] = {"updated_at": now, "last_activity_at": now}
    if status is not None:
        values["status"] = status
    conn.execute(requests.update().where(requests.c.id == request.id).values(**values))
