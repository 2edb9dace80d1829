"""The messages screens: search every message, and one message with its whole timeline."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from smsdesk.providers.registry import UnknownModule, get_module
from smsdesk.store import messages as repo
from smsdesk.store.outbox_admin import Outcome, search_messages
from smsdesk.store.users import WebSession
from smsdesk.web.auth import service_of
from smsdesk.web.ui.outbox import (
    N_,
    NOTICES,
    PAGE_SIZE,
    PRIORITY_NAMES,
    STATUS_NAMES,
    Filters,
    choices,
    page_of,
    parse_filters,
)
from smsdesk.web.ui.render import render
from smsdesk.web.ui.session import page_session

router = APIRouter(include_in_schema=False)

SEARCH_FIELDS = ("number", "text", "id", "status", "module", "from", "to")

# Who wrote a timeline line; anything else is shown as stored.
SOURCE_NAMES = {
    "api": N_("REST API"),
    "cli": N_("command line"),
    "dispatcher": N_("outbox"),
    "provider": N_("provider"),
    "report": N_("delivery report"),
    "reconcile": N_("status query"),
    "agent": N_("messaging agent"),
    "operator": N_("user action"),
    "failover": N_("failover"),
}


def _search(request: Request, filters: Filters, before: str | None) -> dict[str, Any]:
    service = service_of(request)
    with service.engine.connect() as conn:
        rows = search_messages(conn, filters.search, before_id=before or None, limit=PAGE_SIZE + 1)
    shown, next_cursor = page_of(rows, PAGE_SIZE)
    return {"rows": shown, "next_cursor": next_cursor}


@router.get("/messages")
async def messages(
    request: Request,
    before: str | None = None,
    done: str | None = None,
    session: WebSession = Depends(page_session),
) -> Response:
    service = service_of(request)
    country_code = service.settings.load().default_country_code or None
    filters = parse_filters(request.query_params, SEARCH_FIELDS, None, country_code)
    searched = any(filters.values.values())
    found = await run_in_threadpool(_search, request, filters, before)
    return render(
        request,
        "messages.html",
        session,
        filters=filters,
        before=before,
        searched=searched,
        notice=NOTICES.get(Outcome(done)) if done in set(Outcome) else None,
        status_names=STATUS_NAMES,
        **found,
        **choices(),
    )


def _message(request: Request, message_id: str) -> tuple[Any, list[Any]] | None:
    service = service_of(request)
    with service.engine.connect() as conn:
        row = repo.get_message(conn, message_id)
        if row is None:
            return None
        return row, repo.get_timeline(conn, message_id)


@router.get("/messages/{message_id}")
async def message(
    request: Request,
    message_id: str,
    done: str | None = None,
    session: WebSession = Depends(page_session),
) -> Response:
    found = await run_in_threadpool(_message, request, message_id)
    if found is None:
        return render(request, "message.html", session, status=404, message=None)
    row, timeline = found
    outcome = Outcome(done) if done in set(Outcome) else None
    return render(
        request,
        "message.html",
        session,
        message=row,
        timeline=timeline,
        notice=NOTICES[outcome] if outcome else None,
        notice_ok=outcome in (Outcome.RESENT, Outcome.CANCELLED),
        status_names=STATUS_NAMES,
        priority_names=PRIORITY_NAMES,
        source_names=SOURCE_NAMES,
        back=request.url.path,
        chased_at=_chased_at(request, row),
    )


def _chased_at(request: Request, row: Any) -> float | None:
    """When smsdesk asks the provider about a sent message whose report has not come."""
    if row.status != "sent" or not row.sent_at:
        return None
    minutes = service_of(request).settings.load().reconcile_after_minutes
    try:
        asks = get_module(row.module).supports_status_query
    except UnknownModule:
        return None
    return float(row.sent_at) + minutes * 60.0 if minutes > 0 and asks else None
