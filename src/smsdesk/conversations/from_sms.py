"""The request step of processing a batch of inbound SMS: which request each one joins.

Threading rules, first match wins:
1. the inbound message carries the session key of a request (callers that thread themselves);
2. it answers an SMS sent from a request to this number within the conversation window;
3. the customer has an open or pending request active within the window;
4. otherwise a new request is opened in the SMS mailbox's category, priority and language.

The batch reads the candidate requests once and writes its changes together at the end.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection

from smsdesk.conversations.assignment import assigned_hook
from smsdesk.conversations.business_hours import Arrived, answer_out_of_hours
from smsdesk.conversations.groups import Arrival, Router
from smsdesk.domain.ids import new_id
from smsdesk.domain.settings import SmsConfiguration
from smsdesk.notify.events import queue_for_requests
from smsdesk.store import requests as store
from smsdesk.store.requests import OPEN_STATUSES

TITLE_LENGTH = 80


def new_session_key() -> str:
    """A request's session key: unguessable, as callers thread SMS on it."""
    return secrets.token_urlsafe(18)


def request_title(content: str, number: str) -> str:
    """A new request's title: the SMS's first line, shortened, else who sent it."""
    first = content.strip().splitlines()[0].strip() if content.strip() else ""
    if not first:
        return f"SMS from {number}"
    return first if len(first) <= TITLE_LENGTH else first[: TITLE_LENGTH - 1] + "…"


@dataclass(slots=True)
class _Request:
    id: str
    customer_id: str
    status: str
    session_key: str
    last_activity_at: float
    new: bool = False
    touched: bool = False
    last_customer_message_at: float | None = None


class SmsRequests:
    """The requests one batch's SMS join: those it read, and what it will write."""

    def __init__(self, conn: Connection, config: SmsConfiguration, now: float) -> None:
        self.conn = conn
        self.config = config
        self.now = now
        self.since = now - config.inbound.conversation_days * 86400
        self.requests: dict[str, _Request] = {}  # request id -> request
        self.by_session: dict[str, str] = {}  # session key -> request id
        self.replied_to: dict[str, str] = {}  # number -> request id of our latest SMS to it
        self.open_of: dict[str, str] = {}  # customer id -> latest open request id
        self.new_rows: list[dict[str, Any]] = []  # requests created, as stored
        self.entries: list[dict[str, Any]] = []  # conversation entries added
        self.router = Router(conn, now)  # new requests' groups and round-robin owners
        self.arrived: list[Arrived] = []  # customers' SMS, for the out-of-hours answer
        self.answered = 0  # out-of-hours answers queued

    def load(self, numbers: set[str], session_keys: set[str], customer_ids: set[str]) -> None:
        """Read the requests the senders' SMS may join."""
        self.replied_to = store.replied_to(self.conn, numbers, self.since)
        rows = store.threadable_requests(
            self.conn,
            customer_ids=customer_ids,
            session_keys=session_keys,
            request_ids=set(self.replied_to.values()),
            since=self.since,
        )
        for row in rows:
            request = _Request(*row)
            self.requests[request.id] = request
            self.by_session[request.session_key] = request.id
            if (
                request.status in OPEN_STATUSES
                and request.last_activity_at >= self.since
                and request.customer_id in customer_ids
            ):
                self.open_of[request.customer_id] = request.id

    def request_for(
        self,
        customer_id: str,
        number: str,
        session_key: str | None,
        content: str,
        at: float,
        arrival: Arrival | None = None,
    ) -> _Request:
        """The request an SMS from `number` joins (opened if none), marked open and active;
        a new one goes to the group of the first routing rule `arrival` matches."""
        request_id = (
            (self.by_session.get(session_key) if session_key else None)
            or self.replied_to.get(number)
            or self.open_of.get(customer_id)
        )
        request = self.requests.get(request_id) if request_id else None
        if request is None:
            request = _Request(new_id(), customer_id, "open", new_session_key(), at, new=True)
            self.requests[request.id] = request
            self.by_session[request.session_key] = request.id
            self._new_request_row(request, content, number, arrival)
        # An answer from the customer reopens a pending or closed request.
        request.status = "open"
        request.last_activity_at = max(request.last_activity_at, at)
        request.last_customer_message_at = max(request.last_customer_message_at or at, at)
        request.touched = True
        self.open_of[customer_id] = request.id
        self.replied_to[number] = request.id
        self.arrived.append(Arrived(request.id, number, at))
        return request

    def _new_request_row(
        self, request: _Request, content: str, number: str, arrival: Arrival | None
    ) -> None:
        mailbox = self.config.inbound
        group_id = self.router.group_for(arrival) if arrival is not None else None
        owner_id = self.router.owner_for(group_id) if group_id is not None else None
        self.new_rows.append(
            {
                "id": request.id,
                "title": request_title(content, number),
                "status": "open",
                "category": mailbox.category,
                "priority": mailbox.priority,
                "language": mailbox.language,
                "customer_id": request.customer_id,
                "session_key": request.session_key,
                "created_at": self.now,
                "updated_at": self.now,
                "last_activity_at": request.last_activity_at,
                "last_customer_message_at": request.last_activity_at,
                "group_id": group_id,
                "owner_id": owner_id,
            }
        )

    def add_inbound(
        self, request_id: str, inbound_id: str, content: str, number: str, at: float
    ) -> None:
        """Add an inbound SMS to the request's conversation, written by its sender's number."""
        self.entries.append(
            {
                "request_id": request_id,
                "direction": "in",
                "inbound_id": inbound_id,
                "message_id": None,
                "body": content,
                "author": number,
                "at": at,
            }
        )

    def write(self) -> None:
        """Store the new requests, the joined ones' activity and the conversation entries."""
        for row in self.new_rows:
            row["last_customer_message_at"] = self.requests[row["id"]].last_customer_message_at
        store.insert_requests(self.conn, self.new_rows)
        touched = [
            {
                "rid": r.id,
                "st": r.status,
                "last": r.last_activity_at,
                "customer": r.last_customer_message_at,
            }
            for r in self.requests.values()
            if r.touched and not r.new
        ]
        store.touch_requests(self.conn, touched, self.now)
        store.insert_entries(self.conn, self.entries)
        self.answered = answer_out_of_hours(self.conn, self.config, self.arrived, self.now)
        self.router.write()
        for row in self.new_rows:
            if row["owner_id"] is not None:
                assigned_hook(self.conn, row["id"], None, self.now)
        grouped = [row["id"] for row in self.new_rows if row["group_id"] is not None]
        if grouped:
            queue_for_requests(self.conn, "request.new_in_group", grouped, None, self.now)
        answered = [r.id for r in self.requests.values() if r.touched and not r.new]
        if answered:
            queue_for_requests(self.conn, "request.customer_answered", answered, None, self.now)
