"""Logging in to the web interface from tests, as a browser would (cookies and CSRF tokens)."""

from __future__ import annotations

import re
import time

import httpx

from smsdesk.service import Service
from smsdesk.store.users import User

PASSWORD = "correct horse battery staple"
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def create_user(
    service: Service, username: str = "admin", role: str = "admin", language: str = "en"
) -> User:
    return service.users.create(username, PASSWORD, role, language, time.time())


def csrf_of(html: str) -> str:
    """The CSRF token of the first form on a page."""
    match = _CSRF.search(html)
    if match is None:
        raise AssertionError("the page has no form with a CSRF token")
    return match.group(1)


async def log_in(
    client: httpx.AsyncClient, username: str = "admin", password: str = PASSWORD
) -> httpx.Response:
    """Open the login page and submit it; answers the response to the submission."""
    page = await client.get("/login")
    return await client.post(
        "/login",
        data={"csrf_token": csrf_of(page.text), "username": username, "password": password},
    )


async def page_csrf(client: httpx.AsyncClient, path: str = "/outbox") -> str:
    """The session's CSRF token, read from a page the user can open."""
    return csrf_of((await client.get(path)).text)
