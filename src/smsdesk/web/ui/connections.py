"""Preferences → Connections (/preferences/connections, administrators): provider accounts.

The list shows each connection's circuit breaker, throughput and error rate over the last hour;
a connection's page edits its fields (the module's fields built from its settings model, as the
SMS configuration screen builds them), shows its callback URLs and sends a test through it.
Adding one starts with choosing its module. Secrets are never put in a page: a blank secret
keeps the stored one. Every change goes through the connection store, as the API and the CLI do.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from smsdesk.connection_edits import (
    callback_urls,
    changes_of,
    check_connection,
    masked_settings,
)
from smsdesk.domain.connections import Connection, ConnectionLimits, ConnectionRefused
from smsdesk.domain.errors import DomainError
from smsdesk.domain.settings import ConfigurationInvalid, secret_fields
from smsdesk.outbox import sendtest
from smsdesk.providers.registry import UnknownModule, all_modules, get_module
from smsdesk.service import Service
from smsdesk.store import stats
from smsdesk.store.connections import ConnectionChanged, ConnectionNotFound
from smsdesk.store.users import WebSession
from smsdesk.web.actors import user_actor
from smsdesk.web.auth import service_of
from smsdesk.web.ui.field_errors import translate_error
from smsdesk.web.ui.i18n import translations
from smsdesk.web.ui.render import render
from smsdesk.web.ui.session import admin_session, form_with_csrf, page_language
from smsdesk.web.ui.settings_form import CHECKBOX_OFF, FormField, model_fields
from smsdesk.web.ui.sms_settings import PATTERN_WORDS

router = APIRouter(include_in_schema=False)
PATH = "/preferences/connections"
NOTICES = ("added", "saved", "deleted", "default")
OWN_FIELDS = ("name", "enabled", "rate_limit", "concurrency", "failure_threshold", "cool_down")
WINDOW = 3600.0  # the list's figures: the last hour


def figures(service: Service) -> dict[str, Any]:
    """Each connection's figures over the last hour, by id."""
    now = service.clock()
    with service.engine.connect() as conn:
        return {f.id: f for f in stats.connection_figures(conn, now - WINDOW, now)}


def _list(service: Service) -> dict[str, Any]:
    return {
        "connections": service.settings.connections.all(),
        "figures": figures(service),
        "modules": [(m.name, m.title) for m in all_modules() if m.available],
    }


@router.get(PATH)
async def connection_list(
    request: Request,
    notice: str = Query("", max_length=20),
    session: WebSession = Depends(admin_session),
) -> Response:
    data = await run_in_threadpool(_list, service_of(request))
    return render(
        request,
        "connections.html",
        session,
        notice=notice if notice in NOTICES else None,
        **data,
    )


def _form_fields(
    module: str, values: dict[str, Any], errors: dict[str, list[str]]
) -> tuple[list[FormField], list[FormField]]:
    """The connection's own fields and its module's fields, filled and with their errors."""
    own = [
        FormField("name", "Name", "", "text", value=str(values.get("name") or "")),
        FormField("enabled", "On", "", "checkbox", checked=bool(values.get("enabled", True))),
        *model_fields(ConnectionLimits, "", values),
    ]
    settings = model_fields(
        get_module(module).settings_model, "settings.", values.get("settings") or {}
    )
    for f in [*own, *settings]:
        f.errors = errors.get(f.name, [])
    return own, settings


def _values(connection: Connection) -> dict[str, Any]:
    return {
        **{name: getattr(connection, name) for name in OWN_FIELDS},
        "settings": masked_settings(connection),
    }


def _edit_page(
    request: Request,
    session: WebSession,
    module: str,
    values: dict[str, Any],
    *,
    connection: Connection | None = None,
    status: int = 200,
    errors: dict[str, list[str]] | None = None,
    problem: str | None = None,
    test: dict[str, Any] | None = None,
    test_input: dict[str, str] | None = None,
    callbacks: dict[str, str] | None = None,
    saved: bool = False,
) -> Response:
    own, settings = _form_fields(module, values, errors or {})
    placed = {f.name for f in [*own, *settings]}
    unplaced = [m for name, ms in (errors or {}).items() if name not in placed for m in ms]
    return render(
        request,
        "connection.html",
        session,
        status=status,
        connection=connection,
        module=module,
        module_description=get_module(module).description,
        own_fields=own,
        module_fields=settings,
        problem=problem,
        unplaced=unplaced,
        test=test,
        test_input=test_input or {"to": "", "text": ""},
        callbacks=callbacks,
        saved=saved,
    )


