"""Preferences → Spend controls (/preferences/spend, administrators): where messages may go and
how many a day, with today's usage (UTC) and a warning once a cap is at its alert percentage.

The controls are the `spend` section of the SMS configuration; saving validates it as the API
does and stores nothing unless all of it is valid.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from smsdesk.domain.settings import ConfigurationInvalid
from smsdesk.domain.spend_settings import SpendSettings
from smsdesk.service import Service
from smsdesk.store.users import WebSession
from smsdesk.web.actors import user_actor
from smsdesk.web.api.spend import save_spend, usage_today
from smsdesk.web.auth import service_of
from smsdesk.web.ui.field_errors import translate_error
from smsdesk.web.ui.i18n import translations
from smsdesk.web.ui.render import render
from smsdesk.web.ui.session import admin_session, form_with_csrf, page_language

router = APIRouter(include_in_schema=False)
PATH = "/preferences/spend"
_LINE = re.compile(r"^\s*([^=\s]+)\s*=\s*(\S+)\s*$")


def _load(service: Service) -> dict[str, Any]:
    return {
        "spend": service.settings.load().spend,
        "usage": usage_today(service),
        "key_names": {k.id: k.name for k in service.keys.list()},
    }


def nearly_full(service: Service) -> list[dict[str, Any]]:
    """Today's caps at or past their alert percentage (for the dashboard)."""
    alert = service.settings.load().spend.alert_percent
    return [u for u in usage_today(service) if u["percent"] is not None and u["percent"] >= alert]


def _typed_view(spend: SpendSettings) -> dict[str, str]:
    return {
        "allowed_countries": ", ".join(spend.allowed_countries),
        "daily_total": "" if spend.daily_total is None else str(spend.daily_total),
        "daily_per_country": "\n".join(f"{k} = {v}" for k, v in spend.daily_per_country.items()),
        "daily_per_api_key": "\n".join(f"{k} = {v}" for k, v in spend.daily_per_api_key.items()),
        "alert_percent": str(spend.alert_percent),
    }


async def _page(
    request: Request,
    session: WebSession,
    *,
    status: int = 200,
    typed: dict[str, str] | None = None,
    errors: dict[str, list[str]] | None = None,
    saved: bool = False,
) -> Response:
    data = await run_in_threadpool(_load, service_of(request))
    return render(
        request,
        "spend.html",
        session,
        status=status,
        typed=typed or _typed_view(data["spend"]),
        errors=errors or {},
        saved=saved,
        **data,
    )


@router.get(PATH)
async def spend_page(request: Request, session: WebSession = Depends(admin_session)) -> Response:
    return await _page(request, session, saved=request.query_params.get("saved") == "1")


def _caps(text: str, field: str, errors: dict[str, list[str]]) -> dict[str, Any]:
    """Lines `KEY = number` as a mapping; a line that is not one is an error of `field`."""
    caps: dict[str, Any] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        found = _LINE.match(line)
        if found is None:
            errors.setdefault(field, []).append(f"Line {number}: write it as 'key = value'.")
            continue
        value = found.group(2)
        caps[found.group(1)] = int(value) if value.isdecimal() else value
    return caps


def submitted_spend(form: dict[str, str], errors: dict[str, list[str]]) -> dict[str, Any]:
    """The posted form as the spend section (see `SpendSettings`)."""
    total = form.get("daily_total", "").strip()
    return {
        "allowed_countries": [
            c for c in re.split(r"[,\s]+", form.get("allowed_countries", "")) if c
        ],
        "daily_total": (int(total) if total.isdecimal() else total) if total else None,
        "daily_per_country": _caps(form.get("daily_per_country", ""), "daily_per_country", errors),
        "daily_per_api_key": _caps(form.get("daily_per_api_key", ""), "daily_per_api_key", errors),
        "alert_percent": form.get("alert_percent", "80").strip() or "80",
    }


@router.post(PATH)
async def spend_save(request: Request, session: WebSession = Depends(admin_session)) -> Response:
    form = await form_with_csrf(request, session)
    service = service_of(request)
    gettext = translations(page_language(request, session)).gettext
    typed = {name: form.get(name, "") for name in _typed_view(SpendSettings())}
    errors: dict[str, list[str]] = {}
    body = submitted_spend(form, errors)
    if not errors:
        try:
            await run_in_threadpool(save_spend, service, body, user_actor(request, session))
        except ConfigurationInvalid as exc:
            for error in exc.errors:
                name = error.field.removeprefix("spend.").split(".")[0]
                errors.setdefault(name, []).append(error.message)
    if errors:
        shown = {k: [translate_error(m, gettext) for m in v] for k, v in errors.items()}
        return await _page(request, session, status=422, typed=typed, errors=shown)
    return RedirectResponse(f"{PATH}?saved=1", status_code=303)
