"""Turning stored inbound SMS into opt-outs, customers and requests.

Inbound messages are stored raw first (`store.inbound`); this module processes the pending
ones in batches, each batch in one transaction: a crash leaves them pending, to be processed
again, never half done. Everything a batch needs is read with a few set-wise queries, so the
cost per message stays small.

What an SMS is comes from `inbound.recognise`; the sender's customer from `customers.from_sms`;
the request it joins from `conversations.from_sms`, which holds the threading rules. The SMS
confirming an opt-out or opt-in is built by a `ReplySms` the service hands in (the outbox's
checks), so this package needs nothing of the outbox itself.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Row

from smsdesk import events as ev
from smsdesk.conversations.from_sms import SmsRequests
from smsdesk.conversations.groups import Arrival
from smsdesk.customers.from_sms import SmsCustomers
from smsdesk.domain.errors import DomainError
from smsdesk.domain.phone import sender_number
from smsdesk.domain.settings import SmsConfiguration
from smsdesk.domain.times import iso
from smsdesk.events import EventSink
from smsdesk.inbound.recognise import Kind, Recognised, recognise, strip_endpoint
from smsdesk.mailings.replies import SmsReplies
from smsdesk.providers.registry import UnknownModule, get_module
from smsdesk.sms_configuration import module_settings
from smsdesk.store import inbound as store
from smsdesk.store import messages as repo
from smsdesk.store.mailing_consents import withdraw_for_number
from smsdesk.store.optouts import add_opt_out, remove_opt_out

log = logging.getLogger(__name__)

ReplySms = Callable[[str, str, SmsConfiguration, float], dict[str, Any]]
"""(number, text, configuration, now) -> the row of a transactional SMS to that number, ready
to be stored; DomainError if it cannot be sent (e.g. the text is too long)."""

_Decided = tuple[Row[Any], str | None, Recognised]  # an inbound row, its sender, what it is


def endpoint_code(config: SmsConfiguration, module: str) -> str:
    """The SMS endpoint code for SMS arriving through `module`: its own field, else the general."""
    try:
        get_module(module)
    except UnknownModule:
        return config.inbound.sms_endpoint
    return module_settings(config, module).endpoint_code() or config.inbound.sms_endpoint


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


class _Batch:
    """The state one batch builds up: what it read, and what it will write."""

    def __init__(
        self, conn: Connection, config: SmsConfiguration, now: float, reply: ReplySms
    ) -> None:
        self.conn = conn
        self.config = config
        self.now = now
        self.reply = reply
        self.customers = SmsCustomers(conn, config.inbound.language, now)
        self.requests = SmsRequests(conn, config, now)
        self.replies = SmsReplies(conn, now)  # replies to mailings
        self.updates: list[dict[str, Any]] = []
        self.received: list[dict[str, Any]] = []
        self.opt_changes: list[dict[str, Any]] = []
        self.outbound: list[dict[str, Any]] = []
        self.tally = Tally()

    def join_request(self, row: Row[Any], number: str, found: Recognised) -> dict[str, Any]:
        """Add a message to its sender's request; what the inbound row becomes."""
        customer_id, _ = self.customers.customer_for(number)
        code = endpoint_code(self.config, row.module)
        arrival = Arrival(
            code if code and strip_endpoint(row.body, code) is not None else "",
            found.content,
            row.recipient,
        )
        request = self.requests.request_for(
            customer_id, number, row.session_key, found.content, row.received_at, arrival
        )
        self.requests.add_inbound(request.id, row.id, found.content, number, row.received_at)
        return {"state": "request", "customer_id": customer_id, "request_id": request.id}

    def opt(self, row: Row[Any], number: str, found: Recognised) -> dict[str, Any]:
        """Put the sender on the opt-out list or take it off, and confirm it by SMS."""
        opted_out = found.kind is Kind.OPT_OUT
        if opted_out:
            changed = add_opt_out(
                self.conn,
                number,
                keyword=found.keyword,
                source="sms",
                inbound_id=row.id,
                now=self.now,
            )
            withdraw_for_number(self.conn, number, source="sms", now=self.now)
        else:
            changed = remove_opt_out(self.conn, number)
        if changed:
            self.opt_changes.append(
                {
                    "number": number,
                    "opted_out": opted_out,
                    "source": "sms",
                    "keyword": found.keyword,
                    "inbound_id": row.id,
                }
            )
        inbound = self.config.inbound
        self.confirm(
            number, inbound.opt_out_confirmation if opted_out else inbound.opt_in_confirmation
        )
        customer_id = self.customers.known(number)
        # The keyword shows in the conversation it answers, without reopening it.
        request_id = self.requests.replied_to.get(number) or (
            self.requests.open_of.get(customer_id) if customer_id else None
        )
        if request_id is not None:
            self.requests.add_inbound(request_id, row.id, row.body.strip(), number, row.received_at)
        return {"customer_id": customer_id, "request_id": request_id}

    def confirm(self, number: str, text: str) -> None:
        """Queue a confirmation SMS (transactional: it reaches a number that just opted out)."""
        if not text:
            return
        try:
            row = self.reply(number, text, self.config, self.now)
        except DomainError as exc:
            log.warning("opt-out confirmation not sent: %s", exc.message)
            return
        self.outbound.append(row)
        self.tally.outbound += 1

    def write(self, events: EventSink) -> None:
        """Store everything the batch decided, then record its events."""
        self.customers.write()
        self.requests.write()
        self.replies.write()
        store.record_outcomes(self.conn, self.updates, self.now)
        if self.outbound:
            repo.insert_messages(self.conn, self.outbound, "inbound")
        if self.received:
            events.emit(self.conn, ev.INBOUND_RECEIVED, self.received)
        if self.requests.new_rows:
            events.emit(
                self.conn, ev.REQUEST_CREATED, [_request_event(r) for r in self.requests.new_rows]
            )
        if self.opt_changes:
            events.emit(self.conn, ev.OPT_OUT_CHANGED, self.opt_changes)
        self.tally.customers_created = self.customers.created
        self.tally.requests_created = len(self.requests.new_rows)
        self.tally.outbound += self.requests.answered  # out-of-hours answers


