"""Who is looking at a page: the session cookie, roles, CSRF tokens and the page language.

The session token lives in an HttpOnly, SameSite=Lax cookie (Secure over HTTPS). Every form
that changes something carries the session's CSRF token (a hidden field, or the X-CSRF-Token
header for script requests); the login form, which has no session yet, uses a double-submit
cookie instead.
"""

from __future__ import annotations

import secrets
from urllib.parse import quote

from fastapi import Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from smsdesk.store.users import WebSession
from smsdesk.web.auth import service_of
from smsdesk.web.ui.i18n import LANGUAGES, negotiate

SESSION_COOKIE = "smsdesk_session"
LOGIN_CSRF_COOKIE = "smsdesk_login_csrf"
LANGUAGE_COOKIE = "smsdesk_lang"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"


class LoginRequired(Exception):
    """No live session: the page answers with a redirect to the login screen."""

    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path


class Forbidden(Exception):
    """The user is logged in but may not do this (an agent on the configuration)."""


class CsrfFailed(Exception):
    """A form came without the right CSRF token."""


def is_secure(request: Request) -> bool:
    return request.url.scheme == "https" or service_of(request).public_url.startswith("https:")


def set_cookie(response: Response, request: Request, name: str, value: str, max_age: int) -> None:
    """HttpOnly, SameSite=Lax, for the whole site; Secure when the site is served over HTTPS."""
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        httponly=True,
        samesite="lax",
        secure=is_secure(request),
        path="/",
    )


async def optional_session(request: Request) -> WebSession | None:
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    service = service_of(request)
    return await run_in_threadpool(service.users.session, token, service.clock())


async def page_session(request: Request) -> WebSession:
    """The logged-in user, or a redirect to the login page that comes back here."""
    session = await optional_session(request)
    if session is None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise LoginRequired(target)
    request.state.session = session
    return session


async def admin_session(request: Request) -> WebSession:
    session = await page_session(request)
    if not session.user.is_admin:
        raise Forbidden()
    return session


def login_url(next_path: str) -> str:
    return f"/login?next={quote(next_path, safe='/')}"


def safe_next(value: str | None) -> str:
    """Only paths on this site: never redirect a user to another host after login."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/"
    return value


def check_csrf(session: WebSession, presented: str | None) -> None:
    if not presented or not secrets.compare_digest(presented, session.csrf_token):
        raise CsrfFailed()


async def form_with_csrf(request: Request, session: WebSession) -> dict[str, str]:
    """The submitted form's fields, after the CSRF check (header or hidden field)."""
    form = await request.form()
    fields = {k: v for k, v in form.multi_items() if isinstance(v, str)}
    check_csrf(session, request.headers.get(CSRF_HEADER) or fields.get(CSRF_FIELD))
    return fields


def page_language(request: Request, session: WebSession | None) -> str:
    """The user's own choice, else the language cookie, else the browser's wish."""
    if session is not None and session.user.language in LANGUAGES:
        return session.user.language
    cookie = request.cookies.get(LANGUAGE_COOKIE)
    if cookie in LANGUAGES:
        return cookie
    return negotiate(request.headers.get("accept-language"))
