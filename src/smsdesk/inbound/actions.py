"""What people do with inbound SMS: hand one over, accept or delete unrecognised ones.

Shared by the API, the web pages and the CLI. An accepted SMS goes through the same pipeline
as any other (`inbound.pipeline`), or joins the request that was chosen; either way its entry in
the conversation names who added it from the unrecognised list. `delete_matching` deletes every
unrecognised SMS a filter matches, in batches, with one audit entry.
"""

from __future__ import annotations

from typing import Any, Protocol

from sqlalchemy import Connection, Row
from starlette.concurrency import run_in_threadpool

from smsdesk.conversations.requests import NotFound, get_request
from smsdesk.domain.audit import Actor
from smsdesk.domain.errors import DomainError
from smsdesk.domain.phone import sender_number
from smsdesk.domain.settings import SmsConfiguration
from smsdesk.domain.sms import InboundSms
from smsdesk.events import EventSink
from smsdesk.host import Host
from smsdesk.inbound.pipeline import ReplySms, process_rows
from smsdesk.store import customers as customer_store
from smsdesk.store import inbound as store
from smsdesk.store import requests as request_store
from smsdesk.store.audit import AuditTrail
from smsdesk.store.hash_key import keyed_hash

# States an administrator may still decide about; requests and opt-outs already had effect.
OPEN_INBOUND_STATES = ("unrecognised", "invalid")


class Conflict(ValueError):
    """The thing changed meanwhile or is in a state that does not allow this."""


class Services(Host, Protocol):
    """What these actions use of the running service besides the basics (the service has it)."""

    @property
    def events(self) -> EventSink: ...
    @property
    def trail(self) -> AuditTrail: ...

    def wake_inbound(self) -> None: ...

    def confirmation_sms(
        self, number: str, text: str, config: SmsConfiguration, now: float
    ) -> dict[str, Any]: ...


async def inject_inbound(service: Services, module: str, sms: InboundSms) -> tuple[str, bool]:
    """Store an inbound SMS handed to us through the API; (its id, whether it was new)."""
    row = store.inbound_row(module, sms, service.clock())

    def keep(conn: Connection) -> tuple[str, bool]:
        if store.insert_new(conn, [row]):
            return row["id"], True
        return store.stored_id(conn, row["module"], row["provider_message_id"]), False

    result = await service.writer.run(keep)
    if result[1]:
        service.wake_inbound()
    return result


def _open_inbound(conn: Connection, inbound_id: str) -> Row[Any]:
    row = store.get_inbound(conn, inbound_id)
    if row is None:
        raise NotFound(f"There is no inbound message with id '{inbound_id}'.")
    if row.state not in OPEN_INBOUND_STATES:
        raise Conflict(
            f"This inbound message is already handled (state: {row.state}); only unrecognised "
            "or invalid ones can be assigned or deleted."
        )
    return row


async def assign_inbound(
    service: Services,
    inbound_id: str,
    *,
    customer_id: str | None = None,
    request_id: str | None = None,
    actor: Actor | None = None,
) -> None:
    """Accept an unrecognised (or invalid) inbound SMS: into a request, for a customer, or
    for its sender as if it had carried the SMS endpoint code. With an `actor`, the audit
    trail records it (ids only) in the same transaction."""
    config = await run_in_threadpool(service.settings.load)
    events = service.events
    reply: ReplySms = service.confirmation_sms

    def assign(conn: Connection) -> None:
        row = _open_inbound(conn, inbound_id)
        _assign(conn, row)
        if actor is not None:  # last: the trail's lock is the last one a transaction takes
            details = {"request_id": request_id, "customer_id": customer_id, "was": row.state}
            service.trail.record(
                conn,
                actor,
                "inbound.assigned",
                target_kind="inbound",
                target_id=inbound_id,
                details={k: v for k, v in details.items() if v is not None},
            )

    def _assign(conn: Connection, row: Row[Any]) -> None:
        now = service.clock()
        if request_id is not None:
            request = get_request(conn, request_id)
            _attach(conn, row, request, now, config.default_country_code)
            store.mark_entry_assigned(conn, row.id, actor.name if actor else "")
            return
        if customer_id is not None and not customer_store.customer_exists(conn, customer_id):
            raise NotFound(f"There is no customer with id '{customer_id}'.")
        tally = process_rows(
            conn, [row], config, events, now, reply=reply, assign_to={row.id: customer_id}
        )
        if tally.states.get("request") != 1:
            raise DomainError(
                "The message cannot become a request: its sender is not a mobile number. "
                "Assign it to a request or a customer instead.",
                field="customer_id",
            )
        store.mark_entry_assigned(conn, row.id, actor.name if actor else "")

    await service.writer.run(assign)


def _attach(
    conn: Connection, row: Row[Any], request: Row[Any], now: float, default_country_code: str
) -> None:
    """Add the SMS to the request's conversation, as written by its sender; reopen it."""
    content = row.content or row.body.strip()
    try:
        author = sender_number(row.sender, default_country_code)
    except DomainError:
        author = row.sender
    request_store.add_inbound_entry(conn, request.id, row.id, content, author, row.received_at)
    store.mark_joined(
        conn,
        row.id,
        content=content,
        customer_id=request.customer_id,
        request_id=request.id,
        now=now,
    )
    request_store.reopen(conn, request.id, now, max(now, row.received_at))


async def delete_inbound(service: Services, inbound_id: str, actor: Actor | None = None) -> None:
    """Remove an unrecognised or invalid SMS from the list (kept, marked deleted, for audit)."""

    def delete(conn: Connection) -> None:
        row = _open_inbound(conn, inbound_id)
        store.mark_deleted(conn, inbound_id, service.clock())
        if actor is not None:
            service.trail.record(
                conn,
                actor,
                "inbound.deleted",
                target_kind="inbound",
                target_id=inbound_id,
                details={"was": row.state},
            )

    await service.writer.run(delete)


BULK_BATCH = 500


async def delete_matching(
    service: Services,
    actor: Actor,
    *,
    sender_part: str | None = None,
    text: str | None = None,
    batch: int = BULK_BATCH,
) -> int:
    """Delete every unrecognised SMS whose sender holds `sender_part` and whose text holds
    `text` (None: any), `batch` per transaction; one audit entry; how many were deleted."""
    total = 0
    cursor: str | None = None

    def job(conn: Connection) -> tuple[str | None, bool]:
        nonlocal total
        rows = store.list_inbound(
            conn,
            state="unrecognised",
            sender_part=sender_part,
            text=text,
            before=cursor,
            limit=batch,
        )
        ids = [row.id for row in rows]
        total += store.mark_deleted_many(conn, ids, "unrecognised", service.clock())
        more = len(rows) == batch
        if not more:
            key = service.trail.key
            found = {"sender_part": sender_part, "text": text}
            hashed = {f"{k}_hash": keyed_hash(key, v) for k, v in found.items() if v}
            details = {"filter": {"state": "unrecognised", **hashed}, "count": total}
            service.trail.record(conn, actor, "inbound.bulk_deleted", details=details)
        return (ids[-1] if ids else cursor), more

    while True:
        cursor, more = await service.writer.run(job)
        if not more:
            return total
