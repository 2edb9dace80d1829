"""Agents start SMS conversations in chromium, and see opt-outs; the opt-out list screen.

One `smsdesk serve` on loopback for the module (the simulator sends); customers' SMS arrive
through the REST API as the simulator's inbound.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.support.processes import Processes, smsdesk_command, smsdesk_env, wait_until

PASSWORD = "correct horse battery staple"
FIRST = "+31612345678"  # typed as 06 1234 5678
ADA = "+31687650001"
STOPPED = "+31687650002"


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


def receive(site: Site, sender: str, text: str) -> str:
    """The customer's SMS, handed to the server; answers the inbound id once processed."""
    answer = site.api.post("/api/v1/inbound", json={"from": sender, "to": "+3197010", "text": text})
    assert answer.status_code in (200, 202), answer.text
    inbound_id = str(answer.json()["id"])

    def processed() -> bool:
        return site.api.get(f"/api/v1/inbound/{inbound_id}").json()["state"] != "pending"

    wait_until(processed, f"inbound {inbound_id} processed")
    return inbound_id


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    root = tmp_path_factory.mktemp("start")
    env = smsdesk_env(data_dir=root / "data")
    _create_user(env, "admin", "admin")
    _create_user(env, "sam", "agent")
    _create_user(env, "bea", "agent", "nl")
    _create_user(env, "beheer", "admin", "nl")
    processes = Processes(root)
    try:
        server = processes.server(env).wait_ready()
        key = server.first_key()
        assert key, server.output()
        headers = {"Authorization": f"Bearer {key}"}
        with httpx.Client(base_url=server.url, headers=headers, timeout=10) as api:
            settings = {"default_country_code": "+31", "inbound": {"sms_endpoint": "HELP"}}
            assert api.put("/api/v1/settings", json=settings).status_code == 200
            made = api.post("/api/v1/customers", json={"name": "Ada", "numbers": [ADA]})
            assert made.status_code == 201, made.text
            template = {
                "name": "Bike ready",
                "language": "en",
                "body": "Hi {customer.name}, your {prompt:bike} is ready. {agent.name}",
            }
            assert api.post("/api/v1/templates", json=template).status_code == 201
            site = Site(server.url, api)
            receive(site, STOPPED, "STOP")
            yield site
    finally:
        processes.stop_all()


def _page(browser: Browser, width: int = 1280, locale: str = "en-GB") -> Page:
    context = browser.new_context(locale=locale, viewport={"width": width, "height": 800})
    context.set_default_timeout(15_000)
    return context.new_page()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    opened = _page(browser)
    yield opened
    opened.context.close()


@pytest.fixture
def phone(browser: Browser) -> Iterator[Page]:
    opened = _page(browser, 390, "nl-NL")
    yield opened
    opened.context.close()


def log_in(page: Page, site: Site, name: str) -> None:
    page.goto(site.url + "/login")
    page.fill("#username", name)
    page.fill("#password", PASSWORD)
    page.click("#login")
    expect(page.locator("#logout")).to_be_visible()


def fits(page: Page, width: int = 390) -> None:
    """Nothing on the page scrolls sideways."""
    wide = page.evaluate(
        """w => Array.from(document.querySelectorAll('body *'))
        .filter(e => e.getBoundingClientRect().right > w)
        .map(e => e.tagName + '#' + e.id + '.' + e.className).slice(0, 8)""",
        width,
    )
    assert page.evaluate("document.documentElement.scrollWidth") <= width, (page.url, wide)


def test_an_agent_starts_a_conversation_and_the_answer_appears_live(page: Page, site: Site) -> None:
    """Typed nationally with spaces; the first SMS is counted and sent; on the new request the
    customer's answer (without the endpoint code) appears without a reload."""
    log_in(page, site, "sam")
    page.goto(site.url + "/requests")
    page.click("#new-conversation")
    expect(page).to_have_url(site.url + "/requests/new")
    page.fill("#new-number", "06 1234 5678")
    page.fill("#new-text", "Your bike is ready")
    expect(page.locator("#new-counter")).to_contain_text("18 characters")
    page.click("#start-conversation")
    expect(page).to_have_url(re.compile(r"/requests/[0-9A-Z]{26}$"))
    expect(page.locator("#request-title")).to_have_text("Your bike is ready")
    expect(page.locator("#conversation .bubble.outbound")).to_contain_text("Your bike is ready")
    expect(page.locator("#request-customer")).to_contain_text(FIRST)
    expect(page.locator("html")).to_have_attribute("data-live", "stream")
    page.evaluate("window.__notReloaded = true")

    receive(site, FIRST, "Great, I will come at five")
    expect(page.locator("#conversation .bubble.inbound")).to_contain_text(
        "Great, I will come at five", timeout=10_000
    )
    assert page.evaluate("window.__notReloaded === true")


