"""Requests (customer conversations by SMS); the unrecognised inbound SMS are in `unrecognised`.

Every change goes through the functions the REST API uses (`conversations`); this module only
reads pages' worth of rows (`store.requests`) and renders them.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from smsdesk.conversations import actions
from smsdesk.conversations import requests as requests_repo
from smsdesk.conversations.start import OptedOut
from smsdesk.customers import CustomerNotFound, erasure, export
from smsdesk.domain.errors import DomainError
from smsdesk.store.mailing_replies import mailing_of_request
from smsdesk.store.users import WebSession
from smsdesk.web.actors import user_actor
from smsdesk.web.auth import service_of
from smsdesk.web.ui.field_errors import translate_error
from smsdesk.web.ui.i18n import translations
from smsdesk.web.ui.optouts import number_badge, refusal_text
from smsdesk.web.ui.render import page_time_zone, render
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
        mailing = mailing_of_request(conn, request_id)  # (id, name) if it answers a mailing
    return {"ticket": row, "entries": entries, "reply_to": reply_to, "mailing": mailing, **assign}


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
        number_badge,
        service_of(request),
        page["reply_to"],
        page_language(request, session),
        page_time_zone(request, session),
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
        reason = refusal_text(
            refused, page_language(request, session), page_time_zone(request, session)
        )
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
