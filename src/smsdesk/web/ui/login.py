"""Logging in and out, and choosing the interface language."""

from __future__ import annotations

import secrets

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from smsdesk.domain.audit import Actor
from smsdesk.store.users import SESSION_MAX_SECONDS, WebSession
from smsdesk.web.actors import client_address, user_actor
from smsdesk.web.auth import service_of
from smsdesk.web.ui.i18n import LANGUAGES
from smsdesk.web.ui.render import render
from smsdesk.web.ui.session import (
    CSRF_FIELD,
    LANGUAGE_COOKIE,
    LOGIN_CSRF_COOKIE,
    SESSION_COOKIE,
    CsrfFailed,
    form_with_csrf,
    optional_session,
    page_session,
    safe_next,
    set_cookie,
)
from smsdesk.web.ui.throttle import LoginThrottle

router = APIRouter(include_in_schema=False)


def _throttle(request: Request) -> LoginThrottle:
    """Shared through the database by every process: see `smsdesk.web.ui.throttle`."""
    throttle: LoginThrottle = request.app.state.login_throttle
    return throttle


def _login_page(
    request: Request,
    next_path: str,
    username: str = "",
    error: str | None = None,
    wait_minutes: int = 0,
) -> Response:
    token = secrets.token_urlsafe(32)
    response = render(
        request,
        "login.html",
        None,
        status=(429 if wait_minutes else 401) if error else 200,
        login_csrf=token,
        next_path=next_path,
        username=username,
        error=error,
        wait_minutes=wait_minutes,
    )
    set_cookie(response, request, LOGIN_CSRF_COOKIE, token, 3600)
    return response


@router.get("/login")
async def login_form(request: Request, next: str | None = None) -> Response:
    if await optional_session(request) is not None:
        return RedirectResponse(safe_next(next), status_code=303)
    return _login_page(request, safe_next(next))


@router.post("/login")
async def login(request: Request) -> Response:
    form = await request.form()
    fields = {k: v for k, v in form.items() if isinstance(v, str)}
    cookie = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    presented = fields.get(CSRF_FIELD, "")
    if not cookie or not presented or not secrets.compare_digest(cookie, presented):
        raise CsrfFailed()
    service = service_of(request)
    username = fields.get("username", "").strip()
    next_path = safe_next(fields.get("next"))
    address = client_address(request)
    throttle = _throttle(request)
    wait = await run_in_threadpool(throttle.begin, address, username, service.clock())
    if wait:  # not audited: refused unchecked, and a flood would only fill the trail
        minutes = -(-wait // 60)
        return _login_page(request, next_path, username, error="throttled", wait_minutes=minutes)
    user = await run_in_threadpool(service.users.authenticate, username, fields.get("password", ""))
    if user is None:
        await run_in_threadpool(
            service.audit,
            Actor(kind="user", name=username[:100] or "-", address=address or None),
            "login.failed",  # the attempt stays counted by the throttle
            details={"username": username[:100]},
        )
        return _login_page(request, next_path, username, error="wrong_credentials")
    await run_in_threadpool(throttle.succeeded, address, username)
    token = await run_in_threadpool(service.users.start_session, user, service.clock())
    await run_in_threadpool(
        service.audit,
        Actor.user(user.id, user.username, address or None),
        "login.succeeded",
        target_kind="user",
        target_id=str(user.id),
    )
    response = RedirectResponse(next_path, status_code=303)
    set_cookie(response, request, SESSION_COOKIE, token, SESSION_MAX_SECONDS)
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/")
    return response


@router.post("/logout")
async def logout(request: Request, session: WebSession = Depends(page_session)) -> Response:
    await form_with_csrf(request, session)
    token = request.cookies.get(SESSION_COOKIE, "")
    service = service_of(request)
    await run_in_threadpool(service.users.end_session, token)
    await run_in_threadpool(
        service.audit,
        user_actor(request, session),
        "login.logged_out",
        target_kind="user",
        target_id=str(session.user.id),
    )
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.post("/language")
async def choose_language(request: Request) -> Response:
    """Remembered for the user (and in a cookie, so the login page follows it too)."""
    session = await optional_session(request)
    form = await request.form()
    fields = {k: v for k, v in form.items() if isinstance(v, str)}
    if session is not None:
        await form_with_csrf(request, session)
    language = fields.get("language", "")
    back = safe_next(fields.get("next"))
    response = RedirectResponse(back, status_code=303)
    if language in LANGUAGES:
        if session is not None:
            await run_in_threadpool(
                service_of(request).users.set_language, session.user.id, language
            )
        set_cookie(response, request, LANGUAGE_COOKIE, language, 365 * 24 * 3600)
    return response


@router.get("/")
async def home(session: WebSession = Depends(page_session)) -> Response:
    return RedirectResponse("/dashboard", status_code=303)
