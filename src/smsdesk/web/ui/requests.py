"""Requests (customer conversations by SMS) and the inbox of unrecognised inbound SMS.

Every change goes through the functions the REST API uses (`conversations`, `inbound.actions`);
this module only reads pages' worth of rows (`store.requests`, `store.inbound`) and renders them.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from smsdesk.conversations import actions
from smsdesk.conversations import requests as requests_repo
from smsdesk.conversations.start import OptedOut
from smsdesk.customers import CustomerNotFound, erasure, export
from smsdesk.domain.errors import DomainError
from smsdesk.inbound import actions as inbound_actions
from smsdesk.store import inbound as inbound_store
from smsdesk.store.users import WebSession
from smsdesk.web.actors import user_actor
from smsdesk.web.auth import service_of
from smsdesk.web.ui.field_errors import translate_error
from smsdesk.web.ui.i18n import translations
from smsdesk.web.ui.optouts import number_badge, refusal_text
from smsdesk.web.ui.render import render
from smsdesk.web.ui.request_list import assignment_page, mark_read
from smsdesk.web.ui.session import admin_session, form_with_csrf, page_language, page_session

router = APIRouter(include_in_schema=False)

PAGE_SIZE = 50


# -- reading ---------------------------------------------------------------------------------


def _conversation_page(request: Request, request_id: str) -> dict[str, Any] | None:
    """What the conversation view shows, or None when the request does not exist."""
    service = service_of(request)
    config = service.settings.load()
    with service.engine.connect() as conn:
        try:
            row = requests_repo.get_request(conn, request_id)
        except requests_repo.NotFound:
            return None
        entries = requests_repo.conversation(conn, request_id)
        try:
            reply_to: str | None = requests_repo.reply_number(
                conn, row, config.default_country_code
            )
        except DomainError:
            reply_to = None
        assign = assignment_page(request, conn, row)
    return {"ticket": row, "entries": entries, "reply_to": reply_to, **assign}


async def _show_request(
    request: Request,
    session: WebSession,
    request_id: str,
    *,
    status: int = 200,
    **extra: Any,
) -> Response:
    page = await run_in_threadpool(_conversation_page, request, request_id)
    if page is None:
        return render(request, "request.html", session, status=404, missing=True)
    badge = await run_in_threadpool(
        number_badge, service_of(request), page["reply_to"], page_language(request, session)
    )
    page["opt_out_badge"] = badge
    return render(
        request,
        "request.html",
        session,
        status=status,
        missing=False,
        statuses=requests_repo.REQUEST_STATUSES,
        **page,
        **extra,
    )


# -- requests --------------------------------------------------------------------------------


@router.get("/requests/{request_id}")
async def request_view(
    request: Request, request_id: str, session: WebSession = Depends(page_session)
) -> Response:
    shown = await _show_request(request, session, request_id, text="")
    if shown.status_code == 200:
        await mark_read(request, session, request_id)
    return shown


@router.post("/requests/{request_id}/reply")
async def request_reply(
    request: Request, request_id: str, session: WebSession = Depends(page_session)
) -> Response:
    """Sent like the API's reply; a refusal shows the page again with the reason and the text."""
    form = await form_with_csrf(request, session)
    # Browsers post line breaks as CRLF; the counter beside the box counted them as LF.
    text = form.get("text", "").replace("\r\n", "\n")
    service = service_of(request)
    try:
        sent = await actions.reply(service, request_id, text, author=session.user.username)
    except requests_repo.NotFound:
        return render(request, "request.html", session, status=404, missing=True)
    except OptedOut as refused:
        reason = refusal_text(refused, page_language(request, session))
        return await _show_request(
            request, session, request_id, status=422, text=text, reply_error=reason
        )
    except DomainError as exc:
        # The domain's own words, in the page language where the catalogue knows them.
        language = translations(page_language(request, session))
        reason = translate_error(exc.message, language.gettext)
        return await _show_request(
            request, session, request_id, status=422, text=text, reply_error=reason
        )
    await run_in_threadpool(
        service.audit,
        user_actor(request, session),
        "request.replied",
        target_kind="request",
        target_id=request_id,
        details={"message_id": sent["id"]},
    )
    return RedirectResponse(f"/requests/{request_id}", status_code=303)


@router.post("/requests/{request_id}/status")
async def request_status(
    request: Request, request_id: str, session: WebSession = Depends(page_session)
) -> Response:
    form = await form_with_csrf(request, session)
    service = service_of(request)
    changes = {"status": form.get("status", "")}
    now = service.clock()
    try:
        await service.writer.run(
            lambda conn: requests_repo.update_request(conn, request_id, changes, now)
        )
    except requests_repo.NotFound:
        return render(request, "request.html", session, status=404, missing=True)
    except DomainError:
        return await _show_request(
            request, session, request_id, status=422, text="", status_error=True
        )
    return RedirectResponse(f"/requests/{request_id}", status_code=303)


# -- unrecognised inbound SMS ------------------------------------------------------------------


