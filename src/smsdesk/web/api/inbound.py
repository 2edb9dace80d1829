"""Inbound SMS: the inbox of everything received, unrecognised ones, and injecting SMS.

`POST /api/v1/inbound/bulk` deletes every unrecognised SMS a filter matches (`dry_run`: only
the count), in batches, with one audit entry.

`POST /api/v1/inbound` is the counterpart of the original product's CreateMessage: another
system (or a test) hands us an SMS it received, optionally with the session key to thread on.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from smsdesk.conversations.requests import NotFound
from smsdesk.domain.ids import new_id
from smsdesk.domain.sms import InboundSms
from smsdesk.domain.times import iso
from smsdesk.inbound import actions
from smsdesk.store import inbound as store
from smsdesk.store.apikeys import ApiKey
from smsdesk.web.actors import key_actor
from smsdesk.web.auth import admin_key, api_key, service_of
from smsdesk.web.errors import ApiError
from smsdesk.web.jsonresponse import Json

router = APIRouter(prefix="/api/v1/inbound", tags=["inbound"])

STATES = ("pending", "request", "unrecognised", "opt_out", "opt_in", "invalid", "deleted")


class IncomingSms(BaseModel):
    """An SMS received elsewhere, handed to smsdesk to be processed like any other."""

    model_config = {"extra": "forbid", "populate_by_name": True}

    sender: str = Field(..., alias="from", min_length=1, max_length=40)
    to: str = Field("", max_length=40)
    text: str = Field(..., alias="content", max_length=10_000)
    session_key: str | None = Field(None, max_length=40, description="Thread on this request.")
    module: str = Field("api", alias="plugin", max_length=40, description="Where it came from.")
    id: str | None = Field(
        None, max_length=100, description="Its id where it came from; a repeated id is ignored."
    )


class Assignment(BaseModel):
    model_config = {"extra": "forbid"}

    customer_id: str | None = None
    request_id: str | None = None


class BulkInboundFilter(BaseModel):
    model_config = {"extra": "forbid", "populate_by_name": True}

    sender: str | None = Field(None, alias="from", max_length=40, description="Part of it.")
    text: str | None = Field(None, max_length=200, description="A part of the text, any case.")


class BulkInbound(BaseModel):
    model_config = {"extra": "forbid"}

    action: Literal["delete"]
    filter: BulkInboundFilter = Field(default_factory=BulkInboundFilter)
    dry_run: bool = Field(False, description="Only count the SMS the action would delete.")


def inbound_out(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "state": row.state,
        "module": row.module,
        "provider_message_id": row.provider_message_id,
        "from": row.sender,
        "to": row.recipient,
        "text": row.body,
        "text_altered": bool(row.text_altered),
        "content": row.content,
        "reason": row.reason,
        "customer_id": row.customer_id,
        "request_id": row.request_id,
        "received_at": iso(row.received_at),
        "processed_at": iso(row.processed_at),
    }


@router.get("", summary="Inbound SMS, newest first (default: the unrecognised ones)")
def list_inbound(
    request: Request,
    _: ApiKey = Depends(admin_key),
    state: str = Query("unrecognised", description=f"One of {', '.join(STATES)}, or 'all'."),
    sender: str | None = Query(None, alias="from"),
    cursor: str | None = None,
    limit: int = Query(50, ge=1, le=500),
) -> Json:
    if state != "all" and state not in STATES:
        raise ApiError(422, "invalid_field", f"State must be one of {', '.join(STATES)}, or 'all'.")
    with service_of(request).engine.connect() as conn:
        rows = store.list_inbound(
            conn,
            state=None if state == "all" else state,
            sender=sender,
            before=cursor,
            limit=limit + 1,
        )
    page = rows[:limit]
    return Json(
        {
            "inbound": [inbound_out(r) for r in page],
            "next_cursor": page[-1].id if len(rows) > limit else None,
        }
    )


def _get(request: Request, inbound_id: str) -> Any:
    with service_of(request).engine.connect() as conn:
        row = store.get_inbound(conn, inbound_id)
    if row is None:
        raise ApiError(404, "not_found", f"There is no inbound message with id '{inbound_id}'.")
    return row


@router.post("/bulk", summary="Delete every unrecognised SMS matching a filter")
async def bulk_inbound(
    body: BulkInbound, request: Request, key: ApiKey = Depends(admin_key)
) -> Json:
    service = service_of(request)
    sender, text = body.filter.sender or None, body.filter.text or None
    if body.dry_run:

        def count() -> int:
            with service.engine.connect() as conn:
                return store.count_inbound(
                    conn, state="unrecognised", sender_part=sender, text=text
                )

        found = await run_in_threadpool(count)
        return Json({"action": body.action, "dry_run": True, "count": found})
    deleted = await actions.delete_matching(
        service, key_actor(request, key), sender_part=sender, text=text
    )
    return Json({"action": body.action, "dry_run": False, "count": deleted})


@router.get("/{inbound_id}", summary="One inbound SMS")
def get_inbound(inbound_id: str, request: Request, _: ApiKey = Depends(api_key)) -> Json:
    return Json(inbound_out(_get(request, inbound_id)))


@router.post("", status_code=202, summary="Hand over an SMS received elsewhere")
async def create_inbound(
    sms: IncomingSms, request: Request, _: ApiKey = Depends(admin_key)
) -> Json:
    """Stored at once and processed like an SMS from a provider (202: processing follows)."""
    service = service_of(request)
    inbound_id, new = await actions.inject_inbound(
        service,
        sms.module,
        InboundSms(
            sms.id or new_id(), sms.sender, sms.to, sms.text, service.clock(), sms.session_key
        ),
    )
    return Json({"id": inbound_id, "duplicate": not new}, 202 if new else 200)


def _handle(exc: Exception) -> ApiError:
    if isinstance(exc, NotFound):
        return ApiError(404, "not_found", str(exc))
    return ApiError(409, "conflict", str(exc))


@router.post("/{inbound_id}/assign", summary="Accept an unrecognised SMS")
async def assign_inbound(
    inbound_id: str, body: Assignment, request: Request, key: ApiKey = Depends(admin_key)
) -> Json:
    """Into a request (request_id), for a customer (customer_id), or (neither) for its sender."""
    try:
        await actions.assign_inbound(
            service_of(request),
            inbound_id,
            customer_id=body.customer_id,
            request_id=body.request_id,
            actor=key_actor(request, key),
        )
    except (NotFound, actions.Conflict) as exc:
        raise _handle(exc) from None
    return Json(inbound_out(_get(request, inbound_id)))


@router.delete("/{inbound_id}", summary="Delete an unrecognised or invalid SMS")
async def delete_inbound(
    inbound_id: str, request: Request, key: ApiKey = Depends(admin_key)
) -> Json:
    try:
        await actions.delete_inbound(service_of(request), inbound_id, key_actor(request, key))
    except (NotFound, actions.Conflict) as exc:
        raise _handle(exc) from None
    return Json(inbound_out(_get(request, inbound_id)))
