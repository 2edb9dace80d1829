"""The web interface in a real browser against `smsdesk serve` on loopback.

One server for the module: users are made with the real CLI, an SMS conversation arrives
through the REST API, and everything else is done by clicking and typing in chromium.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from playwright.sync_api import Browser, Dialog, Page, expect

from tests.support.browser import api_of, create_user
from tests.support.processes import Processes, Server, smsdesk_env
from tests.support.webui import PASSWORD

SETTINGS = "/preferences/general/sms"
SEED_FIELDS_EN = [
    "SMS endpoint",
    "Use web service",
    "Delivery report",
    "Service ID",
    "User name",
    "Password",
    "SMS priority",
]
SEED_FIELDS_NL = [
    "SMS-eindpunt",
    "Webservice gebruiken",
    "Afleverrapport",
    "Service-ID",
    "Gebruikersnaam",
    "Wachtwoord",
    "SMS-prioriteit",
]


@dataclass
class Site:
    server: Server
    api: httpx.Client

    @property
    def url(self) -> str:
        return self.server.url


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    root = tmp_path_factory.mktemp("webui")
    env = smsdesk_env(data_dir=root / "data")
    create_user(env, "admin", "admin")
    create_user(env, "agent", "agent")
    processes = Processes(root)
    try:
        server = processes.server(env).wait_ready()
        with api_of(server) as api:
            answer = api.put(
                "/api/v1/settings", json={"module_settings": {"simulator": {"report_delay": 0.3}}}
            )
            assert answer.status_code == 200, answer.text
            yield Site(server, api)
    finally:
        processes.stop_all()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(locale="en-GB")
    context.set_default_timeout(15_000)
    yield context.new_page()
    context.close()


def log_in(page: Page, site: Site, name: str, path: str = "/") -> None:
    page.goto(site.url + path)
    if path != "/":
        expect(page).to_have_url(f"{site.url}/login?next={path}")
    page.fill("#username", name)
    page.fill("#password", PASSWORD)
    page.click("#login")
    expect(page.locator("#logout")).to_be_visible()


def module_labels(page: Page, module: str) -> list[str]:
    fieldset = page.locator(f'fieldset[data-module="{module}"]')
    expect(fieldset).to_be_visible()
    return [label.strip() for label in fieldset.locator(".field > label").all_inner_texts()]


def test_the_sms_configuration_from_login_to_a_delivered_test(page: Page, site: Site) -> None:
    log_in(page, site, "admin", SETTINGS)  # the login page sends the user on to the screen
    expect(page).to_have_url(site.url + SETTINGS)
    expect(page.locator("h1")).to_have_text("SMS configuration")

    # Every module is offered; choosing Original Intelecom shows exactly the seed's fields.
    options = page.locator("#f-module option").all_inner_texts()
    assert {"Simulator", "Twilio", "Original Intelecom", "Original PsWinCom", "SMPP"} <= set(
        options
    )
    page.select_option("#f-module", "original_intelecom")
    assert module_labels(page, "original_intelecom") == SEED_FIELDS_EN
    expect(page.locator('fieldset[data-module="simulator"]')).to_be_hidden()
    priorities = page.locator("#f-module-settings-original-intelecom-sms-priority option")
    assert priorities.all_inner_texts() == ["1", "2", "3"]
    page.select_option("#f-module", "original_pswincom")
    assert module_labels(page, "original_pswincom") == ["SMS endpoint", "User name", "Password"]
    page.select_option("#f-module", "original_intelecom")

    # Invalid values: each error beside its field, everything typed kept, nothing stored.
    page.fill("#f-sender", "A sender name far too long")
    page.fill("#f-default-country-code", "+999")
    page.fill("#f-plugin-configuration", "intele_serviceId 42")
    page.fill("#f-module-settings-original-intelecom-service-id", "4242")
    page.click("#save")
    expect(page.locator("#form-errors")).to_be_visible()
    expect(page.locator('[data-field="sender"] .field-error')).to_contain_text("11")
    expect(page.locator('[data-field="default_country_code"] .field-error')).to_contain_text("+999")
    expect(page.locator('[data-field="plugin_configuration"] .field-error')).to_contain_text(
        "Line 1"
    )
    expect(page.locator("#f-sender")).to_have_value("A sender name far too long")
    expect(page.locator("#f-module")).to_have_value("original_intelecom")
    expect(page.locator("#f-module-settings-original-intelecom-service-id")).to_have_value("4242")
    assert site.api.get("/api/v1/settings").json()["module"] == "simulator"

    # Valid values are saved; the password is never shown again, only that it is set.
    page.fill("#f-sender", "Support")
    page.fill("#f-default-country-code", "+31")
    page.fill("#f-plugin-configuration", "")
    page.fill("#f-module-settings-original-intelecom-sms-endpoint", "HELP")
    page.fill("#f-module-settings-original-intelecom-username", "acme")
    page.fill("#f-module-settings-original-intelecom-password", "s3cret-Pa55")
    page.select_option("#f-module-settings-original-intelecom-sms-priority", "2")
    page.click("#save")
    expect(page.locator("#saved")).to_be_visible()
    page.reload()
    password = page.locator("#f-module-settings-original-intelecom-password")
    expect(password).to_have_value("")
    expect(
        page.locator('[data-field="module_settings.original_intelecom.password"]')
    ).to_contain_text("Set")
    assert "s3cret-Pa55" not in page.content()
    expect(page.locator("#f-module-settings-original-intelecom-sms-priority")).to_have_value("2")
    stored = site.api.get("/api/v1/settings").json()
    assert stored["module_settings"]["original_intelecom"]["password"] == "********"

    # Send test with the simulator chosen but not saved: the result appears on the page, the
    # typed number stays, and the status follows the delivery report.
    page.select_option("#f-module", "simulator")
    page.fill("#test-to", "0612345678")
    page.fill("#test-text", "Hello from the test")
    page.click("#send-test")
    expect(page.locator('[data-test-outcome="accepted"]')).to_contain_text("Accepted")
    expect(page.locator('[data-test-status="delivered"]')).to_be_visible()
    expect(page.locator("#test-to")).to_have_value("0612345678")
    assert site.api.get("/api/v1/settings").json()["module"] == "original_intelecom"

    # An invalid number is refused beside the number field, with nothing sent.
    page.fill("#test-to", "12")
    page.click("#send-test")
    expect(page.locator('[data-test-outcome="invalid_input"]')).to_be_visible()
    expect(page.locator('[data-field="test_to"] .field-error')).to_be_visible()

    # The test message is in the messages view with its timeline.
    page.goto(site.url + "/messages?number=%2B31612345678")
    page.locator("a[href^='/messages/']").first.click()
    expect(page.locator("body")).to_contain_text("Hello from the test")
    expect(page.locator("body")).to_contain_text("delivered")


def test_the_configuration_in_dutch(page: Page, site: Site) -> None:
    log_in(page, site, "admin", SETTINGS)
    page.select_option("#language-choice", "nl")
    expect(page.locator("html")).to_have_attribute("lang", "nl")
    expect(page.locator("h1")).to_have_text("SMS-configuratie")
    expect(page.locator(".breadcrumb")).to_have_text("Voorkeuren › Algemene voorkeuren")
    page.select_option("#f-module", "original_intelecom")
    assert module_labels(page, "original_intelecom") == SEED_FIELDS_NL
    expect(page.locator("#send-test")).to_have_text("Test")
    expect(page.locator("label[for=f-default-country-code]")).to_have_text("Standaard landcode")
    expect(page.locator("label[for=f-sender]")).to_have_text("Afzender")
    page.select_option("#language-choice", "en")
    expect(page.locator("h1")).to_have_text("SMS configuration")


def test_an_agent_cannot_open_the_configuration(page: Page, site: Site) -> None:
    log_in(page, site, "agent")
    expect(page.locator("nav.mainnav")).not_to_contain_text("Preferences")
    response = page.goto(site.url + SETTINGS)
    assert response is not None and response.status == 403
    expect(page.locator("h1")).to_have_text("Not allowed")


def test_a_reply_counts_segments_and_offers_gsm_characters(page: Page, site: Site) -> None:
    answer = site.api.post(
        "/api/v1/inbound",
        json={"from": "+31687654321", "content": "<script>alert(1)</script> where is my order?"},
    )
    assert answer.status_code == 202, answer.text
    dialogs: list[str] = []

    def refuse(dialog: Dialog) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", refuse)
    log_in(page, site, "agent", "/requests")
    page.locator("td a[href^='/requests/']").first.click()
    expect(page.locator(".bubble.inbound").first).to_contain_text("<script>alert(1)</script>")

    reply = page.locator("textarea[name=text]")
    counter = page.locator("#reply-counter")
    reply.fill("Prijs 10 € “quotes”")
    expect(counter).to_have_attribute("data-encoding", "ucs2")
    expect(counter).to_have_attribute("data-segments", "1")
    assert counter.locator("mark.ucs2-char").all_inner_texts() == ["“", "”"]
    counter.locator("button.sms-replace").click()
    expect(reply).to_have_value('Prijs 10 € "quotes"')
    expect(counter).to_have_attribute("data-encoding", "gsm7")
    expect(counter).to_have_attribute("data-units", "20")
    reply.fill("€" * 81)
    expect(counter).to_have_attribute("data-segments", "2")
    assert dialogs == []
