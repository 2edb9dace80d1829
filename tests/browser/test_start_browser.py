"""Agents start SMS conversations in chromium, and see opt-outs; the opt-out list screen.

One `smsdesk serve` on loopback for the module (the simulator sends); customers' SMS arrive
through the REST API as the simulator's inbound.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any, cast

import pytest
from playwright.sync_api import Page, expect

from tests.support.browser import PHONE, Site, fits, inbound, log_in, serving

FIRST = "+31612345678"  # typed as 06 1234 5678
ADA = "+31687650001"
STOPPED = "+31687650002"


def receive(site: Site, sender: str, text: str) -> str:
    """The customer's SMS, handed to the server; answers the inbound id once processed."""
    return str(inbound(site.api, sender, text)["id"])


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    users = [
        ("admin", "admin"),
        ("sam", "agent"),
        ("bea", "agent", "nl"),
        ("beheer", "admin", "nl"),
    ]
    settings = {"default_country_code": "+31", "inbound": {"sms_endpoint": "HELP"}}
    with serving(tmp_path_factory.mktemp("start"), users, settings) as site:
        made = site.api.post("/api/v1/customers", json={"name": "Ada", "numbers": [ADA]})
        assert made.status_code == 201, made.text
        template = {
            "name": "Bike ready",
            "language": "en",
            "body": "Hi {customer.name}, your {prompt:bike} is ready. {agent.name}",
        }
        assert site.api.post("/api/v1/templates", json=template).status_code == 201
        receive(site, STOPPED, "STOP")
        yield site


@pytest.fixture
def phone(pages: Any) -> Page:
    """A Dutch page at a phone's width."""
    return cast(Page, pages(PHONE, "nl-NL"))


def test_an_agent_starts_a_conversation_and_the_answer_appears_live(page: Page, site: Site) -> None:
    """Typed nationally with spaces; the first SMS is counted and sent; on the new request the
    customer's answer (without the endpoint code) appears without a reload."""
    log_in(page, site.url, "sam")
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
    log_in(page, site.url, "sam")
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
    log_in(phone, site.url, "bea")
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
    log_in(phone, site.url, "bea")
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
    log_in(phone, site.url, "beheer")
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
