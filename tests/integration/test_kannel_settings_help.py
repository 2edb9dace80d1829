"""The Kannel module's settings tell the administrator to make smsbox retry failed report calls,
in English and Dutch, on the SMS configuration screen and in the API's settings schema."""

from __future__ import annotations

import html
import re

import httpx

from tests.support.harness import Harness
from tests.support.webui import create_user, log_in

PATH = "/preferences/general/sms"
FIELD = "module_settings.kannel.delivery_report"


def help_of(page: str, field: str) -> str:
    """The help text shown under one field of the SMS configuration screen."""
    start = page.index(f'data-field="{field}"')
    end = page.find('data-field="', start + 1)
    block = page[start : end if end > 0 else None]
    found = re.search(r'<p class="help" id="[^"]+">([^<]*)</p>', block)
    assert found is not None, block
    return html.unescape(found.group(1))


async def test_the_kannel_report_switch_says_to_set_smsbox_retries_in_english(
    harness: Harness, admin: httpx.AsyncClient
) -> None:
    """English: the delivery-report help names both smsbox settings, their values and group."""
    page = await admin.get(PATH)
    assert page.status_code == 200
    text = help_of(page.text, FIELD)
    assert "drops a report it cannot deliver" in text
    assert "http-request-retry = 3600" in text
    assert "http-queue-delay = 1" in text
    assert "smsbox group of kannel.conf" in text


async def test_the_kannel_report_switch_says_it_in_dutch(harness: Harness) -> None:
    """Dutch: the same advice in Dutch, the kannel.conf names untouched."""
    create_user(harness.service, "anna", "admin", language="nl")
    async with harness.browser() as client:
        await log_in(client, "anna")
        page = await client.get(PATH)
    text = help_of(page.text, FIELD)
    assert text.startswith("Kannel via de dlr-url om afleverrapporten vragen.")
    assert "gooit een afleverrapport weg" in text
    assert "http-request-retry = 3600 en http-queue-delay = 1 in de smsbox-groep" in text
    assert "minstens een uur" in text


async def test_the_api_schema_of_the_kannel_module_carries_the_advice(harness: Harness) -> None:
    """Integrations that read GET /api/v1/modules see the same advice on the field."""
    answer = await harness.get("/api/v1/modules")
    assert answer.status_code == 200
    kannel = next(m for m in answer.json()["modules"] if m["name"] == "kannel")
    description = kannel["settings_schema"]["properties"]["delivery_report"]["description"]
    assert "http-request-retry = 3600" in description
    assert "http-queue-delay = 1" in description
