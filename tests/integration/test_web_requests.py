"""The Requests screens and the unrecognised inbox, used as an agent would in a browser."""

from __future__ import annotations

import html
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from smsdesk.store.tables import messages, request_messages
from tests.support.harness import Harness
from tests.support.webui import create_user, csrf_of, log_in

CUSTOMER = "+31612345678"


async def open_desk(h: Harness) -> None:
    await h.configure(default_country_code="+31", inbound={"sms_endpoint": "HELP"})


async def receive(h: Harness, sender: str, text: str) -> dict[str, Any]:
    return await h.receive(sender, text)


@asynccontextmanager
async def logged_in(
    h: Harness, name: str = "admin", role: str = "admin", language: str = "en"
) -> AsyncIterator[httpx.AsyncClient]:
    """A browser of its own, logged in as a new user."""
    create_user(h.service, name, role, language)
    async with h.browser() as client:
        answer = await log_in(client, name)
        assert answer.status_code == 303
        yield client


@pytest.fixture
async def desk(harness: Harness) -> Harness:
    await open_desk(harness)
    return harness


@pytest.fixture
async def browser(desk: Harness) -> AsyncIterator[httpx.AsyncClient]:
    async with logged_in(desk) as client:
        yield client


def outbound_ids(h: Harness, request_id: str) -> list[str]:
    with h.service.engine.connect() as conn:
        rows = conn.execute(
            sa.select(request_messages.c.message_id)
            .where(request_messages.c.request_id == request_id)
            .where(request_messages.c.direction == "out")
            .order_by(request_messages.c.id)
        ).all()
    return [str(row.message_id) for row in rows]


def message_count(h: Harness) -> int:
    with h.service.engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(messages)).scalar_one())


async def reply(
    client: httpx.AsyncClient, request_id: str, text: str, *, token: bool = True
) -> httpx.Response:
    page = await client.get(f"/requests/{request_id}")
    data = {"text": text}
    if token:
        data["csrf_token"] = csrf_of(page.text)
    return await client.post(f"/requests/{request_id}/reply", data=data)


def textarea_value(page: str) -> str:
    match = re.search(r'<textarea id="reply-text"[^>]*>(.*?)</textarea>', page, re.S)
    assert match is not None, "the page has no reply box"
    return html.unescape(match.group(1))


async def check_conversation_flow(h: Harness) -> None:
    await open_desk(h)
    async with logged_in(h) as client:
        inbound = await receive(h, "0612345678", "HELP where is my order 42?")
        request_id = inbound["request_id"]

        listed = await client.get("/requests")
        assert listed.status_code == 200
        assert "where is my order 42?" in listed.text
        assert CUSTOMER in listed.text
        assert f'href="/requests/{request_id}"' in listed.text

        sent = await reply(client, request_id, "It ships today.")
        assert sent.status_code == 303
        assert sent.headers["location"] == f"/requests/{request_id}"
        [message_id] = outbound_ids(h, request_id)
        delivered = await h.wait_for(message_id, "delivered")
        assert delivered["to"] == CUSTOMER

        await receive(h, CUSTOMER, "HELP thank you")
        page = (await client.get(f"/requests/{request_id}")).text
        question = page.index('<div class="bubble inbound">where is my order 42?')
        answer = page.index('<div class="bubble outbound">It ships today.')
        thanks = page.index('<div class="bubble inbound">thank you')
        assert question < answer < thanks
        outbound = page[answer:thanks]
        assert f'href="/messages/{message_id}"' in outbound
        assert 'title="SMS delivered"' in outbound
        assert 'aria-label="SMS delivered"' in outbound
        assert 'data-status="delivered"' in outbound and "<svg" in outbound  # drawn, not emoji


async def test_a_request_and_its_conversation_on_each_database(any_db_harness: Harness) -> None:
    """An SMS becomes a listed request; a reply from the form is an SMS shown delivered (a drawn
    tick) between the customer's messages."""
    await check_conversation_flow(any_db_harness)


async def test_the_reply_box_counts_sms_in_the_page_language(
    desk: Harness, browser: httpx.AsyncClient
) -> None:
    """The reply box is wired to the live counter, whose words come from the server."""
    inbound = await receive(desk, CUSTOMER, "HELP hello")
    page = (await browser.get(f"/requests/{inbound['request_id']}")).text
    assert '<textarea id="reply-text" name="text" data-sms-counter="reply-counter"' in page
    assert 'id="reply-counter" class="sms-counter"' in page
    assert 'data-template="{units} characters · {segments} SMS · {encoding}"' in page
    for attribute in ("data-ucs2-label", "data-replace-label", "data-gsm7-name", "data-ucs2-name"):
        assert attribute + '="' in page
    assert '<script src="/static/smscount.js"></script>' in page


