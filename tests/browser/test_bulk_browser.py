"""Bulk actions in a real browser: the count is confirmed before everything matching the
filter is cancelled; the outbox and the confirmation fit a phone's width; Dutch words.

One `smsdesk serve` on loopback for the module; messages are queued for tomorrow through the
REST API, so they wait until someone acts.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.support.browser import Site, fits, log_in, serving


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    users = [("admin", "admin"), ("sam", "agent"), ("bea", "agent", "nl")]
    settings = {"default_country_code": "+31"}
    with serving(tmp_path_factory.mktemp("bulk"), users, settings, timeout=30) as site:
        yield site


def queue_later(site: Site, count: int, prefix: str) -> None:
    later = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    numbers = [f"+316{prefix}{n:05d}" for n in range(count)]
    for start in range(0, count, 1000):
        answer = site.api.post(
            "/api/v1/messages/batch",
            json={"to": numbers[start : start + 1000], "text": "Later", "scheduled_at": later},
        )
        assert answer.status_code == 200, answer.text
        assert answer.json()["accepted"] == len(numbers[start : start + 1000])


def queued(site: Site) -> int:
    found = site.api.post(
        "/api/v1/messages/bulk",
        json={"action": "cancel", "filter": {"status": ["queued"]}, "dry_run": True},
    )
    return int(found.json()["count"])


def test_a_bulk_cancel_shows_the_count_and_cancels_every_page(pages: Any, site: Site) -> None:
    """An agent filters the outbox on queued, asks to cancel all, reads 'Cancel 1,234 queued
    messages?', confirms, and all of them (not only the 50 shown) are cancelled."""
    queue_later(site, 1234, "100")
    page = pages(timeout=20_000)
    log_in(page, site.url, "sam")
    page.goto(site.url + "/outbox")
    page.select_option("#f-status", "queued")
    page.click("#outbox-filters button[type=submit]")
    expect(page.locator("#outbox tbody tr")).to_have_count(50)
    expect(page.locator("#bulk-delete")).to_have_count(0)  # administrators only
    page.click("#bulk-cancel")
    expect(page.locator("#bulk-question")).to_have_text("Cancel 1,234 queued messages?")
    assert queued(site) == 1234  # nothing happens before the confirmation
    page.click("#bulk-confirm")
    expect(page.locator("#bulk-notice")).to_contain_text("1,234 messages cancelled.")
    expect(page.locator("#empty")).to_be_visible()
    assert queued(site) == 0


def test_going_back_from_the_confirmation_changes_nothing(pages: Any, site: Site) -> None:
    queue_later(site, 3, "200")
    page = pages(timeout=20_000)
    log_in(page, site.url, "admin")
    page.goto(site.url + "/outbox?status=queued")
    page.click("#bulk-delete")
    expect(page.locator("#bulk-question")).to_have_text("Delete 3 messages?")
    page.click("text=No, go back")
    expect(page.locator("#outbox tbody tr")).to_have_count(3)
    assert queued(site) == 3


def test_dutch_and_phone_width(pages: Any, site: Site) -> None:
    """A Dutch agent on a phone: the outbox and the confirmation in Dutch, nothing scrolls
    sideways at 390 px."""
    queue_later(site, 2, "300")
    phone = pages(390, timeout=20_000)
    log_in(phone, site.url, "bea")
    for path in ("/outbox?status=queued", "/outbox/bulk/cancel?status=queued"):
        phone.goto(site.url + path)
        fits(phone, path)
    expect(phone.locator("#bulk-question")).to_contain_text("wachtende berichten annuleren?")
    phone.click("#bulk-confirm")
    expect(phone.locator("#bulk-notice")).to_contain_text("berichten geannuleerd.")
