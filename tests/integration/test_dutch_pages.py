"""Every screen, in Dutch, with realistic data, holds no English sentence.

The walk visits every screen the web interface's routers serve (path parameters filled with
real rows), as a Dutch administrator, after delivered, refused and failed messages, a request
that arrived out of hours with its automatic answer, an unrecognised SMS, a group, a
template, an opt-out and audit entries exist. Visible text (and placeholders, labels for assistive
technology and confirmation questions) is split into sentences; one holding an English
function word fails the test. What users typed and customers wrote is in Dutch here; words
that are not ours (a provider's answer) carry `lang="en"`, and `<code>` holds identifiers:
both are skipped.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import httpx

from tests.support.harness import Harness
from tests.support.screens import english_sentences, screens
from tests.support.webui import create_user, log_in


async def _simulate(h: Harness, **faults: Any) -> None:
    quiet = {"permanent_failure_rate": 0.0, "undelivered_rate": 0.0}
    await h.configure(module_settings={"simulator": {"report_delay": 0.02, **quiet, **faults}})
    await h.idle_scans(2)


async def _send(h: Harness, to: str, text: str) -> str:
    response = await h.post("/api/v1/messages", {"to": to, "text": text})
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def realistic_data(h: Harness) -> dict[str, str]:
    """Rows of every kind a Dutch team sees, written in Dutch where people typed them."""
    await h.configure(default_country_code="+31", inbound={"sms_endpoint": "HULP"})
    delivered = await _send(h, "+31612345678", "Uw pakket komt morgen")
    await h.wait_for(delivered, "delivered")
    await _simulate(h, permanent_failure_rate=1.0)
    refused = await _send(h, "+31612345679", "Uw afspraak is verzet")
    await h.wait_for(refused, "failed")
    await _simulate(h, undelivered_rate=1.0)
    undelivered = await _send(h, "+31612345670", "Uw factuur staat klaar")
    await h.wait_for(undelivered, "undelivered")
    await _simulate(h)
    group = await h.post("/api/v1/groups", {"name": "Klantenservice"})
    assert group.status_code == 201, group.text
    closed = await h.client.patch(
        f"/api/v1/groups/{group.json()['id']}",
        json={
            "out_of_hours_reply": "Wij zijn gesloten; morgen weer open.",
            "time_zone": "Europe/Amsterdam",
            "hours": {"mon": ["09:00-17:00"]},
            "holidays": [datetime.now(ZoneInfo("Europe/Amsterdam")).date().isoformat()],
        },
        headers=h.headers,
    )
    assert closed.status_code == 200, closed.text
    rule = {"kind": "endpoint_code", "value": "HULP", "group": "Klantenservice"}
    assert (await h.post("/api/v1/routing-rules", rule)).status_code == 201
    template = await h.post(
        "/api/v1/templates",
        {"name": "Pakket onderweg", "language": "nl", "body": "Hallo {customer.name}, tot morgen."},
    )
    assert template.status_code == 201, template.text
    opted = await h.post("/api/v1/opt-outs", {"number": "+31655544433"})
    assert opted.status_code in (200, 201), opted.text
    request = await h.receive("+31611122233", "HULP mijn pakket is niet gekomen")
    stray = await h.receive("+31699988877", "Hallo, wie is dit?")
    await h.receive("+31611122244", "HULP")  # no text: the request is titled by its number
    mailing = await h.post(
        "/api/v1/mailings", {"name": "Voorjaarsactie", "text": "Hallo {customer.name}!"}
    )
    assert mailing.status_code == 201, mailing.text
    return {
        "mailing_id": str(mailing.json()["id"]),
        "message_id": refused,
        "template_id": str(template.json()["id"]),
        "request_id": str(request["request_id"]),
        "inbound_id": str(stray["id"]),
        "name": "cancel",
        "connection_id": "default",
    }


def test_the_detector_finds_english_and_skips_what_is_not_ours() -> None:
    """An English sentence is found; Dutch, code, hidden and quoted provider text are not."""
    html = (
        "<p>Dit is een zin.</p><p>This is not Dutch.</p><code>from the api</code>"
        '<q lang="en">The number is wrong</q><span data-user-text>for you</span>'
        '<input placeholder="Search for a number">'
    )
    assert english_sentences(html) == ["This is not Dutch.", "Search for a number"]


async def test_every_screen_reads_in_dutch(harness: Harness) -> None:
    """A Dutch administrator walks every screen and meets no English sentence."""
    ids = await realistic_data(harness)
    create_user(harness.service, "beheer", "admin", "nl")
    english: dict[str, list[str]] = {}
    async with harness.browser() as browser:
        assert (await log_in(browser, "beheer")).status_code in (200, 303)
        paths = screens(ids)
        assert len(paths) >= 15, paths
        for path in [*paths, f"/messages/{ids['message_id']}"]:
            page = await browser.get(path)
            assert page.status_code == 200, f"{path}: {page.status_code}"
            if path == f"/requests/{ids['request_id']}":
                assert "out-of-hours-badge" in page.text  # the data is realistic
            if found := english_sentences(page.text):
                english[path] = found
    assert not english, "English on Dutch pages:\n" + "\n".join(
        f"{path}: {sentence}" for path, found in english.items() for sentence in found
    )


async def test_the_login_page_reads_in_dutch_for_a_dutch_browser(harness: Harness) -> None:
    """Before logging in, the browser's language decides."""
    async with harness.browser() as browser:
        page = await browser.get("/login", headers={"Accept-Language": "nl-NL,nl;q=0.9"})
    assert english_sentences(page.text) == []
    assert page.status_code == httpx.codes.OK