async def test_sms_text_is_shown_escaped(desk: Harness, browser: httpx.AsyncClient) -> None:
    """A customer's SMS that looks like markup is shown as text, never run as a script."""
    inbound = await receive(desk, CUSTOMER, "HELP <script>alert(1)</script>")
    unknown = await receive(desk, "+31612345000", "<script>alert(2)</script>")
    for path, body in (
        (f"/requests/{inbound['request_id']}", "alert(1)"),
        ("/requests", "alert(1)"),
        ("/inbox/unrecognised", "alert(2)"),
    ):
        page = (await browser.get(path)).text
        assert f"&lt;script&gt;{body}&lt;/script&gt;" in page, path
        assert f"<script>{body}" not in page, path
    assert unknown["state"] == "unrecognised"


async def test_a_reply_without_the_csrf_token_is_refused_and_sends_nothing(
    desk: Harness, browser: httpx.AsyncClient
) -> None:
    """A forged reply form (no token) gets 403 and no SMS is queued."""
    inbound = await receive(desk, CUSTOMER, "HELP hello")
    before = message_count(desk)
    answer = await reply(browser, inbound["request_id"], "forged", token=False)
    assert answer.status_code == 403
    forged = await browser.post(
        f"/requests/{inbound['request_id']}/reply", data={"text": "x", "csrf_token": "guess"}
    )
    assert forged.status_code == 403
    assert message_count(desk) == before
    assert outbound_ids(desk, inbound["request_id"]) == []


async def test_a_reply_to_an_opted_out_number_shows_why_and_keeps_the_text(
    desk: Harness, browser: httpx.AsyncClient
) -> None:
    """The refusal is explained on the page in an agent's words (when and how the customer
    opted out, no advice for API clients), with the typed text still in the box."""
    inbound = await receive(desk, CUSTOMER, "HELP hello")
    assert (await desk.post("/api/v1/opt-outs", {"number": CUSTOMER})).status_code == 201
    answer = await reply(browser, inbound["request_id"], "Your code & more")
    assert answer.status_code == 422
    assert "The reply was not sent." in answer.text
    shown = html.unescape(answer.text)
    assert "This customer has opted out of SMS (added through the API on" in shown
    assert "Your reply was not sent." in shown and "transactional" not in shown
    assert textarea_value(answer.text) == "Your code & more"
    assert outbound_ids(desk, inbound["request_id"]) == []


async def test_an_empty_reply_is_refused_with_the_reason(
    desk: Harness, browser: httpx.AsyncClient
) -> None:
    """Invalid text (here: only spaces) is refused and explained, not sent."""
    inbound = await receive(desk, CUSTOMER, "HELP hello")
    answer = await reply(browser, inbound["request_id"], "   ")
    assert answer.status_code == 422
    assert 'id="reply-error"' in answer.text
    assert outbound_ids(desk, inbound["request_id"]) == []


async def test_the_status_of_a_request_can_be_changed(
    desk: Harness, browser: httpx.AsyncClient
) -> None:
    """Setting a request to pending moves it out of the default (open) list."""
    inbound = await receive(desk, CUSTOMER, "HELP change my address")
    request_id = inbound["request_id"]
    page = await browser.get(f"/requests/{request_id}")
    changed = await browser.post(
        f"/requests/{request_id}/status",
        data={"csrf_token": csrf_of(page.text), "status": "pending"},
    )
    assert changed.status_code == 303
    shown = (await browser.get(f"/requests/{request_id}")).text
    assert '<span class="status status-pending" id="request-status">pending</span>' in shown
    assert "change my address" not in (await browser.get("/requests")).text
    assert "change my address" in (await browser.get("/requests?status=pending")).text
    wrong = await browser.post(
        f"/requests/{request_id}/status",
        data={"csrf_token": csrf_of(page.text), "status": "solved"},
    )
    assert wrong.status_code == 422
    assert "Choose open, pending or closed." in wrong.text


async def test_the_list_can_be_searched(desk: Harness, browser: httpx.AsyncClient) -> None:
    """Search finds requests by title, customer name or number."""
    await receive(desk, CUSTOMER, "HELP broken screen")
    await receive(desk, "+31687654321", "HELP invoice question")
    by_title = (await browser.get("/requests?q=SCREEN")).text
    assert "broken screen" in by_title
    assert "invoice question" not in by_title
    by_number = (await browser.get("/requests?q=87654321")).text
    assert "invoice question" in by_number
    assert "broken screen" not in by_number
    assert 'id="no-requests"' in (await browser.get("/requests?q=50%25_off")).text


async def test_a_missing_request_is_a_404_page(browser: httpx.AsyncClient) -> None:
    """An unknown id shows a page saying so, with status 404."""
    page = await browser.get("/requests/01NOSUCHREQUEST")
    assert page.status_code == 404
    assert "Request not found" in page.text


