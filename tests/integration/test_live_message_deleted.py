"""A message deleted by one person leaves the outbox and the conversation of everyone else
looking at them: a live `message` update marked deleted reaches the outbox's stream and the
request's (keyed by the request), and the parts reloaded without the message."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.engine import Engine

from tests.conftest import database_url
from tests.support.harness import Harness, running_service
from tests.support.webui import create_user, log_in, page_csrf

TEXT = "Your parcel is ready for pickup."


@pytest.fixture
async def site(tmp_path: Path, engine: Engine) -> AsyncIterator[Harness]:
    """Served, without a dispatcher: the message is cancelled, which makes it deletable."""
    url = database_url(engine)
    async with running_service(tmp_path, url, listen=True, dispatcher=False) as h:
        await h.configure(default_country_code="+31")
        yield h


async def _deletion(lines: AsyncIterator[str], message_id: str) -> dict[str, Any]:
    """The data of the stream's `message` event that says `message_id` was deleted."""
    event = ""
    async with asyncio.timeout(5):
        async for line in lines:
            if line.startswith("event: "):
                event = line.removeprefix("event: ")
            elif line.startswith("data: ") and event == "message":
                data: dict[str, Any] = json.loads(line.removeprefix("data: "))
                if data.get("id") == message_id and data.get("deleted"):
                    return data
    raise AssertionError("the stream ended")


async def test_a_deleted_message_leaves_other_viewers_pages(site: Harness) -> None:
    """An administrator deletes a cancelled reply; an agent's outbox and conversation streams
    hear of it, and the outbox and conversation no longer show it."""
    h = site
    made = await h.post(
        "/api/v1/requests", {"number": "0612345678", "text": TEXT, "title": "Delivery"}
    )
    assert made.status_code == 201, made.text
    request_id, message_id = made.json()["id"], made.json()["message"]["id"]
    create_user(h.service, "root", "admin")
    create_user(h.service, "sam", "agent")
    base = str(h.client.base_url)

    async with httpx.AsyncClient(base_url=base) as root, httpx.AsyncClient(base_url=base) as sam:
        await log_in(root, "root")
        await log_in(sam, "sam")
        cancelled = await root.post(
            f"/outbox/{message_id}/cancel", data={"csrf_token": await page_csrf(root)}
        )
        assert cancelled.status_code == 303, cancelled.text
        assert f'id="message-{message_id}"' in (await sam.get("/outbox?status=cancelled")).text
        assert TEXT in (await sam.get(f"/requests/{request_id}")).text
        conversation_query = f"topics=conversation,message&keys={request_id}"
        async with (
            sam.stream("GET", "/live/events?topics=message") as outbox,
            sam.stream("GET", f"/live/events?{conversation_query}") as conversation,
        ):
            outbox_lines, conversation_lines = outbox.aiter_lines(), conversation.aiter_lines()
            for lines in (outbox_lines, conversation_lines):
                assert (await anext(lines)).startswith("retry:")
            deleted = await root.post(
                f"/outbox/{message_id}/delete", data={"csrf_token": await page_csrf(root)}
            )
            assert deleted.status_code == 303, deleted.text
            heard = await _deletion(outbox_lines, message_id)
            assert heard["request_id"] == request_id and heard["status"] == "deleted"
            assert (await _deletion(conversation_lines, message_id))["request_id"] == request_id

        assert f'id="message-{message_id}"' not in (await sam.get("/outbox?status=cancelled")).text
        assert TEXT not in (await sam.get(f"/requests/{request_id}")).text
