"""The Audit screen in a real browser at phone width: every entry readable, no sideways scroll.

One `smsdesk serve` on loopback for the module; entries come from real logins and API calls.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, expect

from tests.support.browser import Site, fits, log_in, serving


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    settings = {"webhooks": {"allow_private": ["127.0.0.0/8"]}}
    with serving(tmp_path_factory.mktemp("audit"), [("admin", "admin")], settings) as site:
        made = site.api.post(
            "/api/v1/webhooks",
            json={"url": "http://127.0.0.1:9/a-rather-long-path", "events": ["message.status"]},
        )
        assert made.status_code == 201, made.text
        yield site


def test_the_audit_screen_fits_a_phone(phone: Page, site: Site) -> None:
    """Entries stack as labelled lines at 390 px; the filters and the chain check fit too."""
    log_in(phone, site.url, "admin")
    phone.goto(site.url + "/audit?verify=1")
    expect(phone.locator("#verify-result")).to_contain_text("The trail is intact")
    row = phone.locator("#audit tbody tr").filter(has_text="Webhook subscribed")
    expect(row).to_be_visible()
    expect(
        phone.locator("#audit tbody tr").filter(has_text="Configuration changed")
    ).to_be_visible()
    label = row.locator("td").first.evaluate("cell => getComputedStyle(cell, '::before').content")
    assert "When" in label
    fits(phone, "/audit")
