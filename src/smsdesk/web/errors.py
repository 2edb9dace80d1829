"""One error shape for every API answer: what is wrong, for which field, and how to fix it.

{"error": {"code": "invalid_field", "message": "...",
               "fields": [{"field": "to", "message": "..."}]}}
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException

from smsdesk.domain.errors import DomainError
from smsdesk.domain.settings import ConfigurationInvalid
from smsdesk.web.jsonresponse import Json


class ApiError(Exception):
    """An error answer with a status code and a stable machine-readable code."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        fields: list[dict[str, str]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.fields = fields or []
        self.headers = headers


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
        return "This field is required."
    return str(error.get("msg", "Invalid value.")).removeprefix("Value error, ")


def install(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> Json:
        return Json(error_body(exc.code, exc.message, exc.fields), exc.status, headers=exc.headers)

    @app.exception_handler(DomainError)
    async def _domain_error(_: Request, exc: DomainError) -> Json:
        return Json(
            error_body(
                "invalid_field", exc.message, [{"field": exc.field, "message": exc.message}]
            ),
            422,
        )

    @app.exception_handler(ConfigurationInvalid)
    async def _config_error(_: Request, exc: ConfigurationInvalid) -> Json:
        fields = [{"field": e.field, "message": e.message} for e in exc.errors]
        return Json(
            error_body(
                "invalid_configuration", "The SMS configuration was not saved: " + str(exc), fields
            ),
            422,
        )

    @app.exception_handler(RequestValidationError)
    async def _request_error(_: Request, exc: RequestValidationError) -> Json:
        errors = list(exc.errors())
        if any(e.get("type") == "json_invalid" for e in errors):
            message = _validation_message(
                next(e for e in errors if e.get("type") == "json_invalid")
            )
            return Json(error_body("malformed_json", message), 400)
        fields = [
            {"field": _location(tuple(e["loc"])), "message": _validation_message(e)} for e in errors
        ]
        summary = "; ".join(f"{f['field']}: {f['message']}" for f in fields)
        return Json(error_body("invalid_request", summary, fields), 422)

    @app.exception_handler(HTTPException)
    async def _http_error(_: Request, exc: HTTPException) -> Json:
        codes = {404: "not_found", 405: "method_not_allowed", 413: "body_too_large"}
        return Json(
            error_body(codes.get(exc.status_code, "http_error"), str(exc.detail)),
            exc.status_code,
            headers=getattr(exc, "headers", None),
        )
