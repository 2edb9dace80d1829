"""The web application factory: REST API, provider callbacks and operations endpoints."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial

from fastapi import FastAPI
from starlette.types import Receive, Scope, Send

from smsdesk import __version__, metrics
from smsdesk.service import Service
from smsdesk.web import errors, ops, ui
from smsdesk.web.api import (
    agent,
    audit,
    customers,
    groups,
    inbound,
    messages,
    optouts,
    reports,
    requests,
    settings,
    templates,
)
from smsdesk.web.api import connections as connections_api
from smsdesk.web.api import mailings as mailings_api
from smsdesk.web.api import notifications as notifications_api
from smsdesk.web.api import retention as retention_api
from smsdesk.web.api import routes as routes_api
from smsdesk.web.api import spend as spend_api
from smsdesk.web.api import webhooks_out as outgoing_webhooks
from smsdesk.web.api.fast_send import PATH as FAST_PATH
from smsdesk.web.api.fast_send import FastSend
from smsdesk.web.jsonresponse import Json
from smsdesk.web.limits import BodySizeLimit
from smsdesk.web.ui import email_test, me
from smsdesk.web.webhooks import routes as webhooks


class SmsdeskApp(FastAPI):
    """The application, with plain sends answered before FastAPI's middleware and routing
    (`web.api.fast_send`)."""

    fast_send: FastSend | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        fast = self.fast_send
        if (
            fast is not None
            and scope["type"] == "http"
            and scope["path"] == FAST_PATH
            and scope["method"] == "POST"
        ):
            await fast(scope, receive, send)
        else:
            await super().__call__(scope, receive, send)


def create_app(service: Service, *, manage_service: bool = True) -> FastAPI:
    """An app bound to `service`; with `manage_service` the app starts and stops it."""

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if manage_service:
            await service.start(api=True)
        try:
            yield
        finally:
            if manage_service:
                await service.stop()

    app = SmsdeskApp(
        title="smsdesk",
        version=__version__,
        lifespan=lifespan,
        default_response_class=Json,
        description="Self-hosted SMS for customer-service teams. Authenticate with "
        "'Authorization: Bearer <API key>' (create one: smsdesk apikey create).",
    )
    app.state.service = service
    app.state.metrics = metrics.registry_for(service.queue_depth)
    errors.install(app)
    app.include_router(ops.router)
    app.include_router(messages.router)
    app.include_router(agent.router)
    app.include_router(reports.router)
    app.include_router(settings.router)
    app.include_router(connections_api.router)
    app.include_router(routes_api.router)
    app.include_router(spend_api.router)
    app.include_router(customers.router)
    app.include_router(customers.numbers_router)
    app.include_router(optouts.router)
    app.include_router(mailings_api.router)
    app.include_router(requests.router)
    app.include_router(groups.router)
    app.include_router(groups.rules_router)
    app.include_router(templates.router)
    app.include_router(inbound.router)
    app.include_router(outgoing_webhooks.router)
    app.include_router(retention_api.router)
    app.include_router(audit.router)
    app.include_router(webhooks.router)
    ui.install(app)
    app.include_router(notifications_api.router)
    app.include_router(me.router)
    app.include_router(email_test.router)
    app.add_middleware(BodySizeLimit, limit=service.config.max_body_bytes)
    rest = partial(FastAPI.__call__, app)
    app.fast_send = FastSend(app, rest, service, service.config.max_body_bytes)
    return app
