"""Requests (tickets) and their conversations: reading them, changing them, where replies go.

Inbound SMS create and join requests in `inbound.pipeline` (through `conversations.from_sms`);
this module is what agents do. The database work itself is in `store.requests`.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Row

from smsdesk.domain.errors import DomainError
from smsdesk.domain.phone import sender_number
from smsdesk.domain.settings import REQUEST_PRIORITIES
from smsdesk.store import requests as store
from smsdesk.store.requests import RequestFilter

REQUEST_STATUSES = ("open", "pending", "closed")

__all__ = [
    "REQUEST_STATUSES",
    "NotFound",
    "RequestFilter",
    "conversation",
    "get_request",
    "list_requests",
    "reply_number",
    "update_request",
]


class NotFound(LookupError):
    """No such request, customer or inbound message."""


def list_requests(
    conn: Connection, flt: RequestFilter, *, before_id: str | None, limit: int
) -> list[Row[Any]]:
    """Newest first, paged by id; each row carries the customer's name."""
    return store.list_requests(conn, flt, before_id=before_id, limit=limit)


def get_request(conn: Connection, request_id: str) -> Row[Any]:
    """The request with its customer's name; NotFound if there is none."""
    row = store.get_request(conn, request_id)
    if row is None:
        raise NotFound(f"There is no request with id '{request_id}'.")
    return row


def conversation(conn: Connection, request_id: str) -> list[dict[str, Any]]:
    """The request's SMS in the order they joined it, outbound ones with their delivery status.

    Not by time: providers stamp inbound SMS in whole seconds (or their own clock), which
    would put a customer's answer before the reply it answers. An SMS added later from the
    unrecognised list is the exception: it is put where its time belongs.
    """
    entries = [
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
            # opt_out or opt_in when the SMS was a keyword (STOP, START), else None.
            "keyword": row.inbound_state if row.inbound_state in ("opt_out", "opt_in") else None,
            "assigned_by": row.assigned_by,
        }
        for row in store.conversation_rows(conn, request_id)
    ]
    return _in_time_order(entries)


def _in_time_order(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The entries as they joined, with each one added from the unrecognised list moved before
    the first other entry that is later than it."""
    kept = [entry for entry in entries if entry["assigned_by"] is None]
    for added in (entry for entry in entries if entry["assigned_by"] is not None):
        place = next((i for i, e in enumerate(kept) if e["at"] > added["at"]), len(kept))
        kept.insert(place, added)
    return kept


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
    store.set_request_fields(conn, request_id, changes, now)


def reply_number(conn: Connection, request: Row[Any], default_country_code: str) -> str:
    """Where a reply goes: the number the customer last wrote from, else their first number."""
    last = store.last_inbound_sender(conn, request.id)
    if last is not None:
        try:
            return sender_number(last, default_country_code)
        except DomainError:
            pass
    first = store.first_number(conn, request.customer_id)
    if first is None:
        raise DomainError(
            "The request's customer has no mobile number; add one to the customer first.",
            field="to",
        )
    return first
