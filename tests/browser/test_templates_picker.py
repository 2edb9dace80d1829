"""Reply templates in a real browser: the picker in the reply box, and the screen at phone width.

One `smsdesk serve` on loopback for the module; the customer's SMS arrives through the REST API.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.support.browser import Site, fits, log_in, request_of, serving

CUSTOMER = "+31687650000"
SHIPPED = "Hi {customer.name}, order {prompt:order number} ships today. {agent.name}"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    users = [("admin", "admin"), ("sam", "agent"), ("bea", "agent", "nl")]
    settings = {"default_country_code": "+31", "inbound": {"sms_endpoint": "HELP"}}
    with serving(tmp_path_factory.mktemp("templates"), users, settings) as site:
        customer = {"name": "Ada", "numbers": [CUSTOMER]}
        assert site.api.post("/api/v1/customers", json=customer).status_code == 201
        for name, language, body in (
            ("Order shipped", "en", SHIPPED),
            ("Order shipped", "nl", "Hoi {customer.name}, {prompt:ordernummer} is onderweg."),
            ("Thanks", "en", "Thank you, {customer.name}!"),
        ):
            made = site.api.post(
                "/api/v1/templates", json={"name": name, "language": language, "body": body}
            )
            assert made.status_code == 201, made.text
        yield site


def new_request(site: Site, text: str) -> str:
    return request_of(site.api, f"HELP {text}", CUSTOMER)


def test_a_template_with_a_prompt_renders_counts_and_sends(page: Page, site: Site) -> None:
    """The agent searches, answers the prompt, sees the text counted, edits it and sends it."""
    request_id = new_request(site, "where is my parcel?")
    log_in(page, site.url, "sam")
    page.goto(f"{site.url}/requests/{request_id}")
    page.click("#template-picker-open")
    expect(page.locator("#template-insert")).to_be_hidden()  # until a template is chosen
    page.fill("#template-search", "order")
    choices = page.locator("#template-picker .template-choice")
    expect(choices).to_have_count(2)
    expect(choices.first).to_contain_text("Order shipped")
    expect(choices.first).to_contain_text("ships today")  # the agent's language first
    choices.first.click()

    # Sending without answering the question is refused with the question named.
    page.click("#template-insert")
    expect(page.locator("#template-picker .field-error")).to_contain_text("'order number'")
    page.fill("#template-picker input[data-prompt='order number']", "A-42")
    page.click("#template-insert")

    reply = page.locator("#reply-text")
    text = "Hi Ada, order A-42 ships today. sam"
    expect(reply).to_have_value(text)
    expect(page.locator("#template-picker")).to_be_hidden()
    counter = page.locator("#reply-counter")
    expect(counter).to_have_attribute("data-units", str(len(text)))
    expect(counter).to_have_attribute("data-encoding", "gsm7")
    reply.press("End")
    reply.type(" Thanks €")
    expect(counter).to_have_attribute("data-units", str(len(text) + 10))  # € is two septets
    page.click("#send-reply")
    expect(page.locator(".bubble.outbound").last).to_contain_text(text + " Thanks €")


def test_a_template_without_prompts_goes_straight_into_the_box(page: Page, site: Site) -> None:
    request_id = new_request(site, "thanks")
    log_in(page, site.url, "sam")
    page.goto(f"{site.url}/requests/{request_id}")
    page.click("#template-picker-open")
    page.fill("#template-search", "thank")
    choices = page.locator("#template-picker .template-choice")
    expect(choices).to_have_count(1)
    choices.first.click()
    expect(page.locator("#reply-text")).to_have_value("Thank you, Ada!")


def test_a_dutch_agent_sees_dutch_templates_first_and_dutch_words(pages: Any, site: Site) -> None:
    page = pages()
    request_id = new_request(site, "waar blijft mijn pakket?")
    log_in(page, site.url, "bea")
    page.goto(f"{site.url}/requests/{request_id}")
    expect(page.locator("#template-picker-open")).to_have_text("Sjabloon gebruiken")
    page.click("#template-picker-open")
    page.fill("#template-search", "order")
    first = page.locator("#template-picker .template-choice").first
    expect(first).to_contain_text("onderweg")
    first.click()
    expect(page.locator("#template-picker label[for$='-prompt-0']")).to_have_text("ordernummer")
    page.click("#template-insert")
    expect(page.locator("#template-picker .field-error")).to_have_text(
        "Vul 'ordernummer' in: het sjabloon vraagt erom."
    )


def test_phone_width_has_no_sideways_scrolling(phone: Page, site: Site) -> None:
    """At 390 px the templates screen, its form and the reply box with the picker open fit."""
    request_id = new_request(site, "phone")
    log_in(phone, site.url, "admin")
    for path in ("/templates", "/templates/new", f"/requests/{request_id}"):
        phone.goto(site.url + path)
        if path.startswith("/requests/"):
            phone.click("#template-picker-open")
            expect(phone.locator("#template-picker .template-choice").first).to_be_visible()
        fits(phone, path)
