"""Logging in to the web interface: passwords, session cookies, CSRF, language, logout."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from tests.support.harness import Harness
from tests.support.webui import PASSWORD, create_user, csrf_of, log_in


@pytest.fixture
async def browser(harness: Harness) -> AsyncIterator[httpx.AsyncClient]:
    create_user(harness.service, "admin", "admin")
    async with harness.browser() as client:
        yield client


async def test_a_page_sends_a_stranger_to_the_login_and_back(browser: httpx.AsyncClient) -> None:
    """Asking for a page without a session leads to the login, then to that page."""
    first = await browser.get("/dashboard?days=30")
    assert first.status_code == 303
    assert first.headers["location"] == "/login?next=/dashboard%3Fdays%3D30"

    page = await browser.get(first.headers["location"])
    assert 'name="next" value="/dashboard?days=30"' in page.text
    answer = await browser.post(
        "/login",
        data={
            "csrf_token": csrf_of(page.text),
            "username": "admin",
            "password": PASSWORD,
            "next": "/dashboard?days=30",
        },
    )
    assert answer.status_code == 303
    assert answer.headers["location"] == "/dashboard?days=30"


async def test_the_session_cookie_is_httponly_and_samesite(browser: httpx.AsyncClient) -> None:
    answer = await log_in(browser)
    cookie = next(
        h for h in answer.headers.get_list("set-cookie") if h.startswith("smsdesk_session=")
    )
    assert "HttpOnly" in cookie
    assert "SameSite=lax" in cookie
    assert "Path=/" in cookie


async def test_a_wrong_password_is_refused_and_keeps_the_name(browser: httpx.AsyncClient) -> None:
    answer = await log_in(browser, "admin", "not the password")
    assert answer.status_code == 401
    assert "The user name or password is wrong." in answer.text
    assert 'value="admin"' in answer.text
    assert "smsdesk_session" not in browser.cookies
    unknown = await log_in(browser, "nobody", PASSWORD)
    assert unknown.status_code == 401


async def test_login_without_its_csrf_token_is_refused(browser: httpx.AsyncClient) -> None:
    await browser.get("/login")
    answer = await browser.post("/login", data={"username": "admin", "password": PASSWORD})
    assert answer.status_code == 403
    forged = await browser.post(
        "/login", data={"csrf_token": "guess", "username": "admin", "password": PASSWORD}
    )
    assert forged.status_code == 403
    assert "smsdesk_session" not in browser.cookies


async def test_after_login_it_never_leaves_the_site(browser: httpx.AsyncClient) -> None:
    for target in ("//evil.example/", "https://evil.example/", "/\\evil.example"):
        page = await browser.get("/login")
        answer = await browser.post(
            "/login",
            data={
                "csrf_token": csrf_of(page.text),
                "username": "admin",
                "password": PASSWORD,
                "next": target,
            },
        )
        assert answer.headers["location"] == "/"
        browser.cookies.delete("smsdesk_session")


async def test_logout_needs_the_csrf_token_and_ends_the_session(
    browser: httpx.AsyncClient,
) -> None:
    await log_in(browser)
    page = await browser.get("/login")  # a logged-in user is sent on from the login page
    assert page.status_code == 303
    refused = await browser.post("/logout", data={"csrf_token": "wrong"})
    assert refused.status_code == 403

    token = await _token(browser)
    stolen = browser.cookies["smsdesk_session"]
    answer = await browser.post("/logout", data={"csrf_token": token})
    assert answer.status_code == 303
    browser.cookies.set("smsdesk_session", stolen)
    assert (await browser.get("/dashboard")).status_code == 303  # the old cookie is worth nothing


async def test_the_language_choice_is_kept_for_the_user(harness: Harness) -> None:
    create_user(harness.service, "anna", "agent")
    async with harness.browser() as first:
        await log_in(first, "anna")
        token = await _token(first)
        refused = await first.post("/language", data={"language": "nl", "next": "/"})
        assert refused.status_code == 403
        await first.post("/language", data={"language": "nl", "next": "/", "csrf_token": token})
    assert harness.service.users.get("anna").language == "nl"  # type: ignore[union-attr]
    async with harness.browser() as second:  # another browser, no language cookie
        await log_in(second, "anna")
        page = await second.get("/dashboard")
        assert 'lang="nl"' in page.text
        assert "Uitloggen" in page.text


async def test_the_login_page_follows_the_browser_language(harness: Harness) -> None:
    async with harness.browser() as client:
        page = await client.get("/login", headers={"Accept-Language": "nl-NL,nl;q=0.9,en;q=0.5"})
        assert 'lang="nl"' in page.text
        assert "Gebruikersnaam" in page.text
        english = await client.get("/login", headers={"Accept-Language": "de-DE,en;q=0.5"})
        assert 'lang="en"' in english.text


async def _token(client: httpx.AsyncClient) -> str:
    """The session's CSRF token, from the page every logged-in user can open."""
    page = await client.get("/dashboard")
    return csrf_of(page.text)


async def test_guessing_passwords_is_slowed_down(harness: Harness) -> None:
    """After five wrong passwords that name waits, even with the right one; others do not."""
    create_user(harness.service, "admin", "admin")
    create_user(harness.service, "anna", "agent")
    async with harness.browser() as client:
        for _ in range(5):
            assert (await log_in(client, "admin", "wrong password")).status_code == 401
        blocked = await log_in(client, "admin", PASSWORD)
        assert blocked.status_code == 429
        assert "Wait 15 minutes" in blocked.text
        assert "smsdesk_session" not in client.cookies
        assert (await log_in(client, "anna")).status_code == 303
