"""Preferences → General preferences → SMS configuration: the seed's screen, with Send test.

Saving validates everything and stores nothing unless all of it is valid; a failed save shows
each error beside its field, in the user's language, with what was typed kept (secrets
excepted: they are asked for again, never put back into a page). *Test* sends at once with the
settings as entered, saved or not.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from smsdesk.domain.errors import DomainError
from smsdesk.domain.settings import ConfigurationInvalid, SmsConfiguration
from smsdesk.outbox import sendtest
from smsdesk.sms_configuration import masked, validate_configuration
from smsdesk.store import messages as repo
from smsdesk.store.users import WebSession
from smsdesk.web.actors import user_actor
from smsdesk.web.auth import service_of
from smsdesk.web.ui.field_errors import translate_error
from smsdesk.web.ui.i18n import translations
from smsdesk.web.ui.render import render
from smsdesk.web.ui.session import admin_session, form_with_csrf, page_language
from smsdesk.web.ui.settings_form import (
    build_form,
    submitted_configuration,
    typed_secrets,
    typed_view,
)


def N_(text: str) -> str:
    """Marks a text for the catalogue; translated where it is shown."""
    return text


router = APIRouter(include_in_schema=False)
PATH = "/preferences/general/sms"
FINAL = frozenset({"delivered", "undelivered", "failed", "expired", "cancelled"})


# The settings models' patterns, as a person would say them (pydantic names the raw pattern).
PATTERN_WORDS = {
    "String should match pattern '^\\d*$'": N_("Use digits only."),
    "String should match pattern '^(https?://[^\\s]+)?$'": N_(
        "Enter a web address starting with http:// or https://, without spaces, or leave it empty."
    ),
    "String should match pattern '^(AC[0-9a-fA-F]{32})?$'": N_(
        "Enter AC followed by 32 hexadecimal characters (0-9, a-f), or leave it empty."
    ),
    "String should match pattern '^(SK[0-9a-fA-F]{32})?$'": N_(
        "Enter SK followed by 32 hexadecimal characters (0-9, a-f), or leave it empty."
    ),
    "String should match pattern '^(MG[0-9a-fA-F]{32})?$'": N_(
        "Enter MG followed by 32 hexadecimal characters (0-9, a-f), or leave it empty."
    ),
    "String should match pattern '^[\\w\\-, ]*$'": N_(
        "Use only letters, digits, underscores (_), hyphens (-), commas and spaces."
    ),
    "String should match pattern '^[A-Za-z0-9_.\\-]*$'": N_(
        "Use only letters A-Z, digits, underscores (_), dots and hyphens (-)."
    ),
    "String should match pattern '^[^\\s/]*$'": N_("Use no spaces and no slashes (/)."),
    "String should match pattern '^([^@\\s]+@[^@\\s]+\\.[^@\\s]+)?$'": N_(
        "Enter a valid e-mail address, such as name@example.com, or leave it empty."
    ),
}


def _errors_by_field(exc: ConfigurationInvalid, gettext: Any) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    for error in exc.errors:
        message = PATTERN_WORDS.get(error.message, error.message)
        errors.setdefault(error.field, []).append(translate_error(message, gettext))
    return errors


def _page(
    request: Request,
    session: WebSession,
    shown: dict[str, Any],
    *,
    status: int = 200,
    errors: dict[str, list[str]] | None = None,
    retype: set[str] | None = None,
    saved: bool = False,
    test: dict[str, Any] | None = None,
    test_input: dict[str, str] | None = None,
    **extra: Any,
) -> Response:
    form = build_form(shown, errors)
    return render(
        request,
        "sms_settings.html",
        session,
        status=status,
        form=form,
        retype=retype or set(),
        saved=saved,
        test=test,
        test_input=test_input or {"to": "", "text": ""},
        callback_hint=None,
        **extra,
    )


@router.get(PATH)
async def show(request: Request, session: WebSession = Depends(admin_session)) -> Response:
    stored = await run_in_threadpool(service_of(request).settings.load)
    return _page(request, session, masked(stored), saved=request.query_params.get("saved") == "1")


async def _read_form(
    request: Request, session: WebSession
) -> tuple[dict[str, Any], dict[str, str]]:
    """The configuration as typed, and the Send test's number and text (after the CSRF check)."""
    fields = await form_with_csrf(request, session)
    test_input = {
        "to": fields.get("test_to", ""),
        # Browsers post line breaks as CRLF; the page's counter counted them as LF.
        "text": fields.get("test_text", "").replace("\r\n", "\n"),
    }
    return submitted_configuration(fields), test_input


