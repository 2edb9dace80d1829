"""Connections and routes in chromium: a Dutch administrator on a phone adds a connection and a
route through the screens, and the explainer sends a Norwegian number through it.

One `smsdesk serve` on loopback for the module.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.support.browser import PHONE, Site, fits, log_in, serving


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    users = [("beheer", "admin", "nl")]
    with serving(
        tmp_path_factory.mktemp("connections"), users, {"default_country_code": "+31"}
    ) as site:
        yield site


def test_a_connection_and_a_route_are_added_in_dutch_on_a_phone(site: Site, pages: Any) -> None:
    """Verbindingen → Volgende → fields of the simulator → saved; Routes → a route for Norway
    through it; the explainer names it first; every screen fits 390 px."""
    phone = pages(PHONE, "nl-NL")
    log_in(phone, site.url, "beheer", "/preferences/connections")
    expect(phone.locator("h1")).to_have_text("Verbindingen")
    expect(phone.locator("#connection-default [data-health]")).to_have_text("Gezond")
    fits(phone, "the Connections screen")
    phone.select_option("#new-module", "simulator")
    phone.click("#start-connection")
    expect(phone.locator("h1")).to_have_text("Nieuwe verbinding")
    fits(phone, "the new connection form")
    phone.fill("#f-name", "Reserve Noorwegen")
    phone.fill("#f-rate-limit", "5")
    phone.click("#save-connection")
    expect(phone.locator("#notice")).to_have_text("Opgeslagen.")
    expect(phone.locator("#callback-status")).to_contain_text("/webhooks/connections/")
    fits(phone, "a connection's page")

    phone.click("#nav-routes")
    expect(phone.locator("h1")).to_have_text("Routes")
    form = phone.locator("#new-route-form")
    form.locator("#new-route-name").fill("Noorwegen")
    form.locator("#new-route-countries").fill("NO")
    form.locator("#new-route-connection-0").select_option(label="Reserve Noorwegen")
    form.locator("#new-route-connection-1").select_option(label="default")
    form.locator("#add-route").click()
    expect(phone.locator("#notice")).to_have_text("Toegevoegd.")
    card = phone.locator(".route-card", has_text="Noorwegen").first
    expect(card.locator("[data-route-plan]")).to_have_text("Reserve Noorwegen → default")
    fits(phone, "the Routes screen")

    phone.fill("#explain-to", "+4790012345")
    phone.click("#explain-button")
    result = phone.locator("#explain-result")
    expect(result).to_contain_text("Route Noorwegen past (op Landen).")
    expect(result.locator("li").first).to_contain_text("eerst")
    fits(phone, "the explained route")
    connections = site.api.get("/api/v1/connections").json()["connections"]
    assert [c["name"] for c in connections] == ["default", "Reserve Noorwegen"]
