"""Bulk actions in a real browser: the count is confirmed before everything matching the
filter is cancelled; the outbox and the confirmation fit a phone's width; Dutch words.

One `smsdesk serve` on loopback for the module; messages are queued for tomorrow through the
REST API, so they wait until someone acts.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

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
    root = tmp_path_factory.mktemp("bulk")
    env = smsdesk_env(data_dir=root / "data")
    _create_user(env, "admin", "admin")
    _create_user(env, "sam", "agent")
    _create_user(env, "bea", "agent", "nl")
    processes = Processes(root)
    try:
        server = processes.server(env).wait_ready()
        key = server.first_key()
        assert key, server.output()
        headers = {"Authorization": f"Bearer {key}"}
        with httpx.Client(base_url=server.url, headers=headers, timeout=30) as api:
            settings = {"default_country_code": "+31"}
            assert api.put("/api/v1/settings", json=settings).status_code == 200
            yield Site(server.url, api)
    finally:
        processes.stop_all()


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


def _page(browser: Browser, width: int = 1280) -> Page:
    context = browser.new_context(locale="en-GB", viewport={"width": width, "height": 800})
    context.set_default_timeout(20_000)
    return context.new_page()


def log_in(page: Page, site: Site, name: str) -> None:
    page.goto(site.url + "/login")
    page.fill("#username", name)
    page.fill("#password", PASSWORD)
    page.click("#login")
    expect(page.locator("#logout")).to_be_visible()


def test_a_bulk_cancel_shows_the_count_and_cancels_every_page(browser: Browser, site: Site) -> None:
    """An agent filters the outbox on queued, asks to cancel all, reads 'Cancel 1,234 queued
    messages?', confirms, and all of them (not only the 50 shown) are cancelled."""
    queue_later(site, 1234, "100")
    page = _page(browser)
    try:
        log_in(page, site, "sam")
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
    finally:
        page.context.close()


def test_going_back_from_the_confirmation_changes_nothing(browser: Browser, site: Site) -> None:
    queue_later(site, 3, "200")
    page = _page(browser)
    try:
        log_in(page, site, "admin")
        page.goto(site.url + "/outbox?status=queued")
        page.click("#bulk-delete")
        expect(page.locator("#bulk-question")).to_have_text("Delete 3 messages?")
        page.click("text=No, go back")
        expect(page.locator("#outbox tbody tr")).to_have_count(3)
        assert queued(site) == 3
    finally:
        page.context.close()


def test_dutch_and_phone_width(browser: Browser, site: Site) -> None:
    """A Dutch agent on a phone: the outbox and the confirmation in Dutch, nothing scrolls
    sideways at 390 px."""
    queue_later(site, 2, "300")
    phone = _page(browser, 390)
    try:
        log_in(phone, site, "bea")
        for path in ("/outbox?status=queued", "/outbox/bulk/cancel?status=queued"):
            phone.goto(site.url + path)
            width = phone.evaluate("document.documentElement.scrollWidth")
            assert width <= 390, f"{path} is {width} px wide"
        expect(phone.locator("#bulk-question")).to_contain_text("wachtende berichten annuleren?")
        phone.click("#bulk-confirm")
        expect(phone.locator("#bulk-notice")).to_contain_text("berichten geannuleerd.")
    finally:
        phone.context.close()
