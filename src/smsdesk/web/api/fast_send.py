"""`POST /api/v1/messages` without FastAPI's routing and dependency solving, for plain requests.

Routing a request through FastAPI's routers, solving its dependencies and reading its body cost
about as much CPU as accepting the SMS itself, and FastAPI's own middleware (its telemetry
check reads the environment on every request) a tenth more. The application hands this path's
requests to `FastSend` before any of that (`web.app.SmsdeskApp`); it answers the common request
itself: a JSON body that validates as `SendMessage`, an API key this process has already
verified, and no Idempotency-Key. It runs the same steps as the FastAPI route
(`messages.prepare_single`, then `messages.store_single`, which answers after the commit).

Anything else goes to the FastAPI application unchanged, with the body it was sent: a body
without a Content-Length or larger than a single message needs (the application's size limit
answers one that is too large), a body that does not parse or validate, a key not yet
verified or missing, an Idempotency-Key, and any refusal raised before the message is stored
(nothing is stored, so the route prepares it again and answers exactly as it always did). An
error while storing is answered by the application's own exception handlers, as the route's
would be. The route stays registered, so the OpenAPI document still describes the endpoint.
"""

from __future__ import annotations

import inspect
from typing import Any

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


# A single message's JSON is far below this; a larger body is left to the application, whose
# size limit and route answer it.
LARGEST_BODY = 64 * 1024


class FastSend:
    """The plain-request path of `POST /api/v1/messages`, ahead of the application's stack.

    `application` is the rest of the application (its middleware, routing and route), to which
    everything this path does not answer goes; `owner` holds the exception handlers."""

    def __init__(self, owner: Any, application: ASGIApp, service: Service, limit: int) -> None:
        self.owner = owner
        self.application = application
        self.service = service
        self.largest = min(limit, LARGEST_BODY)
        self.answered = 0  # messages this path accepted itself (tests, profiling)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope.get("root_path", "") or not self._small_body(scope):
            await self.application(scope, receive, send)
            return
        body = await _read_body(receive)
        if body is None:
            return  # the client went away: nobody to answer
        answer = await self._answer(scope, body)
        if answer is None:
            await self.application(scope, _replaying(body, receive), send)
            return
        await answer(scope, receive, send)

    def _small_body(self, scope: Scope) -> bool:
        for name, value in scope["headers"]:
            if name == b"content-length":
                return value.isdigit() and int(value) <= self.largest
        return False

    async def _answer(self, scope: Scope, body: bytes) -> Response | None:
        """The 201 answer, an error handler's answer, or None to leave it to the route."""
        found = _plain_request(self.service, scope, body)
        if found is None:
            return None
        key, item = found
        try:
            row, answer = await prepare_single(self.service, key, item)
        except Exception:  # a refusal: the route answers it, nothing was stored
            return None
        try:
            response = await store_single(self.service, key, row, answer)
        except Exception as exc:
            return await self._handled(scope, exc)
        self.answered += 1
        return response

    async def _handled(self, scope: Scope, exc: Exception) -> Response:
        """The answer of the application's handler for `exc`, as Starlette would choose it; an
        exception without one goes on to the server, which answers 500, as the route's would."""
        handlers: dict[Any, Any] = self.owner.exception_handlers
        for kind in type(exc).__mro__:
            handler = handlers.get(kind) if kind is not Exception else None
            if handler is not None:
                request = Request({**scope, "app": self.owner})
                if inspect.iscoroutinefunction(handler):
                    response: Response = await handler(request, exc)
                else:
                    response = await run_in_threadpool(handler, request, exc)
                return response
        raise exc


def _plain_request(
    service: Service, scope: Scope, body: bytes
) -> tuple[ApiKey, SendMessage] | None:
    """The verified key and the valid message of a request with nothing unusual, else None."""
    headers: dict[bytes, bytes] = {}
    for name, value in scope["headers"]:
        headers.setdefault(name, value)
    if headers.get(b"content-type") != b"application/json" or b"idempotency-key" in headers:
        return None
    presented = _presented_key(headers)
    key = service.keys.cached(presented) if presented else None
    if key is None:
        return None
    try:  # a body that is not a JSON object fails validation too
        return key, SendMessage.model_validate_json(body)
    except ValidationError:
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
