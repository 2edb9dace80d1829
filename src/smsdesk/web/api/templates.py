"""Reply templates: /api/v1/templates (changes need an admin key; any key reads and renders).

A body holds `{customer.name}`, `{customer.number}`, `{request.id}`, `{agent.name}`, prompts
`{prompt:order number}` that the sender fills in, and `{{` / `}}` for literal braces.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from smsdesk.conversations import templates
from smsdesk.conversations.requests import NotFound
from smsdesk.domain.encoding import check_text
from smsdesk.domain.errors import DomainError
from smsdesk.domain.phone import normalise_msisdn
from smsdesk.domain.templating import MissingVariable, placeholders, prompts
from smsdesk.domain.times import iso
from smsdesk.service import Service
from smsdesk.store.apikeys import ApiKey
from smsdesk.web.actors import key_actor
from smsdesk.web.auth import admin_key, api_key, service_of
from smsdesk.web.errors import ApiError
from smsdesk.web.jsonresponse import Json

router = APIRouter(prefix="/api/v1/templates", tags=["templates"])

Variables = dict[str, str]


class NewTemplate(BaseModel):
    model_config = {"extra": "forbid"}

    name: str = Field(..., max_length=1000, examples=["Order shipped"])
    language: str = Field(..., max_length=10, description="en, nl or another two-letter code.")
    body: str = Field(
        ...,
        max_length=10_000,
        examples=["Hello {customer.name}, order {prompt:order number} is on its way."],
    )


class TemplatePatch(BaseModel):
    model_config = {"extra": "forbid"}

    name: str | None = Field(None, max_length=1000)
    language: str | None = Field(None, max_length=10)
    body: str | None = Field(None, max_length=10_000)


class RenderRequest(BaseModel):
    model_config = {"extra": "forbid"}

    request_id: str | None = Field(
        None, max_length=26, description="Fills {request.id} and the customer's name and number."
    )
    customer: str | None = Field(
        None, max_length=40, description="A customer's id or number: fills the customer's fields."
    )
    variables: Variables = Field(
        default_factory=dict,
        description="Prompts by their question, and values for variables (e.g. agent.name).",
        examples=[{"order number": "A-1042", "agent.name": "Sam"}],
    )


def used_variables(body: str) -> list[str]:
    return list(dict.fromkeys(p.name for p in placeholders(body) if p.prompt is None))


def template_out(template: templates.ReplyTemplate) -> dict[str, Any]:
    return {
        "id": template.id,
        "name": template.name,
        "language": template.language,
        "body": template.body,
        "variables": list(
            dict.fromkeys(p.name for p in placeholders(template.body) if not p.prompt)
        ),
        "prompts": list(prompts(template.body)),
        "created_at": iso(template.created_at),
        "updated_at": iso(template.updated_at),
    }


def missing_variable(exc: MissingVariable) -> ApiError:
    """422 naming the variable (or prompt) that has no value."""
    fields = [{"field": exc.field, "message": exc.message}]
    return ApiError(
        422, "missing_variable", exc.message, fields, msgid=exc.msgid, params=exc.params
    )


NO_CUSTOMER = "There is no customer '{customer}'."
NO_REQUEST = "There is no request with id '{request_id}'."


def _not_found(exc: NotFound, field: str, msgid: str, **params: str) -> ApiError:
    """422: the customer or request to fill the template from does not exist."""
    message = str(exc)
    fields = [{"field": field, "message": message}]
    return ApiError(422, "not_found", message, fields, msgid=msgid, params=params)


@contextmanager
def answers() -> Iterator[None]:
    """Template errors as API errors: 404 unknown template, 422 a missing variable."""
    try:
        yield
    except templates.TemplateNotFound as exc:
        raise ApiError(404, "not_found", exc.message) from None
    except MissingVariable as exc:
        raise missing_variable(exc) from None


@router.get("", summary="List reply templates by name")
def list_templates(
    request: Request,
    _: ApiKey = Depends(api_key),
    search: str = Query("", max_length=200, description="Part of a name or of the text."),
    language: str | None = Query(None, max_length=10),
) -> Json:
    found = templates.search_templates(service_of(request), search, language=language)
    return Json({"templates": [template_out(t) for t in found]})


@router.post("", status_code=201, summary="Add a reply template")
def create_template(body: NewTemplate, request: Request, key: ApiKey = Depends(admin_key)) -> Json:
    template = templates.create_template(
        service_of(request),
        key_actor(request, key),
        name=body.name,
        language=body.language,
        body=body.body,
    )
    return Json(template_out(template), 201)


@router.get("/{template_id}", summary="A reply template")
def get_template(template_id: str, request: Request, _: ApiKey = Depends(api_key)) -> Json:
    with answers():
        return Json(template_out(templates.get_template(service_of(request), template_id)))


@router.patch("/{template_id}", summary="Change a reply template's name, language or text")
def update_template(
    template_id: str, body: TemplatePatch, request: Request, key: ApiKey = Depends(admin_key)
) -> Json:
    with answers():
        template = templates.update_template(
            service_of(request),
            key_actor(request, key),
            template_id,
            name=body.name,
            language=body.language,
            body=body.body,
        )
    return Json(template_out(template))


@router.delete("/{template_id}", status_code=204, summary="Delete a reply template")
def delete_template(
    template_id: str, request: Request, key: ApiKey = Depends(admin_key)
) -> Response:
    with answers():
        templates.delete_template(service_of(request), key_actor(request, key), template_id)
    return Response(status_code=204)


def render_text(
    service: Service,
    template: templates.ReplyTemplate,
    *,
    request_id: str | None = None,
    customer: str | None = None,
    variables: Variables | None = None,
) -> str:
    """The template filled from a request and/or a customer and the caller's variables."""
    country = service.settings.load().default_country_code
    context: dict[str, str | None] = {}
    with service.engine.connect() as conn:
        if customer:
            try:
                context.update(templates.customer_context(conn, customer, country).values)
            except NotFound as exc:
                raise _not_found(exc, "customer", NO_CUSTOMER, customer=customer) from None
        if request_id:
            try:
                context.update(templates.request_context(conn, request_id, country).values)
            except NotFound as exc:
                raise _not_found(exc, "request_id", NO_REQUEST, request_id=request_id) from None
    with answers():
        return templates.render_template(template, context, variables)


