"""The template picker's two JSON answers, shared by the reply box and the new-request form.

One lists the templates matching a search (the agent's language first) with their prompts;
the other renders one template with the prompts the agent filled in, for a context the
calling screen gives (a request, a customer, or a number typed so far).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from smsdesk.conversations import templates
from smsdesk.conversations.requests import NotFound
from smsdesk.domain.encoding import analyse
from smsdesk.domain.errors import DomainError
from smsdesk.domain.templating import MissingVariable, TemplateProblem, prompts
from smsdesk.domain.text import check_outgoing
from smsdesk.service import Service
from smsdesk.store.users import WebSession
from smsdesk.web.auth import service_of
from smsdesk.web.ui.field_errors import translate_error
from smsdesk.web.ui.i18n import translations
from smsdesk.web.ui.session import check_csrf, page_language

Context = Callable[[Service, str], dict[str, str | None]]


def problem_text(exc: DomainError, gettext: Any) -> str:
    """A refusal in the page's language: templates' own errors by their msgid, others by the
    shared field-error catalogue."""
    if isinstance(exc, TemplateProblem):
        return str(gettext(exc.msgid)).format(**exc.params)
    return translate_error(exc.message, gettext)


def picker_json(body: dict[str, Any], status: int = 200) -> JSONResponse:
    headers = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}
    return JSONResponse(body, status_code=status, headers=headers)


async def search_answer(request: Request, session: WebSession, q: str) -> Response:
    """Templates matching `q` by name or text, the agent's language first, with their prompts."""
    found = await run_in_threadpool(
        templates.search_templates,
        service_of(request),
        q,
        first_language=page_language(request, session),
        limit=50,
    )
    return picker_json(
        {
            "templates": [
                {
                    "id": t.id,
                    "name": t.name,
                    "language": t.language,
                    "body": t.body,
                    "prompts": list(prompts(t.body)),
                }
                for t in found
            ]
        }
    )


async def render_answer(
    request: Request, session: WebSession, template_id: str, context_of: Context
) -> Response:
    """The template rendered with `context_of(service, default country)` and this agent's name
    and the prompts in the JSON body; a missing value is named."""
    check_csrf(session, request.headers.get("x-csrf-token"))
    try:
        answers = await request.json()
    except ValueError:
        answers = None
    filled = answers.get("prompts") if isinstance(answers, dict) else None
    if not isinstance(filled, dict) or not all(isinstance(v, str) for v in filled.values()):
        filled = {}
    service = service_of(request)
    gettext = translations(page_language(request, session)).gettext

    def work() -> str:
        template = templates.get_template(service, template_id)
        country = service.settings.load().default_country_code
        context = context_of(service, country)
        context["agent.name"] = session.user.username
        return templates.render_template(template, context, filled)

    try:
        text = await run_in_threadpool(work)
        check_outgoing(text)
    except (templates.TemplateNotFound, NotFound):
        return picker_json({"error": {"code": "not_found"}}, 404)
    except DomainError as exc:
        missing = exc.name if isinstance(exc, MissingVariable) else None
        error = {"code": "refused", "message": problem_text(exc, gettext), "variable": missing}
        return picker_json({"error": error}, 422)
    counted = analyse(text)
    return picker_json(
        {
            "text": text,
            "encoding": counted.encoding.value,
            "segments": counted.segments,
            "characters": counted.units,
        }
    )
