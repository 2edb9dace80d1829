"""Before and while a mailing sends: the summary that confirms the start (counts by check
result, segments, estimated cost, what the outbox would refuse), a preview for one recipient,
a test SMS to one's own number, and the life-cycle buttons (start, schedule, pause, resume,
cancel). A step the mailing's status does not allow is shown on its page, translated.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any

from babel.numbers import format_currency
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from smsdesk import mailings
from smsdesk.domain.audit import Actor
from smsdesk.domain.errors import DomainError
from smsdesk.domain.mailing_checks import Check
from smsdesk.domain.mailings import Action, Mailing, MailingProblem
from smsdesk.mailings import prepare, sender
from smsdesk.service import Service
from smsdesk.store import mailings as store
from smsdesk.store.users import WebSession
from smsdesk.web.actors import user_actor
from smsdesk.web.auth import service_of
from smsdesk.web.ui.mailings import gettext_of, load_mailing, missing
from smsdesk.web.ui.mailings_detail import detail_page
from smsdesk.web.ui.mailings_words import (
    CHECK_NAMES,
    MAILING_STATUSES,
    N_,
    problem_text,
    reason_text,
)
from smsdesk.web.ui.render import page_time_zone, render
from smsdesk.web.ui.session import admin_session, form_with_csrf, page_language

router = APIRouter(include_in_schema=False)
CHOICES = 20  # recipients offered to preview
NO_NUMBER = N_("Enter a mobile number.")
BAD_MOMENT = N_("Enter a date and time, such as 2026-05-12 09:00.")
PAST_MOMENT = N_("Choose a time in the future.")
TEST_SENT = N_("The test SMS to %(number)s is queued.")


def _preview_choices(service: Service, mailing_id: str) -> list[str]:
    with service.engine.connect() as conn:
        rows = store.list_recipients(conn, mailing_id, limit=CHOICES, result=Check.VALID)
    return [str(row.number or row.given) for row in rows]


def _own_number(service: Service, session: WebSession) -> str:
    return service.users.contact(session.user.username).phone or ""


def _summary(service: Service, mailing_id: str) -> prepare.Summary | DomainError:
    try:
        return prepare.summarise(service, mailing_id)
    except DomainError as exc:
        return exc


def _cost(summary: prepare.Summary, language: str) -> list[str]:
    return [format_currency(v, c, locale=language) for c, v in sorted(summary.cost.items())]


async def send_page(
    request: Request,
    session: WebSession,
    mailing: Mailing,
    *,
    with_summary: bool = True,
    preview: dict[str, Any] | None = None,
    number: str = "",
    errors: dict[str, str] | None = None,
    notice: str | None = None,
    status: int = 200,
) -> Response:
    """The summary page (or, without the summary, the preview page) of a mailing."""
    service = service_of(request)
    gettext = gettext_of(request, session)
    summary = await run_in_threadpool(_summary, service, mailing.id) if with_summary else None
    problem = problem_text(summary, gettext) if isinstance(summary, DomainError) else None
    found = None if isinstance(summary, DomainError) else summary
    common = found.refused.most_common() if found else []
    refused = [(reason_text(reason, gettext), count) for reason, count in common]
    own = await run_in_threadpool(_own_number, service, session)
    return render(
        request,
        "mailing_summary.html",
        session,
        status=status,
        mailing=mailing,
        step="summary",
        statuses=MAILING_STATUSES,
        check_names=CHECK_NAMES,
        summary=found,
        summary_problem=problem,
        refused=refused,
        cost=_cost(found, page_language(request, session)) if found else [],
        preview=preview,
        preview_number=number,
        choices=await run_in_threadpool(_preview_choices, service, mailing.id),
        own_number=own,
        errors=errors or {},
        notice=notice,
    )


async def _mailing_or_404(request: Request, session: WebSession, mailing_id: str) -> Any:
    found = await run_in_threadpool(load_mailing, service_of(request), mailing_id)
    return found if found is not None else missing(request, session)


@router.get("/mailings/{mailing_id}/summary")
async def summary(
    request: Request, mailing_id: str, session: WebSession = Depends(admin_session)
) -> Response:
    found = await _mailing_or_404(request, session, mailing_id)
    if not isinstance(found, Mailing):
        return found  # type: ignore[no-any-return]
    return await send_page(request, session, found)


@router.get("/mailings/{mailing_id}/preview")
async def preview(
    request: Request,
    mailing_id: str,
    number: str = Query("", max_length=40),
    session: WebSession = Depends(admin_session),
) -> Response:
    found = await _mailing_or_404(request, session, mailing_id)
    if not isinstance(found, Mailing):
        return found  # type: ignore[no-any-return]
    gettext = gettext_of(request, session)
    if not number.strip():
        errors = {"preview": gettext(NO_NUMBER)}
        return await send_page(request, session, found, with_summary=False, errors=errors)
    try:
        shown = await run_in_threadpool(
            prepare.preview, service_of(request), mailing_id, number=number
        )
    except DomainError as exc:
        errors = {"preview": problem_text(exc, gettext)}
        return await send_page(
            request, session, found, with_summary=False, number=number, errors=errors, status=422
        )
    return await send_page(
        request, session, found, with_summary=False, preview=shown, number=number
    )


@router.post("/mailings/{mailing_id}/test")
async def send_test(
    request: Request, mailing_id: str, session: WebSession = Depends(admin_session)
) -> Response:
    fields = await form_with_csrf(request, session)
    found = await _mailing_or_404(request, session, mailing_id)
    if not isinstance(found, Mailing):
        return found  # type: ignore[no-any-return]
    gettext = gettext_of(request, session)
    number = fields.get("number", "").strip()
    if not number:
        errors = {"test": gettext(NO_NUMBER)}
        return await send_page(request, session, found, with_summary=False, errors=errors)
    try:
        sent = await run_in_threadpool(prepare.send_test, service_of(request), mailing_id, number)
    except DomainError as exc:
        errors = {"test": problem_text(exc, gettext)}
        return await send_page(
            request, session, found, with_summary=False, errors=errors, status=422
        )
    notice = gettext(TEST_SENT) % {"number": sent["to"]}
    return await send_page(request, session, found, with_summary=False, preview=sent, notice=notice)


def _moment(value: str, zone: Any, now: float) -> float:
    """A datetime-local value in the viewer's zone, as seconds; MailingProblem if unusable."""
    try:
        moment = datetime.fromisoformat(value.strip()).replace(tzinfo=zone).timestamp()
    except ValueError:
        raise MailingProblem(BAD_MOMENT, field="scheduled_at") from None
    if moment <= now:
        raise MailingProblem(PAST_MOMENT, field="scheduled_at")
    return moment