def process_pending(
    conn: Connection,
    config: SmsConfiguration,
    events: EventSink,
    now: float,
    limit: int = 500,
    *,
    reply: ReplySms,
) -> Tally:
    """Process up to `limit` pending inbound messages in this transaction."""
    return process_rows(conn, store.claim_pending(conn, limit), config, events, now, reply=reply)


def _decide(
    rows: Sequence[Row[Any]], config: SmsConfiguration, assign_to: dict[str, str | None] | None
) -> list[_Decided]:
    """Each row with its sender's number (None if it is not one) and what the SMS is."""
    out_words, in_words = config.inbound.keyword_sets()
    decided: list[_Decided] = []
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
    return decided


def process_rows(
    conn: Connection,
    rows: Sequence[Row[Any]],
    config: SmsConfiguration,
    events: EventSink,
    now: float,
    *,
    reply: ReplySms,
    assign_to: dict[str, str | None] | None = None,
) -> Tally:
    """Decide and record what each inbound message becomes.

    `assign_to` maps inbound ids an administrator accepted (e.g. unrecognised ones) to the
    customer they chose, or None for the sender's own: those are taken as messages for this
    installation, whatever their text.
    """
    batch = _Batch(conn, config, now, reply)
    decided = _decide(rows, config, assign_to)
    numbers = {number for _, number, _ in decided if number is not None}
    session_keys = {row.session_key for row, _, _ in decided if row.session_key}
    chosen = {
        number: customer
        for row, number, _ in decided
        if number and assign_to and (customer := assign_to.get(row.id))
    }
    customer_ids = batch.customers.load(numbers, chosen)
    batch.requests.load(numbers, session_keys, customer_ids)
    batch.replies.load(numbers)
    decided = [_answer_to_request(d, batch.requests.replied_to, batch.replies) for d in decided]
    for row, number, found in decided:
        update: dict[str, Any] = {
            "iid": row.id,
            "state": found.kind.value,
            "content": found.content or None,
            "customer_id": None,
            "request_id": None,
            "reason": found.reason,
        }
        if number is not None and found.kind is Kind.MESSAGE:
            update.update(batch.join_request(row, number, found))
        elif number is not None and found.kind in (Kind.OPT_OUT, Kind.OPT_IN):
            update.update(batch.opt(row, number, found))
        if found.kind is not Kind.INVALID:
            batch.replies.note(
                number,
                row.id,
                row.received_at,
                request_id=update["request_id"],
                opt_out=found.kind is Kind.OPT_OUT,
            )
        batch.updates.append(update)
        batch.tally.count(str(update["state"]))
        batch.received.append(_received_event(row, update))
    batch.write(events)
    return batch.tally


def _answer_to_request(
    decided: _Decided, replied_to: dict[str, str], replies: SmsReplies
) -> _Decided:
    """An SMS without the endpoint code from a number a request wrote to within the
    conversation window answers that request: customers do not repeat the code. So does a
    reply to a mailing whose replies become requests (`mailings.replies`)."""
    row, number, found = decided
    answers = number is not None and (number in replied_to or replies.makes_request(number))
    if found.kind is Kind.UNRECOGNISED and answers:
        return row, number, Recognised(Kind.MESSAGE, row.body.strip())
    return decided


def _received_event(row: Row[Any], update: dict[str, Any]) -> dict[str, Any]:
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