@router.get(f"{PATH}/new")
async def connection_new(
    request: Request,
    module: str = Query("simulator", max_length=40),
    session: WebSession = Depends(admin_session),
) -> Response:
    try:
        get_module(module)
    except UnknownModule:
        return RedirectResponse(PATH, status_code=303)
    return _edit_page(request, session, module, {"name": "", "settings": {}})


def _submitted(form: dict[str, str], module: str) -> dict[str, Any]:
    """The posted form as a submitted connection (see `connection_edits.check_connection`)."""
    body: dict[str, Any] = {"module": module, "enabled": form.get("enabled") == "on"}
    for name in OWN_FIELDS:
        if name in form and name != "enabled":
            body[name] = form[name]
    model = get_module(module).settings_model
    settings: dict[str, Any] = {}
    for key, value in form.items():
        if not key.startswith("settings."):
            continue
        name = key.removeprefix("settings.")
        info = model.model_fields.get(name)
        if value in (CHECKBOX_OFF, "on"):
            settings[name] = value == "on"
        elif info is not None and value == "" and info.annotation in (int | None, float | None):
            settings[name] = None
        else:
            settings[name] = value
    body["settings"] = settings
    return body


def _errors(exc: ConfigurationInvalid, gettext: Any) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for error in exc.errors:
        message = PATTERN_WORDS.get(error.message, error.message)
        found.setdefault(error.field, []).append(translate_error(message, gettext))
    return found


def refusal_text(exc: Exception, gettext: Any) -> str:
    """A refusal in the page's language (by its msgid when it has one)."""
    msgid = getattr(exc, "msgid", None)
    if msgid:
        try:
            return str(gettext(msgid)).format(**getattr(exc, "params", {}))
        except (KeyError, IndexError, ValueError):
            pass
    return translate_error(getattr(exc, "message", str(exc)), gettext)


def _typed(body: dict[str, Any], module: str) -> dict[str, Any]:
    """What was typed, for showing again: typed secrets are not sent back to the browser."""
    secrets = secret_fields(get_module(module).settings_model)
    settings = {k: v for k, v in body.get("settings", {}).items() if k not in secrets}
    return {**body, "settings": settings}


@router.post(PATH)
async def connection_add(
    request: Request, session: WebSession = Depends(admin_session)
) -> Response:
    form = await form_with_csrf(request, session)
    module = form.get("module", "")
    try:
        get_module(module)
    except UnknownModule:
        return RedirectResponse(PATH, status_code=303)
    service = service_of(request)
    body = _submitted(form, module)
    actor = user_actor(request, session)
    gettext = translations(page_language(request, session)).gettext

    def create() -> Connection:
        return service.settings.connections.create(check_connection(body, None), actor)

    try:
        made = await run_in_threadpool(create)
    except ConfigurationInvalid as exc:
        return _edit_page(
            request, session, module, _typed(body, module), status=422, errors=_errors(exc, gettext)
        )
    except ConnectionRefused as exc:
        return _edit_page(
            request,
            session,
            module,
            _typed(body, module),
            status=422,
            problem=refusal_text(exc, gettext),
        )
    return RedirectResponse(f"{PATH}/{made.id}?saved=1", status_code=303)


def _found(service: Service, connection_id: str) -> Connection | None:
    connection = service.settings.connections.get(connection_id)
    return connection if connection is not None and connection.id == connection_id else None


async def _shown(
    request: Request, session: WebSession, connection_id: str, **extra: Any
) -> Response:
    service = service_of(request)
    connection = await run_in_threadpool(_found, service, connection_id)
    if connection is None:
        return RedirectResponse(PATH, status_code=303)
    secret = await run_in_threadpool(service.settings.callback_secret)
    values = extra.pop("values", None) or _values(connection)
    return _edit_page(
        request,
        session,
        connection.module,
        values,
        connection=connection,
        callbacks=callback_urls(service.public_url, secret, connection),
        **extra,
    )


