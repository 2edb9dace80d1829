"""The "New SMS conversation" screen: an agent writes first.

The agent picks a customer by name or number search, or types a number as they would dial it;
writes the first text (counted live, or taken from a reply template); and sends. The request is
made by `conversations.start` exactly as the API makes it, with the agent as its owner and
starter. A refusal shows beside its field in the page's language, with what was typed kept; an
opted-out customer is refused in an agent's words.
"""

from __future__ import annotations

from datetime import tzinfo

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from smsdesk.conversations import templates
from smsdesk.conversations.requests import NotFound
from smsdesk.conversations.start import NewConversation, OptedOut, opt_out_of, start_conversation
from smsdesk.customers import Customer, CustomerNotFound, get_customer, search_customers
from smsdesk.domain.errors import DomainError
from smsdesk.domain.phone import normalise_msisdn
from smsdesk.service import Service
from smsdesk.store.users import WebSession
from smsdesk.web.actors import user_actor
from smsdesk.web.auth import service_of
from smsdesk.web.ui.field_errors import translate_error
from smsdesk.web.ui.i18n import translations
from smsdesk.web.ui.optouts import badge_text, refusal_text
from smsdesk.web.ui.render import page_time_zone, render
from smsdesk.web.ui.session import form_with_csrf, page_language, page_session
from smsdesk.web.ui.template_picker import render_answer, search_answer

router = APIRouter(include_in_schema=False)

FIELDS = ("number", "text", "title")
CHOICES = 10


def _customer(service: Service, customer_id: str) -> Customer | None:
    try:
        return get_customer(service, customer_id) if customer_id else None
    except CustomerNotFound:
        return None


def _badge(service: Service, customer: Customer | None, language: str, zone: tzinfo) -> str | None:
    """The chosen customer's opt-out, if their first number opted out."""
    if customer is None or not customer.numbers:
        return None
    with service.engine.connect() as conn:
        found = opt_out_of(conn, customer.numbers[0])
    return badge_text(found, language, zone) if found is not None else None


async def _form(
    request: Request,
    session: WebSession,
    *,
    customer_id: str = "",
    search: str = "",
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    refusal: str | None = None,
    status: int = 200,
) -> Response:
    service = service_of(request)
    language = page_language(request, session)

    def load() -> tuple[Customer | None, list[Customer], str | None]:
        chosen = _customer(service, customer_id)
        found = search_customers(service, search, limit=CHOICES) if search else []
        return chosen, found, _badge(service, chosen, language, page_time_zone(request, session))

    chosen, found, badge = await run_in_threadpool(load)
    return render(
        request,
        "new_request.html",
        session,
        status=status,
        chosen=chosen,
        choices=found,
        search=search,
        badge=badge,
        values=values or {},
        errors=errors or {},
        refusal=refusal,
    )


@router.get("/requests/new")
async def new_request_form(
    request: Request,
    q: str = Query("", max_length=100),
    customer_id: str = Query("", max_length=26),
    session: WebSession = Depends(page_session),
) -> Response:
    """The form; with `q`, the customers matching it to choose from; with `customer_id`,
    that customer chosen."""
    return await _form(request, session, customer_id=customer_id, search=q.strip())


@router.post("/requests/new")
async def new_request_send(
    request: Request, session: WebSession = Depends(page_session)
) -> Response:
    form = await form_with_csrf(request, session)
    values = {name: form.get(name, "") for name in (*FIELDS, "customer_id")}
    # Browsers post line breaks as CRLF; the counter beside the box counted them as LF.
    values["text"] = values["text"].replace("\r\n", "\n")
    service = service_of(request)
    customer_id = values["customer_id"].strip()
    wanted = NewConversation(
        text=values["text"],
        customer_id=customer_id or None,
        number=None if customer_id else values["number"],
        title=values["title"] if values["title"].strip() else None,
    )
    language = page_language(request, session)
    try:
        started = await start_conversation(
            service,
            wanted,
            author=session.user.username,
            agent_id=session.user.id,
            audit=(service.trail, user_actor(request, session)),
        )
    except OptedOut as refused:
        return await _form(
            request,
            session,
            customer_id=customer_id,
            values=values,
            refusal=refusal_text(
                refused, language, page_time_zone(request, session), starting=True
            ),
            status=422,
        )
    except (NotFound, DomainError) as exc:
        gettext = translations(language).gettext
        if isinstance(exc, NotFound):
            field, message = "number", gettext("This customer no longer exists; choose another.")
        else:
            field = exc.field if exc.field in FIELDS else "text" if exc.field != "to" else "number"
            message = translate_error(exc.message, gettext)
        return await _form(
            request,
            session,
            customer_id=customer_id,
            values=values,
            errors={field: message},
            status=422,
        )
    return RedirectResponse(f"/requests/{started.request_id}", status_code=303)


# -- the template picker of the form ----------------------------------------------------------


@router.get("/requests/new/templates")
async def new_request_templates(
    request: Request,
    q: str = Query("", max_length=200),
    session: WebSession = Depends(page_session),
) -> Response:
    """Templates matching `q` by name or text, the agent's language first, with their prompts."""
    return await search_answer(request, session, q)


@router.post("/requests/new/templates/{template_id}/render")
async def new_request_render(
    request: Request,
    template_id: str,
    to: str = Query("", max_length=40),
    customer_id: str = Query("", max_length=26),
    session: WebSession = Depends(page_session),
) -> Response:
    """The template rendered for the customer (or the number typed so far) and this agent."""

    def context_of(service: Service, country: str) -> dict[str, str | None]:
        with service.engine.connect() as conn:
            if customer_id:
                return templates.customer_context(conn, customer_id, country).values
            if to.strip():
                try:
                    number = normalise_msisdn(to, country or None)
                except DomainError:
                    number = None
                if number is not None:
                    return templates.recipient_context(conn, number).values
        return {}

    return await render_answer(request, session, template_id, context_of)
