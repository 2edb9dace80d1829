"""Requests created from SMS and their conversations: /api/v1/requests."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from smsdesk.conversations import actions
from smsdesk.conversations import requests as requests_repo
from smsdesk.conversations.start import NewConversation, start_conversation
from smsdesk.customers import CustomerNotFound, get_customer
from smsdesk.domain.errors import DomainError
from smsdesk.domain.times import iso
from smsdesk.store.apikeys import ApiKey
from smsdesk.web.actors import key_actor
from smsdesk.web.api.request_views import VIEW_HELP, assign_from_api, assignment_out, list_view
from smsdesk.web.api.schemas import accepted_out
from smsdesk.web.api.templates import text_for_recipient
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


class StartRequest(BaseModel):
    """A conversation an agent starts: a new request whose first message is an SMS."""

    model_config = {"extra": "forbid"}

    customer_id: str | None = Field(None, max_length=26, description="An existing customer.")
    number: str | None = Field(
        None,
        max_length=40,
        description="Mobile number, as typed (national numbers get the default country code); "
        "its customer is found, or created. With customer_id: which of its numbers.",
        examples=["06 1234 5678"],
    )
    text: str | None = Field(None, min_length=1, max_length=10_000)
    template: str | None = Field(
        None, max_length=100, description="A reply template (id or name) instead of text."
    )
    language: str | None = Field(None, max_length=10, description="The template's language.")
    variables: dict[str, str] = Field(
        default_factory=dict, description="Prompts by their question, and variables' values."
    )
    title: str | None = Field(None, max_length=200, description="Else the text's first line.")
    group: str | None = Field(None, max_length=100, description="A group's id or name.")
    owner: str | None = Field(
        None, max_length=100, description="A username or user id; without one, nobody."
    )
    author: str | None = Field(None, max_length=100, description="The agent's name.")


class RequestChanges(BaseModel):
    model_config = {"extra": "forbid"}

    status: str | None = None
    title: str | None = Field(None, max_length=200)
    category: str | None = Field(None, max_length=100)
    priority: str | None = None
    owner: str | None = Field(
        None, max_length=100, description="The owner's username; null: nobody (admin keys)."
    )
    group: str | None = Field(
        None, max_length=100, description="The group's id or name; null: none (admin keys)."
    )


def request_out(row: Any) -> dict[str, Any]:
    return {
        **assignment_out(row),
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
        # The customer's last SMS arrived while the request's group was closed.
        "out_of_hours": bool(row.out_of_hours),
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
    view: str | None = Query(None, description=VIEW_HELP),
    user: str | None = Query(None, max_length=100, description="Whose view (a username)."),
) -> Json:
    service = service_of(request)
    if view is not None:
        return list_view(service, (view, user, status), cursor, limit, request_out)
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


def _first_text(service: Any, body: StartRequest) -> str:
    """The text given, or the template rendered for the recipient."""
    if (body.text is None) == (body.template is None):
        raise DomainError("Give either text or template.", field="text")
    if body.text is not None:
        return body.text
    to = body.number
    if not to and body.customer_id:
        try:
            numbers = get_customer(service, body.customer_id).numbers
        except CustomerNotFound:
            raise ApiError(
                404, "not_found", f"There is no customer with id '{body.customer_id}'."
            ) from None
        to = numbers[0] if numbers else ""
    return text_for_recipient(service, to or "", body.template or "", body.language, body.variables)


@router.post("", status_code=201, summary="Start a conversation: a request and its first SMS")
async def start_request(
    body: StartRequest, request: Request, key: ApiKey = Depends(api_key)
) -> Json:
    """Finds the customer by number (or creates one), opens a request and queues the SMS.

    The customer's answer joins the request. A number that opted out is refused (422, field
    number) before anything is stored.
    """
    service = service_of(request)
    text = await run_in_threadpool(_first_text, service, body)
    wanted = NewConversation(
        text=text,
        customer_id=body.customer_id,
        number=body.number,
        title=body.title,
        group=body.group,
        owner=body.owner,
    )
    try:
        started = await start_conversation(
            service,
            wanted,
            author=body.author or key.name,
            api_key_id=key.id,
            audit=(service.trail, key_actor(request, key)),
        )
    except requests_repo.NotFound as exc:
        raise _not_found(exc) from None
    row = await run_in_threadpool(_request_row, service, started.request_id)
    made = {
        "owner_id": row.owner_id,
        "group_id": row.group_id,
        "started_by": row.started_by,
        "customer_created": started.customer_created,
        "message": accepted_out(started.message),
    }
    return Json({**request_out(row), **made}, 201)


def _request_row(service: Any, request_id: str) -> Any:
    with service.engine.connect() as conn:
        return requests_repo.get_request(conn, request_id)


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


@router.patch(
    "/{request_id}", summary="Change a request's status, title, category, priority, owner, group"
)
def change_request(
    request_id: str, changes: RequestChanges, request: Request, key: ApiKey = Depends(api_key)
) -> Json:
    service = service_of(request)
    values = changes.model_dump(exclude_none=True, exclude={"owner", "group"})
    try:
        service.writer.run_sync(
            lambda c: requests_repo.update_request(c, request_id, values, service.clock())
        )
        assign_from_api(request, key, request_id, changes)
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
