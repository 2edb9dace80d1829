"""`POST /api/v1/messages/bulk`: cancel, resend or delete every message a filter matches.

With `dry_run` the answer is only the count of messages the action would change. Without it
the work runs in batches through the writer (`store.outbox_admin.BulkAction`) and leaves one
audit entry with the filter and the count. Any key may cancel and resend (as it may one
message); deleting takes an admin key.
"""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from smsdesk.domain.errors import DomainError
from smsdesk.domain.message import Status
from smsdesk.domain.phone import normalise_msisdn
from smsdesk.store.apikeys import ApiKey
from smsdesk.store.outbox_admin import (
    Action,
    BulkAction,
    MessageSearch,
    bulk_search,
    count_messages,
)
from smsdesk.web.actors import key_actor
from smsdesk.web.auth import api_key, service_of
from smsdesk.web.errors import ApiError
from smsdesk.web.jsonresponse import Json

router = APIRouter()


class BulkFilter(BaseModel):
    """Which messages; every condition given must hold, none given means every message."""

    model_config = {"extra": "forbid"}

    status: list[Status] | None = Field(None, description="Any of these statuses.")
    module: str | None = Field(None, max_length=40)
    priority: int | None = Field(None, ge=1, le=3)
    since: float | None = Field(None, description="Created at or after (Unix seconds).")
    until: float | None = Field(None, description="Created before (Unix seconds).")
    to: str | None = Field(None, max_length=40, description="Recipient, e.g. +31612345678.")
    text: str | None = Field(None, max_length=200, description="A part of the text, any case.")


class BulkRequest(BaseModel):
    model_config = {"extra": "forbid"}

    action: Literal["cancel", "resend", "delete"]
    filter: BulkFilter = Field(default_factory=BulkFilter)
    dry_run: bool = Field(False, description="Only count the messages the action would change.")


def _search(flt: BulkFilter, country_code: str | None) -> MessageSearch:
    recipient = None
    if flt.to:
        try:
            recipient = normalise_msisdn(flt.to, country_code)
        except DomainError as exc:
            raise ApiError(
                422,
                "invalid_field",
                exc.message,
                [{"field": "filter.to", "message": exc.message}],
            ) from None
    return MessageSearch(
        statuses=tuple(s.value for s in flt.status) if flt.status else None,
        module=flt.module,
        priority=flt.priority,
        since=flt.since,
        until=flt.until,
        recipient=recipient,
        text=flt.text or None,
    )


@router.post("/bulk", summary="Cancel, resend or delete every message matching a filter")
async def bulk_messages(
    body: BulkRequest, request: Request, key: ApiKey = Depends(api_key)
) -> Json:
    """Answers the count (`dry_run`), or what was done: `count` changed, `skipped` found
    changed meanwhile and left alone."""
    action = Action(body.action)
    if action is Action.DELETE and key.role != "admin":
        raise ApiError(403, "forbidden", "Deleting messages in bulk takes an admin key.")
    service = service_of(request)
    config = await run_in_threadpool(service.settings.load)
    search = _search(body.filter, config.default_country_code)
    if body.dry_run:

        def count() -> int:
            with service.engine.connect() as conn:
                return count_messages(conn, bulk_search(search, action))

        found = await run_in_threadpool(count)
        return Json({"action": action.value, "dry_run": True, "count": found})
    job = BulkAction(
        search,
        action,
        service.clock(),
        f"API key {key.name}",
        service.trail,
        key_actor(request, key),
        service.events,
    )
    result = await job.run(service.writer)
    service.wake_dispatcher()
    return Json(
        {
            "action": action.value,
            "dry_run": False,
            "count": result.done,
            "skipped": result.skipped,
        }
    )
