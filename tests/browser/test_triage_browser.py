"""Triage of unrecognised SMS in a real browser: the count in the menu, the request picker,
and the assigned SMS in its place in time in the conversation, marked; phone width.

One `smsdesk serve` on loopback for the module; SMS arrive through the REST API.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.support.browser import Site, fits, inbound, log_in, serving

CUSTOMER = "+31687651111"
STRANGER = "+31687652222"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    users = [("admin", "admin"), ("ann", "agent"), ("bea", "agent", "nl")]
    settings = {"default_country_code": "+31", "inbound": {"sms_endpoint": "HELP"}}
    with serving(tmp_path_factory.mktemp("triage"), users, settings) as site:
        customer = {"name": "Ada Jansen", "numbers": [CUSTOMER]}
        assert site.api.post("/api/v1/customers", json=customer).status_code == 201
        yield site


def test_an_sms_assigned_with_the_picker_shows_in_time_order(pages: Any, site: Site) -> None:
    """The SMS Ada sent from another phone before she wrote with the code is found in the
    menu, assigned with the picker by her name, and shows first in her conversation."""
    stray = inbound(site.api, STRANGER, "Parcel 77 never arrived")
    assert stray["state"] == "unrecognised"
    opened = inbound(site.api, CUSTOMER, "HELP any news about my parcel?")
    inbound(site.api, "+31687653333", "HELP something else")
    page = pages()
    log_in(page, site.url, "ann")
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


def test_the_triage_screens_fit_a_phone_in_dutch(pages: Any, site: Site) -> None:
    stray = inbound(site.api, STRANGER, "Waar is mijn pakket, zonder code")
    phone = pages(390)
    log_in(phone, site.url, "bea")
    for path in ("/inbox/unrecognised", f"/inbox/unrecognised/{stray['id']}/assign"):
        phone.goto(site.url + path)
        fits(phone, path)
    expect(phone.locator("h1")).to_have_text("Een sms aan een verzoek toewijzen")
    phone.click("#assign-new button")
    expect(phone.locator("#conversation .bubble").first).to_contain_text(
        "toegewezen vanuit de lijst met onherkende sms'jes door bea"
    )
