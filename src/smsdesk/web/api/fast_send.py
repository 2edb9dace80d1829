"""`POST /api/v1/messages` without FastAPI's routing and dependency solving, for plain requests.

Routing a request through FastAPI's routers, solving its dependencies and reading its body cost
about as much CPU as accepting the SMS itself. This ASGI middleware answers the common request
itself: a JSON body that validates as `SendMessage`, an API key this process has already
verified, and no Idempotency-Key. It runs the same steps as the FastAPI route
(`messages.prepare_single`, then `messages.store_single`, which answers after the commit).

Anything else goes to the FastAPI route unchanged, with the body it was sent: a body that does
not parse or validate, a key not yet verified or missing, an Idempotency-Key, and any refusal
raised before the message is stored (nothing is stored, so the route prepares it again and
answers exactly as it always did). An error while storing is answered by the application's own
exception handlers, as the route's would be. The route stays registered, so the OpenAPI
document still describes the endpoint.
"""

from __future__ import annotations

import inspect
from typing import Any

import orjson
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from smsdesk.service import Service
from smsdesk.store.apikeys import ApiKey
from smsdesk.web.api.messages import prepare_single, store_single
from smsdesk.web.api.schemas import SendMessage

PATH = "/api/v1/messages"


class FastSend:
    """Pure ASGI middleware; install it inside the body size limit."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] != "POST"
            or scope["path"] != PATH
            or scope.get("root_path", "")
        ):
            await self.app(scope, receive, send)
            return
        body = await _read_body(receive)
        if body is None:
            return  # the client went away: nobody to answer
        answer = await self._answer(scope, body)
        if answer is None:
            await self.app(scope, _replaying(body, receive), send)
            return
        await answer(scope, receive, send)

    async def _answer(self, scope: Scope, body: bytes) -> Response | None:
        """The 201 answer, an error handler's answer, or None to leave it to the route."""
        found = _plain_request(scope, body)
        if found is None:
            return None
        key, item = found
        service: Service = scope["app"].state.service
        try:
            row, answer = await prepare_single(service, key, item)
        except Exception:  # a refusal: the route answers it, nothing was stored
            return None
        try:
            return await store_single(service, key, row, answer)
        except Exception as exc:
            return await _handled(scope, exc)


def _plain_request(scope: Scope, body: bytes) -> tuple[ApiKey, SendMessage] | None:
    """The verified key and the valid message of a request with nothing unusual, else None."""
    headers: dict[bytes, bytes] = {}
    for name, value in scope["headers"]:
        headers.setdefault(name, value)
    if headers.get(b"content-type") != b"application/json" or b"idempotency-key" in headers:
        return None
    presented = _presented_key(headers)
    key = scope["app"].state.service.keys.cached(presented) if presented else None
    if key is None:
        return None
    try:
        data = orjson.loads(body)
        if not isinstance(data, dict):
            return None
        return key, SendMessage.model_validate(data)
    except (orjson.JSONDecodeError, ValidationError):
        return None


def _presented_key(headers: dict[bytes, bytes]) -> str | None:
    """As `web.auth`: a Bearer token, else the X-API-Key header."""
    header = headers.get(b"authorization", b"").decode("latin-1")
    if header:
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
    fallback = headers.get(b"x-api-key")
    return fallback.decode("latin-1") if fallback is not None else None


async def _read_body(receive: Receive) -> bytes | None:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replaying(body: bytes, receive: Receive) -> Receive:
    """`receive` for the route: the body already read, then whatever the client sends next."""
    pending = [{"type": "http.request", "body": body, "more_body": False}]

    async def replay() -> Message:
        return pending.pop() if pending else await receive()

    return replay


async def _handled(scope: Scope, exc: Exception) -> Response:
    """The answer of the application's handler for `exc`, as Starlette would choose it; an
    exception without one goes on to the server-error handler, as the route's would."""
    handlers: dict[Any, Any] = scope["app"].exception_handlers
    for kind in type(exc).__mro__:
        handler = handlers.get(kind) if kind is not Exception else None
        if handler is not None:
            request = Request(scope)
            if inspect.iscoroutinefunction(handler):
                response: Response = await handler(request, exc)
            else:
                response = await run_in_threadpool(handler, request, exc)
            return response
    raise exc
