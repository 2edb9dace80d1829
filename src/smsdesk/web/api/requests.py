"""Requests created from SMS and their conversations: /api/v1/requests."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field

from smsdesk.conversations import actions
from smsdesk.conversations import requests as requests_repo
from smsdesk.domain.times import iso
from smsdesk.store.apikeys import ApiKey
from smsdesk.web.api.schemas import accepted_out
from smsdesk.web.auth import api_key, service_of
from smsdesk.web.errors import ApiError
from smsdesk.web.jsonresponse import Json

router = APIRouter(prefix="/api/v1/requests", tags=["requests"])


class Reply(BaseModel):
    """An agent's answer to the request's customer, sent as an SMS."""

    model_config = {"extra": "forbid"}

    text: str = Field(..., min_length=1, max_length=10_000)
    author: str | None = Field(None, max_length=100, description="The agent's name.")
    status: str | None = Field(
        None, description="Also set the request's status: open, pending or closed."
    )
    transactional: bool = Field(False, description="Send even if the number opted out.")


class RequestChanges(BaseModel):
    model_config = {"extra": "forbid"}

    status: str | None = None
    title: str | None = Field(None, max_length=200)
    category: str | None = Field(None, max_length=100)
    priority: str | None = None


def request_out(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "title": row.title,
        "status": row.status,
        "category": row.category,
        "priority": row.priority,
        "language": row.language,
        "customer": {"id": row.customer_id, "name": row.customer_name},
        "session_key": row.session_key,
        "created_at": iso(row.created_at),
        "updated_at": iso(row.updated_at),
        "last_activity_at": iso(row.last_activity_at),
    }


def entry_out(entry: dict[str, Any]) -> dict[str, Any]:
    return {**entry, "at": iso(entry["at"])}


def _not_found(exc: LookupError) -> ApiError:
    return ApiError(404, "not_found", str(exc))


@router.get("", summary="List requests, newest first")
def list_requests(
    request: Request,
    _: ApiKey = Depends(api_key),
    status: str | None = Query(None, description="open, pending or closed"),
    customer_id: str | None = None,
    category: str | None = None,
    cursor: str | None = Query(None, description="The next_cursor of the previous page"),
    limit: int = Query(50, ge=1, le=500),
) -> Json:
    service = service_of(request)
    flt = requests_repo.RequestFilter(status, customer_id, category)
    with service.engine.connect() as conn:
        rows = requests_repo.list_requests(conn, flt, before_id=cursor, limit=limit + 1)
    page = rows[:limit]
    return Json(
        {
            "requests": [request_out(r) for r in page],
            "next_cursor": page[-1].id if len(rows) > limit else None,
        }
    )


@router.get("/{request_id}", summary="A request with its conversation")
def get_request(request_id: str, request: Request, _: ApiKey = Depends(api_key)) -> Json:
    service = service_of(request)
    with service.engine.connect() as conn:
        try:
            row = requests_repo.get_request(conn, request_id)
        except requests_repo.NotFound as exc:
            raise _not_found(exc) from None
        entries = requests_repo.conversation(conn, request_id)
    return Json({**request_out(row), "conversation": [entry_out(e) for e in entries]})


@router.patch("/{request_id}", summary="Change a request's status, title, category or priority")
def change_request(
    request_id: str, changes: RequestChanges, request: Request, _: ApiKey = Depends(api_key)
) -> Json:
    service = service_of(request)
    values = changes.model_dump(exclude_none=True)
    try:
        service.writer.run_sync(
            lambda c: requests_repo.update_request(c, request_id, values, service.clock())
        )
    except requests_repo.NotFound as exc:
        raise _not_found(exc) from None
    return get_request(request_id, request)


@router.post("/{request_id}/reply", status_code=201, summary="Answer the customer by SMS")
async def reply(
    request_id: str, body: Reply, request: Request, key: ApiKey = Depends(api_key)
) -> Json:
    """The reply is an outbound SMS linked to the request; the customer's answer joins it."""
    if body.transactional and not key.may_send_transactional:
        raise ApiError(
            403, "forbidden", "This API key may not send transactional messages; use an admin key."
        )
    service = service_of(request)
    try:
        row = await actions.reply(
            service,
            request_id,
            body.text,
            author=body.author or key.name,
            status=body.status,
            transactional=body.transactional,
            api_key_id=key.id,
        )
    except requests_repo.NotFound as exc:
        raise _not_found(exc) from None
    return Json({**accepted_out(row), "request_id": request_id}, 201)