async def _show_unrecognised(
    request: Request,
    session: WebSession,
    cursor: str | None = None,
    *,
    status: int = 200,
    problem: str | None = None,
    detail: str = "",
    failed_id: str | None = None,
    typed_request_id: str = "",
) -> Response:
    service = service_of(request)

    def load() -> list[Any]:
        """Inbound SMS that carried no SMS endpoint code, newest first, paged by id."""
        with service.engine.connect() as conn:
            return inbound_store.list_inbound(
                conn, state="unrecognised", before=cursor, limit=PAGE_SIZE + 1
            )

    rows = await run_in_threadpool(load)
    page = rows[:PAGE_SIZE]
    return render(
        request,
        "unrecognised.html",
        session,
        status=status,
        rows=page,
        next_cursor=page[-1].id if len(rows) > PAGE_SIZE else None,
        problem=problem,
        detail=detail,
        failed_id=failed_id,
        typed_request_id=typed_request_id,
    )


@router.get("/inbox/unrecognised")
async def unrecognised_list(
    request: Request,
    cursor: str | None = Query(None, max_length=26),
    session: WebSession = Depends(admin_session),
) -> Response:
    return await _show_unrecognised(request, session, cursor)


@router.post("/inbox/unrecognised/{inbound_id}/assign")
async def unrecognised_assign(
    request: Request, inbound_id: str, session: WebSession = Depends(admin_session)
) -> Response:
    """Into the request with the given id; without one, a new request for the sender."""
    form = await form_with_csrf(request, session)
    target = form.get("request_id", "").strip()
    service = service_of(request)
    try:
        await inbound_actions.assign_inbound(service, inbound_id, request_id=target or None)
    except (requests_repo.NotFound, inbound_actions.Conflict, DomainError) as exc:
        problem = (
            "not_found"
            if isinstance(exc, requests_repo.NotFound)
            else "conflict"
            if isinstance(exc, inbound_actions.Conflict)
            else "refused"
        )
        return await _show_unrecognised(
            request,
            session,
            status=404 if problem == "not_found" else 409,
            problem=problem,
            detail=exc.message if isinstance(exc, DomainError) else "",
            failed_id=inbound_id,
            typed_request_id=target,
        )

    def assigned_request() -> str | None:
        with service.engine.connect() as conn:
            row = inbound_store.get_inbound(conn, inbound_id)
        return row.request_id if row is not None else None

    request_id = await run_in_threadpool(assigned_request)
    return RedirectResponse(
        f"/requests/{request_id}" if request_id else "/inbox/unrecognised", status_code=303
    )


@router.post("/inbox/unrecognised/{inbound_id}/delete")
async def unrecognised_delete(
    request: Request, inbound_id: str, session: WebSession = Depends(admin_session)
) -> Response:
    await form_with_csrf(request, session)
    try:
        await inbound_actions.delete_inbound(service_of(request), inbound_id)
    except (requests_repo.NotFound, inbound_actions.Conflict):
        return await _show_unrecognised(
            request, session, status=409, problem="gone", failed_id=inbound_id
        )
    return RedirectResponse("/inbox/unrecognised", status_code=303)


# -- the request's customer: download their data, erase them (administrators) ----------------


def _customer_of(request: Request, request_id: str) -> Any:
    """The request with its customer's name, or None."""
    with service_of(request).engine.connect() as conn:
        try:
            return requests_repo.get_request(conn, request_id)
        except requests_repo.NotFound:
            return None


@router.get("/requests/{request_id}/customer/export")
async def customer_export(
    request: Request, request_id: str, session: WebSession = Depends(admin_session)
) -> Response:
    """Everything held about the request's customer, as a JSON file to download."""
    ticket = await run_in_threadpool(_customer_of, request, request_id)
    if ticket is None:
        return render(request, "request.html", session, status=404, missing=True)
    try:
        document = await run_in_threadpool(
            export.export_customer,
            service_of(request),
            ticket.customer_id,
            user_actor(request, session),
        )
    except CustomerNotFound:
        return render(request, "erase_customer.html", session, status=404, gone=True)
    filename = f"customer-{ticket.customer_id}.json"
    return JSONResponse(
        document, headers={"Content-Disposition": f'attachment; filename="{filename}"'}
    )


@router.get("/requests/{request_id}/customer/erase")
async def customer_erase_confirm(
    request: Request, request_id: str, session: WebSession = Depends(admin_session)
) -> Response:
    """The confirmation step: what will be erased, and the button that does it."""
    ticket = await run_in_threadpool(_customer_of, request, request_id)
    if ticket is None:
        return render(request, "request.html", session, status=404, missing=True)
    return render(request, "erase_customer.html", session, ticket=ticket)


@router.post("/requests/{request_id}/customer/erase")
async def customer_erase(
    request: Request, request_id: str, session: WebSession = Depends(admin_session)
) -> Response:
    await form_with_csrf(request, session)
    ticket = await run_in_threadpool(_customer_of, request, request_id)
    if ticket is None:
        return render(request, "request.html", session, status=404, missing=True)
    try:
        erased = await run_in_threadpool(
            erasure.erase_customer,
            service_of(request),
            ticket.customer_id,
            user_actor(request, session),
        )
    except CustomerNotFound:
        return render(request, "erase_customer.html", session, status=404, gone=True)
    except erasure.MessageBeingSent as exc:
        language = translations(page_language(request, session))
        return render(
            request,
            "erase_customer.html",
            session,
            status=409,
            ticket=ticket,
            problem=language.gettext(exc.message),
        )
    return render(request, "erase_customer.html", session, done=True, counts=erased.counts)
