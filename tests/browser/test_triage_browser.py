"""Triage of unrecognised SMS in a real browser: the count in the menu, the request picker,
and the assigned SMS in its place in time in the conversation, marked; phone width.

One `smsdesk serve` on loopback for the module; SMS arrive through the REST API.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.support.processes import Processes, smsdesk_command, smsdesk_env, wait_until

PASSWORD = "correct horse battery staple"
CUSTOMER = "+31687651111"
STRANGER = "+31687652222"


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
    root = tmp_path_factory.mktemp("triage")
    env = smsdesk_env(data_dir=root / "data")
    _create_user(env, "admin", "admin")
    _create_user(env, "ann", "agent")
    _create_user(env, "bea", "agent", "nl")
    processes = Processes(root)
    try:
        server = processes.server(env).wait_ready()
        key = server.first_key()
        assert key, server.output()
        headers = {"Authorization": f"Bearer {key}"}
        with httpx.Client(base_url=server.url, headers=headers, timeout=10) as api:
            settings = {"default_country_code": "+31", "inbound": {"sms_endpoint": "HELP"}}
            assert api.put("/api/v1/settings", json=settings).status_code == 200
            customer = {"name": "Ada Jansen", "numbers": [CUSTOMER]}
            assert api.post("/api/v1/customers", json=customer).status_code == 201
            yield Site(server.url, api)
    finally:
        processes.stop_all()


def receive(site: Site, sender: str, text: str) -> dict[str, str]:
    """An SMS arrives; answers its inbound record once processed."""
    answer = site.api.post("/api/v1/inbound", json={"from": sender, "to": "+3197010", "text": text})
    assert answer.status_code in (200, 202), answer.text
    inbound_id = answer.json()["id"]

    def processed() -> dict[str, str] | None:
        found: dict[str, str] = site.api.get(f"/api/v1/inbound/{inbound_id}").json()
        return found if found["state"] != "pending" else None

    return wait_until(processed, "the SMS to be processed")


def _page(browser: Browser, width: int = 1280) -> Page:
    context = browser.new_context(locale="en-GB", viewport={"width": width, "height": 800})
    context.set_default_timeout(15_000)
    return context.new_page()


def log_in(page: Page, site: Site, name: str) -> None:
    page.goto(site.url + "/login")
    page.fill("#username", name)
    page.fill("#password", PASSWORD)
    page.click("#login")
    expect(page.locator("#logout")).to_be_visible()


def test_an_sms_assigned_with_the_picker_shows_in_time_order(browser: Browser, site: Site) -> None:
    """The SMS Ada sent from another phone before she wrote with the code is found in the
    menu, assigned with the picker by her name, and shows first in her conversation."""
    stray = receive(site, STRANGER, "Parcel 77 never arrived")
    assert stray["state"] == "unrecognised"
    opened = receive(site, CUSTOMER, "HELP any news about my parcel?")
    receive(site, "+31687653333", "HELP something else")
    page = _page(browser)
    try:
        log_in(page, site, "ann")
        expect(page.locator("#menu-unrecognised-count")).to_have_text("1")
        page.click("#menu-unrecognised")
        page.click(f"#pick-for-{stray['id']}")
        expect(page.locator("#picked-sms")).to_contain_text("Parcel 77 never arrived")
        page.fill("#picker-q", "jansen")
        page.click("#picker-search button[type=submit]")
        results = page.locator("#picker-results li")
        expect(results).to_have_count(1)
        expect(results.first).to_contain_text("any news about my parcel?")
        results.first.locator("button").click()
        page.wait_for_url(f"**/requests/{opened['request_id']}")
        bubbles = page.locator("#conversation .bubble")
        expect(bubbles).to_have_count(2)
        expect(bubbles.nth(0)).to_contain_text("Parcel 77 never arrived")
        expect(bubbles.nth(0)).to_contain_text("assigned from the unrecognised list by ann")
        expect(bubbles.nth(1)).to_contain_text("any news about my parcel?")
        expect(page.locator("#menu-unrecognised-count")).to_have_text("0")
    finally:
        page.context.close()


def test_the_triage_screens_fit_a_phone_in_dutch(browser: Browser, site: Site) -> None:
    stray = receive(site, STRANGER, "Waar is mijn pakket, zonder code")
    phone = _page(browser, 390)
    try:
        log_in(phone, site, "bea")
        for path in ("/inbox/unrecognised", f"/inbox/unrecognised/{stray['id']}/assign"):
            phone.goto(site.url + path)
            width = phone.evaluate("document.documentElement.scrollWidth")
            assert width <= 390, f"{path} is {width} px wide"
        expect(phone.locator("h1")).to_have_text("Een sms aan een verzoek toewijzen")
        phone.click("#assign-new button")
        expect(phone.locator("#conversation .bubble").first).to_contain_text(
            "toegewezen vanuit de lijst met onherkende sms'jes door bea"
        )
    finally:
        phone.context.close()
