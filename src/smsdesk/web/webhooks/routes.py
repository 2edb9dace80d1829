"""Callbacks from providers: /webhooks/connections/<connection id>/{status,inbound}/<secret>,
and the older /webhooks/<module>/{status,inbound}/<secret>.

A connection's own URL reaches that connection's provider (its account's signature key). A
module's URL, which the default connection keeps so the URLs set at providers stay valid,
reaches the default connection if it uses that module, else the first connection of the
module that is turned on, else the module's settings parked in the SMS configuration.

The secret in the URL is compared in constant time; a module may also check its provider's
signature. A forged or malformed callback gets a 4xx and changes nothing. Each URL answers GET
and POST; the schema describes the POST.
"""

from __future__ import annotations

import hmac
import logging
from urllib.parse import parse_qsl

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from smsdesk import metrics
from smsdesk.domain.connections import Connection
from smsdesk.providers.base import CallbackRequest, Provider
from smsdesk.providers.registry import UnknownModule, get_module
from smsdesk.service import Service
from smsdesk.store import reports as repo
from smsdesk.store.inbound import store_inbound
from smsdesk.web.auth import service_of
from smsdesk.web.errors import ApiError

log = logging.getLogger(__name__)
router = APIRouter(prefix="/webhooks", tags=["webhooks"], include_in_schema=True)


async def _callback_request(request: Request) -> CallbackRequest:
    body = await request.body()
    form: dict[str, str] = {}
    if request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        form = dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
    return CallbackRequest(
        method=request.method,
        url=str(request.url),
        headers=dict(request.headers),
        query=dict(request.query_params),
        body=body,
        form=form,
    )


async def _checked_secret(service: Service, secret: str, module: str) -> None:
    expected = service.settings.known_callback_secret()
    if expected is None:
        expected = await run_in_threadpool(service.settings.callback_secret)
    if not hmac.compare_digest(secret.encode(), expected.encode()):
        log.warning("callback refused: wrong secret", extra={"sms_module": module})
        raise ApiError(403, "forbidden", "This callback URL is not valid for this installation.")
    if service.pool is None:
        raise ApiError(503, "not_ready", "The service is starting; try again in a moment.")


async def _provider(service: Service, target: str | Connection, secret: str) -> Provider:
    """The provider of a connection, or of the connection a module's URL stands for."""
    module = target.module if isinstance(target, Connection) else target
    try:
        get_module(module)
    except UnknownModule:
        raise ApiError(404, "not_found", f"There is no module '{module}'.") from None
    await _checked_secret(service, secret, module)
    assert service.pool is not None  # checked just above
    # Every delivery report comes here: no thread while the cached configuration is fresh.
    config = await service.settings.current()
    try:
        return await service.pool.get(target, config)
    except LookupError as exc:
        raise ApiError(404, "not_found", str(exc)) from None


def _connection(service: Service, connection_id: str) -> Connection:
    found = service.settings.connections.get(connection_id)
    if found is None or found.id != connection_id:
        raise ApiError(404, "not_found", f"There is no connection '{connection_id}'.")
    return found


def _receiving_connection(service: Service, target: str | Connection) -> str | None:
    """The connection whose URL was called: a module's URL stands for the default connection
    when that is of the module (else for no stored connection)."""
    if isinstance(target, Connection):
        return target.id
    default = service.settings.connections.default()
    return default.id if default is not None and default.module == target else None


async def _status(
    service: Service, target: str | Connection, secret: str, request: Request
) -> Response:
    module = target.module if isinstance(target, Connection) else target
    provider = await _provider(service, target, secret)
    callback = await _callback_request(request)
    if not provider.verify_callback(callback, secret):
        log.warning("callback refused: bad signature", extra={"sms_module": module})
        raise ApiError(403, "forbidden", "The callback's signature does not match.")
    try:
        reports = provider.parse_status_callback(callback)
    except ValueError as exc:
        log.warning("malformed delivery report: %s", exc, extra={"sms_module": module})
        raise ApiError(400, "malformed_callback", str(exc)) from None
    now = service.clock()
    tally = await service.writer.run(
        lambda c: repo.apply_reports(c, module, reports, now, events=service.events)
    )
    metrics.count_reports(module, tally)
    answer = provider.callback_answer("status", callback, reports)
    return Response(answer.body, answer.status_code, media_type=answer.media_type)


async def _inbound(
    service: Service, target: str | Connection, secret: str, request: Request
) -> Response:
    module = target.module if isinstance(target, Connection) else target
    provider = await _provider(service, target, secret)
    callback = await _callback_request(request)
    if not provider.verify_callback(callback, secret):
        raise ApiError(403, "forbidden", "The callback's signature does not match.")
    try:
        received = provider.parse_inbound(callback)
    except ValueError as exc:
        raise ApiError(400, "malformed_callback", str(exc)) from None
    await store_inbound(
        service.writer,
        module,
        received,
        service.clock(),
        stored=service.wake_inbound,
        connection_id=_receiving_connection(service, target),
    )
    answer = provider.callback_answer("inbound", callback, received)
    return Response(answer.body, answer.status_code, media_type=answer.media_type)


async def connection_status_callback(connection_id: str, secret: str, request: Request) -> Response:
    """Delivery reports for one connection."""
    service = service_of(request)
    connection = await run_in_threadpool(_connection, service, connection_id)
    return await _status(service, connection, secret, request)


async def connection_inbound_callback(
    connection_id: str, secret: str, request: Request
) -> Response:
    """Inbound SMS received by one connection."""
    service = service_of(request)
    connection = await run_in_threadpool(_connection, service, connection_id)
    return await _inbound(service, connection, secret, request)


async def status_callback(module: str, secret: str, request: Request) -> Response:
    """Delivery reports for a module's default connection (the URL before connections)."""
    return await _status(service_of(request), module, secret, request)


async def inbound_callback(module: str, secret: str, request: Request) -> Response:
    """Inbound SMS for a module's default connection (the URL before connections)."""
    return await _inbound(service_of(request), module, secret, request)


# The connection URLs first: /webhooks/connections/... would otherwise look like a module.
for path, endpoint, summary in (
    (
        "/connections/{connection_id}/status/{secret}",
        connection_status_callback,
        "Delivery reports of a connection",
    ),
    (
        "/connections/{connection_id}/inbound/{secret}",
        connection_inbound_callback,
        "Inbound SMS of a connection",
    ),
    ("/{module}/status/{secret}", status_callback, "Delivery reports"),
    ("/{module}/inbound/{secret}", inbound_callback, "Inbound SMS"),
):
    router.add_api_route(path, endpoint, methods=["POST"], summary=summary)
    router.add_api_route(
        path, endpoint, methods=["GET"], include_in_schema=False, name=f"{endpoint.__name__}_get"
    )
