"""Mailings (/mailings, administrators): the list, newest first, and the draft's form.

A saved draft goes on to its recipients; a refused save shows each refusal beside its field in
the page's language, with what was typed kept. The other steps are in `mailings_recipients`
(adding recipients), `mailings_send` (summary, preview, test, start) and `mailings_detail`
(a mailing while it sends: figures, recipients, chart, pause, resume, cancel).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from smsdesk import mailings
from smsdesk.conversations import templates
from smsdesk.domain.errors import DomainError
from smsdesk.domain.mailings import DAY_NAMES, Mailing, Status
from smsdesk.service import Service
from smsdesk.store import mailings as store
from smsdesk.store.users import WebSession
from smsdesk.web.actors import user_actor
from smsdesk.web.auth import service_of
from smsdesk.web.ui.i18n import translations
from smsdesk.web.ui.mailings_form import (
    MailingForm,
    blank_form,
    error_field,
    form_of,
    read_form,
    spec_of,
)
from smsdesk.web.ui.mailings_words import (
    CHECK_NAMES,
    DAY_LABELS,
    MAILING_STATUSES,
    N_,
    problem_text,
)
from smsdesk.web.ui.render import render
from smsdesk.web.ui.session import admin_session, form_with_csrf, page_language

router = APIRouter(include_in_schema=False)
PAGE_SIZE = 50
NOTICES = {
    "deleted": N_("The draft was deleted."),
    "cancelled": N_("The mailing was cancelled."),
}
PROBLEMS = {"missing": N_("There is no such mailing; it may have been deleted.")}


def gettext_of(request: Request, session: WebSession) -> Any:
    return translations(page_language(request, session)).gettext


def load_mailing(service: Service, mailing_id: str) -> Mailing | None:
    try:
        return mailings.get_mailing(service, mailing_id)
    except mailings.MailingNotFound:
        return None


def missing(request: Request, session: WebSession) -> Response:
    """The list with 'no such mailing', as a 404."""
    return render(
        request,
        "mailings.html",
        session,
        status=404,
        rows=[],
        chosen_status="",
        statuses=MAILING_STATUSES,
        check_names=CHECK_NAMES,
        notice=None,
        problem=PROBLEMS["missing"],
        next_cursor=None,
        before="",
    )


def _rows(service: Service, status: Status | None, before: str | None) -> list[Any]:
    found = mailings.list_mailings(service, status=status, before=before, limit=PAGE_SIZE + 1)
    rows = []
    with service.engine.connect() as conn:
        for mailing in found:
            stats = store.statistics(conn, mailing.id)
            rows.append((mailing, stats))
    return rows


@router.get("/mailings")
async def mailing_list(
    request: Request,
    status: str = Query("", max_length=20),
    before: str = Query("", max_length=26),
    notice: str = Query("", max_length=20),
    session: WebSession = Depends(admin_session),
) -> Response:
    chosen = Status(status) if status in MAILING_STATUSES else None
    rows = await run_in_threadpool(_rows, service_of(request), chosen, before or None)
    next_cursor = rows[PAGE_SIZE - 1][0].id if len(rows) > PAGE_SIZE else None
    return render(
        request,
        "mailings.html",
        session,
        rows=rows[:PAGE_SIZE],
        chosen_status=chosen.value if chosen else "",
        statuses=MAILING_STATUSES,
        check_names=CHECK_NAMES,
        notice=NOTICES.get(notice),
        problem=None,
        next_cursor=next_cursor,
        before=before,
    )


def _choices(service: Service) -> dict[str, Any]:
    return {
        "connections": [(c.id, c.name) for c in service.settings.connections.all()],
        "reply_templates": templates.search_templates(service, ""),
    }


async def form_page(
    request: Request,
    session: WebSession,
    form: MailingForm,
    *,
    mailing: Mailing | None = None,
    status: int = 200,
) -> Response:
    choices = await run_in_threadpool(_choices, service_of(request))
    return render(
        request,
        "mailing_form.html",
        session,
        status=status,
        form=form,
        mailing=mailing,
        day_names=DAY_NAMES,
        day_labels=DAY_LABELS,
        statuses=MAILING_STATUSES,
        step="edit",
        **choices,
    )


@router.get("/mailings/new")
async def mailing_new(request: Request, session: WebSession = Depends(admin_session)) -> Response:
    return await form_page(request, session, blank_form())


@router.get("/mailings/{mailing_id}/edit")
async def mailing_edit(
    request: Request, mailing_id: str, session: WebSession = Depends(admin_session)
) -> Response:
    found = await run_in_threadpool(load_mailing, service_of(request), mailing_id)
    if found is None:
        return missing(request, session)
    return await form_page(request, session, form_of(found), mailing=found)


async def _save(request: Request, session: WebSession, mailing_id: str | None) -> Response:
    fields = await form_with_csrf(request, session)
    days = [d for d in (await request.form()).getlist("window_days") if isinstance(d, str)]
    form = read_form(fields, days, may_override=session.user.is_admin)
    service = service_of(request)
    actor = user_actor(request, session)
    before = None
    if mailing_id is not None:
        before = await run_in_threadpool(load_mailing, service, mailing_id)
        if before is None:
            return missing(request, session)

    def save() -> Mailing:
        spec = spec_of(form, before.spec.scheduled_at if before else None)
        if mailing_id is None:
            return mailings.create_mailing(service, spec, actor=actor, trail=service.trail)
        return mailings.update_mailing(service, mailing_id, spec, actor=actor, trail=service.trail)

    try:
        saved = await run_in_threadpool(save)
    except DomainError as exc:
        form.errors[error_field(exc.field)] = problem_text(exc, gettext_of(request, session))
        return await form_page(request, session, form, mailing=before, status=422)
    target = f"/mailings/{saved.id}/recipients" if mailing_id is None else f"/mailings/{saved.id}"
    return RedirectResponse(target + "?notice=saved", status_code=303)


@router.post("/mailings")
async def mailing_create(
    request: Request, session: WebSession = Depends(admin_session)
) -> Response:
    return await _save(request, session, None)


@router.post("/mailings/{mailing_id}/edit")
async def mailing_update(
    request: Request, mailing_id: str, session: WebSession = Depends(admin_session)
) -> Response:
    return await _save(request, session, mailing_id)
