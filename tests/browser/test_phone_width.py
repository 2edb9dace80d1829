"""Every screen fits a phone: at 390 px wide no page scrolls sideways, in English and Dutch.

The screens are listed from the web interface's routers, so a new screen is visited without
touching this file (a new path parameter needs a value in the fixture's `site.ids`). One
`smsdesk serve` on loopback for the module, with a request, failed and delivered messages, a
refusal, a group, a template, an opt-out and an unrecognised SMS, so lists and details have rows.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page

from tests.support.browser import PHONE, Site, inbound, log_in, new_page, serving
from tests.support.screens import english_sentences, screens


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    users = [("admin", "admin", "en"), ("beheer", "admin", "nl")]
    settings = {"default_country_code": "+31", "inbound": {"sms_endpoint": "HULP"}}
    with serving(tmp_path_factory.mktemp("phone"), users, settings) as site:
        assert site.api.post("/api/v1/groups", json={"name": "Klantenservice"}).status_code == 201
        template = site.api.post(
            "/api/v1/templates",
            json={
                "name": "Pakket onderweg",
                "language": "nl",
                "body": "Hallo {customer.name}, bestelling {prompt:bestelnummer} is verzonden.",
            },
        )
        assert template.status_code == 201, template.text
        sent = site.api.post(
            "/api/v1/messages",
            json={"to": "+31612345678", "text": "Uw pakket komt morgen " * 6},
        )
        assert sent.status_code == 201, sent.text
        opted = site.api.post("/api/v1/opt-outs", json={"number": "+31655544433"})
        assert opted.status_code in (200, 201), opted.text
        request = inbound(
            site.api, "+31611122233", "HULP mijn pakket met een heel lang kenmerk " * 4
        )
        stray = inbound(site.api, "+31699988877", "Ietszonderspatiesertussen" * 5)
        mailing = site.api.post(
            "/api/v1/mailings", json={"name": "Voorjaarsactie", "text": "Hallo {customer.name}!"}
        )
        assert mailing.status_code == 201, mailing.text
        site.ids = {
            "mailing_id": str(mailing.json()["id"]),
            "message_id": str(sent.json()["id"]),
            "template_id": str(template.json()["id"]),
            "request_id": str(request["request_id"]),
            "inbound_id": str(stray["id"]),
            "name": "cancel",
            "connection_id": "default",
        }
        yield site


def _width(page: Page) -> int:
    return int(page.evaluate("document.documentElement.scrollWidth"))


# The innermost elements reaching past the screen's right edge, to say what is too wide.
_OVERFLOWING = """(limit) => Array.from(document.querySelectorAll('body *'))
  .filter(e => e.getBoundingClientRect().right > limit + 1)
  .filter(e => !Array.from(e.children).some(c => c.getBoundingClientRect().right > limit + 1))
  .slice(0, 4)
  .map(e => e.tagName.toLowerCase() + (e.id ? '#' + e.id : '') +
       (e.className && typeof e.className === 'string' ? '.' + e.className.split(' ')[0] : '') +
       ' ' + JSON.stringify((e.textContent || '').trim().slice(0, 30)))"""


@pytest.mark.parametrize(("user", "locale"), [("admin", "en-GB"), ("beheer", "nl-NL")])
def test_every_screen_fits_390_px(site: Site, browser: Browser, user: str, locale: str) -> None:
    """Logged in on a phone, each screen (the login page first) is at most 390 px wide; in
    Dutch, the page as the browser shows it (after its scripts ran) holds no English."""
    page = new_page(browser, PHONE, locale)
    try:
        page.goto(site.url + "/login")
        too_wide: dict[str, object] = {"/login": _width(page)} if _width(page) > PHONE else {}
        english: dict[str, list[str]] = {}
        log_in(page, site.url, user)
        paths = screens(site.ids)
        assert len(paths) >= 15, paths
        for path in paths:
            response = page.goto(site.url + path)
            assert response is not None and response.ok, f"{path}: {response and response.status}"
            if _width(page) > PHONE:
                too_wide[path] = (_width(page), page.evaluate(_OVERFLOWING, PHONE))
            if locale.startswith("nl") and (found := english_sentences(page.content())):
                english[path] = found
        assert not too_wide, f"wider than {PHONE} px: {too_wide}"
        assert not english, f"English on Dutch pages, as the browser shows them: {english}"
    finally:
        page.context.close()
