"""Webhooks to other systems: /api/v1/webhooks and /api/v1/webhook-deliveries (admin keys).

A subscription's secret is shown once, in the answer that created (or rotated) it, and never
again: it is what receivers check each delivery's X-Smsdesk-Signature with.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import orjson
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from smsdesk.domain.times import iso
from smsdesk.events import EVENT_TYPES
from smsdesk.service import Service
from smsdesk.store.apikeys import ApiKey
from smsdesk.web.actors import key_actor
from smsdesk.web.auth import admin_key, service_of
from smsdesk.web.errors import ApiError
from smsdesk.web.jsonresponse import Json
from smsdesk.webhooks_out.subscriptions import NotFound, ReplayRefused, Subscription

router = APIRouter(prefix="/api/v1", tags=["webhooks to other systems"])
EVENTS_HELP = "Event types: " + ", ".join(EVENT_TYPES)


class NewSubscription(BaseModel):
    model_config = {"extra": "forbid"}

    url: str = Field(..., max_length=2000, examples=["https://crm.example.com/smsdesk-events"])
    events: list[str] = Field(..., description=EVENTS_HELP, examples=[["message.status"]])
    description: str = Field("", max_length=200)
    secret: str | None = Field(
        None, description="Signing secret (16+ characters); left out, one is generated."
    )


class SubscriptionChange(BaseModel):
    model_config = {"extra": "forbid"}

    url: str | None = Field(None, max_length=2000)
    events: list[str] | None = Field(None, description=EVENTS_HELP)
    description: str | None = Field(None, max_length=200)
    active: bool | None = None
    secret: str | None = Field(None, description="A new signing secret of your own.")
    rotate_secret: bool = Field(False, description="Generate a new secret (shown only now).")


def subscription_out(sub: Subscription, secret: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": sub.id,
        "url": sub.url,
        "events": list(sub.events),
        "description": sub.description,
        "active": sub.active,
        "created_at": iso(sub.created_at),
    }
    if secret is not None:
        body["secret"] = secret
    return body


def delivery_out(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "subscription_id": row.subscription_id,
        "event_type": row.event_type,
        "event_id": row.event_id,
        "status": row.status,
        "attempts": row.attempts,
        "next_attempt_at": iso(row.next_attempt_at) if row.status == "pending" else None,
        "last_status_code": row.last_status_code,
        "last_error": row.last_error,
        "created_at": iso(row.created_at),
        "delivered_at": iso(row.delivered_at),
        "payload": orjson.loads(row.payload),
    }


def webhook_details(sub: Subscription) -> dict[str, Any]:
    """What the audit trail keeps of a subscription: its events and the receiver's host (never
    the whole URL, which may carry a token, nor the secret)."""
    return {"events": list(sub.events), "host": urlsplit(sub.url).hostname or ""}


def _not_found(exc: NotFound) -> ApiError:
    return ApiError(404, "not_found", str(exc))


@router.post("/webhooks", status_code=201, summary="Subscribe a URL to events")
def create_subscription(
    body: NewSubscription, request: Request, key: ApiKey = Depends(admin_key)
) -> Json:
    """The answer carries the generated secret; it is not shown again."""
    service = service_of(request)
    sub, secret = service.webhooks.store.create(
        body.url, body.events, body.description, body.secret
    )
    service.audit(
        key_actor(request, key),
        "webhook.created",
        target_kind="webhook",
        target_id=sub.id,
        details=webhook_details(sub),
    )
    return Json(subscription_out(sub, secret), 201)


@router.get("/webhooks", summary="Every webhook subscription (without secrets)")
def list_subscriptions(request: Request, _: ApiKey = Depends(admin_key)) -> Json:
    subs = service_of(request).webhooks.store.all()
    return Json({"webhooks": [subscription_out(sub) for sub in subs]})


@router.get("/webhooks/{subscription_id}", summary="One webhook subscription")
def get_subscription(
    subscription_id: str, request: Request, _: ApiKey = Depends(admin_key)
) -> Json:
    try:
        return Json(subscription_out(service_of(request).webhooks.store.get(subscription_id)))
    except NotFound as exc:
        raise _not_found(exc) from None


@router.patch("/webhooks/{subscription_id}", summary="Change, pause or re-key a subscription")
def change_subscription(
    subscription_id: str,
    body: SubscriptionChange,
    request: Request,
    key: ApiKey = Depends(admin_key),
) -> Json:
    service = service_of(request)
    store = service.webhooks.store
    try:
        sub, secret = store.update(
            subscription_id,
            url=body.url,
            events=body.events,
            description=body.description,
            active=body.active,
            secret=body.secret,
            rotate_secret=body.rotate_secret,
        )
    except NotFound as exc:
        raise _not_found(exc) from None
    service.audit(
        key_actor(request, key),
        "webhook.changed",
        target_kind="webhook",
        target_id=sub.id,
        details={**webhook_details(sub), "fields": sorted(body.model_fields_set)},
    )
    return Json(subscription_out(sub, secret))


@router.delete("/webhooks/{subscription_id}", status_code=204, summary="Unsubscribe")
def delete_subscription(
    subscription_id: str, request: Request, key: ApiKey = Depends(admin_key)
) -> Response:
    """Pending deliveries become dead; past deliveries stay listed."""
    service = service_of(request)
    try:
        service.webhooks.store.delete(subscription_id)
    except NotFound as exc:
        raise _not_found(exc) from None
    service.audit(
        key_actor(request, key), "webhook.deleted", target_kind="webhook", target_id=subscription_id
    )
    return Response(status_code=204)


def _deliveries(
    service: Service,
    subscription_id: str | None,
    status: str | None,
    cursor: str | None,
    limit: int,
) -> Json:
    rows = service.webhooks.store.deliveries(
        subscription_id=subscription_id, status=status, before_id=cursor, limit=limit + 1
    )
    page = rows[:limit]
    return Json(
        {
            "deliveries": [delivery_out(row) for row in page],
            "next_cursor": page[-1].id if len(rows) > limit else None,
        }
    )


StatusFilter = Query(None, description="pending, delivered or dead")
Cursor = Query(None, description="The next_cursor of the previous page")
Limit = Query(50, ge=1, le=500)


@router.get("/webhooks/{subscription_id}/deliveries", summary="A subscription's deliveries")
def subscription_deliveries(
    subscription_id: str,
    request: Request,
    _: ApiKey = Depends(admin_key),
    status: str | None = StatusFilter,
    cursor: str | None = Cursor,
    limit: int = Limit,
) -> Json:
    service = service_of(request)
    try:
        service.webhooks.store.get(subscription_id)
    except NotFound as exc:
        raise _not_found(exc) from None
    return _deliveries(service, subscription_id, status, cursor, limit)


@router.get("/webhook-deliveries", summary="Deliveries of every subscription, newest first")
def all_deliveries(
    request: Request,
    _: ApiKey = Depends(admin_key),
    status: str | None = StatusFilter,
    subscription_id: str | None = None,
    cursor: str | None = Cursor,
    limit: int = Limit,
) -> Json:
    return _deliveries(service_of(request), subscription_id, status, cursor, limit)


@router.post(
    "/webhook-deliveries/{delivery_id}/replay",
    status_code=202,
    summary="Send a delivered or dead delivery's event again",
)
async def replay_delivery(
    delivery_id: str, request: Request, _: ApiKey = Depends(admin_key)
) -> Json:
    """Queues a new delivery with the same event id and body; answers with it."""
    store = service_of(request).webhooks.store
    try:
        row = await run_in_threadpool(store.replay, delivery_id)
    except NotFound as exc:
        raise _not_found(exc) from None
    except ReplayRefused as exc:
        raise ApiError(409, "conflict", str(exc)) from None
    return Json(delivery_out(row), 202)


@router.post(
    "/webhooks/{subscription_id}/ping", status_code=202, summary="Send a test event ('ping')"
)
async def ping_subscription(
    subscription_id: str, request: Request, _: ApiKey = Depends(admin_key)
) -> Json:
    """Queues a signed 'ping' event to this subscription; see its deliveries for the result."""
    store = service_of(request).webhooks.store
    try:
        row = await run_in_threadpool(store.ping, subscription_id)
    except NotFound as exc:
        raise _not_found(exc) from None
    except ReplayRefused as exc:
        raise ApiError(409, "conflict", str(exc)) from None
    return Json(delivery_out(row), 202)