def _schedule(service: Service, mailing: Mailing, at: float, actor: Actor) -> None:
    spec = replace(mailing.spec, scheduled_at=at)
    mailings.update_mailing(service, mailing.id, spec, actor=actor, trail=service.trail)
    sender.change_status(service, mailing.id, Action.SCHEDULE, service.events)


async def _act(request: Request, session: WebSession, mailing_id: str, action: str) -> Response:
    fields = await form_with_csrf(request, session)
    service = service_of(request)
    found = await _mailing_or_404(request, session, mailing_id)
    if not isinstance(found, Mailing):
        return found  # type: ignore[no-any-return]

    def work() -> None:
        if action == "schedule":
            zone = page_time_zone(request, session)
            at = _moment(fields.get("scheduled_at", ""), zone, service.clock())
            _schedule(service, found, at, user_actor(request, session))
        elif action == "pause":
            sender.pause(service, mailing_id, service.events)
        elif action == "cancel":
            sender.cancel(service, mailing_id, service.events)
        else:
            sender.change_status(service, mailing_id, Action(action), service.events)

    try:
        await run_in_threadpool(work)
    except DomainError as exc:
        text = problem_text(exc, gettext_of(request, session))
        if action == "schedule":
            return await send_page(request, session, found, errors={"schedule": text}, status=422)
        return await detail_page(request, session, mailing_id, problem=text, status=422)
    target = "summary" if action == "unschedule" else ""
    return RedirectResponse(
        f"/mailings/{mailing_id}{'/' + target if target else ''}?notice={action}", status_code=303
    )


@router.post("/mailings/{mailing_id}/start")
async def start(
    request: Request, mailing_id: str, session: WebSession = Depends(admin_session)
) -> Response:
    return await _act(request, session, mailing_id, "start")


@router.post("/mailings/{mailing_id}/schedule")
async def schedule(
    request: Request, mailing_id: str, session: WebSession = Depends(admin_session)
) -> Response:
    return await _act(request, session, mailing_id, "schedule")


@router.post("/mailings/{mailing_id}/unschedule")
async def unschedule(
    request: Request, mailing_id: str, session: WebSession = Depends(admin_session)
) -> Response:
    return await _act(request, session, mailing_id, "unschedule")


@router.post("/mailings/{mailing_id}/pause")
async def pause(
    request: Request, mailing_id: str, session: WebSession = Depends(admin_session)
) -> Response:
    return await _act(request, session, mailing_id, "pause")


@router.post("/mailings/{mailing_id}/resume")
async def resume(
    request: Request, mailing_id: str, session: WebSession = Depends(admin_session)
) -> Response:
    return await _act(request, session, mailing_id, "resume")


@router.post("/mailings/{mailing_id}/cancel")
async def cancel(
    request: Request, mailing_id: str, session: WebSession = Depends(admin_session)
) -> Response:
    return await _act(request, session, mailing_id, "cancel")
