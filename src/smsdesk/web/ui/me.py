"""My settings (`/me`): every user's own e-mail address, mobile number, time zone and which
events reach them by e-mail or SMS, with their latest notifications and what became of them.

A user without a time zone gets the browser's on the first page they open (`static/time_zone.js`
posts it to `/me/time-zone`, which never overrides one already set); until then My settings
shows the browser's zone for the user to save.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from smsdesk.notify import events as notify_events
from smsdesk.notify.messages import CHANNELS, EVENTS
from smsdesk.notify.preferences import (
    CHANNEL_TITLES,
    EVENT_TITLES,
    ContactInvalid,
    check_contact,
    time_zones,
)
from smsdesk.store import notifications as notification_store
from smsdesk.store.users import Contact, User, UserError, WebSession
from smsdesk.web.actors import user_actor
from smsdesk.web.auth import service_of
from smsdesk.web.ui.field_errors import translate_error
from smsdesk.web.ui.i18n import translations
from smsdesk.web.ui.render import environment, render
from smsdesk.web.ui.session import form_with_csrf, page_language, page_session

router = APIRouter(include_in_schema=False)
PATH = "/me"
RECENT = 20


def _page(
    request: Request,
    session: WebSession,
    shown: dict[str, Any],
    *,
    status: int = 200,
    errors: dict[str, list[str]] | None = None,
    saved: bool = False,
) -> Response:
    service = service_of(request)

    def recent() -> list[Any]:
        with service.engine.connect() as conn:
            return notification_store.list_notifications(
                conn, user_id=session.user.id, limit=RECENT
            )

    return render(
        request,
        "me.html",
        session,
        status=status,
        shown=shown,
        errors=errors or {},
        saved=saved,
        events=[(e, EVENT_TITLES[e]) for e in EVENTS],
        channels=[(c, CHANNEL_TITLES[c]) for c in CHANNELS],
        zones=time_zones(),
        email_ready=service.settings.load().email.configured,
        recent=recent(),
    )


def _shown(contact: Contact) -> dict[str, Any]:
    return {
        "email": contact.email or "",
        "phone": contact.phone or "",
        "time_zone": contact.time_zone or "",
        "notify": notify_events.choices(contact.notify),
    }


@router.get(PATH)
async def show(request: Request, session: WebSession = Depends(page_session)) -> Response:
    users = service_of(request).users
    contact = await run_in_threadpool(users.contact, session.user.username)
    saved = request.query_params.get("saved") == "1"
    return await run_in_threadpool(_page, request, session, _shown(contact), saved=saved)


@router.post(PATH)
async def save(request: Request, session: WebSession = Depends(page_session)) -> Response:
    fields = await form_with_csrf(request, session)
    service = service_of(request)
    notify = {e: [c for c in CHANNELS if fields.get(f"notify.{e}.{c}") == "on"] for e in EVENTS}
    typed: dict[str, Any] = {
        "email": fields.get("email", ""),
        "phone": fields.get("phone", ""),
        "time_zone": fields.get("time_zone", ""),
        "notify": notify,
    }
    config = await run_in_threadpool(service.settings.load)
    try:
        contact = check_contact(
            email=typed["email"],
            phone=typed["phone"],
            time_zone=typed["time_zone"],
            notify=notify,
            default_country_code=config.default_country_code,
        )
    except ContactInvalid as exc:
        gettext = translations(page_language(request, session)).gettext
        errors: dict[str, list[str]] = {}
        for error in exc.errors:
            errors.setdefault(error.field, []).append(translate_error(error.message, gettext))
        return await run_in_threadpool(_page, request, session, typed, status=422, errors=errors)
    await run_in_threadpool(
        service.users.set_contact,
        session.user.username,
        contact.values(),
        user_actor(request, session),
    )
    return RedirectResponse(f"{PATH}?saved=1", status_code=303)


def time_zone_unset(request: Request, user: User | None) -> bool:
    """Whether the logged-in user has no time zone yet (the page then sends the browser's)."""
    if user is None:
        return False
    try:
        return service_of(request).users.contact(user.username).time_zone is None
    except UserError:
        return False


environment.globals["time_zone_unset"] = time_zone_unset


@router.post(f"{PATH}/time-zone")
async def browser_time_zone(
    request: Request, session: WebSession = Depends(page_session)
) -> Response:
    """Store the browser's time zone as the user's, unless they have one already."""
    fields = await form_with_csrf(request, session)
    zone = fields.get("time_zone", "").strip()
    if zone not in time_zones():
        return JSONResponse({"error": {"code": "invalid_field", "field": "time_zone"}}, 422)
    users = service_of(request).users
    contact = await run_in_threadpool(users.contact, session.user.username)
    if contact.time_zone is None:
        await run_in_threadpool(users.set_contact, session.user.username, {"time_zone": zone})
    return Response(status_code=204)
