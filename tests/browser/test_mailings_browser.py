"""Mailings in chromium on a phone, in English and in Dutch: an administrator makes a draft,
uploads its recipients as a CSV file, reads the summary, previews one recipient's SMS, sends
a test, starts it, pauses and resumes it, and reads its statistics until it is done. Every
page fits 390 px.

One `smsdesk serve` on loopback for the module; the simulator delivers.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.support.browser import PHONE, Site, fits, log_in, serving

VALID = 20
WORDS = {
    "en": {
        "saved": "The mailing was saved. Now add its recipients.",
        "test": "The test SMS to +31612345601 is queued.",
        "sending": "Sending",
        "paused": "Paused",
        "done": "Done",
        "duplicate": "is also on line 2",
    },
    "nl": {
        "saved": "De mailing is opgeslagen. Voeg nu de ontvangers toe.",
        "test": "De test-sms aan +31612345601 staat in de wachtrij.",
        "sending": "Verzenden",
        "paused": "Gepauzeerd",
        "done": "Klaar",
        "duplicate": "staat ook op regel 2",
    },
}


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    users = [("admin", "admin", "en"), ("beheer", "admin", "nl")]
    settings = {
        "default_country_code": "+31",
        "module_settings": {"simulator": {"report_delay": 0.2}},
    }
    with serving(tmp_path_factory.mktemp("mailings"), users, settings) as site:
        yield site


def people_csv(folder: Path) -> Path:
    """20 valid rows (Ada first), one duplicate of Ada and one number that is not one."""
    rows = ["mobile;first_name"]
    rows += [f"+316123456{i:02d};Person {i}" for i in range(1, VALID + 1)]
    rows[1] = "+31612345601;Ada"
    rows += ["+31612345601;Ada", "12ab;Nobody"]
    path = folder / "people.csv"
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


def figure(page: Page, key: str) -> Any:
    return page.locator(f'#mailing-figure-list [data-figure="{key}"] dd')


@pytest.mark.parametrize(
    ("user", "locale", "language"),
    [
        ("admin", "en-GB", "en"),
        ("beheer", "nl-NL", "nl"),
    ],
)
def test_a_mailing_is_made_checked_tested_sent_paused_and_read(
    pages: Any, site: Site, tmp_path: Path, user: str, locale: str, language: str
) -> None:
    """The whole round on a phone, in the administrator's language."""
    words = WORDS[language]
    page: Page = pages(PHONE, locale)
    log_in(page, site.url, user)
    page.click("#menu-mailings")
    expect(page.locator("#new-mailing")).to_be_visible()
    fits(page, "the mailings list")
    page.click("#new-mailing")
    expect(page.locator("#mailing-name")).to_be_visible()
    fits(page, "the new mailing form")
    page.fill("#mailing-name", f"Opening {language}")
    page.fill("#mailing-text", "Hi {first_name}, we open at 9.")
    page.fill("#mailing-throttle", "120")  # one every half second: time to pause
    page.check("#mailing-override")
    page.click("#save-mailing")
    expect(page.locator("#mailing-notice")).to_have_text(words["saved"])

    page.set_input_files("#csv-file", str(people_csv(tmp_path)))
    page.click("#upload-csv")
    counts = page.locator("#report-counts")
    expect(counts.locator('[data-check="valid"] dd')).to_have_text(str(VALID))
    expect(counts.locator('[data-check="invalid"] dd')).to_have_text("1")
    expect(counts.locator('[data-check="duplicate"] dd')).to_have_text("1")
    expect(page.locator("#report-problems")).to_contain_text(words["duplicate"])
    fits(page, "the add report")

    page.click("#to-summary")
    estimate = page.locator("#summary-estimate")
    expect(estimate.locator('[data-figure="messages"] dd')).to_have_text(str(VALID))
    fits(page, "the summary")
    page.fill("#preview-number", "06 1234 5601")
    page.click("#show-preview")
    expect(page.locator("#preview-text")).to_have_text("Hi Ada, we open at 9.")
    page.fill("#test-number", "+31612345601")
    page.click("#send-test")
    expect(page.locator("#mailing-notice")).to_have_text(words["test"])
    fits(page, "the preview and test")

    page.click("#step-summary")  # the summary is the confirm step
    expect(estimate.locator('[data-figure="messages"] dd')).to_have_text(str(VALID))
    asked: list[str] = []

    def confirm(dialog: Any) -> None:
        asked.append(dialog.message)
        dialog.accept()

    page.once("dialog", confirm)
    page.click("#start-mailing")
    expect(page.locator("#mailing-status")).to_have_text(words["sending"])
    assert asked and str(VALID) in asked[0], asked  # the count is confirmed
    page.click("#pause-mailing")
    expect(page.locator("#mailing-status")).to_have_text(words["paused"])
    expect(page.locator("#resume-mailing")).to_be_visible()
    fits(page, "a paused mailing")
    page.click("#resume-mailing")
    expect(page.locator("#mailing-status")).to_have_text(words["sending"])

    # The page follows the mailing by itself until every recipient has their SMS.
    expect(page.locator("#mailing-status")).to_have_text(words["done"], timeout=60_000)
    expect(figure(page, "delivered")).to_have_text(str(VALID), timeout=30_000)
    expect(page.locator('#mailing-blocked [data-blocked="duplicate"] dd')).to_have_text("1")
    expect(page.locator("#mailing-progress-text")).to_contain_text("100")
    expect(page.locator("#recipient-rows tbody tr")).to_have_count(VALID + 2)
    fits(page, "a sent mailing")


def test_cancel_asks_first_and_then_stops_the_mailing(page: Page, site: Site) -> None:
    """Declining the question keeps the mailing sending; accepting cancels it, on a desktop."""
    made = site.api.post(
        "/api/v1/mailings",
        json={"name": "Slow", "text": "We open at 9.", "throttle_per_minute": 1},
    )
    assert made.status_code == 201, made.text
    mailing_id = made.json()["id"]
    numbers = {"numbers": [f"+316123458{i:02d}" for i in range(5)]}
    added = site.api.post(f"/api/v1/mailings/{mailing_id}/recipients", json=numbers)
    assert added.status_code == 200, added.text
    consent = site.api.put(
        f"/api/v1/mailings/{mailing_id}",
        json={
            "name": "Slow",
            "text": "We open at 9.",
            "throttle_per_minute": 1,
            "override_consent": True,
        },
    )
    assert consent.status_code == 200, consent.text
    assert site.api.post(f"/api/v1/mailings/{mailing_id}/start").status_code == 200
    log_in(page, site.url, "admin", f"/mailings/{mailing_id}")
    expect(page.locator("#mailing-status")).to_have_text("Sending")

    page.once("dialog", lambda dialog: dialog.dismiss())
    page.click("#cancel-mailing")
    expect(page.locator("#mailing-status")).to_have_text("Sending")
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("#cancel-mailing")
    expect(page.locator("#mailing-status")).to_have_text("Cancelled")
    expect(page.locator("#mailing-notice")).to_contain_text("The mailing is cancelled")
    expect(page.locator("#cancel-mailing")).to_have_count(0)
    fits(page, "a cancelled mailing", 1280)
