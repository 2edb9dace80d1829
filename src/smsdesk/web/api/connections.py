"""Connections: /api/v1/connections (admin keys only).

A connection is a module with its own settings, secrets, limits and circuit breaker. Answers
never carry a secret: set ones show as `********`, and a secret sent blank or as `********`
keeps its stored value. Invalid settings answer 422 with each problem's path
(`settings.<field>`). *Send test* sends one SMS at once through one connection.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Depends, Request, Response
from starlette.concurrency import run_in_threadpool

from smsdesk.connection_edits import callback_urls, changes_of, check_connection, shown
from smsdesk.domain.connections import Connection
from smsdesk.outbox import sendtest
from smsdesk.service import Service
from smsdesk.store import connection_health, stats
from smsdesk.store.apikeys import ApiKey
from smsdesk.store.connections import ConnectionChanged, ConnectionNotFound, ConnectionStore
from smsdesk.web.actors import key_actor
from smsdesk.web.api.schemas import SendTest, message_out
from smsdesk.web.auth import admin_key, service_of
from smsdesk.web.errors import ApiError
from smsdesk.web.jsonresponse import Json

router = APIRouter(prefix="/api/v1/connections", tags=["connections"])

EXAMPLE = {
    "name": "LINK Norway",
    "module": "linkmobility",
    "settings": {"username": "me", "password": "secret", "platform_id": "SMSC"},
    "rate_limit": 10,
    "concurrency": 4,
}


def store_of(service: Service) -> ConnectionStore:
    store: ConnectionStore = service.settings.connections
    return store


def found(service: Service, id_or_name: str) -> Connection:
    connection = store_of(service).get(id_or_name)
    if connection is None:
        raise ApiError(404, "not_found", f"There is no connection '{id_or_name}'.")
    return connection


def callbacks(service: Service, connection: Connection) -> dict[str, str]:
    """Where the provider must send this connection's reports and inbound SMS."""
    return callback_urls(service.public_url, service.settings.callback_secret(), connection)


def _out(service: Service, connection: Connection, health: Any = None) -> dict[str, Any]:
    body = shown(connection)
    if health is not None:
        body["health"] = {
            "state": health.state,
            "consecutive_failures": health.consecutive_failures,
            "last_error": health.last_error,
        }
    body["callbacks"] = callbacks(service, connection)
    return body


def _health(service: Service) -> dict[str, Any]:
    with service.engine.connect() as conn:
        return connection_health.states(conn)


@router.get("", summary="Every connection, the default first (secrets masked)")
async def list_connections(request: Request, _: ApiKey = Depends(admin_key)) -> Json:
    """Each with its circuit breaker and its figures over the last hour: messages accepted
    per minute, the share of attempts that failed for a reason of the connection, and the
    messages that failed over from it."""
    service = service_of(request)

    def load() -> list[dict[str, Any]]:
        health = _health(service)
        now = service.clock()
        with service.engine.connect() as conn:
            figures = {f.id: f for f in stats.connection_figures(conn, now - 3600, now)}
        found = []
        for c in store_of(service).all():
            body = _out(service, c, health.get(c.id))
            f = figures.get(c.id)
            body["last_hour"] = {
                "sent_per_min": round(f.sent_per_min, 3) if f else 0.0,
                "error_rate": None if f is None or f.error_rate is None else round(f.error_rate, 4),
                "failovers": f.failovers if f else 0,
            }
            found.append(body)
        return found

    return Json({"connections": await run_in_threadpool(load)})


@router.get("/{connection_id}", summary="One connection, by id or name (secrets masked)")
async def get_connection(
    connection_id: str, request: Request, _: ApiKey = Depends(admin_key)
) -> Json:
    service = service_of(request)

    def load() -> dict[str, Any]:
        connection = found(service, connection_id)
        return _out(service, connection, _health(service).get(connection.id))

    return Json(await run_in_threadpool(load))


@router.post("", status_code=201, summary="Add a connection")
async def create_connection(
    request: Request,
    key: ApiKey = Depends(admin_key),
    body: dict[str, Any] = Body(..., examples=[EXAMPLE]),
) -> Json:
    """Name, module and the module's fields; the limits and breaker fields are optional."""
    service = service_of(request)
    actor = key_actor(request, key)

    def create() -> dict[str, Any]:
        checked = check_connection(body, None)
        return _out(service, store_of(service).create(checked, actor))

    return Json(await run_in_threadpool(create), 201)


@router.patch("/{connection_id}", summary="Change a connection (fields not sent stay)")
async def update_connection(
    connection_id: str,
    request: Request,
    key: ApiKey = Depends(admin_key),
    body: dict[str, Any] = Body(..., examples=[{"rate_limit": 5, "settings": {"password": ""}}]),
) -> Json:
    """A secret sent blank or as `********` keeps its stored value. With `version`, a
    connection changed meanwhile answers 409."""
    service = service_of(request)
    actor = key_actor(request, key)
    expected = body.pop("version", None)

    def update() -> dict[str, Any]:
        stored = found(service, connection_id)
        checked = check_connection(body, stored)
        try:
            after = store_of(service).update(
                stored.id, changes_of(checked), actor, expected_version=expected
            )
        except ConnectionChanged as exc:
            raise ApiError(409, "conflict", exc.message) from None
        return _out(service, after)

    return Json(await run_in_threadpool(update))


@router.delete("/{connection_id}", status_code=204, summary="Remove a connection")
async def delete_connection(
    connection_id: str, request: Request, key: ApiKey = Depends(admin_key)
) -> Response:
    """Refused (422, naming the rule) for the default connection, one a route names, or one
    that messages still wait for."""
    service = service_of(request)
    actor = key_actor(request, key)

    def delete() -> None:
        try:
            store_of(service).delete(found(service, connection_id).id, actor)
        except ConnectionNotFound as exc:
            raise ApiError(404, "not_found", exc.message) from None

    await run_in_threadpool(delete)
    return Response(status_code=204)


@router.post("/{connection_id}/default", summary="Make a connection the default")
async def set_default(
    connection_id: str, request: Request, key: ApiKey = Depends(admin_key)
) -> Json:
    """Messages that no route matches go to the default connection."""
    service = service_of(request)
    actor = key_actor(request, key)

    def change() -> dict[str, Any]:
        made = store_of(service).set_default(found(service, connection_id).id, actor)
        return _out(service, made)

    return Json(await run_in_threadpool(change))


@router.post("/{connection_id}/test", summary="Send test: one SMS now through this connection")
async def send_test(
    connection_id: str, test: SendTest, request: Request, key: ApiKey = Depends(admin_key)
) -> Json:
    """Sends at once (also through a connection that is turned off or whose circuit is open)
    and answers with the provider's verdict."""
    service = service_of(request)
    connection = await run_in_threadpool(found, service, connection_id)
    config = await run_in_threadpool(service.settings.load)
    try:
        outcome = await sendtest.send_test(
            service, config, test.to, test.text, key_actor(request, key), connection=connection
        )
    except sendtest.NotReady as exc:
        raise ApiError(503, "not_ready", str(exc)) from None
    body = {
        **message_out(outcome.message),
        "connection": connection.id,
        "accepted": outcome.accepted,
        "elapsed_ms": outcome.elapsed_ms,
    }
    if outcome.error is not None:
        body["error"] = {
            "kind": type(outcome.error).__name__,
            "code": outcome.error.code,
            "message": outcome.error.message,
        }
    return Json(body, 200)
