"""The main screens lay out cleanly at phone (390 px) and desktop (1280 px) width.

Three checks, in chromium: no element's content reaches past its own box sideways unless the
element scrolls (overflow-x auto or scroll), no word in a table cell, button or badge is broken
over two lines, and the administrator's header (menu, language, user, log out) is one row at
desktop width. One `smsdesk serve` with the simulator module for the module: a customer's
request with a reply, failed messages in the outbox, a group with opening hours and rules.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser

from tests.support.browser import PHONE, Site, inbound, log_in, new_page, serving
from tests.support.processes import wait_until

DESKTOP = 1280
CUSTOMER = "+31612345001"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    users = [("admin", "admin", "en"), ("beheer", "admin", "nl")]
    settings = {
        "module": "simulator",
        "default_country_code": "+31",
        "sender": "Support",
        "inbound": {"sms_endpoint": "HELP"},
        "module_settings": {"simulator": {"report_delay": 0.1, "permanent_failure_rate": 1.0}},
    }
    with serving(tmp_path_factory.mktemp("layout"), users, settings) as site:
        api = site.api
        created = api.post("/api/v1/groups", json={"name": "Support", "round_robin": True})
        assert created.status_code == 201, created.text
        hours = api.patch(
            "/api/v1/groups/Support",
            json={
                "time_zone": "Europe/Amsterdam",
                "hours": {day: ["09:00-12:30", "13:30-17:00"] for day in ("mon", "tue")},
                "out_of_hours_reply": "Thanks! Our team answers on working days 9-17.",
            },
        )
        assert hours.status_code == 200, hours.text
        customer = api.post(
            "/api/v1/customers", json={"name": "Maria Jansen", "numbers": [CUSTOMER]}
        )
        assert customer.status_code in (200, 201), customer.text
        found = inbound(api, CUSTOMER, "HELP Where is my parcel? Order 58213, sent on Monday.")
        request_id = str(found["request_id"])
        reply = api.post(
            f"/api/v1/requests/{request_id}/reply",
            json={"text": "Hi Maria, it left our warehouse today.", "author": "admin"},
        )
        assert reply.status_code in (200, 201, 202), reply.text
        for number in ("+31612399901", "+31612399902", "+31612399903"):
            sent = api.post(
                "/api/v1/messages",
                json={"to": number, "text": "Your parcel is at the pick-up point until Thursday."},
            )
            assert sent.status_code == 201, sent.text
        wait_until(
            lambda: (
                len(api.get("/api/v1/messages", params={"status": "failed"}).json()["messages"])
                >= 3
            ),
            "three messages failed",
            timeout=60,
        )
        site.ids = {"request_id": request_id}
        yield site


def _screens(site: Site) -> list[str]:
    return [
        "/requests?view=all",
        f"/requests/{site.ids['request_id']}",
        "/dashboard",
        "/outbox",
        "/audit",
        "/groups",
        "/preferences/general/sms",
    ]


# Elements whose content is wider than their own box, except scroll containers and elements
# hidden for screen readers only (1 px boxes).
_OVERFLOWING = """() => Array.from(document.querySelectorAll('body *'))
  .filter(e => e instanceof HTMLElement)
  .filter(e => !['INPUT', 'SELECT', 'TEXTAREA', 'OPTION', 'SCRIPT'].includes(e.tagName))
  .filter(e => e.clientWidth > 1 && e.scrollWidth > e.clientWidth + 1)
  .filter(e => !['auto', 'scroll'].includes(getComputedStyle(e).overflowX))
  .slice(0, 6)
  .map(e => {
    const name = typeof e.className === 'string' ? e.className.split(' ')[0] : '';
    const css = name ? '.' + name : '';
    const text = JSON.stringify(e.textContent.trim().slice(0, 30));
    return `${e.tagName.toLowerCase()}${e.id ? '#' + e.id : ''}${css} ` +
           `${e.scrollWidth}>${e.clientWidth} ${text}`;
  })"""

# Words (runs of characters between spaces and after hyphens) drawn on more than one line,
# in table cells, buttons, badges, definition lists and the header.
_BROKEN_WORDS = """() => {
  const places = 'td, th, button, .status, .optout-badge, .out-of-hours-badge, .count, ' +
                 'dt, dd, .topbar a, .figure .label';
  const broken = [];
  for (const place of document.querySelectorAll(places)) {
    if (place.getClientRects().length === 0) continue;
    const walker = document.createTreeWalker(place, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
      const parent = node.parentElement;
      if (!parent || parent.closest('.visually-hidden, svg')) continue;
      for (const match of node.data.matchAll(/[^\\s\\-\u2010-\u2014\\/]+[\\-\u2010-\u2014\\/]?/g)) {
        const range = document.createRange();
        range.setStart(node, match.index);
        range.setEnd(node, match.index + match[0].length);
        const tops = Array.from(range.getClientRects()).filter(r => r.width > 0).map(r => r.top);
        if (tops.length > 1 && Math.max(...tops) - Math.min(...tops) > 4) {
          broken.push(`${place.tagName.toLowerCase()}: ${match[0]}`);
        }
      }
    }
  }
  return broken.slice(0, 8);
}"""


# Chart labels drawn smaller than 9 px high (a chart squeezed into a narrow screen).
_TINY_LABELS = """() => Array.from(document.querySelectorAll('svg.chart text'))
  .map(e => [e.textContent, e.getBoundingClientRect().height])
  .filter(([, height]) => height < 9)
  .slice(0, 4)"""


@pytest.mark.parametrize(
    ("width", "user"), [(PHONE, "admin"), (DESKTOP, "admin"), (PHONE, "beheer")]
)
def test_nothing_overflows_its_box_and_no_word_is_broken(
    site: Site, browser: Browser, width: int, user: str
) -> None:
    """At 390 and 1280 px, on the requests list, a conversation, the dashboard, the outbox,
    the audit trail, the groups and the SMS configuration, every element holds its content or
    scrolls it inside its own box, table cells, buttons and badges keep each word whole, and
    chart labels are drawn at a readable size; in Dutch too at phone width."""
    page = new_page(browser, width)
    try:
        log_in(page, site.url, user)
        problems: dict[str, Any] = {}
        for path in _screens(site):
            response = page.goto(site.url + path)
            assert response is not None and response.ok, f"{path}: {response and response.status}"
            page.wait_for_load_state("networkidle")
            overflowing = page.evaluate(_OVERFLOWING)
            broken = page.evaluate(_BROKEN_WORDS)
            tiny = page.evaluate(_TINY_LABELS)
            if overflowing or broken or tiny:
                problems[path] = {"overflowing": overflowing, "broken": broken, "tiny": tiny}
        assert not problems, f"{user} at {width} px: {problems}"
    finally:
        page.context.close()


# The header's visible items, as (text, top, bottom, left, right).
_HEADER_ITEMS = """() => Array.from(document.querySelectorAll(
    '.topbar .brand, .topbar .mainnav a, .topbar select, .topbar .whoami, .topbar #logout'))
  .filter(e => e.getClientRects().length > 0)
  .map(e => { const r = e.getBoundingClientRect();
              return [e.textContent.trim().slice(0, 20), r.top, r.bottom, r.left, r.right]; })"""


def _one_row(items: list[list[Any]]) -> bool:
    """Whether the items (text, top, bottom, ...) overlap vertically: one row on the screen."""
    return bool(max(item[1] for item in items) < min(item[2] for item in items))


def test_the_admin_header_is_one_row_at_desktop_width(site: Site, browser: Browser) -> None:
    """At 1280 px the administrator's menu, language choice, name and log-out button share one
    row; in Dutch, whose menu words are longer, the menu may wrap inside its own box but the
    language choice, name and log-out button stay on the first row beside the brand."""
    for user, everything in (("admin", True), ("beheer", False)):
        page = new_page(browser, DESKTOP)
        try:
            log_in(page, site.url, user)
            page.goto(site.url + "/dashboard")
            items: list[list[Any]] = page.evaluate(_HEADER_ITEMS)
            assert len(items) >= 12, items
            brand, first_link, controls = items[0], items[1], items[-3:]
            assert _one_row([brand, first_link, *controls]), f"{user}: {items}"
            assert not everything or _one_row(items), f"{user}: not one row: {items}"
        finally:
            page.context.close()
