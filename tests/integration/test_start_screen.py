"""The "New SMS conversation" screen and opt-outs as agents see them, used as a browser would."""

from __future__ import annotations

import html
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
import sqlalchemy as sa

from smsdesk.store.tables import requests
from tests.support.harness import Harness
from tests.support.webui import create_user, csrf_of, log_in

ADA = "+31612345678"


@asynccontextmanager
async def agent(
    h: Harness, name: str = "sam", language: str = "en"
) -> AsyncIterator[httpx.AsyncClient]:
    create_user(h.service, name, "agent", language)
    async with h.browser() as client:
        assert (await log_in(client, name)).status_code == 303
        yield client


@pytest.fixture
async def desk(any_db_harness: Harness) -> Harness:
    await any_db_harness.configure(default_country_code="+31", inbound={"sms_endpoint": "HELP"})
    return any_db_harness


def text_of(page: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", " ", page))


async def start(client: httpx.AsyncClient, **fields: str) -> httpx.Response:
    form = await client.get("/requests/new")
    assert form.status_code == 200
    return await client.post("/requests/new", data={"csrf_token": csrf_of(form.text), **fields})


async def test_an_agent_starts_a_conversation_with_a_typed_number(desk: Harness) -> None:
    """The number as dialled, the first text; the agent lands on the new request, owns it, and
    the customer's answer joins it."""
    h = desk
    async with agent(h) as client:
        requests_page = await client.get("/requests")
        assert 'href="/requests/new"' in requests_page.text
        sent = await start(client, number="06-1234 5678", text="Your bike is ready.\r\nBye")
        assert sent.status_code == 303, sent.text
        path = sent.headers["location"]
        request_id = path.rsplit("/", 1)[1]
        made = (await h.get(f"/api/v1/requests/{request_id}")).json()
        assert made["customer"]["name"] == ADA and made["title"] == "Your bike is ready."
        assert made["conversation"][0]["body"] == "Your bike is ready.\nBye"
        assert made["conversation"][0]["author"] == "sam"
        user = h.service.users.get("sam")
        with h.service.engine.connect() as conn:
            owner, starter = conn.execute(
                sa.select(requests.c.owner_id, requests.c.started_by).where(
                    requests.c.id == request_id
                )
            ).one()
        assert user is not None and owner == starter == user.id
        answer = await h.receive(ADA, "On my way")
        assert answer["request_id"] == request_id
        page = await client.get(path)
        assert "On my way" in page.text and "Your bike is ready." in page.text


async def test_a_customer_is_found_by_name_and_chosen(desk: Harness) -> None:
    """Searching by name lists the customer; choosing it sends to its number."""
    h = desk
    made = await h.post("/api/v1/customers", {"name": "Ada Lovelace", "numbers": [ADA]})
    customer_id = made.json()["id"]
    async with agent(h) as client:
        found = await client.get("/requests/new", params={"q": "lovel"})
        assert f"/requests/new?customer_id={customer_id}" in found.text
        chosen = await client.get("/requests/new", params={"customer_id": customer_id})
        assert "Ada Lovelace" in chosen.text and ADA in chosen.text
        sent = await client.post(
            "/requests/new",
            data={"csrf_token": csrf_of(chosen.text), "customer_id": customer_id, "text": "Hi"},
        )
        assert sent.status_code == 303, sent.text
        request_id = sent.headers["location"].rsplit("/", 1)[1]
        body = (await h.get(f"/api/v1/requests/{request_id}")).json()
        assert body["customer"]["id"] == customer_id


async def test_refusals_show_beside_the_field_in_dutch(desk: Harness) -> None:
    """A bad number and an empty text are refused in the page's language, typed text kept."""
    h = desk
    async with agent(h, "bea", "nl") as client:
        bad = await start(client, number="12", text="Hallo daar")
        assert bad.status_code == 422
        assert 'id="new-number-error"' in bad.text and "Hallo daar" in bad.text
        assert 'value="12"' in bad.text
        assert "Nieuw sms-gesprek" in bad.text
    listed = (await h.get("/api/v1/requests")).json()["requests"]
    assert listed == []


async def test_an_opted_out_number_is_refused_in_agent_words(desk: Harness) -> None:
    """No API advice: when and how the customer opted out, in English and Dutch."""
    h = desk
    await h.receive(ADA, "STOP")
    async with agent(h) as client:
        refused = await start(client, number="0612345678", text="Hi")
        assert refused.status_code == 422
        words = text_of(refused.text)
        assert "This customer has opted out of SMS (replied STOP on" in words
        assert "No conversation was started." in words
        assert "transactional" not in words
    async with agent(h, "bea", "nl") as client:
        refused = await start(client, number="0612345678", text="Hoi")
        assert "Deze klant heeft zich afgemeld voor sms (antwoordde STOP op" in text_of(
            refused.text
        )
    assert (await h.get("/api/v1/requests")).json()["requests"] == []


async def test_opted_out_customers_are_marked_and_replies_refused(desk: Harness) -> None:
    """After a STOP the request shows the badge, the STOP marked in its conversation, the list
    the badge; a reply is refused in an agent's words."""
    h = desk
    first = await h.receive(ADA, "HELP where is my parcel")
    request_id = first["request_id"]
    stop = await h.receive(ADA, "Stop")
    assert stop["state"] == "opt_out" and stop["request_id"] == request_id
    async with agent(h) as client:
        page = await client.get(f"/requests/{request_id}")
        words = text_of(page.text)
        assert 'id="request-optout"' in page.text and "Opted out on" in words
        assert "(replied STOP)" in words
        assert re.search(r'class="bubble inbound keyword">.*Opted out of SMS.*Stop', page.text)
        listed = await client.get("/requests", params={"status": "all"})
        assert "optout-badge" in listed.text
        refused = await client.post(
            f"/requests/{request_id}/reply",
            data={"csrf_token": csrf_of(page.text), "text": "Sorry to see you go"},
        )
        assert refused.status_code == 422
        words = text_of(refused.text)
        assert "This customer has opted out of SMS (replied STOP on" in words
        assert "Your reply was not sent." in words and "transactional" not in words
    api = await h.post(f"/api/v1/requests/{request_id}/reply", {"text": "Hi"})
    assert api.status_code == 422 and "transactional" in api.json()["error"]["message"]


async def test_the_picker_renders_a_template_for_the_typed_number(desk: Harness) -> None:
    """The new-conversation form's picker fills {customer.name} from the number's customer and
    {agent.name} from the agent; a prompt left empty is named."""
    h = desk
    await h.post("/api/v1/customers", {"name": "Ada", "numbers": [ADA]})
    made = await h.post(
        "/api/v1/templates",
        {
            "name": "Hello",
            "language": "en",
            "body": "Hi {customer.name}, {prompt:day}. {agent.name}",
        },
    )
    template_id = made.json()["id"]
    async with agent(h) as client:
        form = await client.get("/requests/new")
        csrf = csrf_of(form.text)
        found = (await client.get("/requests/new/templates", params={"q": "hel"})).json()
        assert [t["prompts"] for t in found["templates"]] == [["day"]]
        url = f"/requests/new/templates/{template_id}/render"
        rendered = await client.post(
            url,
            params={"to": "06 1234 5678"},
            json={"prompts": {"day": "Monday"}},
            headers={"X-CSRF-Token": csrf},
        )
        assert rendered.status_code == 200, rendered.text
        assert rendered.json()["text"] == "Hi Ada, Monday. sam"
        missing = await client.post(
            url, params={"to": ADA}, json={"prompts": {}}, headers={"X-CSRF-Token": csrf}
        )
        assert missing.status_code == 422 and missing.json()["error"]["variable"] == "prompt:day"
