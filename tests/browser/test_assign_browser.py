"""Assigning requests in chromium: one agent gives a request to another, whose Mine count and
unread mark change without a reload; the requests list and Groups screen fit a phone.

One `smsdesk serve` on loopback for the module; users are made with `smsdesk users create`.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.support.processes import Processes, smsdesk_command, smsdesk_env

PASSWORD = "correct horse battery staple"


@dataclass
class Site:
    url: str
    api: httpx.Client


def _create_user(env: dict[str, str], name: str, role: str, language: str = "en") -> None:
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


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    root = tmp_path_factory.mktemp("assign")
    env = smsdesk_env(data_dir=root / "data")
    _create_user(env, "anna", "agent")
    _create_user(env, "bram", "agent", "nl")
    _create_user(env, "admin", "admin")
    processes = Processes(root)
    try:
        server = processes.server(env).wait_ready()
        key = server.first_key()
        assert key, server.output()
        headers = {"Authorization": f"Bearer {key}"}
        with httpx.Client(base_url=server.url, headers=headers, timeout=10) as api:
            settings = {"default_country_code": "+31", "inbound": {"sms_endpoint": "HELP"}}
            assert api.put("/api/v1/settings", json=settings).status_code == 200
            assert api.post("/api/v1/groups", json={"name": "Desk"}).status_code == 201
            for name in ("anna", "bram"):
                added = api.post("/api/v1/groups/Desk/members", json={"user": name})
                assert added.status_code == 201
            yield Site(server.url, api)
    finally:
        processes.stop_all()


@pytest.fixture
def pages(browser: Browser) -> Iterator[Any]:
    """Pages in browser contexts of their own (one person each)."""
    contexts = []

    def open_page(width: int = 1200, locale: str = "en-GB") -> Page:
        context = browser.new_context(locale=locale, viewport={"width": width, "height": 800})
        context.set_default_timeout(15_000)
        contexts.append(context)
        return context.new_page()

    yield open_page
    for context in contexts:
        context.close()


def log_in(page: Page, site: Site, name: str, path: str) -> None:
    page.goto(site.url + path)
    page.fill("#username", name)
    page.fill("#password", PASSWORD)
    page.click("#login")
    expect(page.locator("#logout")).to_be_visible()


def request_of(site: Site, text: str, sender: str) -> str:
    """The request an SMS from `sender` opened (waits until it is processed)."""
    answer = site.api.post("/api/v1/inbound", json={"from": sender, "to": "+3197010", "text": text})
    assert answer.status_code in (200, 202), answer.text
    inbound_id = answer.json()["id"]
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        found = site.api.get(f"/api/v1/inbound/{inbound_id}").json()
        if found.get("request_id"):
            return str(found["request_id"])
        time.sleep(0.05)
    raise AssertionError(f"no request for inbound {inbound_id}: {found}")


def test_an_agent_assigns_a_request_and_the_other_sees_it_live(site: Site, pages: Any) -> None:
    """Anna takes a request and hands it to Bram; Bram's list (in Dutch) counts it under
    Mine and marks it unread without reloading; once Bram opens it, the mark is gone."""
    request_id = request_of(site, "HELP my parcel is late", "+31611122233")
    anna, bram = pages(), pages(locale="nl-NL")
    log_in(bram, site, "bram", "/requests")
    expect(bram.locator("html")).to_have_attribute("data-live", "stream")
    bram.evaluate("window.__notReloaded = true")
    before = int(bram.locator("#count-mine").inner_text())
    expect(bram.locator("#view-mine")).to_contain_text("Van mij")

    log_in(anna, site, "anna", f"/requests/{request_id}")
    anna.click("#take-request")
    expect(anna.locator("#request-owner")).to_have_text("anna")
    anna.select_option("#assign-owner", label="bram")
    anna.click("#assign")
    expect(anna.locator("#request-owner")).to_have_text("bram")

    expect(bram.locator("#count-mine")).to_have_text(str(before + 1), timeout=5_000)
    row = bram.locator(f"#request-{request_id}")
    expect(row).to_have_class("unread")
    expect(row).to_contain_text("bram")
    assert bram.evaluate("window.__notReloaded === true")

    bram.click(f"#request-{request_id} a")
    expect(bram.locator("#request-owner")).to_have_text("bram")
    bram.goto(site.url + "/requests?view=mine")
    expect(bram.locator(f"#request-{request_id}")).not_to_have_class("unread")


def test_the_requests_list_and_groups_screen_fit_a_phone(site: Site, pages: Any) -> None:
    """At 390 px the requests list (as cards), a request with its Assign form and the Groups
    screen scroll only up and down."""
    request_id = request_of(site, "HELP a rather long question about an invoice", "+31622233344")
    site.api.post(
        "/api/v1/routing-rules", json={"kind": "keyword", "value": "invoice", "group": "Desk"}
    )
    phone = pages(width=390)
    log_in(phone, site, "admin", "/requests")
    for path in (
        "/requests",
        "/requests?view=all&status=all",
        f"/requests/{request_id}",
        "/groups",
    ):
        phone.goto(site.url + path)
        width = phone.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, f"{path} is {width} px wide"