def text_for_recipient(
    service: Service,
    to: str,
    template: str,
    language: str | None,
    variables: Variables | None,
) -> str:
    """A send's text from a template: `to` gives {customer.number} and, when the number is a
    customer's, {customer.name} and the language a template named in several is taken in.

    Refusals are DomainErrors naming their field (template, language, variables.<name>), so
    a batch refuses only the message concerned.
    """
    country = service.settings.load().default_country_code
    try:
        number: str | None = normalise_msisdn(to, country or None)
    except DomainError:
        number = None  # the send itself refuses the number, naming it
    context = templates.Context({})
    if number is not None:
        with service.engine.connect() as conn:
            context = templates.recipient_context(conn, number)
    try:
        found = templates.find_template(service, template, language, preferred=context.language)
    except templates.TemplateNotFound as exc:
        raise DomainError(exc.message, field="template") from None
    return templates.render_template(found, context.values, variables)


@router.post("/{template_id}/render", summary="Render a template and count its SMS parts")
async def render_template(
    template_id: str, body: RenderRequest, request: Request, _: ApiKey = Depends(api_key)
) -> Json:
    """The text a send would carry, counted as the message API counts it."""
    service = service_of(request)

    def work() -> str:
        with answers():
            template = templates.get_template(service, template_id)
        return render_text(
            service,
            template,
            request_id=body.request_id,
            customer=body.customer,
            variables=body.variables,
        )

    text = await run_in_threadpool(work)
    counted = check_text(text, service.settings.load().max_segments)
    return Json(
        {
            "text": text,
            "encoding": counted.encoding.value,
            "segments": counted.segments,
            "characters": counted.units,
        }
    )
