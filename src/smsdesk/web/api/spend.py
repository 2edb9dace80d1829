"""Spend controls: /api/v1/spend (admin keys only).

The allowed destination countries and the daily caps (messages per UTC day: in total, per
country, per API key) are the `spend` section of the SMS configuration; `usage` is what each
scope used today, with its cap.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Depends, Request
from starlette.concurrency import run_in_threadpool

from smsdesk.service import Service
from smsdesk.sms_configuration import validate_configuration
from smsdesk.store import spend as spend_store
from smsdesk.store.apikeys import ApiKey
from smsdesk.web.actors import key_actor
from smsdesk.web.auth import admin_key, service_of
from smsdesk.web.jsonresponse import Json

router = APIRouter(prefix="/api/v1/spend", tags=["spend controls"])


def usage_today(service: Service) -> list[dict[str, Any]]:
    """What each scope used today (UTC), with its cap and how full it is, in percent."""
    day = spend_store.utc_day(service.clock())
    with service.engine.connect() as conn:
        found = spend_store.usage(conn, day)
    return [
        {
            "scope": u.scope,
            "country": u.country or None,
            "api_key_id": u.api_key_id or None,
            "messages": u.messages,
            "segments": u.segments,
            "cap": u.cap,
            "percent": None if not u.cap else round(100 * u.messages / u.cap, 1),
            "alerted": u.alerted,
        }
        for u in found
    ]


def save_spend(service: Service, changes: dict[str, Any], actor: Any) -> dict[str, Any]:
    """Merge `changes` into the spend section and save it (ConfigurationInvalid if wrong)."""
    stored = service.settings.load()
    spend = {**stored.spend.model_dump(), **changes}
    config = validate_configuration({"spend": spend}, stored)
    service.settings.save(config, actor)
    return service.settings.load().spend.model_dump()


@router.get("", summary="The allowed countries and the daily caps")
async def get_spend(request: Request, _: ApiKey = Depends(admin_key)) -> Json:
    config = await run_in_threadpool(service_of(request).settings.load)
    return Json(config.spend.model_dump())


@router.put("", summary="Change the allowed countries and the daily caps")
async def put_spend(
    request: Request,
    key: ApiKey = Depends(admin_key),
    body: dict[str, Any] = Body(
        ...,
        examples=[
            {
                "allowed_countries": ["NL", "BE"],
                "daily_total": 5000,
                "daily_per_country": {"BE": 500},
                "daily_per_api_key": {},
                "alert_percent": 80,
            }
        ],
    ),
) -> Json:
    """Fields left out stay as they are. `["*"]` allows every country; an empty list allows
    the country of the default country code only."""
    service = service_of(request)
    saved = await run_in_threadpool(save_spend, service, body, key_actor(request, key))
    return Json(saved)


@router.get("/usage", summary="What was sent today (UTC) per cap")
async def get_usage(request: Request, _: ApiKey = Depends(admin_key)) -> Json:
    service = service_of(request)
    day = spend_store.utc_day(service.clock())
    return Json({"day": day, "usage": await run_in_threadpool(usage_today, service)})