@router.get(PATH + "/{connection_id}")
async def connection_page(
    request: Request, connection_id: str, session: WebSession = Depends(admin_session)
) -> Response:
    saved = request.query_params.get("saved") == "1"
    return await _shown(request, session, connection_id, saved=saved)


@router.post(PATH + "/{connection_id}")
async def connection_save(
    request: Request, connection_id: str, session: WebSession = Depends(admin_session)
) -> Response:
    form = await form_with_csrf(request, session)
    service = service_of(request)
    stored = await run_in_threadpool(_found, service, connection_id)
    if stored is None:
        return RedirectResponse(PATH, status_code=303)
    body = _submitted(form, stored.module)
    actor = user_actor(request, session)
    gettext = translations(page_language(request, session)).gettext

    def update() -> None:
        checked = check_connection(body, stored)
        service.settings.connections.update(
            stored.id, changes_of(checked), actor, expected_version=stored.version
        )

    typed = _typed(body, stored.module)
    try:
        await run_in_threadpool(update)
    except ConfigurationInvalid as exc:
        return await _shown(
            request, session, connection_id, status=422, values=typed, errors=_errors(exc, gettext)
        )
    except (ConnectionRefused, ConnectionChanged) as exc:
        problem = refusal_text(exc, gettext)
        return await _shown(
            request, session, connection_id, status=422, values=typed, problem=problem
        )
    return RedirectResponse(f"{PATH}/{connection_id}?saved=1", status_code=303)


async def _change(request: Request, session: WebSession, connection_id: str, what: str) -> Response:
    await form_with_csrf(request, session)
    service = service_of(request)
    actor = user_actor(request, session)
    store = service.settings.connections

    def work() -> None:
        if what == "delete":
            store.delete(connection_id, actor)
        else:
            store.set_default(connection_id, actor)

    try:
        await run_in_threadpool(work)
    except (ConnectionRefused, ConnectionNotFound) as exc:
        gettext = translations(page_language(request, session)).gettext
        return await _shown(
            request, session, connection_id, status=422, problem=refusal_text(exc, gettext)
        )
    return RedirectResponse(f"{PATH}?notice={'deleted' if what == 'delete' else 'default'}", 303)


@router.post(PATH + "/{connection_id}/delete")
async def connection_delete(
    request: Request, connection_id: str, session: WebSession = Depends(admin_session)
) -> Response:
    return await _change(request, session, connection_id, "delete")


@router.post(PATH + "/{connection_id}/default")
async def connection_default(
    request: Request, connection_id: str, session: WebSession = Depends(admin_session)
) -> Response:
    return await _change(request, session, connection_id, "default")


@router.post(PATH + "/{connection_id}/test")
async def connection_test(
    request: Request, connection_id: str, session: WebSession = Depends(admin_session)
) -> Response:
    """Send test through this connection as saved; the page shows the provider's verdict."""
    form = await form_with_csrf(request, session)
    service = service_of(request)
    connection = await run_in_threadpool(_found, service, connection_id)
    if connection is None:
        return RedirectResponse(PATH, status_code=303)
    gettext = translations(page_language(request, session)).gettext
    test_input = {"to": form.get("test_to", ""), "text": form.get("test_text", "")}
    result: dict[str, Any]
    try:
        config = await run_in_threadpool(service.settings.load)
        outcome = await sendtest.send_test(
            service,
            config,
            test_input["to"],
            test_input["text"],
            user_actor(request, session),
            connection=connection,
        )
    except DomainError as exc:
        result = {"outcome": "invalid", "error": translate_error(exc.message, gettext)}
    except sendtest.NotReady:
        result = {"outcome": "not_ready"}
    else:
        result = {
            "outcome": "accepted" if outcome.accepted else "refused",
            "id": outcome.message.id,
            "provider_message_id": outcome.message.provider_message_id or "\u2013",
            "error": outcome.error.message if outcome.error else "",
            "code": outcome.error.code if outcome.error else None,
        }
    return await _shown(request, session, connection_id, test=result, test_input=test_input)
