"""The SMS configuration, the module list and Send test: /api/v1/settings, /api/v1/modules."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Depends, Request
from starlette.concurrency import run_in_threadpool

from smsdesk.outbox import sendtest
from smsdesk.outbox.dispatcher import callback_url
from smsdesk.providers.registry import UnknownModule, all_modules, get_module
from smsdesk.sms_configuration import masked, validate_configuration
from smsdesk.store.apikeys import ApiKey
from smsdesk.web.actors import key_actor
from smsdesk.web.api.schemas import SendTest, message_out
from smsdesk.web.auth import admin_key, api_key, service_of
from smsdesk.web.errors import ApiError
from smsdesk.web.jsonresponse import Json

router = APIRouter(prefix="/api/v1", tags=["configuration"])


@router.get("/settings", summary="The SMS configuration (secrets masked)")
def get_settings(request: Request, _: ApiKey = Depends(admin_key)) -> Json:
    return Json(masked(service_of(request).settings.load()))


@router.put("/settings", summary="Save the SMS configuration")
def put_settings(
    request: Request,
    key: ApiKey = Depends(admin_key),
    body: dict[str, Any] = Body(
        ..., examples=[{"module": "simulator", "default_country_code": "+31", "sender": "Support"}]
    ),
) -> Json:
    """Validate everything; store nothing unless all of it is valid. Blank secrets are kept."""
    store = service_of(request).settings
    config = validate_configuration(body, store.load())
    store.save(config, key_actor(request, key))
    return Json(masked(store.load()))


@router.get("/modules", summary="Every module with its settings schema")
def list_modules(_: ApiKey = Depends(api_key)) -> Json:
    return Json(
        {
            "modules": [
                {
                    "name": m.name,
                    "title": m.title,
                    "description": m.description,
                    "available": m.available,
                    "plugin_keys": sorted(m.settings_model.plugin_keys),
                    "settings_schema": m.settings_model.model_json_schema(),
                }
                for m in all_modules()
            ]
        }
    )


@router.get(
    "/modules/{name}/callbacks",
    summary="The URLs to give the provider for delivery reports and inbound SMS",
)
async def module_callbacks(name: str, request: Request, _: ApiKey = Depends(admin_key)) -> Json:
    """Where the provider must send reports and inbound SMS (they carry the callback secret).

    Some providers take these per message; others (CM, LINK, PSWinCom, Intelecom) need them
    entered once in their portal.
    """
    try:
        module = get_module(name)
    except UnknownModule as exc:
        raise ApiError(404, "not_found", str(exc)) from None
    service = service_of(request)
    secret = await run_in_threadpool(service.settings.callback_secret)
    return Json(
        {
            "module": module.name,
            "status": callback_url(service.public_url, module.name, "status", secret),
            "inbound": callback_url(service.public_url, module.name, "inbound", secret),
        }
    )


@router.post("/settings/test", summary="Send test: send one SMS now with these settings")
async def send_test(test: SendTest, request: Request, key: ApiKey = Depends(admin_key)) -> Json:
    """Send at once (saved or unsaved settings) and answer with the provider's verdict."""
    service = service_of(request)
    stored = await run_in_threadpool(service.settings.load)
    config = validate_configuration(test.settings, stored) if test.settings else stored
    try:
        outcome = await sendtest.send_test(
            service, config, test.to, test.text, key_actor(request, key)
        )
    except sendtest.NotReady as exc:
        raise ApiError(503, "not_ready", str(exc)) from None
    body = {
        **message_out(outcome.message),
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
