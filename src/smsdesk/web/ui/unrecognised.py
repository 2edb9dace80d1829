"""Triage of unrecognised inbound SMS: the list with its filter, the request picker, assigning
to a request or a new one, deleting one or everything the filter matches, and the menu's count.

Administrators always triage; agents too while the SMS configuration allows it
(`inbound.agents_triage`, on by default). Deleting is for administrators. Every change goes
through `inbound.actions`, as the API's, with the user as the actor of its audit entry.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from smsdesk.conversations import requests as requests_repo
from smsdesk.domain.errors import DomainError
from smsdesk.inbound import actions as inbound_actions
from smsdesk.store import inbound as inbound_store
from smsdesk.store import requests as request_store
from smsdesk.store.users import User, WebSession
from smsdesk.web.actors import user_actor
from smsdesk.web.auth import service_of
from smsdesk.web.ui.render import environment, render
from smsdesk.web.ui.session import Forbidden, admin_session, form_with_csrf, page_session

router = APIRouter(include_in_schema=False)

PAGE_SIZE = 50
PICKER_SIZE = 20
COUNT_SECONDS = 5.0  # how long the menu's count is reused
LIST = "/inbox/unrecognised"


@dataclass
class _Counted:
    at: float
    count: int
    agents_triage: bool


def _menu_state(request: Request) -> _Counted:
    """The count of unrecognised SMS and the agents' access, read at most every few seconds
    per process (a count on the state index)."""
    state = request.app.state
    cached: _Counted | None = getattr(state, "unrecognised_count", None)
    now = time.monotonic()
    if cached is not None and now - cached.at < COUNT_SECONDS:
        return cached
    service = service_of(request)
    with service.engine.connect() as conn:
        count = inbound_store.count_inbound(conn, state="unrecognised")
    allowed = service.settings.load().inbound.agents_triage
    state.unrecognised_count = fresh = _Counted(now, count, allowed)
    return fresh


def forget_count(request: Request) -> None:
    """After a change made here the next page counts again."""
    request.app.state.unrecognised_count = None


def may_triage(user: User, state: _Counted) -> bool:
    return user.is_admin or state.agents_triage


def menu_count(request: Request, user: User | None) -> int | None:
    """The menu's count, or None when the user may not open the list (templates call it)."""
    if user is None:
        return None
    state = _menu_state(request)
    return state.count if may_triage(user, state) else None


environment.globals["unrecognised_menu_count"] = menu_count


async def triage_session(request: Request) -> WebSession:
    """A logged-in administrator, or an agent while agents may triage."""
    session = await page_session(request)
    if session.user.is_admin:
        return session
    allowed = await run_in_threadpool(lambda: service_of(request).settings.load())
    if not allowed.inbound.agents_triage:
        raise Forbidden()
    return session


def _filters(source: Any) -> dict[str, str]:
    """The list's filter as typed: a part of the sender's number and a part of the text."""
    return {name: str(source.get(name, "")).strip()[:100] for name in ("sender", "text")}


def _query(filters: dict[str, str], **extra: str) -> str:
    return urlencode({k: v for k, v in {**filters, **extra}.items() if v})


def _search(filters: dict[str, str]) -> dict[str, str | None]:
    return {"sender_part": filters["sender"] or None, "text": filters["text"] or None}


async def _show_list(
    request: Request,
    session: WebSession,
    cursor: str | None = None,
    *,
    status: int = 200,
    problem: str | None = None,
    detail: str = "",
    failed_id: str | None = None,
) -> Response:
    service = service_of(request)
    filters = _filters(request.query_params)

    def load() -> tuple[list[Any], int]:
        with service.engine.connect() as conn:
            rows = inbound_store.list_inbound(
                conn, state="unrecognised", before=cursor, limit=PAGE_SIZE + 1, **_search(filters)
            )
            total = inbound_store.count_inbound(conn, state="unrecognised", **_search(filters))
        return rows, total

    rows, total = await run_in_threadpool(load)
    page = rows[:PAGE_SIZE]
    done = request.query_params.get("deleted", "")
    return render(
        request,
        "unrecognised.html",
        session,
        status=status,
        rows=page,
        total=total,
        filters=filters,
        query=_query(filters),
        next_query=_query(filters, cursor=page[-1].id) if len(rows) > PAGE_SIZE else None,
        deleted=int(done) if done.isdigit() else None,
        problem=problem,
        detail=detail,
        failed_id=failed_id,
    )


