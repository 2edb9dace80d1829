"""Notifications in chromium on a phone: an agent sets My settings (the time zone filled in
from the browser) and receives an e-mail for a new request in her group at a real SMTP server;
a Dutch agent's refusals read Dutch; the administrator sets up and tests e-mail.

One `smsdesk serve` on loopback and one aiosmtpd server for the module.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, cast

import pytest
from playwright.sync_api import Page, expect

from tests.support.browser import PHONE, Site, fits, log_in, request_of, serving
from tests.support.processes import wait_until
from tests.support.smtp import SmtpInbox


@pytest.fixture(scope="module")
def inbox() -> Iterator[SmtpInbox]:
    with SmtpInbox() as server:
        yield server


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, inbox: SmtpInbox) -> Iterator[Site]:
    users = [("admin", "admin"), ("anna", "agent"), ("bram", "agent", "nl")]
    settings = {"default_country_code": "+31", "inbound": {"sms_endpoint": "HELP"}}
    with serving(tmp_path_factory.mktemp("notify"), users, settings) as site:
        assert site.api.post("/api/v1/groups", json={"name": "Service"}).status_code == 201
        for name in ("anna", "bram"):
            added = site.api.post("/api/v1/groups/Service/members", json={"user": name})
            assert added.status_code == 201
        rule = {"kind": "endpoint_code", "value": "HELP", "group": "Service"}
        assert site.api.post("/api/v1/routing-rules", json=rule).status_code == 201
        yield site


@pytest.fixture
def phones(pages: Any) -> Any:
    """Opens pages at a phone's width, in Amsterdam unless told."""

    def open_phone(locale: str = "en-GB", zone: str = "Europe/Amsterdam") -> Page:
        return cast(Page, pages(PHONE, locale, zone))

    return open_phone


def wait_for_mail(inbox: SmtpInbox, count: int) -> None:
    wait_until(lambda: len(inbox.received()) >= count, f"{count} e-mails")


def set_up_email(phone: Page, site: Site, inbox: SmtpInbox) -> None:
    """The administrator fills in the e-mail section, saves, and sends a test e-mail."""
    log_in(phone, site.url, "admin", "/preferences/general/sms")
    phone.locator("#email summary").click()
    phone.fill("#f-email-host", "127.0.0.1")
    phone.fill("#f-email-port", str(inbox.port))
    phone.select_option("#f-email-security", "none")
    phone.fill("#f-email-sender", "desk@example.org")
    fits(phone, "the SMS configuration with the e-mail section open")
    phone.click("#save")
    expect(phone.locator("#f-email-sender")).to_have_value("desk@example.org")
    before = len(inbox.received())
    phone.fill("#email-test-to", "admin@example.org")
    phone.click("#send-test-email")
    expect(phone.locator("[data-email-test='sent']")).to_contain_text("admin@example.org")
    wait_for_mail(inbox, before + 1)
    assert inbox.received()[-1].rcpt_tos == ["admin@example.org"]


def test_the_administrator_sets_up_and_tests_email_on_a_phone(
    site: Site, phones: Any, inbox: SmtpInbox
) -> None:
    """The e-mail section is filled in and saved; Send test e-mail reaches the server; the
    screen fits a phone."""
    phone = phones()
    set_up_email(phone, site, inbox)
    fits(phone, "the SMS configuration after Send test e-mail")


def test_an_agent_chooses_email_and_is_told_of_a_new_request(
    site: Site, phones: Any, inbox: SmtpInbox
) -> None:
    """Anna opens My settings from the header: the time zone is her browser's;
    she chooses e-mail for new requests in her group, and the next SMS for the group brings
    her an e-mail with a link to the request."""
    set_up_email(phones(), site, inbox)
    phone = phones(zone="America/New_York")
    log_in(phone, site.url, "anna", "/requests")
    phone.click("#my-settings-link")
    expect(phone.locator("h1")).to_have_text("My settings")
    # Her first page sent the browser's time zone; My settings shows it (saved or filled in).
    expect(phone.locator("#me-time-zone")).to_have_value("America/New_York")
    fits(phone, "My settings")
    phone.fill("#me-email", "anna@example.org")
    phone.check("input[name='notify.request.new_in_group.email']")
    phone.click("#save")
    expect(phone.locator("#notice")).to_have_text("Saved.")
    expect(phone.locator("#me-time-zone")).to_have_value("America/New_York")
    expect(phone.locator("#me-time-zone")).to_have_attribute("data-browser-default", "off")
    expect(phone.locator("input[name='notify.request.new_in_group.email']")).to_be_checked()

    before = len(inbox.received())
    request_id = request_of(site.api, "HELP my order is missing", "+31644455566")
    wait_for_mail(inbox, before + 1)
    mail = inbox.received()[-1]
    assert mail.rcpt_tos == ["anna@example.org"]
    assert str(mail.message["Subject"]) == "New request in Service: my order is missing"
    assert f"{site.url}/requests/{request_id}" in mail.body
    phone.reload()
    expect(phone.locator("#recent-notifications li[data-status='sent']")).to_contain_text(
        "New request in Service: my order is missing"
    )
    fits(phone, "My settings with a notification")


def test_a_dutch_agent_reads_my_settings_and_its_refusals_in_dutch(site: Site, phones: Any) -> None:
    """Bram's page and its refusals are Dutch, beside their fields, on a phone."""
    phone = phones(locale="nl-NL")
    log_in(phone, site.url, "bram", "/me")
    expect(phone.locator("h1")).to_have_text("Mijn instellingen")
    phone.fill("#me-email", "bram-at-example")
    phone.check("input[name='notify.request.assigned.sms']")
    phone.click("#save")
    expect(phone.locator("#email-error")).to_have_text(
        "Vul een e-mailadres in, bijvoorbeeld anna@example.org."
    )
    expect(phone.locator("#me-email")).to_have_value("bram-at-example")
    fits(phone, "My settings with refusals in Dutch")
    phone.fill("#me-email", "bram@example.org")
    phone.click("#save")
    expect(phone.locator("#phone-error")).to_have_text(
        "Vul uw mobiele nummer in om meldingen per sms te krijgen."
    )
    phone.fill("#me-phone", "06 1234 5678")
    phone.click("#save")
    expect(phone.locator("#notice")).to_have_text("Opgeslagen.")
    expect(phone.locator("#me-phone")).to_have_value("+31612345678")
