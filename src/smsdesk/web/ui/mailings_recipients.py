"""A draft's recipients (/mailings/{id}/recipients): an uploaded CSV file, a pasted list, or
customers chosen by a filter. Each addition is checked at once; the page then shows its
report: the count of each check result and the rows that are not valid, with the reason.
"""

from __future__ import annotations

import dataclasses
from datetime import date, datetime, time, timedelta
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from smsdesk import mailings
from smsdesk.domain.errors import DomainError
from smsdesk.domain.mailing_checks import Check, CheckCounts
from smsdesk.domain.mailings import Mailing
from smsdesk.service import Service
from smsdesk.store import mailings as store
from smsdesk.store.users import WebSession
from smsdesk.web.auth import service_of
from smsdesk.web.ui.i18n import LANGUAGES
from smsdesk.web.ui.mailings import gettext_of, load_mailing, missing
from smsdesk.web.ui.mailings_words import (
    CHECK_NAMES,
    MAILING_STATUSES,
    N_,
    problem_text,
    reason_text,
)
from smsdesk.web.ui.render import page_time_zone, render
from smsdesk.web.ui.session import admin_session, form_with_csrf

router = APIRouter(include_in_schema=False)
FILTER_FIELDS = ("language", "created_from", "created_to", "open_request", "tag")
NO_FILE = N_("Choose a CSV file to upload.")
NO_NUMBERS = N_("Paste at least one number.")
BAD_DATE = N_("Enter a date as YYYY-MM-DD.")
TAGS_SUPPORTED = "tag" in {f.name for f in dataclasses.fields(mailings.CustomerFilter)}


def _counts(service: Service, mailing_id: str) -> CheckCounts:
    with service.engine.connect() as conn:
        return store.check_counts(conn, mailing_id)


async def recipients_page(
    request: Request,
    session: WebSession,
    mailing: Mailing,
    *,
    report: mailings.AddReport | None = None,
    problem: str | None = None,
    pasted: str = "",
    wanted: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    removed: int | None = None,
    status: int = 200,
) -> Response:
    counts = await run_in_threadpool(_counts, service_of(request), mailing.id)
    gettext = gettext_of(request, session)
    problems = [
        (row, reason_text(row.reason, gettext)) for row in (report.problems if report else [])
    ]
    return render(
        request,
        "mailing_recipients.html",
        session,
        status=status,
        mailing=mailing,
        step="recipients",
        statuses=MAILING_STATUSES,
        check_names=CHECK_NAMES,
        counts=counts,
        report=report,
        problems=problems,
        problem=problem,
        pasted=pasted,
        wanted=wanted or dict.fromkeys(FILTER_FIELDS, ""),
        errors=errors or {},
        customer_languages=LANGUAGES,
        tags_supported=TAGS_SUPPORTED,
        notice=request.query_params.get("notice") == "saved",
        removed=removed,
    )


@router.get("/mailings/{mailing_id}/recipients")
async def recipients(
    request: Request, mailing_id: str, session: WebSession = Depends(admin_session)
) -> Response:
    found = await run_in_threadpool(load_mailing, service_of(request), mailing_id)
    if found is None:
        return missing(request, session)
    return await recipients_page(request, session, found)


async def _add(
    request: Request,
    session: WebSession,
    mailing: Mailing,
    work: Any,
    *args: Any,
    **page: Any,
) -> Response:
    try:
        report = await run_in_threadpool(work, service_of(request), mailing.id, *args)
    except DomainError as exc:
        text = problem_text(exc, gettext_of(request, session))
        return await recipients_page(request, session, mailing, problem=text, status=422, **page)
    return await recipients_page(request, session, mailing, report=report, **page)


@router.post("/mailings/{mailing_id}/recipients/csv")
async def add_csv(
    request: Request, mailing_id: str, session: WebSession = Depends(admin_session)
) -> Response:
    await form_with_csrf(request, session)
    form = await request.form()
    upload = form.get("file")
    data = await upload.read() if isinstance(upload, UploadFile) else b""
    await form.close()
    found = await run_in_threadpool(load_mailing, service_of(request), mailing_id)
    if found is None:
        return missing(request, session)
    if not data:
        problem = gettext_of(request, session)(NO_FILE)
        return await recipients_page(request, session, found, problem=problem, status=422)
    return await _add(request, session, found, mailings.add_csv, data)


@router.post("/mailings/{mailing_id}/recipients/paste")
async def add_pasted(
    request: Request, mailing_id: str, session: WebSession = Depends(admin_session)
) -> Response:
    fields = await form_with_csrf(request, session)
    text = fields.get("numbers", "")
    found = await run_in_threadpool(load_mailing, service_of(request), mailing_id)
    if found is None:
        return missing(request, session)
    if not text.strip():
        problem = gettext_of(request, session)(NO_NUMBERS)
        return await recipients_page(request, session, found, problem=problem, status=422)
    return await _add(request, session, found, mailings.add_pasted, text, pasted=text)


def _midnight(value: str, zone: Any, days_later: int = 0) -> float | None:
    if not value:
        return None
    day = date.fromisoformat(value) + timedelta(days=days_later)
    return datetime.combine(day, time(0), zone).timestamp()


def customer_filter(
    wanted: dict[str, str], zone: Any
) -> tuple[mailings.CustomerFilter | None, dict[str, str]]:
    """The filter as typed (dates are whole days in the viewer's time zone), or its errors."""
    errors: dict[str, str] = {}
    found: dict[str, Any] = {}
    for name, key, shift in (("created_from", "created_from", 0), ("created_to", "created_to", 1)):
        try:
            found[key] = _midnight(wanted[name], zone, shift)
        except ValueError:
            errors[name] = BAD_DATE
    if errors:
        return None, errors
    found["language"] = wanted["language"].lower() or None
    found["has_open_request"] = {"yes": True, "no": False}.get(wanted["open_request"])
    if TAGS_SUPPORTED and wanted["tag"]:
        found["tag"] = wanted["tag"].lower()
    return mailings.CustomerFilter(**found), {}


@router.post("/mailings/{mailing_id}/recipients/customers")
async def add_customers(
    request: Request, mailing_id: str, session: WebSession = Depends(admin_session)
) -> Response:
    fields = await form_with_csrf(request, session)
    wanted = {name: fields.get(name, "").strip() for name in FILTER_FIELDS}
    found = await run_in_threadpool(load_mailing, service_of(request), mailing_id)
    if found is None:
        return missing(request, session)
    chosen, errors = customer_filter(wanted, page_time_zone(request, session))
    if chosen is None:
        return await recipients_page(
            request, session, found, wanted=wanted, errors=errors, status=422
        )
    return await _add(request, session, found, mailings.add_customers, chosen, wanted=wanted)


@router.post("/mailings/{mailing_id}/recipients/remove")
async def remove(
    request: Request, mailing_id: str, session: WebSession = Depends(admin_session)
) -> Response:
    """Remove a draft's recipients: all of them, or those with one check result."""
    fields = await form_with_csrf(request, session)
    which = fields.get("which", "")
    found = await run_in_threadpool(load_mailing, service_of(request), mailing_id)
    if found is None:
        return missing(request, session)
    result = Check(which) if which in CHECK_NAMES else None
    try:
        removed = await run_in_threadpool(
            lambda: mailings.remove_recipients(service_of(request), mailing_id, result=result)
        )
    except DomainError as exc:
        text = problem_text(exc, gettext_of(request, session))
        return await recipients_page(request, session, found, problem=text, status=422)
    return await recipients_page(request, session, found, removed=removed)
