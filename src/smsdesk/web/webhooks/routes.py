"""Callbacks from providers: /webhooks/<module>/{status,inbound}/<secret>.

The secret in the URL is compared in constant time; a module may also check its provider's
signature. A forged or malformed callback gets a 4xx and changes nothing.
"""

from __future__ import annotations

import hmac
import logging
from urllib.parse import parse_qsl

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from smsdesk import metrics
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


async def _provider(service: Service, module: str, secret: str) -> Provider:
    try:
        get_module(module)
    except UnknownModule:
        raise ApiError(404, "not_found", f"There is no module '{module}'.") from None
    expected = await run_in_threadpool(service.settings.callback_secret)
    if not hmac.compare_digest(secret.encode(), expected.encode()):
        log.warning("callback refused: wrong secret", extra={"sms_module": module})
        raise ApiError(403, "forbidden", "This callback URL is not valid for this installation.")
    if service.pool is None:
        raise ApiError(503, "not_ready", "The service is starting; try again in a moment.")
    config = await run_in_threadpool(service.settings.load)
    try:
        return await service.pool.get(module, config)
    except LookupError as exc:
        raise ApiError(404, "not_found", str(exc)) from None


@router.api_route("/{module}/status/{secret}", methods=["GET", "POST"], summary="Delivery reports")
async def status_callback(module: str, secret: str, request: Request) -> Response:
    service = service_of(request)
    provider = await _provider(service, module, secret)
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


@router.api_route("/{module}/inbound/{secret}", methods=["GET", "POST"], summary="Inbound SMS")
async def inbound_callback(module: str, secret: str, request: Request) -> Response:
    service = service_of(request)
    provider = await _provider(service, module, secret)
    callback = await _callback_request(request)
    if not provider.verify_callback(callback, secret):
        raise ApiError(403, "forbidden", "The callback's signature does not match.")
    try:
        received = provider.parse_inbound(callback)
    except ValueError as exc:
        raise ApiError(400, "malformed_callback", str(exc)) from None
    await store_inbound(
        service.writer, module, received, service.clock(), stored=service.wake_inbound
    )
    answer = provider.callback_answer("inbound", callback, received)
    return Response(answer.body, answer.status_code, media_type=answer.media_type)