@router.post(PATH)
async def save(request: Request, session: WebSession = Depends(admin_session)) -> Response:
    body, test_input = await _read_form(request, session)
    service = service_of(request)
    stored = await run_in_threadpool(service.settings.load)
    try:
        config = validate_configuration(body, stored)
    except ConfigurationInvalid as exc:
        gettext = translations(page_language(request, session)).gettext
        return _page(
            request,
            session,
            typed_view(body, masked(stored)),
            status=422,
            errors=_errors_by_field(exc, gettext),
            retype=typed_secrets(body),
            test_input=test_input,
        )
    await run_in_threadpool(service.settings.save, config, user_actor(request, session))
    return RedirectResponse(f"{PATH}?saved=1", status_code=303)


def _status_view(row: Any, gettext: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "recipient": row.recipient,  # the number as normalised and sent
        "status": row.status,
        "status_label": gettext(row.status),
        "final": row.status in FINAL,
        "provider_message_id": row.provider_message_id,
        "status_code": row.status_code,
        "error": row.error,
    }


@router.post(f"{PATH}/test")
async def send_test(request: Request, session: WebSession = Depends(admin_session)) -> Response:
    """Send one SMS with the settings as entered; answer JSON to scripts, a page otherwise."""
    body, test_input = await _read_form(request, session)
    service = service_of(request)
    gettext = translations(page_language(request, session)).gettext
    wants_json = "application/json" in request.headers.get("accept", "")
    stored = await run_in_threadpool(service.settings.load)
    result: dict[str, Any]
    errors: dict[str, list[str]] | None = None
    try:
        config: SmsConfiguration = validate_configuration(body, stored) if body else stored
        outcome = await sendtest.send_test(
            service,
            config,
            test_input["to"],
            test_input["text"],
            user_actor(request, session),
        )
    except ConfigurationInvalid as exc:
        errors = _errors_by_field(exc, gettext)
        result = {"outcome": "invalid_settings", "errors": errors}
    except DomainError as exc:
        field = {"to": "test_to", "text": "test_text"}.get(exc.field, exc.field)
        errors = {field: [translate_error(exc.message, gettext)]}
        result = {"outcome": "invalid_input", "errors": errors}
    except sendtest.NotReady:
        result = {"outcome": "not_ready"}
    else:
        result = {
            "outcome": "accepted" if outcome.accepted else "refused",
            "message": _status_view(outcome.message, gettext),
            "error_kind": type(outcome.error).__name__ if outcome.error else None,
            "error_code": outcome.error.code if outcome.error else None,
            "error_message": outcome.error.message if outcome.error else None,
            "elapsed_ms": outcome.elapsed_ms,
        }
    if wants_json:
        return JSONResponse(result, status_code=200)
    return _page(
        request,
        session,
        typed_view(body, masked(stored)),
        errors=errors,
        retype=typed_secrets(body),
        test=result,
        test_input=test_input,
    )


@router.get(f"{PATH}/test/{{message_id}}")
async def test_status(
    message_id: str, request: Request, session: WebSession = Depends(admin_session)
) -> Response:
    """The current status of a test message, for the page to follow it to its report."""
    service = service_of(request)

    def load() -> Any:
        with service.engine.connect() as conn:
            return repo.get_message(conn, message_id)

    row = await run_in_threadpool(load)
    if row is None or not row.is_test:
        return JSONResponse({"error": {"code": "not_found"}}, status_code=404)
    gettext = translations(page_language(request, session)).gettext
    return JSONResponse(_status_view(row, gettext))
