"""Opening hours in chromium: an administrator sets a group's hours and answer on the Groups
screen on a phone; an SMS arriving while the group is closed gets one automatic answer, and the
agent sees the Out of hours badge and the answer in the conversation (English and Dutch).

One `smsdesk serve` on loopback for the module; the group is open only three days from now, so
it is closed while the test runs.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.support.browser import Site, fits, log_in, request_of, serving

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
ANSWER = "We are closed now; we answer on our next working day."


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    users = [("admin", "admin"), ("bram", "agent", "nl")]
    settings = {"default_country_code": "+31", "inbound": {"sms_endpoint": "HELP"}}
    with serving(tmp_path_factory.mktemp("hours"), users, settings) as site:
        assert site.api.post("/api/v1/groups", json={"name": "Service"}).status_code == 201
        rule = {"kind": "endpoint_code", "value": "HELP", "group": "Service"}
        assert site.api.post("/api/v1/routing-rules", json=rule).status_code == 201
        yield site


def test_an_out_of_hours_sms_gets_one_answer_and_shows_the_badge(site: Site, pages: Any) -> None:
    """Hours set on a phone; two SMS while closed give one automatic answer, shown in the
    conversation beside the Out of hours badge, in English and in Dutch."""
    open_day = DAYS[(datetime.now(UTC).weekday() + 3) % 7]
    phone = pages(390)
    log_in(phone, site.url, "admin", "/groups")
    card = phone.locator(".group-card", has_text="Service")
    expect(card.locator(".hours-summary")).to_contain_text("Open around the clock.")
    card.locator("summary", has_text="Change the opening hours").click()
    fits(phone, "the Groups screen with the hours form open")
    card.locator(f"input[name='{open_day}']").fill("09:00-12:00, 13:00-17:30")
    card.locator("input[name='time_zone']").fill("UTC")
    card.locator("textarea[name='out_of_hours_reply']").fill(ANSWER)
    card.locator("button", has_text="Save opening hours").click()
    expect(phone.locator("#notice")).to_have_text("Saved.")
    expect(card.locator(".hours-summary")).to_contain_text("09:00-12:00, 13:00-17:30")
    expect(card.locator(".hours-summary")).to_contain_text(ANSWER)
    fits(phone, "the Groups screen with hours")

    request_id = request_of(site.api, "HELP my parcel did not arrive", "+31633344455")
    assert request_of(site.api, "Are you there?", "+31633344455") == request_id

    phone.goto(site.url + "/requests?view=all")
    expect(phone.locator(f"#request-{request_id}")).to_contain_text("Out of hours")
    fits(phone, "the requests list")
    phone.goto(f"{site.url}/requests/{request_id}")
    expect(phone.locator("#request-out-of-hours")).to_have_text("Out of hours")
    automatic = phone.locator(".bubble.automatic")
    expect(automatic).to_have_count(1)
    expect(automatic).to_contain_text("Automatic answer outside opening hours")
    expect(automatic).to_contain_text(ANSWER)
    expect(phone.locator(".bubble.inbound")).to_have_count(2)
    fits(phone, "the request")

    dutch = pages(locale="nl-NL")
    log_in(dutch, site.url, "bram", f"/requests/{request_id}")
    expect(dutch.locator("#request-out-of-hours")).to_have_text("Buiten openingstijden")
    expect(dutch.locator(".bubble.automatic")).to_contain_text(
        "Automatisch antwoord buiten openingstijden"
    )
