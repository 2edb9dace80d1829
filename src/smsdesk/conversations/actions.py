"""What agents and administrators do with requests and inbound SMS; shared by the API and CLI."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection
from starlette.concurrency import run_in_threadpool

from smsdesk.conversations.store import (
    REQUEST_STATUSES,
    NotFound,
    get_request,
    record_reply,
    reply_number,
)
from smsdesk.domain.errors import DomainError
from smsdesk.domain.sms import InboundSms
from smsdesk.inbound.pipeline import process_rows
from smsdesk.inbound.recognise import sender_number
from smsdesk.inbound.store import inbound_row, insert_new
from smsdesk.outbox.accept import NewMessage, opted_out_refusals, prepare_message
from smsdesk.service import Service
from smsdesk.store.tables import customers, inbound_messages, request_messages, requests

# States an administrator may still decide about; requests and opt-outs already had effect.
OPEN_INBOUND_STATES = ("unrecognised", "invalid")


class Conflict(ValueError):
    """The thing changed meanwhile or is in a state that does not allow this."""


async def reply(
    service: Service,
    request_id: str,
    text: str,
    *,
    author: str,
    status: str | None = None,
    transactional: bool = False,
    api_key_id: str | None = None,
) -> dict[str, Any]:
    """Send an SMS answer to a request's customer, linked to the request by its session key."""
    if status is not None and status not in REQUEST_STATUSES:
        raise DomainError(f"Status must be one of {', '.join(REQUEST_STATUSES)}.", field="status")
    config = await run_in_threadpool(service.settings.load)

    def prepare() -> tuple[Any, dict[str, Any]]:
        with service.engine.connect() as conn:
            request = get_request(conn, request_id)
            number = reply_number(conn, request, config.default_country_code)
            row = prepare_message(
                NewMessage(to=number, text=text),
                config,
                service.clock(),
                api_key_id=api_key_id,
                transactional=transactional,
                request_id=request.id,
                session_key=request.session_key,
            )
            refusals = opted_out_refusals(conn, [row])
        if refusals:
            raise refusals[0]
        return request, row

    request, row = await run_in_threadpool(prepare)
    now = service.clock()
    await service.writer.run(lambda c: record_reply(c, request, row, author, status, now))
    service.wake_dispatcher()
    return row


async def inject_inbound(service: Service, module: str, sms: InboundSms) -> tuple[str, bool]:
    """Store an inbound SMS handed to us through the API; (its id, whether it was new)."""
    row = inbound_row(module, sms, service.clock())

    def store(conn: Connection) -> tuple[str, bool]:
        if insert_new(conn, [row]):
            return row["id"], True
        existing = conn.execute(
            sa.select(inbound_messages.c.id).where(
                inbound_messages.c.module == row["module"],
                inbound_messages.c.provider_message_id == row["provider_message_id"],
            )
        ).scalar_one()
        return str(existing), False

    result = await service.writer.run(store)
    if result[1]:
        service.wake_inbound()
    return result


def _open_inbound(conn: Connection, inbound_id: str) -> Any:
    row = conn.execute(
        sa.select(inbound_messages).where(inbound_messages.c.id == inbound_id)
    ).first()
    if row is None:
        raise NotFound(f"There is no inbound message with id '{inbound_id}'.")
    if row.state not in OPEN_INBOUND_STATES:
        raise Conflict(
            f"This inbound message is already handled (state: {row.state}); only unrecognised "
            "or invalid ones can be assigned or deleted."
        )
    return row


async def assign_inbound(
    service: Service,
    inbound_id: str,
    *,
    customer_id: str | None = None,
    request_id: str | None = None,
) -> None:
    """Accept an unrecognised (or invalid) inbound SMS: into a request, for a customer, or
    for its sender as if it had carried the SMS endpoint code."""
    config = await run_in_threadpool(service.settings.load)
    events = service.events

    def assign(conn: Connection) -> None:
        row = _open_inbound(conn, inbound_id)
        now = service.clock()
        if request_id is not None:
            request = get_request(conn, request_id)
            _attach(conn, row, request, now, config.default_country_code)
            return
        if (
            customer_id is not None
            and conn.execute(sa.select(customers.c.id).where(customers.c.id == customer_id)).first()
            is None
        ):
            raise NotFound(f"There is no customer with id '{customer_id}'.")
        tally = process_rows(conn, [row], config, events, now, assign_to={row.id: customer_id})
        if tally.states.get("request") != 1:
            raise DomainError(
                "The message cannot become a request: its sender is not a mobile number. "
                "Assign it to a request or a customer instead.",
                field="customer_id",
            )

    await service.writer.run(assign)


def _attach(
    conn: Connection, row: Any, request: Any, now: float, default_country_code: str
) -> None:
    content = row.content or row.body.strip()
    try:
        author = sender_number(row.sender, default_country_code)
    except DomainError:
        author = row.sender
    conn.execute(
        request_messages.insert().values(
            request_id=request.id,
            direction="in",
            inbound_id=row.id,
            body=content,
            author=author,
            at=row.received_at,
        )
    )
    conn.execute(
        inbound_messages.update()
        .where(inbound_messages.c.id == row.id)
        .values(
            state="request",
            content=content,
            customer_id=request.customer_id,
            request_id=request.id,
            processed_at=now,
        )
    )
    conn.execute(
        requests.update()
        .where(requests.c.id == request.id)
        .values(status="open", updated_at=now, last_activity_at=max(now, row.received_at))
    )


async def delete_inbound(service: Service, inbound_id: str) -> None:
    """Remove an unrecognised or invalid SMS from the list (kept, marked deleted, for audit)."""

    def delete(conn: Connection) -> None:
        _open_inbound(conn, inbound_id)
        conn.execute(
            inbound_messages.update()
            .where(inbound_messages.c.id == inbound_id)
            .values(state="deleted", processed_at=service.clock())
        )

    await service.writer.run(delete)