@router.get(LIST)
async def unrecognised_list(
    request: Request,
    cursor: str | None = Query(None, max_length=26),
    session: WebSession = Depends(triage_session),
) -> Response:
    return await _show_list(request, session, cursor)


# -- the request picker ----------------------------------------------------------------------


@router.get(LIST + "/{inbound_id}/assign")
async def request_picker(
    request: Request,
    inbound_id: str,
    q: str = Query("", max_length=100),
    session: WebSession = Depends(triage_session),
) -> Response:
    """The SMS, a search over requests (customer name, number, title; latest first) with a
    button on each, and a button for a new request."""
    service = service_of(request)

    def load() -> tuple[Any, list[Any]]:
        with service.engine.connect() as conn:
            sms = inbound_store.get_inbound(conn, inbound_id)
            found = request_store.find_requests(conn, "all", q.strip(), None, PICKER_SIZE)
        return sms, found

    sms, found = await run_in_threadpool(load)
    if sms is None or sms.state not in inbound_actions.OPEN_INBOUND_STATES:
        return await _show_list(request, session, status=409, problem="gone", failed_id=inbound_id)
    return render(request, "unrecognised.html", session, picker=True, sms=sms, found=found, q=q)


@router.post(LIST + "/{inbound_id}/assign")
async def unrecognised_assign(
    request: Request, inbound_id: str, session: WebSession = Depends(triage_session)
) -> Response:
    """Into the request with the given id; without one, a new request for the sender."""
    form = await form_with_csrf(request, session)
    target = form.get("request_id", "").strip()
    service = service_of(request)
    try:
        await inbound_actions.assign_inbound(
            service, inbound_id, request_id=target or None, actor=user_actor(request, session)
        )
    except (requests_repo.NotFound, inbound_actions.Conflict, DomainError) as exc:
        problem = (
            "not_found"
            if isinstance(exc, requests_repo.NotFound)
            else "conflict"
            if isinstance(exc, inbound_actions.Conflict)
            else "refused"
        )
        return await _show_list(
            request,
            session,
            status=404 if problem == "not_found" else 409,
            problem=problem,
            detail=exc.message if isinstance(exc, DomainError) else "",
            failed_id=inbound_id,
        )
    forget_count(request)

    def assigned_request() -> str | None:
        with service.engine.connect() as conn:
            row = inbound_store.get_inbound(conn, inbound_id)
        return row.request_id if row is not None else None

    request_id = await run_in_threadpool(assigned_request)
    return RedirectResponse(f"/requests/{request_id}" if request_id else LIST, status_code=303)


# -- deleting (administrators) ---------------------------------------------------------------


@router.post(LIST + "/{inbound_id}/delete")
async def unrecognised_delete(
    request: Request, inbound_id: str, session: WebSession = Depends(admin_session)
) -> Response:
    await form_with_csrf(request, session)
    try:
        await inbound_actions.delete_inbound(
            service_of(request), inbound_id, user_actor(request, session)
        )
    except (requests_repo.NotFound, inbound_actions.Conflict):
        return await _show_list(request, session, status=409, problem="gone", failed_id=inbound_id)
    forget_count(request)
    return RedirectResponse(LIST, status_code=303)


@router.get(LIST + "/bulk-delete")
async def bulk_delete_confirm(
    request: Request, session: WebSession = Depends(admin_session)
) -> Response:
    """How many unrecognised SMS the filter matches, and the button that deletes them all."""
    filters = _filters(request.query_params)
    service = service_of(request)

    def count() -> int:
        with service.engine.connect() as conn:
            return inbound_store.count_inbound(conn, state="unrecognised", **_search(filters))

    query = _query(filters)
    return render(
        request,
        "bulk_confirm.html",
        session,
        kind="unrecognised-delete",
        count=await run_in_threadpool(count),
        action_url=LIST + "/bulk-delete",
        hidden={k: v for k, v in filters.items() if v},
        back_url=LIST + (f"?{query}" if query else ""),
    )


@router.post(LIST + "/bulk-delete")
async def bulk_delete(request: Request, session: WebSession = Depends(admin_session)) -> Response:
    form = await form_with_csrf(request, session)
    filters = _filters(form)
    deleted = await inbound_actions.delete_matching(
        service_of(request),
        user_actor(request, session),
        sender_part=filters["sender"] or None,
        text=filters["text"] or None,
    )
    forget_count(request)
    return RedirectResponse(f"{LIST}?{_query(filters, deleted=str(deleted))}", status_code=303)