async def test_an_unrecognised_sms_can_be_assigned_to_a_request(
    desk: Harness, browser: httpx.AsyncClient
) -> None:
    """An SMS without the endpoint code is listed; assigning it adds it to the conversation."""
    inbound = await receive(desk, CUSTOMER, "HELP first question")
    request_id = inbound["request_id"]
    stray = await receive(desk, "+31611112222", "forgot the code")
    assert stray["state"] == "unrecognised"

    requests_page = (await browser.get("/requests")).text
    assert 'href="/inbox/unrecognised"' in requests_page
    inbox = (await browser.get("/inbox/unrecognised")).text
    assert "forgot the code" in inbox
    assert "+31611112222" in inbox

    missing = await browser.post(
        f"/inbox/unrecognised/{stray['id']}/assign",
        data={"csrf_token": csrf_of(inbox), "request_id": "01NOSUCHREQUEST"},
    )
    assert missing.status_code == 404
    assert "There is no request with that id." in html.unescape(missing.text)

    assigned = await browser.post(
        f"/inbox/unrecognised/{stray['id']}/assign",
        data={"csrf_token": csrf_of(inbox), "request_id": request_id},
    )
    assert assigned.status_code == 303
    assert assigned.headers["location"] == f"/requests/{request_id}"
    conversation = (await browser.get(f"/requests/{request_id}")).text
    assert '<div class="bubble inbound">forgot the code' in conversation
    assert "forgot the code" not in (await browser.get("/inbox/unrecognised")).text


async def test_an_unrecognised_sms_can_be_deleted(
    desk: Harness, browser: httpx.AsyncClient
) -> None:
    """Delete asks first (data-confirm) and removes the SMS from the list once posted."""
    stray = await receive(desk, "+31611112222", "wrong number, sorry")
    inbox = (await browser.get("/inbox/unrecognised")).text
    assert re.search(
        rf'action="/inbox/unrecognised/{stray["id"]}/delete"[^>]*data-confirm="[^"]+"', inbox
    )
    deleted = await browser.post(
        f"/inbox/unrecognised/{stray['id']}/delete", data={"csrf_token": csrf_of(inbox)}
    )
    assert deleted.status_code == 303
    after = (await browser.get("/inbox/unrecognised")).text
    assert "wrong number, sorry" not in after
    assert 'id="no-unrecognised"' in after


async def test_agents_do_not_see_the_unrecognised_inbox_when_the_configuration_says_so(
    desk: Harness,
) -> None:
    """With inbound.agents_triage off, the unrecognised inbox is for administrators."""
    await desk.configure(inbound={"sms_endpoint": "HELP", "agents_triage": False})
    async with logged_in(desk, "agent", "agent") as agent:
        assert (await agent.get("/inbox/unrecognised")).status_code == 403
        assert 'href="/inbox/unrecognised"' not in (await agent.get("/requests")).text


async def test_the_dutch_pages_speak_dutch(desk: Harness) -> None:
    """A user who chose Dutch sees the screens and delivery ticks in Dutch."""
    inbound = await receive(desk, CUSTOMER, "HELP waar blijft mijn pakket")
    async with logged_in(desk, "anke", "admin", "nl") as client:
        listed = (await client.get("/requests")).text
        assert "Zoek in verzoeken" in listed
        assert "Laatste activiteit" in listed
        assert ">open</span>" in listed
        request_id = inbound["request_id"]
        assert (await reply(client, request_id, "Vandaag")).status_code == 303
        [message_id] = outbound_ids(desk, request_id)
        await desk.wait_for(message_id, "delivered")
        page = (await client.get(f"/requests/{request_id}")).text
        assert "Antwoord versturen" in page
        assert 'title="Sms afgeleverd"' in page
        assert "{units} tekens · {segments} sms · {encoding}" in page
        assert "Send reply" not in page
        inbox = (await client.get("/inbox/unrecognised")).text
        assert "Onherkende sms&#39;jes" in inbox or "Onherkende sms" in inbox


async def test_an_unrecognised_sms_assigned_without_an_id_opens_a_request(
    desk: Harness, browser: httpx.AsyncClient
) -> None:
    """With the request id left empty, the SMS becomes a new request for its sender."""
    stray = await receive(desk, "+31633334444", "no code, new question")
    inbox = (await browser.get("/inbox/unrecognised")).text
    assigned = await browser.post(
        f"/inbox/unrecognised/{stray['id']}/assign",
        data={"csrf_token": csrf_of(inbox), "request_id": ""},
    )
    assert assigned.status_code == 303
    location = assigned.headers["location"]
    assert location.startswith("/requests/")
    conversation = (await browser.get(location)).text
    assert '<div class="bubble inbound">no code, new question' in conversation
    assert "+31633334444" in conversation


async def test_line_breaks_from_the_browser_count_as_one_character(
    desk: Harness, browser: httpx.AsyncClient
) -> None:
    """A browser posts CRLF; the SMS carries LF, as the counter beside the box counted it."""
    inbound = await receive(desk, CUSTOMER, "HELP hello")
    answer = await reply(browser, inbound["request_id"], "Line one\r\nLine two")
    assert answer.status_code == 303
    [message_id] = outbound_ids(desk, inbound["request_id"])
    body = (await desk.get(f"/api/v1/messages/{message_id}")).json()
    assert body["text"] == "Line one\nLine two"
