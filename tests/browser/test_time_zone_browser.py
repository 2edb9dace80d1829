"""In chromium: times are shown in the browser's own time zone without the user choosing one,
in the date format of the page's language."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.support.browser import log_in, serving


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """A server with a Dutch user who chose no time zone, and one message."""
    with serving(tmp_path_factory.mktemp("zone"), [("joke", "agent", "nl")]) as site:
        sent = site.api.post("/api/v1/messages", json={"to": "+31612345678", "text": "Hallo"})
        assert sent.status_code == 201, sent.text
        yield site.url, str(sent.json()["id"])


def test_times_follow_the_browsers_time_zone(site: tuple[str, str], pages: Any) -> None:
    """A browser in Tokyo sees the message's times in JST, written the Dutch way."""
    url, message_id = site
    page = pages(locale="nl-NL", zone="Asia/Tokyo")
    log_in(page, url, "joke")
    page.goto(f"{url}/messages/{message_id}")
    created = page.locator("#message-details dd").filter(has_text=re.compile(r"\d\d:\d\d"))
    expect(created.first).to_have_text(
        re.compile(r"^\d{1,2} [a-z]{3}\.? \d{4} \d\d:\d\d:\d\d JST$")
    )
