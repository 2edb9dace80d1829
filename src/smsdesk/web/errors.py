"""One error shape for every API answer: what is wrong, for which field, and how to fix it.

{"error": {"code": "invalid_field", "message": "...",
               "fields": [{"field": "to", "message": "..."}]}}

A 422 answer speaks the caller's language: the logged-in user's for session calls, else the
best of Accept-Language, else English. Refusals that carry a `msgid` and `params` are
translated by those; other messages as the screens translate them (`web/ui/field_errors.py`).
Only the messages change: codes and field names stay as they are.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException

from smsdesk.domain.errors import DomainError
from smsdesk.domain.mailings import NOT_A_DRAFT, REFUSED, MailingProblem
from smsdesk.domain.settings import ConfigurationInvalid
from smsdesk.web.jsonresponse import Json

Gettext = Callable[[str], str]
REQUIRED = "This field is required."
CONFIGURATION_NOT_SAVED = "The SMS configuration was not saved: {problems}"


class ApiError(Exception):
    """An error answer with a status code and a stable machine-readable code.

    `msgid` and `params` (the message before its values were filled in) let the answer be
    translated; without them the message is translated as the screens translate theirs.
    """

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        fields: list[dict[str, str]] | None = None,
        headers: dict[str, str] | None = None,
        *,
        msgid: str | None = None,
        params: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.fields = fields or []
        self.headers = headers
        self.msgid = msgid
        self.params = {key: str(value) for key, value in (params or {}).items()}


def error_body(
    code: str, message: str, fields: list[dict[str, str]] | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {"code": code, "message": message}
    if fields:
        body["fields"] = fields
    return {"error": body}


def _location(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or "body"


def _validation_message(error: dict[str, Any]) -> str:
    kind = error.get("type", "")
    if kind == "json_invalid":
        return "The request body is not valid JSON: " + str(error.get("ctx", {}).get("error", ""))
    if kind == "missing":
        return REQUIRED
    return str(error.get("msg", "Invalid value.")).removeprefix("Value error, ")


def _summary(fields: list[dict[str, str]]) -> str:
    return "; ".join(f"{f['field']}: {f['message']}" for f in fields)


async def caller_gettext(request: Request) -> Gettext:
    """The gettext of the caller's language: a session's user's, else Accept-Language."""
    # Imported here: the web.ui package imports web.auth, which imports this module.
    from smsdesk.web.ui.i18n import translations
    from smsdesk.web.ui.session import optional_session, page_language

    session = getattr(request.state, "session", None)
    if session is None:
        try:
            session = await optional_session(request)
        except Exception:  # an error answer must not fail for want of its language
            session = None
    return translations(page_language(request, session)).gettext


STATUS_REFUSALS = (REFUSED, NOT_A_DRAFT)  # mailing refusals naming statuses and actions


def translated(message: str, gettext: Gettext, source: object = None) -> str:
    """`message` in gettext's language; `source` (an error with `msgid` and `params` whose
    message this is) is translated by its msgid."""
    from smsdesk.web.ui.field_errors import translate_error  # see caller_gettext
    from smsdesk.web.ui.mailings_words import problem_text

    mailing = isinstance(source, MailingProblem) and source.msgid in STATUS_REFUSALS
    if mailing and getattr(source, "message", None) == message:
        return problem_text(source, gettext)  # type: ignore[arg-type]  # status words too
    msgid = getattr(source, "msgid", None)
    if msgid and getattr(source, "message", None) == message:
        try:
            return gettext(msgid).format(**getattr(source, "params", {}))
        except (KeyError, IndexError, ValueError):
            return message
    return translate_error(message, gettext)


def _translated_fields(
    fields: list[dict[str, str]], gettext: Gettext, source: object = None
) -> list[dict[str, str]]:
    return [{**f, "message": translated(f.get("message", ""), gettext, source)} for f in fields]


def _source(exc: ApiError) -> object:
    """What the answer repeats: the error itself when it has a msgid, else the refusal it was
    raised from (`raise ApiError(...) from None` keeps it as the context)."""
    if exc.msgid:
        return exc
    return exc.__cause__ or exc.__context__


def install(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> Json:
        message, fields = exc.message, exc.fields
        if exc.status == 422:
            gettext, source = await caller_gettext(request), _source(exc)
            message = translated(message, gettext, source)
            fields = _translated_fields(fields, gettext, source)
        return Json(error_body(exc.code, message, fields), exc.status, headers=exc.headers)

    @app.exception_handler(DomainError)
    async def _domain_error(request: Request, exc: DomainError) -> Json:
        message = translated(exc.message, await caller_gettext(request), exc)
        return Json(
            error_body("invalid_field", message, [{"field": exc.field, "message": message}]),
            422,
        )

    @app.exception_handler(ConfigurationInvalid)
    async def _config_error(request: Request, exc: ConfigurationInvalid) -> Json:
        gettext = await caller_gettext(request)
        fields = _translated_fields(
            [{"field": e.field, "message": e.message} for e in exc.errors], gettext
        )
        message = gettext(CONFIGURATION_NOT_SAVED).format(problems=_summary(fields))
        return Json(error_body("invalid_configuration", message, fields), 422)

    @app.exception_handler(RequestValidationError)
    async def _request_error(request: Request, exc: RequestValidationError) -> Json:
        errors = list(exc.errors())
        if any(e.get("type") == "json_invalid" for e in errors):
            message = _validation_message(
                next(e for e in errors if e.get("type") == "json_invalid")
            )
            return Json(error_body("malformed_json", message), 400)
        gettext = await caller_gettext(request)
        fields = [
            {
                "field": _location(tuple(e["loc"])),
                "message": translated(_validation_message(e), gettext),
            }
            for e in errors
        ]
        return Json(error_body("invalid_request", _summary(fields), fields), 422)

    @app.exception_handler(HTTPException)
    async def _http_error(_: Request, exc: HTTPException) -> Json:
        codes = {404: "not_found", 405: "method_not_allowed", 413: "body_too_large"}
        return Json(
            error_body(codes.get(exc.status_code, "http_error"), str(exc.detail)),
            exc.status_code,
            headers=getattr(exc, "headers", None),
        )
