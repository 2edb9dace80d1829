"""Agents start conversations: a new request whose first message is an SMS to the customer.

Shared by the API (`POST /api/v1/requests`), the requests screen and `smsdesk requests start`.
The customer is given by id, or found by a number typed as the agent would (national with the
default country code, spaces, dashes) and created when the number belongs to nobody. The first
SMS goes through the normal outbox, linked to the request by its id and session key, so the
customer's answer threads into the request (`conversations.from_sms`, rule 2). A number on the
opt-out list is refused before anything is stored.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection
from starlette.concurrency import run_in_threadpool

from smsdesk.conversations.from_sms import new_session_key, request_title
from smsdesk.conversations.requests import NotFound
from smsdesk.domain.audit import Actor
from smsdesk.domain.errors import DomainError
from smsdesk.domain.ids import new_id
from smsdesk.domain.phone import normalise_msisdn
from smsdesk.domain.settings import SmsConfiguration
from smsdesk.host import SendingHost
from smsdesk.outbox.accept import NewMessage, prepare_message
from smsdesk.store import customers as customer_store
from smsdesk.store import optouts as optout_store
from smsdesk.store import requests as store
from smsdesk.store.audit import AuditTrail

__all__ = ["NewConversation", "OptedOut", "Started", "opt_out_of", "start_conversation"]

# How a number came onto the opt-out list, as `opt_outs.source` records it.
SOURCE_KINDS = {"sms": "keyword", "api": "api", "cli": "admin", "web": "admin"}


class OptedOut(DomainError):
    """The number is on the opt-out list: no SMS may start or continue a conversation.

    Carries when and how the number opted out (`how`: keyword, api or admin; `keyword` the
    word the customer sent), so a screen can word it for an agent.
    """

    field = "number"

    def __init__(
        self,
        number: str,
        since: float,
        how: str,
        keyword: str | None,
        message: str,
        *,
        field: str | None = None,
    ) -> None:
        super().__init__(message, field=field)
        self.number = number
        self.since = since
        self.how = how
        self.keyword = keyword


def opt_out_of(
    conn: Connection, number: str, *, message: str | None = None, field: str | None = None
) -> OptedOut | None:
    """Why `number` receives no SMS (as an OptedOut not yet raised), or None if it may.

    Without `message`, the refusal of a new conversation.
    """
    row = optout_store.get_opt_out(conn, number)
    if row is None:
        return None
    how = SOURCE_KINDS.get(row.source, "admin")
    reason = f"replied {row.keyword}" if how == "keyword" and row.keyword else "added by " + how
    return OptedOut(
        number,
        row.created_at,
        how,
        row.keyword,
        message or f"{number} opted out of SMS ({reason}); no conversation was started.",
        field=field,
    )


@dataclass(frozen=True, slots=True)
class NewConversation:
    """What an agent asks for: whom (a customer, a number, or both), the first text, and
    optionally the request's title, group (id or name) and owner (username or user id)."""

    text: str
    customer_id: str | None = None
    number: str | None = None
    title: str | None = None
    group: str | None = None
    owner: str | None = None


@dataclass(frozen=True, slots=True)
class Started:
    """The new request, its customer (and whether it was created) and the queued SMS."""

    request_id: str
    customer_id: str
    customer_created: bool
    message: dict[str, Any]


def _recipient(conn: Connection, wanted: NewConversation, country: str | None) -> str:
    """The number the first SMS goes to: the given one, else the customer's first."""
    if wanted.customer_id:
        customer = customer_store.get_customer(conn, wanted.customer_id)
        if customer is None:
            raise NotFound(f"There is no customer with id '{wanted.customer_id}'.")
        if not wanted.number:
            if not customer.numbers:
                raise DomainError(
                    "The customer has no mobile number; add one to the customer first.",
                    field="customer_id",
                )
            return customer.numbers[0]
    if not wanted.number:
        raise DomainError("Give a customer or a mobile number.", field="number")
    try:
        number = normalise_msisdn(wanted.number, country)
    except DomainError as exc:
        raise DomainError(exc.message, field="number") from None
    if wanted.customer_id:
        owner = customer_store.owners(conn, [number]).get(number)
        if owner is not None and owner[0] != wanted.customer_id:
            raise DomainError(f"{number} belongs to another customer ({owner[1]}).", field="number")
    return number


