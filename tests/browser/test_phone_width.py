"""Every screen fits a phone: at 390 px wide no page scrolls sideways, in English and Dutch.

The screens are listed from the web interface's routers, so a new screen is visited without
touching this file (a new path parameter needs a value in `_fill`). One `smsdesk serve` on
loopback for the module, with a request, failed and delivered messages, a refusal, a group,
a template, an opt-out and an unrecognised SMS, so lists and details have rows.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from fastapi.routing import APIRoute
from playwright.sync_api import Browser, Page, expect

import smsdesk.web.ui
from tests.integration.test_dutch_pages import english_sentences
from tests.support.processes import Processes, smsdesk_command, smsdesk_env

PASSWORD = "correct horse battery staple"
PHONE = 390
# Not pages: live streams, downloads and JSON for scripts.
NOT_PAGES = ("/live/", ".csv", "/customer/export", "/sms/test/", "/templates/new/templates")

# Screens that need a query to show something.
QUERIES = {"/opt-outs/remove": "?number=%2B31655544433"}


@dataclass
class Site:
    url: str
    api: httpx.Client
    ids: dict[str, str]


def _create_user(env: dict[str, str], name: str, role: str, language: str) -> None:
    subprocess.run(
        [
            *smsdesk_command(),
            *("users", "create", name, "--role", role, "--language", language),
            "--password-stdin",
        ],
        input=PASSWORD + "\n",
        env=env,
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    )


def _inbound(api: httpx.Client, sender: str, text: str) -> dict[str, str]:
    answer = api.post("/api/v1/inbound", json={"from": sender, "to": "+3197010", "text": text})
    assert answer.status_code in (200, 202), answer.text
    inbound_id = answer.json()["id"]
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        found: dict[str, str] = api.get(f"/api/v1/inbound/{inbound_id}").json()
        if found.get("state") != "pending":
            return found
        time.sleep(0.05)
    return found


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    root = tmp_path_factory.mktemp("phone")
    env = smsdesk_env(data_dir=root / "data")
    _create_user(env, "admin", "admin", "en")
    _create_user(env, "beheer", "admin", "nl")
    processes = Processes(root)
    try:
        server = processes.server(env).wait_ready()
        key = server.first_key()
        assert key, server.output()
        headers = {"Authorization": f"Bearer {key}"}
        with httpx.Client(base_url=server.url, headers=headers, timeout=10) as api:
            settings = {"default_country_code": "+31", "inbound": {"sms_endpoint": "HULP"}}
            assert api.put("/api/v1/settings", json=settings).status_code == 200
            assert api.post("/api/v1/groups", json={"name": "Klantenservice"}).status_code == 201
            template = api.post(
                "/api/v1/templates",
                json={
                    "name": "Pakket onderweg",
                    "language": "nl",
                    "body": "Hallo {customer.name}, bestelling {prompt:bestelnummer} is verzonden.",
                },
            )
            assert template.status_code == 201, template.text
            sent = api.post(
                "/api/v1/messages",
                json={"to": "+31612345678", "text": "Uw pakket komt morgen " * 6},
            )
            assert sent.status_code == 201, sent.text
            opted = api.post("/api/v1/opt-outs", json={"number": "+31655544433"})
            assert opted.status_code in (200, 201), opted.text
            request = _inbound(
                api, "+31611122233", "HULP mijn pakket met een heel lang kenmerk " * 4
            )
            stray = _inbound(api, "+31699988877", "Ietszonderspatiesertussen" * 5)
            ids = {
                "message_id": str(sent.json()["id"]),
                "template_id": str(template.json()["id"]),
                "request_id": str(request["request_id"]),
                "inbound_id": str(stray["id"]),
                "name": "cancel",
            }
            yield Site(server.url, api, ids)
    finally:
        processes.stop_all()


def screens(ids: dict[str, str]) -> list[str]:
    """Every GET screen of the web interface, its path parameters filled in."""
    found = []
    for info in pkgutil.iter_modules(smsdesk.web.ui.__path__):
        router = getattr(importlib.import_module(f"smsdesk.web.ui.{info.name}"), "router", None)
        for route in getattr(router, "routes", []):
            if not isinstance(route, APIRoute) or "GET" not in route.methods:
                continue
            if any(part in route.path for part in NOT_PAGES) or route.path in ("/", "/login"):
                continue
            names = re.findall(r"{(\w+)}", route.path)
            missing = [n for n in names if n not in ids]
            assert not missing, f"{route.path}: give {missing} a value in the fixture"
            found.append(route.path.format(**ids) + QUERIES.get(route.path, ""))
    return sorted(set(found))


def _width(page: Page) -> int:
    return int(page.evaluate("document.documentElement.scrollWidth"))


# The innermost elements reaching past the screen's right edge, to say what is too wide.
_OVERFLOWING = """(limit) => Array.from(document.querySelectorAll('body *'))
  .filter(e => e.getBoundingClientRect().right > limit + 1)
  .filter(e => !Array.from(e.children).some(c => c.getBoundingClientRect().right > limit + 1))
  .slice(0, 4)
  .map(e => e.tagName.toLowerCase() + (e.id ? '#' + e.id : '') +
       (e.className && typeof e.className === 'string' ? '.' + e.className.split(' ')[0] : '') +
       ' ' + JSON.stringify((e.textContent || '').trim().slice(0, 30)))"""


@pytest.mark.parametrize(("user", "locale"), [("admin", "en-GB"), ("beheer", "nl-NL")])
def test_every_screen_fits_390_px(site: Site, browser: Browser, user: str, locale: str) -> None:
    """Logged in on a phone, each screen (the login page first) is at most 390 px wide; in
    Dutch, the page as the browser shows it (after its scripts ran) holds no English."""
    context = browser.new_context(locale=locale, viewport={"width": PHONE, "height": 800})
    context.set_default_timeout(15_000)
    page = context.new_page()
    try:
        page.goto(site.url + "/login")
        too_wide: dict[str, object] = {"/login": _width(page)} if _width(page) > PHONE else {}
        english: dict[str, list[str]] = {}
        page.fill("#username", user)
        page.fill("#password", PASSWORD)
        page.click("#login")
        expect(page.locator("#logout")).to_be_visible()
        paths = screens(site.ids)
        assert len(paths) >= 15, paths
        for path in paths:
            response = page.goto(site.url + path)
            assert response is not None and response.ok, f"{path}: {response and response.status}"
            if _width(page) > PHONE:
                too_wide[path] = (_width(page), page.evaluate(_OVERFLOWING, PHONE))
            if locale.startswith("nl") and (found := english_sentences(page.content())):
                english[path] = found
        assert not too_wide, f"wider than {PHONE} px: {too_wide}"
        assert not english, f"English on Dutch pages, as the browser shows them: {english}"
    finally:
        context.close()
