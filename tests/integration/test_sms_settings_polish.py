"""The SMS configuration screen: one SMS endpoint field, and a Send test result that says
where the SMS went and links to the message, which the outbox marks as a test."""

from __future__ import annotations

import re

import httpx

from tests.integration.test_web_sms_settings import PATH, general, post
from tests.support.harness import Harness


def mailbox_endpoint_hidden(html: str) -> bool:
    found = re.search(r'<div id="mailbox-endpoint" data-unless-modules="([^"]*)"( hidden)?>', html)
    assert found, "no mailbox endpoint field"
    assert "original_intelecom" in found.group(1).split()
    return bool(found.group(2))


async def test_one_sms_endpoint_field_is_shown(harness: Harness, admin: httpx.AsyncClient) -> None:
    """With an Original module chosen its own SMS endpoint is the one shown; with any other
    module, the mailbox's."""
    assert not mailbox_endpoint_hidden((await admin.get(PATH)).text)
    await harness.configure(module="original_intelecom")
    assert mailbox_endpoint_hidden((await admin.get(PATH)).text)


async def test_a_send_test_shows_the_normalised_number_and_links_to_the_message(
    harness: Harness, admin: httpx.AsyncClient
) -> None:
    """Typed nationally, the number is shown as sent (E.164); the link opens the message,
    which is marked as a test there and in the outbox."""
    form = general(
        module="simulator",
        test_to="06 1234 5678",
        test_text="Test from the screen",
        **{"module_settings.simulator.report_delay": "0.02"},
    )
    answer = await post(admin, f"{PATH}/test", form)
    assert 'data-test-outcome="accepted"' in answer.text
    assert "Sent to +31612345678." in answer.text
    found = re.search(
        r'<a href="/messages/(\w+)" data-test-message>Open the message</a>', answer.text
    )
    assert found
    message = (await admin.get(f"/messages/{found.group(1)}")).text
    assert 'id="test-mark">Test message<' in message
    await harness.wait_for(found.group(1), "delivered")
    outbox = (await admin.get("/outbox?status=delivered")).text
    assert "data-test-message>Test message<" in outbox


async def test_test_messages_are_left_out_of_the_dashboards_figures(
    harness: Harness, admin: httpx.AsyncClient
) -> None:
    """A Send test is not counted as sent or delivered; the dashboard says it left it out."""
    form = general(
        module="simulator",
        test_to="+31612345678",
        test_text="Test",
        **{"module_settings.simulator.report_delay": "0.02"},
    )
    answer = await post(admin, f"{PATH}/test", form)
    found = re.search(r'<a href="/messages/(\w+)" data-test-message>', answer.text)
    assert found
    await harness.wait_for(found.group(1), "delivered")
    page = (await admin.get("/dashboard?days=7")).text
    assert re.search(r'id="figure-sent"><div class="value">0<', page)
    assert "Of 0 messages made in this period" in page
    assert "1 test message is not counted." in page
