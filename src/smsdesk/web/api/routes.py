"""Routes: /api/v1/routes (admin keys only), and explaining where a message would go.

Routes are ordered rules; the first enabled route whose fields all match a message names its
connections (the first is tried first, the others take over when it certainly did not take
the message). The default connection is the implicit last rule. `POST /api/v1/routes/explain`
answers with the route and connections a message would take now, using the same choice as
accepting a message.
"""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from smsdesk import route_edits
from smsdesk.domain.routing import Route
from smsdesk.route_edits import explained, reorder, route_changes, route_of, saved_route
from smsdesk.service import Service
from smsdesk.store import routes as route_store
from smsdesk.store.apikeys import ApiKey
from smsdesk.web.actors import key_actor
from smsdesk.web.auth import admin_key, service_of
from smsdesk.web.errors import ApiError
from smsdesk.web.jsonresponse import Json

router = APIRouter(prefix="/api/v1/routes", tags=["routes"])

_MATCH = "Empty matches any message; several values: any of them."


class RouteIn(BaseModel):
    """A route as written: match fields (all non-empty ones must match) and what it does."""

    model_config = {"extra": "forbid"}

    name: str = Field(..., max_length=200, examples=["Norway"])
    enabled: bool = True
    countries: list[str] = Field([], description=f"ISO countries, e.g. NO. {_MATCH}")
    prefixes: list[str] = Field([], description=f"Number prefixes, e.g. +4790. {_MATCH}")
    numbers: list[str] = Field([], description=f"Whole numbers. {_MATCH}")
    senders: list[str] = Field([], description=f"Senders. {_MATCH}")
    priorities: list[int] = Field([], description=f"Priorities 1-3. {_MATCH}")
    api_key_ids: list[str] = Field([], description=f"API key ids. {_MATCH}")
    tags: list[str] = Field([], description=f"Message tags. {_MATCH}")
    connections: list[str] = Field(
        ..., description="Connection ids or names, in failover order.", examples=[["LINK Norway"]]
    )
    sender_override: str | None = Field(None, description="The sender these messages get.")
    price_per_segment: Decimal | None = Field(None, examples=["0.075"])
    currency: str | None = Field(None, examples=["EUR"])
    position: int = Field(0, description="Where it goes (1 = first); 0 or left out: last.")


class RoutePatch(BaseModel):
    """Fields to change; fields left out stay as they are."""

    model_config = {"extra": "forbid"}

    name: str | None = Field(None, max_length=200)
    enabled: bool | None = None
    countries: list[str] | None = None
    prefixes: list[str] | None = None
    numbers: list[str] | None = None
    senders: list[str] | None = None
    priorities: list[int] | None = None
    api_key_ids: list[str] | None = None
    tags: list[str] | None = None
    connections: list[str] | None = None
    sender_override: str | None = None
    price_per_segment: Decimal | None = None
    currency: str | None = None


class Order(BaseModel):
    model_config = {"extra": "forbid"}

    route_ids: list[str] = Field(..., description="Every route id once, in the new order.")


class ExplainIn(BaseModel):
    """A message as it would be sent; left-out fields take the configuration's defaults."""

    model_config = {"extra": "forbid"}

    to: str = Field(..., max_length=40, examples=["+4790012345"])
    sender: str | None = Field(None, max_length=40)
    priority: int | None = None
    api_key_id: str | None = Field(None, max_length=26)
    tag: str | None = Field(None, max_length=64)
    text: str = Field("", max_length=10_000, description="For the segments of the cost.")


def route_out(route: Route, names: dict[str, str]) -> dict[str, Any]:
    return {
        "id": route.id,
        "name": route.name,
        "position": route.position,
        "enabled": route.enabled,
        "countries": list(route.countries),
        "prefixes": list(route.prefixes),
        "numbers": list(route.numbers),
        "senders": list(route.senders),
        "priorities": list(route.priorities),
        "api_key_ids": list(route.api_key_ids),
        "tags": list(route.tags),
        "connections": [{"id": c, "name": names.get(c, c)} for c in route.connection_ids],
        "sender_override": route.sender_override,
        "price_per_segment": None
        if route.price_per_segment is None
        else str(route.price_per_segment),
        "currency": route.currency,
    }


def _names(service: Service) -> dict[str, str]:
    return {c.id: c.name for c in service.settings.connections.all()}


def _listed(service: Service) -> dict[str, Any]:
    with service.engine.connect() as conn:
        stored = route_store.load_routes(conn)
    names = _names(service)
    return {"routes": [route_out(r, names) for r in stored]}


@router.get("", summary="Every route, in the order they are tried")
async def list_routes(request: Request, _: ApiKey = Depends(admin_key)) -> Json:
    return Json(await run_in_threadpool(_listed, service_of(request)))


@router.post("", status_code=201, summary="Add a route")
async def create_route(route: RouteIn, request: Request, key: ApiKey = Depends(admin_key)) -> Json:
    service = service_of(request)
    new = route_of(route.model_dump(exclude={"connections"}), route.connections)
    made = await run_in_threadpool(saved_route, service, key_actor(request, key), new, None)
    return Json(route_out(made, _names(service)), 201)


@router.post("/explain", summary="Which route and connections a message would take now")
async def explain_route(body: ExplainIn, request: Request, _: ApiKey = Depends(admin_key)) -> Json:
    """The same choice accepting a message makes, plus which of the route's connections
    would be skipped now (turned off, or with an open circuit breaker)."""
    service = service_of(request)
    return Json(await run_in_threadpool(explained, service, body.model_dump()))


@router.put("/order", summary="Put the routes in a new order")
async def reorder_routes(order: Order, request: Request, key: ApiKey = Depends(admin_key)) -> Json:
    service = service_of(request)
    await run_in_threadpool(reorder, service, key_actor(request, key), order.route_ids)
    return Json(await run_in_threadpool(_listed, service))


def _get(service: Service, route_id: str) -> Route:
    with service.engine.connect() as conn:
        found = route_store.get_route(conn, route_id)
    if found is None:
        raise ApiError(404, "not_found", f"There is no route '{route_id}'.")
    return found


@router.get("/{route_id}", summary="One route")
async def get_route(route_id: str, request: Request, _: ApiKey = Depends(admin_key)) -> Json:
    service = service_of(request)
    found = await run_in_threadpool(_get, service, route_id)
    return Json(route_out(found, _names(service)))


@router.patch("/{route_id}", summary="Change a route (fields not sent stay)")
async def update_route(
    route_id: str, patch: RoutePatch, request: Request, key: ApiKey = Depends(admin_key)
) -> Json:
    service = service_of(request)
    changes = route_changes(patch.model_dump(exclude_unset=True))
    before = await run_in_threadpool(_get, service, route_id)
    wanted = replace(before, **changes)
    made = await run_in_threadpool(saved_route, service, key_actor(request, key), wanted, before)
    return Json(route_out(made, _names(service)))


@router.delete("/{route_id}", status_code=204, summary="Remove a route")
async def delete_route(
    route_id: str, request: Request, key: ApiKey = Depends(admin_key)
) -> Response:
    service = service_of(request)
    actor = key_actor(request, key)
    if not await run_in_threadpool(route_edits.delete, service, actor, route_id):
        raise ApiError(404, "not_found", f"There is no route '{route_id}'.")
    return Response(status_code=204)
