"""Turning stored inbound SMS into opt-outs, customers and requests.

Inbound messages are stored raw first (`inbound.store`); this module processes the pending
ones in batches, each batch in one transaction: a crash leaves them pending, to be processed
again, never half done. Everything a batch needs is read with a few set-wise queries, so the
cost per message stays small.

Threading rules, first match wins:
1. the inbound message carries the session key of a request (callers that thread themselves);
2. it answers an SMS sent from a request to this number within the conversation window;
3. the customer has an open or pending request active within the window;
4. otherwise a new request is opened in the SMS mailbox's category, priority and language.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection

from smsdesk import events as ev
from smsdesk.domain.errors import DomainError
from smsdesk.domain.ids import new_id
from smsdesk.domain.settings import SmsConfiguration
from smsdesk.domain.times import iso
from smsdesk.events import EventSink
from smsdesk.inbound.recognise import Kind, Recognised, recognise, sender_number
from smsdesk.outbox.accept import NewMessage, prepare_message
from smsdesk.providers.registry import UnknownModule, get_module
from smsdesk.sms_configuration import module_settings
from smsdesk.store import messages as repo
from smsdesk.store.optouts import add_opt_out, remove_opt_out
from smsdesk.store.tables import (
    customer_numbers,
    customers,
    inbound_messages,
    messages,
    request_messages,
    requests,
)

log = logging.getLogger(__name__)

OPEN_STATUSES = ("open", "pending")
TITLE_LENGTH = 80


def new_session_key() -> str:
    return secrets.token_urlsafe(18)


def endpoint_code(config: SmsConfiguration, module: str) -> str:
    """The SMS endpoint code for SMS arriving through `module`: its own field, else the general."""
    try:
        get_module(module)
    except UnknownModule:
        return config.inbound.sms_endpoint
    return module_settings(config, module).endpoint_code() or config.inbound.sms_endpoint


def request_title(content: str, number: str) -> str:
    first = content.strip().splitlines()[0].strip() if content.strip() else ""
    if not first:
        return f"SMS from {number}"
    return first if len(first) <= TITLE_LENGTH else first[: TITLE_LENGTH - 1] + "…"


@dataclass(slots=True)
class Tally:
    """What one run did, by resulting state."""

    processed: int = 0
    states: dict[str, int] = field(default_factory=dict)
    requests_created: int = 0
    customers_created: int = 0
    outbound: int = 0  # confirmations queued

    def count(self, state: str) -> None:
        self.processed += 1
        self.states[state] = self.states.get(state, 0) + 1


@dataclass(slots=True)
class _Request:
    id: str
    customer_id: str
    status: str
    session_key: str
    last_activity_at: float
    new: bool = False
    touched: bool = False


class _Batch:
    """The state one batch builds up: what it read, and what it will write."""

    def __init__(self, conn: Connection, config: SmsConfiguration, now: float) -> None:
        self.conn = conn
        self.config = config
        self.now = now
        self.since = now - config.inbound.conversation_days * 86400
        self.customer_of: dict[str, str] = {}  # number -> customer id
        self.requests: dict[str, _Request] = {}  # request id -> request
        self.by_session: dict[str, str] = {}  # session key -> request id
        self.replied_to: dict[str, str] = {}  # number -> request id of our latest SMS to it
        self.open_of: dict[str, str] = {}  # customer id -> latest open request id
        self.new_customers: list[dict[str, Any]] = []
        self.new_numbers: list[dict[str, Any]] = []
        self.new_request_rows: list[dict[str, Any]] = []
        self.conversation: list[dict[str, Any]] = []
        self.outbound: list[dict[str, Any]] = []
        self.tally = Tally()

    def load(self, numbers: set[str], session_keys: set[str], chosen: dict[str, str]) -> None:
        """Read what the batch needs; `chosen` overrides the customer of some numbers."""
        conn = self.conn
        if numbers:
            self.customer_of = {
                number: customer
                for number, customer in conn.execute(
                    sa.select(customer_numbers.c.number, customer_numbers.c.customer_id).where(
                        customer_numbers.c.number.in_(numbers)
                    )
                )
            }
            for number, request_id in conn.execute(
                sa.select(messages.c.recipient, messages.c.request_id)
                .where(
                    messages.c.recipient.in_(numbers),
                    messages.c.request_id.is_not(None),
                    messages.c.created_at >= self.since,
                )
                .order_by(messages.c.created_at)
            ):
                self.replied_to[number] = request_id
        self.customer_of.update(chosen)
        customer_ids = set(self.customer_of.values())
        if customer_ids:
            # Two processes handling the same customer's SMS take turns (PostgreSQL), so they
            # never open two requests for one conversation.
            conn.execute(
                sa.select(customers.c.id).where(customers.c.id.in_(customer_ids)).with_for_update()
            ).all()
        conditions = []
        if customer_ids:
            conditions.append(
                sa.and_(
                    requests.c.customer_id.in_(customer_ids),
                    requests.c.status.in_(OPEN_STATUSES),
                    requests.c.last_activity_at >= self.since,
                )
            )
        if session_keys:
            conditions.append(requests.c.session_key.in_(session_keys))
        if self.replied_to:
            conditions.append(requests.c.id.in_(set(self.replied_to.values())))
        if conditions:
            rows = conn.execute(
                sa.select(
                    requests.c.id,
                    requests.c.customer_id,
                    requests.c.status,
                    requests.c.session_key,
                    requests.c.last_activity_at,
                )
                .where(sa.or_(*conditions))
                .order_by(requests.c.last_activity_at)
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

    def customer_for(self, number: str) -> tuple[str, bool]:
        """The customer with this number, created (flagged as from SMS) if there is none."""
        found = self.customer_of.get(number)
        if found is not None:
            return found, False
        customer_id = new_id()
        self.new_customers.append(
            {
                "id": customer_id,
                "name": number,
                "language": self.config.inbound.language,
                "created_from_sms": True,
                "created_at": self.now,
                "updated_at": self.now,
            }
        )
        self.new_numbers.append({"number": number, "customer_id": customer_id})
        self.customer_of[number] = customer_id
        self.tally.customers_created += 1
        return customer_id, True

    def request_for(
        self, customer_id: str, number: str, session_key: str | None, content: str, at: float
    ) -> _Request:
        request_id = (
            (self.by_session.get(session_key) if session_key else None)
            or self.replied_to.get(number)
            or self.open_of.get(customer_id)
        )
        request = self.requests.get(request_id) if request_id else None
        if request is None:
            mailbox = self.config.inbound
            request = _Request(new_id(), customer_id, "open", new_session_key(), at, new=True)
            self.requests[request.id] = request
            self.by_session[request.session_key] = request.id
            self._new_request_row(request, mailbox.category, mailbox.priority, content, number)
        # An answer from the customer reopens a pending or closed request.
        request.status = "open"
        request.last_activity_at = max(request.last_activity_at, at)
        request.touched = True
        self.open_of[customer_id] = request.id
        self.replied_to[number] = request.id
        return request

    def _new_request_row(
        self, request: _Request, category: str, priority: str, content: str, number: str
    ) -> None:
        self.tally.requests_created += 1
        self.new_request_rows.append(
            {
                "id": request.id,
                "title": request_title(content, number),
                "status": "open",
                "category": category,
                "priority": priority,
                "language": self.config.inbound.language,
                "customer_id": request.customer_id,
                "session_key": request.session_key,
                "created_at": self.now,
                "updated_at": self.now,
                "last_activity_at": request.last_activity_at,
            }
        )

    def confirm(self, number: str, text: str) -> None:
        """Queue a confirmation SMS (transactional: it reaches a number that just opted out)."""
        if not text:
            return
        try:
            row = prepare_message(
                NewMessage(to=number, text=text), self.config, self.now, transactional=True
            )
        except DomainError as exc:
            log.warning("opt-out confirmation not sent: %s", exc.message)
            return
        self.outbound.append(row)
        self.tally.outbound += 1


def claim_pending(conn: Connection, limit: int) -> list[sa.Row[Any]]:
    """Pending inbound messages, oldest first; rows another process is handling are skipped."""
    return list(
        conn.execute(
            sa.select(inbound_messages)
            .where(inbound_messages.c.state == "pending")
            .order_by(inbound_messages.c.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        ).all()
    )


def process_pending(
    conn: Connection, config: SmsConfiguration, events: EventSink, now: float, limit: int = 500
) -> Tally:
    """Process up to `limit` pending inbound messages in this transaction."""
    return process_rows(conn, claim_pending(conn, limit), config, events, now)


def process_rows(
    conn: Connection,
    rows: Sequence[sa.Row[Any]],
    config: SmsConfiguration,
    events: EventSink,
    now: float,
    *,
    assign_to: dict[str, str | None] | None = None,
) -> Tally:
    """Decide and record what each inbound message becomes.

    `assign_to` maps inbound ids an administrator accepted (e.g. unrecognised ones) to the
    customer they chose, or None for the sender's own: those are taken as messages for this
    installation, whatever their text.
    """
    batch = _Batch(conn, config, now)
    out_words, in_words = config.inbound.keyword_sets()
    decided: list[tuple[sa.Row[Any], str | None, Recognised]] = []
    numbers: set[str] = set()
    for row in rows:
        try:
            number: str | None = sender_number(row.sender, config.default_country_code)
        except DomainError as exc:
            decided.append((row, None, Recognised(Kind.INVALID, reason=exc.message)))
            continue
        if assign_to and row.id in assign_to:
            found = Recognised(Kind.MESSAGE, row.content or row.body.strip())
        else:
            found = recognise(row.body, endpoint_code(config, row.module), out_words, in_words)
        decided.append((row, number, found))
        if number is not None:
            numbers.add(number)
    session_keys = {row.session_key for row, _, _ in decided if row.session_key}
    chosen = {
        number: customer
        for row, number, _ in decided
        if number and assign_to and (customer := assign_to.get(row.id))
    }
    batch.load(numbers, session_keys, chosen)

    updates: list[dict[str, Any]] = []
    received: list[dict[str, Any]] = []
    opt_changes: list[dict[str, Any]] = []
    for row, number, found in decided:
        update = {
            "iid": row.id,
            "state": found.kind.value,
            "content": found.content or None,
            "customer_id": None,
            "request_id": None,
            "reason": found.reason,
        }
        if number is not None and found.kind is Kind.MESSAGE:
            customer_id, _ = batch.customer_for(number)
            request = batch.request_for(
                customer_id, number, row.session_key, found.content, row.received_at
            )
            batch.conversation.append(
                {
                    "request_id": request.id,
                    "direction": "in",
                    "inbound_id": row.id,
                    "message_id": None,
                    "body": found.content,
                    "author": number,
                    "at": row.received_at,
                }
            )
            update.update(state="request", customer_id=customer_id, request_id=request.id)
        elif number is not None and found.kind in (Kind.OPT_OUT, Kind.OPT_IN):
            update["customer_id"] = batch.customer_of.get(number)
            opted_out = found.kind is Kind.OPT_OUT
            if opted_out:
                changed = add_opt_out(
                    conn,
                    number,
                    keyword=found.keyword,
                    source="sms",
                    inbound_id=row.id,
                    now=now,
                )
            else:
                changed = remove_opt_out(conn, number)
            if changed:
                opt_changes.append(
                    {
                        "number": number,
                        "opted_out": opted_out,
                        "source": "sms",
                        "keyword": found.keyword,
                        "inbound_id": row.id,
                    }
                )
            inbound = config.inbound
            batch.confirm(
                number,
                inbound.opt_out_confirmation if opted_out else inbound.opt_in_confirmation,
            )
        updates.append(update)
        batch.tally.count(str(update["state"]))
        received.append(_received_event(row, update))
    _write(batch, updates)
    if received:
        events.emit(conn, ev.INBOUND_RECEIVED, received)
    if batch.new_request_rows:
        events.emit(conn, ev.REQUEST_CREATED, [_request_event(r) for r in batch.new_request_rows])
    if opt_changes:
        events.emit(conn, ev.OPT_OUT_CHANGED, opt_changes)
    return batch.tally


def _write(batch: _Batch, updates: list[dict[str, Any]]) -> None:
    conn, now = batch.conn, batch.now
    if batch.new_customers:
        conn.execute(customers.insert(), batch.new_customers)
        conn.execute(customer_numbers.insert(), batch.new_numbers)
    if batch.new_request_rows:
        conn.execute(requests.insert(), batch.new_request_rows)
    touched = [
        {"rid": r.id, "st": r.status, "last": r.last_activity_at}
        for r in batch.requests.values()
        if r.touched and not r.new
    ]
    if touched:
        conn.execute(
            requests.update()
            .where(requests.c.id == sa.bindparam("rid"))
            .values(
                status=sa.bindparam("st"), last_activity_at=sa.bindparam("last"), updated_at=now
            ),
            touched,
        )
    if batch.conversation:
        conn.execute(request_messages.insert(), batch.conversation)
    if updates:
        conn.execute(
            inbound_messages.update()
            .where(inbound_messages.c.id == sa.bindparam("iid"))
            .values(
                state=sa.bindparam("state"),
                content=sa.bindparam("content"),
                customer_id=sa.bindparam("customer_id"),
                request_id=sa.bindparam("request_id"),
                reason=sa.bindparam("reason"),
                processed_at=now,
            ),
            updates,
        )
    if batch.outbound:
        repo.insert_messages(conn, batch.outbound, "inbound")


def _received_event(row: sa.Row[Any], update: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row.id,
        "module": row.module,
        "provider_message_id": row.provider_message_id,
        "from": row.sender,
        "to": row.recipient,
        "text": row.body,
        "content": update["content"],
        "state": update["state"],
        "reason": update["reason"],
        "customer_id": update["customer_id"],
        "request_id": update["request_id"],
        "received_at": iso(row.received_at),
    }


def _request_event(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "title": row["title"],
        "status": row["status"],
        "category": row["category"],
        "priority": row["priority"],
        "language": row["language"],
        "customer_id": row["customer_id"],
        "created_at": iso(row["created_at"]),
    }


def pending_count(conn: Connection) -> int:
    return int(
        conn.execute(
            sa.select(sa.func.count()).where(inbound_messages.c.state == "pending")
        ).scalar_one()
    )
