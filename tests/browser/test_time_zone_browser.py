"""In chromium: times are shown in the browser's own time zone without the user choosing one,
in the date format of the page's language."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import Browser, expect

from tests.browser.test_phone_width import PASSWORD, _create_user
from tests.support.processes import Processes, smsdesk_env


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """A server with a Dutch user who chose no time zone, and one message."""
    root = tmp_path_factory.mktemp("zone")
    env = smsdesk_env(data_dir=root / "data")
    _create_user(env, "joke", "agent", "nl")
    processes = Processes(root)
    try:
        server = processes.server(env).wait_ready()
        headers = {"Authorization": f"Bearer {server.first_key()}"}
        with httpx.Client(base_url=server.url, headers=headers, timeout=10) as api:
            sent = api.post("/api/v1/messages", json={"to": "+31612345678", "text": "Hallo"})
            assert sent.status_code == 201, sent.text
            yield server.url, str(sent.json()["id"])
    finally:
        processes.stop_all()


def test_times_follow_the_browsers_time_zone(site: tuple[str, str], browser: Browser) -> None:
    """A browser in Tokyo sees the message's times in JST, written the Dutch way."""
    url, message_id = site
    context = browser.new_context(locale="nl-NL", timezone_id="Asia/Tokyo")
    context.set_default_timeout(15_000)
    page = context.new_page()
    try:
        page.goto(url + "/login")
        page.fill("#username", "joke")
        page.fill("#password", PASSWORD)
        page.click("#login")
        expect(page.locator("#logout")).to_be_visible()
        page.goto(f"{url}/messages/{message_id}")
        created = page.locator("#message-details dd").filter(has_text=re.compile(r"\d\d:\d\d"))
        expect(created.first).to_have_text(
            re.compile(r"^\d{1,2} [a-z]{3}\.? \d{4} \d\d:\d\d:\d\d JST$")
        )
    finally:
        context.close()
