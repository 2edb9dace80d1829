"""The messages screens: searching every message, and one message with its timeline."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime
from typing import Any

import httpx

from tests.support.harness import Harness
from tests.support.webui import create_user, log_in

TO = "+31612345678"
OTHER = "+31687654321"


async def send(h: Harness, to: str = TO, text: str = "Hello", **fields: Any) -> str:
    response = await h.post("/api/v1/messages", {"to": to, "text": text, **fields})
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def listed(html: str, message_id: str) -> bool:
    return f'<tr id="message-{message_id}">' in html


async def test_search_finds_by_number_and_by_text(
    harness: Harness, admin: httpx.AsyncClient
) -> None:
    """A whole or partial number, or a piece of the text (any case), finds the message."""
    mine = await send(harness, TO, "Your parcel arrives tomorrow")
    other = await send(harness, OTHER, "Meeting at noon")
    by_number = (await admin.get(f"/messages?number={TO.replace('+', '%2B')}")).text
    assert listed(by_number, mine) and not listed(by_number, other)
    by_part = (await admin.get("/messages?number=87654")).text
    assert listed(by_part, other) and not listed(by_part, mine)
    by_text = (await admin.get("/messages?text=PARCEL")).text
    assert listed(by_text, mine) and not listed(by_text, other)
    assert "Your parcel arrives tomorrow" in by_text
    nothing = (await admin.get("/messages?text=no+such+words")).text
    assert "No messages match this search." in nothing
    everything = (await admin.get("/messages")).text
    assert listed(everything, mine) and listed(everything, other)
    assert f'href="/messages/{mine}"' in everything


async def test_search_finds_by_our_id_the_providers_id_and_status(
    harness: Harness, admin: httpx.AsyncClient
) -> None:
    """An id (ours or the provider's) finds exactly that message; status narrows the list."""
    first = await send(harness)
    second = await send(harness)
    delivered = await harness.wait_for(first, "delivered")
    await harness.wait_for(second, "delivered")
    by_ours = (await admin.get(f"/messages?id={first}")).text
    assert listed(by_ours, first) and not listed(by_ours, second)
    by_provider = (await admin.get(f"/messages?id={delivered['provider_message_id']}")).text
    assert listed(by_provider, first) and not listed(by_provider, second)
    assert listed((await admin.get("/messages?status=delivered")).text, second)
    assert not listed((await admin.get("/messages?status=failed")).text, second)
    assert not listed((await admin.get("/messages?module=twilio")).text, second)


async def test_the_message_page_shows_fields_and_timeline_with_provider_codes(
    harness: Harness, admin: httpx.AsyncClient
) -> None:
    """Every status change is listed with its time and the provider's raw code."""
    message_id = await send(harness, text="Hello there")
    body = await harness.wait_for(message_id, "delivered")
    page = await admin.get(f"/messages/{message_id}")
    assert page.status_code == 200
    timeline = page.text.split('id="timeline"')[1]
    assert (
        '<code>DELIVRD:000</code><br><span class="hint">delivered to the phone</span>' in timeline
    )
    assert "accepted by the provider" in timeline
    statuses = re.findall(r'class="status status-(\w+)"', timeline)
    assert statuses == ["queued", "sending", "sent", "delivered"]
    details = page.text.split('id="message-details"')[1].split("</dl>")[0]
    for value in (
        TO,
        "Hello there",
        "GSM-7 · 1 SMS part",
        "Simulator",
        body["provider_message_id"],
    ):
        assert value in details, value


async def test_sms_text_is_shown_escaped(harness: Harness, admin: httpx.AsyncClient) -> None:
    """A text holding HTML is shown as text, never run as markup."""
    # stays queued, so the outbox lists it too
    later = datetime.fromtimestamp(time.time() + 86400, UTC).isoformat()
    message_id = await send(harness, text="<script>alert(1)</script>", scheduled_at=later)
    for path in (f"/messages/{message_id}", "/messages", "/outbox"):
        page = (await admin.get(path)).text
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page, path
        assert "<script>alert(1)" not in page, path


async def test_an_unknown_message_is_a_404_page(admin: httpx.AsyncClient) -> None:
    page = await admin.get("/messages/01NOSUCHMESSAGE0000000000")
    assert page.status_code == 404
    assert "Message not found" in page.text and 'href="/messages"' in page.text


async def test_an_agent_searches_and_opens_messages(harness: Harness) -> None:
    """Agents use the messages screens like administrators."""
    message_id = await send(harness, text="For the agent")
    create_user(harness.service, "agent", "agent")
    async with harness.browser() as agent:
        await log_in(agent, "agent")
        found = await agent.get("/messages?text=agent")
        assert found.status_code == 200 and listed(found.text, message_id)
        assert (await agent.get(f"/messages/{message_id}")).status_code == 200


async def test_the_message_page_speaks_dutch(harness: Harness) -> None:
    """A Dutch user sees Dutch labels and status names on the search and the message."""
    message_id = await send(harness)
    await harness.wait_for(message_id, "delivered")
    create_user(harness.service, "anouk", "agent", "nl")
    async with harness.browser() as client:
        await log_in(client, "anouk")
        search = (await client.get("/messages")).text
        page = (await client.get(f"/messages/{message_id}")).text
    assert "Tekst bevat" in search and ">afgeleverd<" in search
    assert "Tijdlijn" in page and ">in wachtrij<" in page and ">afgeleverd<" in page
    assert "afleverrapport" in page
    assert ">delivered<" not in page and "Timeline" not in page


async def test_search_and_message_page_on_each_database(any_db_harness: Harness) -> None:
    """On SQLite and PostgreSQL: the text search (any case) and the timeline work."""
    h = any_db_harness
    message_id = await send(h, text="Case Matters 100%_done")
    await h.wait_for(message_id, "delivered")
    create_user(h.service, "admin", "admin")
    async with h.browser() as client:
        await log_in(client, "admin")
        assert listed((await client.get("/messages?text=case+matters")).text, message_id)
        assert listed((await client.get("/messages?text=100%25_")).text, message_id)
        assert not listed((await client.get("/messages?text=100%25x")).text, message_id)
        page = (await client.get(f"/messages/{message_id}")).text
    assert "<code>DELIVRD:000</code>" in page
