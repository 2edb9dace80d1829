"""The dashboard shows what happened to the messages, as figures and SVG charts."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from tests.support.harness import Harness
from tests.support.webui import create_user, log_in


def figure(html: str, name: str) -> str:
    match = re.search(rf'id="figure-{name}"><div class="value">([^<]*)<', html)
    assert match, f"no figure {name}"
    return match.group(1)


async def test_the_dashboard_counts_delivered_and_failed_messages(harness: Harness) -> None:
    ids = []
    for i in range(3):
        answer = await harness.post("/api/v1/messages", {"to": f"+3161234567{i}", "text": "Hi"})
        ids.append(answer.json()["id"])
    for message_id in ids:
        await harness.wait_for(message_id, "delivered")
    refused = await harness.post(
        "/api/v1/messages", {"to": "+31612345679", "text": "Hi", "module": "nonexistent"}
    )
    assert refused.status_code == 422  # refused at the door: not counted anywhere

    create_user(harness.service, "agent", "agent")
    async with harness.browser() as browser:
        await log_in(browser, "agent")
        page = await browser.get("/dashboard?days=7")
    assert page.status_code == 200
    assert figure(page.text, "sent") == "3"
    assert figure(page.text, "delivered") == "3"
    assert figure(page.text, "failed") == "0"
    assert figure(page.text, "rate") == "100.0 %"
    svgs = re.findall(r"<svg .*?</svg>", page.text, flags=re.S)
    assert len(svgs) == 2
    for svg in svgs:
        ET.fromstring(svg)  # well-formed
    assert "Simulator" in page.text
    assert "selected>Last 7 days" in page.text


async def test_the_dashboard_in_dutch(harness: Harness) -> None:
    create_user(harness.service, "anna", "agent", language="nl")
    async with harness.browser() as browser:
        await log_in(browser, "anna")
        page = await browser.get("/dashboard")
    assert "Afleverpercentage" in page.text
    assert "Geen berichten in deze periode." in page.text
    assert "Afgelopen 14 dagen" in page.text
    assert ">–<" in page.text  # no delivery rate yet: a dash, not 0 %


async def test_the_figures_add_up_and_modules_are_shown_by_title(harness: Harness) -> None:
    """The sentence under the figures splits every message of the period into delivered,
    waiting, failed, in the outbox and cancelled, and the per-module table names the module
    by its title (in Dutch too)."""
    for i in range(2):
        answer = await harness.post("/api/v1/messages", {"to": f"+3161234567{i}", "text": "Hi"})
        await harness.wait_for(answer.json()["id"], "delivered")
    create_user(harness.service, "agent", "agent")
    async with harness.browser() as browser:
        await log_in(browser, "agent")
        page = (await browser.get("/dashboard?days=7")).text
    assert (
        "Of 2 messages made in this period: 2 delivered, 0 waiting for a delivery report, "
        "0 failed, 0 still in the outbox and 0 cancelled." in page
    )
    assert "<td>Simulator</td>" in page
    assert "reached the provider" in page
