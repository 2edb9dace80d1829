"""Browser tests: Debian's chromium driven by Playwright's sync API, one browser per module.

Never run `playwright install`: the driver ships in the wheel and the browser is the system's
chromium. While `sync_playwright()` is open, `asyncio.run()` fails in the same thread, so the
modules here hold no async tests.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from tests.support.browser import PHONE, new_page

CHROMIUM = Path("/usr/bin/chromium")
HERE = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test under tests/browser with `browser`."""
    for item in items:
        if HERE in item.path.parents:
            item.add_marker(pytest.mark.browser)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """A headless chromium for the module; fails (not skips) when chromium is not installed."""
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} not found: browser tests need Debian's chromium "
            "(`apt-get install -y chromium`); do not run `playwright install`.",
            pytrace=False,
        )
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            headless=True,
            timeout=30_000,
            args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
        )
        yield launched
        launched.close()


@pytest.fixture
def pages(browser: Browser) -> Iterator[Any]:
    """Opens pages (width, locale, time zone) in browser contexts of their own, one person
    each; closes them after the test."""
    opened: list[Page] = []

    def open_page(
        width: int = 1280, locale: str = "en-GB", zone: str | None = None, timeout: float = 15_000
    ) -> Page:
        page = new_page(browser, width, locale, zone, timeout)
        opened.append(page)
        return page

    yield open_page
    for page in opened:
        page.context.close()


@pytest.fixture
def page(pages: Any) -> Page:
    """A desktop-wide English page."""
    return cast(Page, pages())


@pytest.fixture
def phone(pages: Any) -> Page:
    """An English page at a phone's width."""
    return cast(Page, pages(PHONE))
