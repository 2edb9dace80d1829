"""Reply templates: the administrators' screen (/templates) and the reply box's picker.

Administrators list, search, add, change and delete templates; a refused save shows each
error beside its field in the page's language, with what was typed kept. Agents reach the
picker's two JSON answers from a request's page: the templates that match a search (the
agent's language first) and one template rendered for that request with the prompts filled in.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from smsdesk.conversations import templates
from smsdesk.domain.errors import DomainError
from smsdesk.domain.templating import VARIABLES, prompts
from smsdesk.service import Service
from smsdesk.store.users import WebSession
from smsdesk.web.actors import user_actor
from smsdesk.web.auth import service_of
from smsdesk.web.ui.i18n import LANGUAGES, translations
from smsdesk.web.ui.render import render
from smsdesk.web.ui.session import (
    admin_session,
    form_with_csrf,
    page_language,
    page_session,
)
from smsdesk.web.ui.template_picker import problem_text, render_answer, search_answer

router = APIRouter(include_in_schema=False)
FIELDS = ("name", "language", "body")


def _gettext(request: Request, session: WebSession) -> Any:
    return translations(page_language(request, session)).gettext


async def _list_page(
    request: Request,
    session: WebSession,
    *,
    search: str = "",
    language: str = "",
    status: int = 200,
    notice: str | None = None,
    problem: str | None = None,
) -> Response:
    service = service_of(request)
    found = await run_in_threadpool(
        templates.search_templates, service, search, language=language or None
    )
    return render(
        request,
        "reply_templates.html",
        session,
        status=status,
        view="list",
        rows=[(t, prompts(t.body)) for t in found],
        search=search,
        chosen_language=language,
        template_languages=sorted({*LANGUAGES, *(t.language for t in found), language} - {""}),
        notice=notice,
        problem=problem,
    )


def _form_page(
    request: Request,
    session: WebSession,
    *,
    template_id: str | None,
    values: dict[str, str],
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    return render(
        request,
        "reply_templates.html",
        session,
        status=status,
        view="form",
        template_id=template_id,
        values=values,
        errors=errors or {},
        variables=VARIABLES,
        template_languages=sorted({*LANGUAGES, values.get("language", "")} - {""}),
    )


@router.get("/templates")
async def template_list(
    request: Request,
    q: str = Query("", max_length=200),
    language: str = Query("", max_length=10),
    notice: str = Query("", max_length=20),
    session: WebSession = Depends(admin_session),
) -> Response:
    shown = notice if notice in ("added", "saved", "deleted") else None
    return await _list_page(
        request, session, search=q.strip(), language=language.strip(), notice=shown
    )


@router.get("/templates/new")
async def template_new(request: Request, session: WebSession = Depends(admin_session)) -> Response:
    language = page_language(request, session)
    return _form_page(
        request, session, template_id=None, values={"name": "", "language": language, "body": ""}
    )


@router.get("/templates/{template_id}")
async def template_edit(
    request: Request, template_id: str, session: WebSession = Depends(admin_session)
) -> Response:
    try:
        found = await run_in_threadpool(templates.get_template, service_of(request), template_id)
    except templates.TemplateNotFound:
        return await _list_page(request, session, status=404, problem="missing")
    values = {"name": found.name, "language": found.language, "body": found.body}
    return _form_page(request, session, template_id=template_id, values=values)


async def _save(request: Request, session: WebSession, template_id: str | None) -> Response:
    form = await form_with_csrf(request, session)
    # Browsers post line breaks as CRLF; the text is kept as typed, with LF.
    values = {field: form.get(field, "").replace("\r\n", "\n") for field in FIELDS}
    service = service_of(request)
    actor = user_actor(request, session)

    def save() -> None:
        if template_id is None:
            templates.create_template(service, actor, **values)
        else:
            templates.update_template(service, actor, template_id, **values)

    try:
        await run_in_threadpool(save)
    except templates.TemplateNotFound:
        return await _list_page(request, session, status=404, problem="missing")
    except DomainError as exc:
        field = exc.field if exc.field in FIELDS else "body"
        errors = {field: problem_text(exc, _gettext(request, session))}
        return _form_page(
            request, session, template_id=template_id, values=values, errors=errors, status=422
        )
    notice = "added" if template_id is None else "saved"
    return RedirectResponse(f"/templates?notice={notice}", status_code=303)


@router.post("/templates")
async def template_create(
    request: Request, session: WebSession = Depends(admin_session)
) -> Response:
    return await _save(request, session, None)


@router.post("/templates/{template_id}")
async def template_update(
    request: Request, template_id: str, session: WebSession = Depends(admin_session)
) -> Response:
    return await _save(request, session, template_id)


@router.post("/templates/{template_id}/delete")
async def template_delete(
    request: Request, template_id: str, session: WebSession = Depends(admin_session)
) -> Response:
    await form_with_csrf(request, session)
    try:
        await run_in_threadpool(
            templates.delete_template,
            service_of(request),
            user_actor(request, session),
            template_id,
        )
    except templates.TemplateNotFound:
        return await _list_page(request, session, status=404, problem="missing")
    return RedirectResponse("/templates?notice=deleted", status_code=303)


# -- the reply box's picker (agents) ----------------------------------------------------------


@router.get("/requests/{request_id}/templates")
async def picker_search(
    request: Request,
    request_id: str,
    q: str = Query("", max_length=200),
    session: WebSession = Depends(page_session),
) -> Response:
    """Templates matching `q` by name or text, the agent's language first, with their prompts."""
    return await search_answer(request, session, q)


@router.post("/requests/{request_id}/templates/{template_id}/render")
async def picker_render(
    request: Request,
    request_id: str,
    template_id: str,
    session: WebSession = Depends(page_session),
) -> Response:
    """The template rendered for this request by this agent; a missing value is named."""

    def context_of(service: Service, country: str) -> dict[str, str | None]:
        with service.engine.connect() as conn:
            return templates.request_context(conn, request_id, country).values

    return await render_answer(request, session, template_id, context_of)
