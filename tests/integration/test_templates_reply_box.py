"""What the reply box's template picker asks of the server, as an agent's browser asks it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx

from tests.support.harness import Harness
from tests.support.webui import create_user, csrf_of, log_in

CUSTOMER = "+31612345678"


@asynccontextmanager
async def agent(h: Harness, name: str, language: str = "en") -> AsyncIterator[httpx.AsyncClient]:
    create_user(h.service, name, "agent", language)
    async with h.browser() as client:
        await log_in(client, name)
        yield client


async def _setup(h: Harness) -> str:
    """Two languages of one template, another template, and a request of customer Ada."""
    await h.configure(default_country_code="+31", inbound={"sms_endpoint": "HELP"})
    await h.post("/api/v1/customers", {"name": "Ada", "numbers": [CUSTOMER]})
    for name, language, body in (
        ("Shipped", "en", "Hi {customer.name}, {prompt:order} ships. {agent.name} ({request.id})"),
        ("Shipped", "nl", "Hoi {customer.name}, {prompt:order} is onderweg."),
        ("Thanks", "en", "Thank you!"),
    ):
        made = await h.post("/api/v1/templates", {"name": name, "language": language, "body": body})
        assert made.status_code == 201, made.text
    inbound = await h.receive(CUSTOMER, "HELP where is my parcel?")
    return str(inbound["request_id"])


async def _render(
    client: httpx.AsyncClient, request_id: str, template_id: str, prompts: dict[str, str]
) -> httpx.Response:
    token = csrf_of((await client.get(f"/requests/{request_id}")).text)
    return await client.post(
        f"/requests/{request_id}/templates/{template_id}/render",
        json={"prompts": prompts},
        headers={"X-CSRF-Token": token, "Accept": "application/json"},
    )


async def _choices(client: httpx.AsyncClient, request_id: str, q: str) -> list[dict[str, Any]]:
    answer = await client.get(f"/requests/{request_id}/templates", params={"q": q})
    assert answer.status_code == 200, answer.text
    found: list[dict[str, Any]] = answer.json()["templates"]
    return found


async def test_the_agents_language_comes_first(any_db_harness: Harness) -> None:
    h = any_db_harness
    request_id = await _setup(h)
    async with agent(h, "sam") as sam, agent(h, "bea", "nl") as bea:
        english = await _choices(sam, request_id, "ships")
        assert [(t["name"], t["language"]) for t in english] == [("Shipped", "en")]
        both = await _choices(sam, request_id, "")
        assert [t["language"] for t in both][:2] == ["en", "en"]
        dutch = await _choices(bea, request_id, "shipped")
        assert [t["language"] for t in dutch] == ["nl", "en"]
        assert dutch[0]["prompts"] == ["order"]
        by_text = await _choices(bea, request_id, "ONDERWEG")
        assert [t["language"] for t in by_text] == ["nl"]


async def test_a_template_renders_for_the_request_and_the_agent(any_db_harness: Harness) -> None:
    """The request's customer, its id and the agent's name are filled; the text is counted."""
    h = any_db_harness
    request_id = await _setup(h)
    async with agent(h, "sam") as sam:
        [shipped] = await _choices(sam, request_id, "ships")
        answer = await _render(sam, request_id, shipped["id"], {"order": "A-1"})
        assert answer.status_code == 200, answer.text
        text = f"Hi Ada, A-1 ships. sam ({request_id})"
        assert answer.json() == {
            "text": text,
            "encoding": "gsm7",
            "segments": 1,
            "characters": len(text),
        }


async def test_an_unanswered_prompt_is_named_in_the_agents_language(harness: Harness) -> None:
    h = harness
    request_id = await _setup(h)
    async with agent(h, "bea", "nl") as bea:
        [dutch] = await _choices(bea, request_id, "onderweg")
        refused = await _render(bea, request_id, dutch["id"], {"order": " "})
        assert refused.status_code == 422
        assert refused.json()["error"] == {
            "code": "refused",
            "message": "Vul 'order' in: het sjabloon vraagt erom.",
            "variable": "prompt:order",
        }
        control = await _render(bea, request_id, dutch["id"], {"order": "A\x07"})
        assert control.status_code == 422
        assert "stuurteken" in control.json()["error"]["message"]


async def test_rendering_needs_the_sessions_csrf_token(harness: Harness) -> None:
    h = harness
    request_id = await _setup(h)
    async with agent(h, "sam") as sam:
        [thanks] = await _choices(sam, request_id, "thank")
        forged = await sam.post(
            f"/requests/{request_id}/templates/{thanks['id']}/render",
            json={"prompts": {}},
            headers={"Accept": "application/json"},
        )
        assert forged.status_code == 403
        gone = await _render(sam, "01NOSUCHREQUEST00000000000", thanks["id"], {})
        assert gone.status_code == 404
    async with h.browser() as anonymous:
        answer = await anonymous.get(
            f"/requests/{request_id}/templates", headers={"Accept": "application/json"}
        )
        assert answer.status_code == 401
