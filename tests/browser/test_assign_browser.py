"""Assigning requests in chromium: one agent gives a request to another, whose Mine count and
unread mark change without a reload; the requests list and Groups screen fit a phone.

One `smsdesk serve` on loopback for the module; users are made with `smsdesk users create`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.support.browser import Site, fits, log_in, request_of, serving


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    users = [("anna", "agent"), ("bram", "agent", "nl"), ("admin", "admin")]
    settings = {"default_country_code": "+31", "inbound": {"sms_endpoint": "HELP"}}
    with serving(tmp_path_factory.mktemp("assign"), users, settings) as site:
        assert site.api.post("/api/v1/groups", json={"name": "Desk"}).status_code == 201
        for name in ("anna", "bram"):
            added = site.api.post("/api/v1/groups/Desk/members", json={"user": name})
            assert added.status_code == 201
        yield site


def test_an_agent_assigns_a_request_and_the_other_sees_it_live(site: Site, pages: Any) -> None:
    """Anna takes a request and hands it to Bram; Bram's list (in Dutch) counts it under
    Mine and marks it unread without reloading; once Bram opens it, the mark is gone."""
    request_id = request_of(site.api, "HELP my parcel is late", "+31611122233")
    anna, bram = pages(), pages(locale="nl-NL")
    log_in(bram, site.url, "bram", "/requests")
    expect(bram.locator("html")).to_have_attribute("data-live", "stream")
    bram.evaluate("window.__notReloaded = true")
    before = int(bram.locator("#count-mine").inner_text())
    expect(bram.locator("#view-mine")).to_contain_text("Van mij")

    log_in(anna, site.url, "anna", f"/requests/{request_id}")
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
    request_id = request_of(
        site.api, "HELP a rather long question about an invoice", "+31622233344"
    )
    site.api.post(
        "/api/v1/routing-rules", json={"kind": "keyword", "value": "invoice", "group": "Desk"}
    )
    phone = pages(390)
    log_in(phone, site.url, "admin", "/requests")
    for path in (
        "/requests",
        "/requests?view=all&status=all",
        f"/requests/{request_id}",
        "/groups",
    ):
        phone.goto(site.url + path)
        fits(phone, path)


def test_a_chosen_owner_survives_a_live_update_until_it_is_sent(site: Site, pages: Any) -> None:
    """Anna picks Bram but has not pressed Assign when the request is put in a group elsewhere:
    the live update leaves her choice alone, and pressing Assign gives the request to Bram
    and keeps the group she did not touch."""
    request_id = request_of(site.api, "HELP the app crashes", "+31611122244")
    anna = pages()
    log_in(anna, site.url, "anna", f"/requests/{request_id}")
    expect(anna.locator("html")).to_have_attribute("data-live", "stream")
    anna.select_option("#assign-owner", label="bram")
    anna.locator("#assign-owner").evaluate("select => select.blur()")
    updated = anna.locator("html").get_attribute("data-live-updated")

    grouped = site.api.patch(f"/api/v1/requests/{request_id}", json={"group": "Desk"})
    assert grouped.status_code == 200, grouped.text
    anna.wait_for_function(
        "before => document.documentElement.getAttribute('data-live-updated') !== before",
        arg=updated,
    )
    expect(anna.locator("#assign-owner option:checked")).to_have_text("bram")

    anna.click("#assign")
    expect(anna.locator("#request-owner")).to_have_text("bram")
    after = site.api.get(f"/api/v1/requests/{request_id}").json()
    assert (after["owner"]["username"], after["group"]["name"]) == ("bram", "Desk")