def test_a_template_fills_the_first_sms_for_the_chosen_customer(page: Page, site: Site) -> None:
    """The customer is found by name; the template's name, prompt and agent are filled in."""
    log_in(page, site, "sam")
    page.goto(site.url + "/requests/new")
    page.fill("#customer-query", "ad")
    page.click("#find-customer")
    page.click("#customer-choices a >> text=Ada")
    expect(page.locator("#chosen-customer")).to_contain_text(ADA)
    page.click("#new-template-picker-open")
    page.locator("#new-template-picker .template-choice").first.click()
    page.fill("#new-template-picker input[data-prompt='bike']", "blue bike")
    page.locator("#new-template-picker .template-prompts button[type=submit]").click()
    expect(page.locator("#new-text")).to_have_value("Hi Ada, your blue bike is ready. sam")
    expect(page.locator("#new-counter")).to_contain_text("characters")
    page.click("#start-conversation")
    expect(page.locator("#conversation .bubble.outbound")).to_contain_text("your blue bike")


def test_an_opted_out_number_is_refused_in_dutch_on_a_phone(phone: Page, site: Site) -> None:
    """At 390 px, in Dutch: the refusal says when and how, the number stays typed, and
    nothing scrolls sideways."""
    log_in(phone, site, "bea")
    phone.goto(site.url + "/requests/new")
    fits(phone)
    phone.fill("#new-number", "06 8765 0002")
    phone.fill("#new-text", "Hallo")
    phone.click("#start-conversation")
    refusal = phone.locator("#new-request-refused")
    expect(refusal).to_contain_text("Deze klant heeft zich afgemeld voor sms (antwoordde STOP op")
    expect(refusal).to_contain_text("Er is geen gesprek begonnen.")
    expect(phone.locator("#new-number")).to_have_value("06 8765 0002")
    fits(phone)


def test_the_stop_and_the_badge_show_on_the_request(phone: Page, site: Site) -> None:
    """A customer writes, then sends STOP: the request shows the badge and the marked STOP,
    the list shows the badge, at 390 px in Dutch."""
    number = "+31687650003"
    receive(site, number, "HELP waar blijft mijn fiets")
    receive(site, number, "stop")
    log_in(phone, site, "bea")
    phone.goto(site.url + "/requests?view=all&status=all")
    row = phone.locator("#requests tr", has_text="waar blijft mijn fiets")
    expect(row.locator(".optout-badge")).to_contain_text("Afgemeld op")
    fits(phone)
    row.locator("a").first.click()
    expect(phone.locator("#request-optout")).to_contain_text("(antwoordde STOP)")
    stop = phone.locator("#conversation .bubble.inbound.keyword")
    expect(stop).to_contain_text("Afgemeld voor sms")
    expect(stop).to_contain_text("stop")
    fits(phone)


def test_an_administrator_removes_a_number_after_confirming(phone: Page, site: Site) -> None:
    """The Opt-outs screen in Dutch at 390 px: search, add, remove after the confirmation."""
    log_in(phone, site, "beheer")
    phone.click("nav.mainnav a[href='/opt-outs']")
    expect(phone.locator("h1")).to_have_text("Afmeldingen")
    fits(phone)
    phone.fill("#optout-number", "06 8765 0009")
    phone.click("#add-optout")
    expect(phone.locator("#optout-notice")).to_be_visible()
    phone.fill("#optout-search", "876500")
    phone.locator("form[role=search] button").click()
    entry = phone.locator("#optouts li", has_text="+31687650009")
    expect(entry).to_contain_text("toegevoegd door een beheerder")
    fits(phone)
    entry.locator(".remove-optout").click()
    fits(phone)
    phone.click("#confirm-remove")
    expect(phone.locator("#optout-notice")).to_contain_text("van de afmeldlijst gehaald")
    expect(phone.locator("#optouts li", has_text="+31687650009")).to_have_count(0)
