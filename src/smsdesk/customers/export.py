"""Everything held about a customer or a number, as one JSON document (a data access request).

The document holds the customer and their numbers, their requests with the conversations,
every outbound message with its timeline, every inbound SMS, each number's opt-out state and
the webhook deliveries that mention them: what `customers.erasure` would remove. It holds no
secrets (no API keys, webhook secrets or provider settings) and nothing of other customers.
Each export is recorded in the audit trail (`customer.exported`, ids and counts only).
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Connection, Row

from smsdesk.customers import normalise_for_lookup
from smsdesk.customers.erasure import ErasureHost
from smsdesk.domain.audit import Actor
from smsdesk.domain.times import iso
from smsdesk.store import audit
from smsdesk.store import erasure as store
from smsdesk.store.customers import CustomerNotFound
from smsdesk.store.erasure import Person

FORMAT = "smsdesk.export/1"


def export_customer(service: ErasureHost, customer_id: str, actor: Actor) -> dict[str, Any]:
    """The document for a customer; CustomerNotFound if there is none."""
    with service.engine.connect() as conn:
        person = store.person_of_customer(conn, customer_id)
        if person is None:
            raise CustomerNotFound(customer_id)
        document = _document(conn, person, service.clock())
    _record(service, actor, document)
    return document


def export_number(service: ErasureHost, number: str, actor: Actor) -> dict[str, Any]:
    """The document for the customer holding `number` (as typed), or for the number alone
    (`is_empty` when nothing is held about it; such a look is not recorded)."""
    e164 = normalise_for_lookup(service, number)
    with service.engine.connect() as conn:
        document = _document(conn, store.person_of_number(conn, e164), service.clock())
    if not is_empty(document):
        _record(service, actor, document)
    return document


def is_empty(document: dict[str, Any]) -> bool:
    """Whether the document holds nothing about its person beyond the number asked for."""
    kinds = ("requests", "messages", "inbound_sms", "webhook_deliveries")
    opted_out = any(entry["opt_out"] for entry in document["numbers"])
    return document["customer"] is None and not opted_out and not any(document[k] for k in kinds)


def _record(service: ErasureHost, actor: Actor, document: dict[str, Any]) -> None:
    counts = {
        kind: len(document[kind])
        for kind in ("numbers", "requests", "messages", "inbound_sms", "webhook_deliveries")
    }
    key = service.hash_key
    customer = document["customer"]
    now = service.clock()
    service.writer.run_sync(
        lambda conn: audit.append(
            conn,
            key,
            actor,
            "customer.exported",
            now,
            target_kind="customer" if customer else "number",
            target_id=customer["id"] if customer else None,
            details={"counts": counts},
        )
    )


def _document(conn: Connection, person: Person, now: float) -> dict[str, Any]:
    found = store.holdings(conn, person)
    customer = store.customer_row(conn, person.customer_id) if person.customer_id else None
    conversations: dict[str, list[dict[str, Any]]] = {}
    for entry in store.conversation_rows(conn, found.request_ids):
        conversations.setdefault(entry.request_id, []).append(_entry(entry))
    timelines: dict[str, list[dict[str, Any]]] = {}
    for event in store.timeline_rows(conn, found.message_ids):
        timelines.setdefault(event.message_id, []).append(_event(event))
    opt_outs = store.opt_out_rows(conn, person.numbers)
    return {
        "format": FORMAT,
        "exported_at": iso(now),
        "customer": _customer(customer) if customer is not None else None,
        "numbers": [
            {"number": number, "opt_out": _opt_out(opt_outs[number])} for number in person.numbers
        ],
        "requests": [
            _request(row, conversations.get(row.id, []))
            for row in store.request_rows(conn, found.request_ids)
        ],
        "messages": [
            _message(row, timelines.get(row.id, []))
            for row in store.message_rows(conn, found.message_ids)
        ],
        "inbound_sms": [_inbound(row) for row in store.inbound_rows(conn, found.inbound_ids)],
        "webhook_deliveries": [
            _delivery(row) for row in store.deliveries_mentioning(conn, person, found)
        ],
    }


def _customer(row: Row[Any]) -> dict[str, Any]:
    return {
        "id": row.id,
        "name": row.name,
        "language": row.language,
        "created_from_sms": bool(row.created_from_sms),
        "created_at": iso(row.created_at),
        "updated_at": iso(row.updated_at),
    }


def _opt_out(row: Row[Any] | None) -> dict[str, Any] | None:
    if row is None:
        return None
    return {"keyword": row.keyword, "source": row.source, "created_at": iso(row.created_at)}


def _request(row: Row[Any], conversation: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "id": row.id,
        "title": row.title,
        "status": row.status,
        "category": row.category,
        "priority": row.priority,
        "language": row.language,
        "created_at": iso(row.created_at),
        "updated_at": iso(row.updated_at),
        "last_activity_at": iso(row.last_activity_at),
        "conversation": conversation,
    }


def _entry(row: Row[Any]) -> dict[str, Any]:
    return {
        "direction": row.direction,
        "text": row.body,
        "author": row.author,
        "at": iso(row.at),
        "inbound_id": row.inbound_id,
        "message_id": row.message_id,
    }


def _message(row: Row[Any], timeline: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "id": row.id,
        "to": row.recipient,
        "sender": row.sender,
        "text": row.body,
        "status": row.status,
        "module": row.module,
        "segments": row.segments,
        "reference": row.reference,
        "request_id": row.request_id,
        "created_at": iso(row.created_at),
        "scheduled_at": iso(row.scheduled_at),
        "sent_at": iso(row.sent_at),
        "final_at": iso(row.final_at),
        "provider_message_id": row.provider_message_id,
        "status_code": row.status_code,
        "error": row.error,
        "timeline": timeline,
    }


def _event(row: Row[Any]) -> dict[str, Any]:
    return {
        "at": iso(row.at),
        "status": row.status,
        "source": row.source,
        "code": row.code,
        "detail": row.detail,
    }


def _inbound(row: Row[Any]) -> dict[str, Any]:
    return {
        "id": row.id,
        "from": row.sender,
        "to": row.recipient,
        "text": row.body,
        "state": row.state,
        "request_id": row.request_id,
        "module": row.module,
        "received_at": iso(row.received_at),
        "processed_at": iso(row.processed_at),
    }


def _delivery(row: Row[Any]) -> dict[str, Any]:
    try:
        payload: Any = json.loads(row.payload)
    except ValueError:
        payload = row.payload
    return {
        "id": row.id,
        "subscription_id": row.subscription_id,
        "event_type": row.event_type,
        "status": row.status,
        "created_at": iso(row.created_at),
        "delivered_at": iso(row.delivered_at),
        "payload": payload,
    }
