"""API key authentication: `Authorization: Bearer <key>` (or `X-API-Key: <key>`)."""

from __future__ import annotations

from fastapi import Request

from smsdesk.service import Service
from smsdesk.store.apikeys import ApiKey
from smsdesk.web.errors import ApiError
from smsdesk.web.shared_calls import shared_call


def service_of(request: Request) -> Service:
    service: Service = request.app.state.service
    return service


def _presented_key(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if header:
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
    return request.headers.get("x-api-key")


async def api_key(request: Request) -> ApiKey:
    """Any valid key."""
    presented = _presented_key(request)
    if not presented:
        raise ApiError(
            401,
            "missing_api_key",
            "Send an API key as 'Authorization: Bearer <key>'. "
            "Create one with: smsdesk apikey create --name <name>",
            headers={"WWW-Authenticate": "Bearer"},
        )
    keys = service_of(request).keys
    key = keys.cached(presented) or await shared_call(
        (keys, presented), lambda: keys.verify(presented)
    )
    if key is None:
        raise ApiError(
            401,
            "invalid_api_key",
            "This API key is not valid or was revoked; check it or create a new one "
            "with: smsdesk apikey create --name <name>",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return key


async def admin_key(request: Request) -> ApiKey:
    """A key with the admin role (settings, test sends)."""
    key = await api_key(request)
    if key.role != "admin":
        raise ApiError(
            403,
            "forbidden",
            "This API key may send messages but not change the SMS configuration; "
            "use an admin key.",
        )
    return key
