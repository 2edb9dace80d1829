"""The web interface: server-rendered pages in English and Dutch, with a little JavaScript."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from smsdesk.web.ui import (
    audit,
    connections,
    dashboard,
    groups,
    live,
    login,
    mailings,
    mailings_detail,
    mailings_recipients,
    mailings_send,
    messages,
    new_request,
    optouts,
    outbox,
    reply_templates,
    request_list,
    requests,
    routes,
    sms_settings,
    spend,
    unrecognised,
)
from smsdesk.web.ui.render import render
from smsdesk.web.ui.session import (
    CsrfFailed,
    Forbidden,
    LoginRequired,
    login_url,
    optional_session,
)
from smsdesk.web.ui.throttle import LoginThrottle

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"


def _wants_json(request: Request) -> bool:
    return "application/json" in request.headers.get("accept", "")


def install(app: FastAPI) -> None:
    app.state.login_throttle = LoginThrottle(app.state.service)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.include_router(login.router)
    app.include_router(audit.router)
    app.include_router(outbox.router)
    app.include_router(messages.router)
    app.include_router(dashboard.router)
    app.include_router(sms_settings.router)
    app.include_router(connections.router)
    app.include_router(routes.router)
    app.include_router(spend.router)
    app.include_router(request_list.router)
    app.include_router(new_request.router)
    app.include_router(optouts.router)
    app.include_router(requests.router)
    app.include_router(unrecognised.router)
    app.include_router(reply_templates.router)
    app.include_router(groups.router)
    app.include_router(mailings.router)
    app.include_router(mailings_recipients.router)
    app.include_router(mailings_send.router)
    app.include_router(mailings_detail.router)
    app.include_router(live.router)

    @app.exception_handler(LoginRequired)
    async def _login_required(request: Request, exc: LoginRequired) -> Response:
        if _wants_json(request) or request.method != "GET":
            return JSONResponse({"error": {"code": "login_required"}}, status_code=401)
        return RedirectResponse(login_url(exc.next_path), status_code=303)

    @app.exception_handler(Forbidden)
    async def _forbidden(request: Request, exc: Forbidden) -> Response:
        return await _refused(request, "forbidden")

    @app.exception_handler(CsrfFailed)
    async def _csrf(request: Request, exc: CsrfFailed) -> Response:
        return await _refused(request, "csrf")


async def _refused(request: Request, problem: str) -> Response:
    """403: a page saying why, or JSON for scripts."""
    if _wants_json(request):
        return JSONResponse({"error": {"code": problem}}, status_code=403)
    session = await optional_session(request)
    return render(request, "error.html", session, status=403, problem=problem)
