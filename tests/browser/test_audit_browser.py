"""The Audit screen in a real browser at phone width: every entry readable, no sideways scroll.

One `smsdesk serve` on loopback for the module; entries come from real logins and API calls.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.support.processes import Processes, smsdesk_command, smsdesk_env

PASSWORD = "correct horse battery staple"


@dataclass
class Site:
    url: str


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    root = tmp_path_factory.mktemp("audit")
    env = smsdesk_env(data_dir=root / "data")
    subprocess.run(
        [*smsdesk_command(), "users", "create", "admin", "--role", "admin", "--password-stdin"],
        input=PASSWORD + "\n",
        env=env,
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    )
    processes = Processes(root)
    try:
        server = processes.server(env).wait_ready()
        key = server.first_key()
        assert key, server.output()
        headers = {"Authorization": f"Bearer {key}"}
        with httpx.Client(base_url=server.url, headers=headers, timeout=10) as api:
            hooks = {"allow_private": ["127.0.0.0/8"]}
            assert api.put("/api/v1/settings", json={"webhooks": hooks}).status_code == 200
            made = api.post(
                "/api/v1/webhooks",
                json={"url": "http://127.0.0.1:9/a-rather-long-path", "events": ["message.status"]},
            )
            assert made.status_code == 201, made.text
        yield Site(server.url)
    finally:
        processes.stop_all()


@pytest.fixture
def phone(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(locale="en-GB", viewport={"width": 390, "height": 800})
    context.set_default_timeout(15_000)
    opened = context.new_page()
    yield opened
    context.close()


def test_the_audit_screen_fits_a_phone(phone: Page, site: Site) -> None:
    """Entries stack as labelled lines at 390 px; the filters and the chain check fit too."""
    phone.goto(site.url + "/login")
    phone.fill("#username", "admin")
    phone.fill("#password", PASSWORD)
    phone.click("#login")
    expect(phone.locator("#logout")).to_be_visible()
    phone.goto(site.url + "/audit?verify=1")
    expect(phone.locator("#verify-result")).to_contain_text("The trail is intact")
    row = phone.locator("#audit tbody tr").filter(has_text="Webhook subscribed")
    expect(row).to_be_visible()
    expect(
        phone.locator("#audit tbody tr").filter(has_text="Configuration changed")
    ).to_be_visible()
    label = row.locator("td").first.evaluate("cell => getComputedStyle(cell, '::before').content")
    assert "When" in label
    width = phone.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"/audit is {width} px wide"