def _title(wanted: NewConversation, number: str) -> str:
    if wanted.title is None:
        return request_title(wanted.text, number)
    title = " ".join(wanted.title.split())
    if not title:
        raise DomainError("The title cannot be empty.", field="title")
    if len(title) > 200:
        raise DomainError("The title has more than 200 characters.", field="title")
    return title


@dataclass(frozen=True, slots=True)
class _Prepared:
    number: str
    title: str
    group_id: str | None
    owner_id: int | None
    message: dict[str, Any]


def _prepare(
    conn: Connection,
    wanted: NewConversation,
    config: SmsConfiguration,
    now: float,
    *,
    agent_id: int | None,
    api_key_id: str | None,
    request_id: str,
    session_key: str,
) -> _Prepared:
    """Everything checked, in the order an agent fixes things: whom, opt-out, text, the rest."""
    number = _recipient(conn, wanted, config.default_country_code or None)
    refusal = opt_out_of(conn, number)
    if refusal is not None:
        raise refusal
    row = prepare_message(
        NewMessage(to=number, text=wanted.text),
        config,
        now,
        api_key_id=api_key_id,
        request_id=request_id,
        session_key=session_key,
    )
    group_id = None
    if wanted.group:
        group_id = store.group_id_of(conn, wanted.group.strip())
        if group_id is None:
            raise DomainError(f"There is no group '{wanted.group}'.", field="group")
    owner_id = agent_id
    if wanted.owner:
        owner_id = store.user_id_of(conn, wanted.owner.strip())
        if owner_id is None:
            raise DomainError(f"There is no user '{wanted.owner}'.", field="owner")
    return _Prepared(number, _title(wanted, number), group_id, owner_id, row)


async def start_conversation(
    service: SendingHost,
    wanted: NewConversation,
    *,
    author: str,
    agent_id: int | None = None,
    api_key_id: str | None = None,
    audit: tuple[AuditTrail, Actor] | None = None,
) -> Started:
    """Create (or find) the customer and a new request, and queue its first SMS.

    `agent_id` is the user starting it (the owner unless `wanted.owner` names another);
    `author` the name shown beside the SMS in the conversation; `audit` records
    `request.started` in the same transaction. Raises OptedOut, NotFound or DomainError
    (naming the field) before anything is stored.
    """
    config = await run_in_threadpool(service.settings.load)
    now = service.clock()
    request_id, session_key = new_id(), new_session_key()

    def prepare() -> _Prepared:
        with service.engine.connect() as conn:
            return _prepare(
                conn,
                wanted,
                config,
                now,
                agent_id=agent_id,
                api_key_id=api_key_id,
                request_id=request_id,
                session_key=session_key,
            )

    ready = await run_in_threadpool(prepare)

    def write(conn: Connection) -> tuple[str, bool]:
        # Checked again in the transaction: an opt-out may have arrived meanwhile.
        refusal = opt_out_of(conn, ready.number)
        if refusal is not None:
            raise refusal
        customer = customer_store.customer_by_number(conn, ready.number)
        created = customer is None
        if customer is None:
            customer_id = customer_store.insert_customer(
                conn,
                name=ready.number,
                language=config.inbound.language,
                numbers=[ready.number],
                now=now,
            )
        else:
            customer_id = customer.id
        store.start_request(
            conn,
            {
                "id": request_id,
                "title": ready.title,
                "status": "open",
                "category": config.inbound.category,
                "priority": config.inbound.priority,
                "language": config.inbound.language,
                "customer_id": customer_id,
                "session_key": session_key,
                "created_at": now,
                "updated_at": now,
                "last_activity_at": now,
                "owner_id": ready.owner_id,
                "group_id": ready.group_id,
                "started_by": agent_id,
            },
            ready.message,
            author,
        )
        if audit is not None:
            trail, actor = audit
            trail.record(
                conn,
                actor,
                "request.started",
                target_kind="request",
                target_id=request_id,
                details={"message_id": ready.message["id"], "customer_created": created},
            )
        return customer_id, created

    customer_id, created = await service.writer.run(write)
    service.wake_dispatcher()
    return Started(request_id, customer_id, created, ready.message)
