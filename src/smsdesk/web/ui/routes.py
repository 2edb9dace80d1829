"""Preferences → Routes (/preferences/routes, administrators): which connections messages take.

Routes are tried from the top; the first enabled route whose fields all match a message names
its connections, the first tried first. The default connection is the last rule. Routes are
added, changed, moved up or down and deleted here; the explain form shows the route and
connections a message would take now, with the same choice accepting a message makes.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from smsdesk import route_edits
from smsdesk.domain.audit import Actor
from smsdesk.domain.errors import DomainError
from smsdesk.domain.routing import Route
from smsdesk.service import Service
from smsdesk.store.routes import RouteNotFound
from smsdesk.store.users import WebSession
from smsdesk.web.actors import user_actor
from smsdesk.web.auth import service_of
from smsdesk.web.ui.connections import refusal_text
from smsdesk.web.ui.i18n import translations
from smsdesk.web.ui.render import render
from smsdesk.web.ui.session import admin_session, form_with_csrf, page_language

router = APIRouter(include_in_schema=False)
PATH = "/preferences/routes"
NOTICES = ("added", "saved", "deleted", "moved")
PLAN_SLOTS = 3  # connections a route form offers: the first and two to fail over to


def refusal(exc: DomainError, gettext: Callable[[str], str]) -> str:
    """A refusal of a route in the page's language (by its msgid when it has one)."""
    return refusal_text(exc, gettext)


def _load(service: Service) -> dict[str, Any]:
    connections = service.settings.connections.all()
    return {
        "routes": route_edits.all_routes(service),
        "connections": connections,
        "names": {c.id: c.name for c in connections},
        "default": next((c for c in connections if c.is_default), None),
        "api_keys": [(k.id, k.name) for k in service.keys.list()],
    }


async def _page(
    request: Request,
    session: WebSession,
    *,
    status: int = 200,
    notice: str | None = None,
    problem: str | None = None,
    problem_at: str | None = None,
    typed: dict[str, str] | None = None,
    explained: dict[str, Any] | None = None,
    asked: dict[str, str] | None = None,
) -> Response:
    data = await run_in_threadpool(_load, service_of(request))
    return render(
        request,
        "routes.html",
        session,
        status=status,
        notice=notice,
        problem=problem,
        problem_at=problem_at,
        typed=typed or {},
        explained=explained,
        asked=asked or {},
        slots=range(PLAN_SLOTS),
        lists=route_edits.LISTS,
        **data,
    )


@router.get(PATH)
async def route_list(
    request: Request,
    notice: str = Query("", max_length=20),
    session: WebSession = Depends(admin_session),
) -> Response:
    return await _page(request, session, notice=notice if notice in NOTICES else None)


def _split(text: str) -> list[str]:
    return [part for part in re.split(r"[,\s]+", text) if part]


def submitted_route(form: dict[str, str]) -> dict[str, Any]:
    """The posted route form as route fields (see `route_edits.route_changes`)."""
    fields: dict[str, Any] = {
        "name": form.get("name", ""),
        "enabled": form.get("enabled") == "on",
        "sender_override": form.get("sender_override", "").strip() or None,
        "price_per_segment": form.get("price_per_segment", "").strip() or None,
        "currency": form.get("currency", "").strip() or None,
    }
    for name in route_edits.LISTS:
        values = _split(form.get(name, ""))
        if name == "priorities":
            try:
                fields[name] = [int(v) for v in values]
            except ValueError:
                raise DomainError(
                    "Give priorities as numbers 1, 2 or 3.", field="priorities"
                ) from None
        else:
            fields[name] = values
    slots = [form.get(f"connection_{i}", "") for i in range(PLAN_SLOTS)]
    fields["connections"] = [c for c in slots if c]
    return fields


Work = Callable[[Service, Actor, dict[str, str]], object]


async def _change(
    request: Request, session: WebSession, where: str, notice: str, work: Work
) -> Response:
    """A change from a form; a refusal shows the page again with the reason beside `where`."""
    service = service_of(request)
    actor = user_actor(request, session)
    form = await form_with_csrf(request, session)
    try:
        await run_in_threadpool(work, service, actor, form)
    except DomainError as exc:
        gettext = translations(page_language(request, session)).gettext
        return await _page(
            request,
            session,
            status=422,
            problem=refusal(exc, gettext),
            problem_at=where,
            typed=form,
        )
    except RouteNotFound:
        return await _page(request, session, status=404, problem_at="missing")
    return RedirectResponse(f"{PATH}?notice={notice}", status_code=303)


def _add(service: Service, actor: Actor, form: dict[str, str]) -> None:
    fields = submitted_route(form)
    route = route_edits.route_of(fields, fields["connections"])
    route_edits.saved_route(service, actor, route, None)


@router.post(PATH)
async def route_add(request: Request, session: WebSession = Depends(admin_session)) -> Response:
    return await _change(request, session, "new-route", "added", _add)


@router.post(PATH + "/explain")
async def route_explain(request: Request, session: WebSession = Depends(admin_session)) -> Response:
    """Which route and connections a message would take now."""
    service = service_of(request)
    form = await form_with_csrf(request, session)
    priority = form.get("priority", "")
    message = {
        "to": form.get("to", ""),
        "sender": form.get("sender", "").strip() or None,
        "priority": int(priority) if priority in ("1", "2", "3") else None,
        "api_key_id": form.get("api_key_id", "") or None,
        "tag": form.get("tag", "").strip() or None,
    }
    try:
        answer = await run_in_threadpool(route_edits.explained, service, message)
    except DomainError as exc:
        gettext = translations(page_language(request, session)).gettext
        return await _page(
            request,
            session,
            status=422,
            problem=refusal(exc, gettext),
            problem_at="explain",
            asked=form,
        )
    return await _page(request, session, explained=answer, asked=form)


@router.post(PATH + "/{route_id}")
async def route_save(
    request: Request, route_id: str, session: WebSession = Depends(admin_session)
) -> Response:
    def work(service: Service, actor: Actor, form: dict[str, str]) -> None:
        before = route_edits.get(service, route_id)
        if before is None or before.id != route_id:
            raise RouteNotFound(route_id)
        wanted: Route = replace(before, **route_edits.route_changes(submitted_route(form)))
        route_edits.saved_route(service, actor, wanted, before)

    return await _change(request, session, f"route-{route_id}", "saved", work)


@router.post(PATH + "/{route_id}/move")
async def route_move(
    request: Request, route_id: str, session: WebSession = Depends(admin_session)
) -> Response:
    def work(service: Service, actor: Actor, form: dict[str, str]) -> None:
        route_edits.moved(service, actor, route_id, -1 if form.get("step") == "up" else 1)

    return await _change(request, session, f"route-{route_id}", "moved", work)


@router.post(PATH + "/{route_id}/delete")
async def route_delete(
    request: Request, route_id: str, session: WebSession = Depends(admin_session)
) -> Response:
    def work(service: Service, actor: Actor, _form: dict[str, str]) -> None:
        if not route_edits.delete(service, actor, route_id):
            raise RouteNotFound(route_id)

    return await _change(request, session, f"route-{route_id}", "deleted", work)
