"""The live endpoints as a browser uses them, over a real loopback server: the event stream,
its resumption after a broken connection, the polling fallback, and who may use them."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.support.harness import Harness, running_service
from tests.support.webui import create_user, log_in

CUSTOMER = "+31612345678"


@pytest.fixture
async def site(tmp_path: Path) -> AsyncIterator[Harness]:
    async with running_service(tmp_path, listen=True) as h:
        await h.configure(module_settings={"simulator": {"report_delay": 0.02}})
        h.service.live.heartbeat = 0.3
        yield h


@asynccontextmanager
async def browser(
    h: Harness, name: str = "agent", language: str = "en"
) -> AsyncIterator[httpx.AsyncClient]:
    """A logged-in browser talking to the server over loopback."""
    create_user(h.service, name, "agent", language)
    async with httpx.AsyncClient(base_url=str(h.client.base_url)) as client:
        assert (await log_in(client, name)).status_code == 303
        yield client


@dataclass
class Event:
    id: str | None = None
    event: str | None = None
    data: list[str] = field(default_factory=list)
    comment: bool = False

    def json(self) -> dict[str, object]:
        value = json.loads("\n".join(self.data))
        assert isinstance(value, dict)
        return value


class Stream:
    """An open SSE response read event by event (comments too)."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self.lines = response.aiter_lines()
        self.last_id: str | None = None
        self.retry: str | None = None

    async def next(self, timeout: float = 10.0) -> Event:
        event = Event()
        async with asyncio.timeout(timeout):
            async for line in self.lines:
                if line == "":
                    if event.event or event.data or event.comment or event.id:
                        if event.id:
                            self.last_id = event.id
                        return event
                    continue
                name, _, value = line.partition(":")
                value = value.removeprefix(" ")
                if name == "":
                    event.comment = True
                elif name == "id":
                    event.id = value
                elif name == "event":
                    event.event = value
                elif name == "data":
                    event.data.append(value)
                elif name == "retry":
                    self.retry = value
        raise AssertionError("the stream ended")

    async def until(self, wanted: str, message_id: str, timeout: float = 10.0) -> list[str]:
        """Statuses of `message_id` announced until `wanted` arrives."""
        seen: list[str] = []
        while wanted not in seen:
            event = await self.next(timeout)
            if event.event == "message" and event.json()["id"] == message_id:
                seen.append(str(event.json()["status"]))
        return seen


@asynccontextmanager
async def stream(
    client: httpx.AsyncClient, query: str, headers: dict[str, str] | None = None
) -> AsyncIterator[Stream]:
    async with client.stream("GET", f"/live/events?{query}", headers=headers) as response:
        assert response.status_code == 200
        yield Stream(response)


async def send(h: Harness, text: str) -> str:
    answer = await h.post("/api/v1/messages", {"to": CUSTOMER, "text": text})
    assert answer.status_code in (200, 201, 202), answer.text
    return str(answer.json()["id"])


async def test_a_page_streams_a_message_from_queued_to_delivered(site: Harness) -> None:
    """The stream is unbuffered SSE; each update names its message and carries a cursor."""
    async with browser(site) as client, stream(client, "topics=message") as events:
        headers = events.response.headers
        assert headers["content-type"].startswith("text/event-stream")
        assert headers["cache-control"] == "no-cache"
        assert headers["x-accel-buffering"] == "no"
        ready = await events.next()
        assert ready.event == "ready" and ready.id
        assert events.retry == "2000"
        message_id = await send(site, "Hello")
        assert (await events.until("delivered", message_id))[0] == "queued"
        assert events.last_id != ready.id


async def test_an_idle_stream_gets_a_comment_heartbeat(site: Harness) -> None:
    """Nothing happening: comment lines keep proxies from closing the connection."""
    async with browser(site) as client, stream(client, "topics=request") as events:
        await events.next()
        heartbeat = await events.next(timeout=5)
        assert heartbeat.comment and heartbeat.event is None


async def test_a_page_only_hears_of_the_message_it_shows(site: Harness) -> None:
    """Keys narrow the stream: a message page hears about its message, not the others."""
    first = await send(site, "First")
    await site.wait_for(first, "delivered")
    async with browser(site) as client, stream(client, f"topics=message&keys={first}") as events:
        await events.next()
        other = await send(site, "Other")
        await site.wait_for(other, "delivered")
        await site.post(f"/api/v1/messages/{first}/cancel")  # refused: it is delivered
        heartbeat = await events.next(timeout=5)
        assert heartbeat.comment, heartbeat


async def test_a_reconnecting_page_resumes_with_last_event_id(site: Harness) -> None:
    """A broken stream resumed with Last-Event-ID receives what happened while it was gone."""
    async with browser(site) as client:
        async with stream(client, "topics=message") as events:
            ready = await events.next()
        message_id = await send(site, "While away")
        await site.wait_for(message_id, "delivered")
        assert ready.id is not None
        async with stream(client, "topics=message", {"Last-Event-ID": ready.id}) as resumed:
            assert await resumed.until("delivered", message_id) == [
                "queued",
                "sending",
                "sent",
                "delivered",
            ]


async def test_polling_gets_the_same_updates(site: Harness) -> None:
    """Without a stream, a page asks with its cursor and gets what changed since."""
    async with browser(site) as client:
        start = (await client.get("/live/poll?topics=message")).json()
        assert start["events"] == []
        message_id = await send(site, "Polled")
        await site.wait_for(message_id, "delivered")
        answer = await client.get(f"/live/poll?topics=message&after={start['cursor']}")
        assert answer.status_code == 200
        body = answer.json()
        statuses = [e["data"]["status"] for e in body["events"] if e["data"]["id"] == message_id]
        assert statuses[-1] == "delivered"
        again = await client.get(f"/live/poll?topics=message&after={body['cursor']}")
        assert again.json()["events"] == []


async def test_live_updates_need_a_session(site: Harness) -> None:
    """Without logging in, neither the stream nor polling answers anything but 401."""
    async with httpx.AsyncClient(base_url=str(site.client.base_url)) as anonymous:
        for path in ("/live/events?topics=message", "/live/poll?topics=message"):
            answer = await anonymous.get(path, headers={"Accept": "text/event-stream"})
            assert answer.status_code == 401
            assert answer.json()["error"]["code"] == "login_required"


async def test_unknown_topics_are_refused_in_the_users_language(site: Harness) -> None:
    """A bad request is refused with a reason in the page's language."""
    async with browser(site, "dutch", "nl") as client:
        answer = await client.get("/live/poll?topics=weather")
        assert answer.status_code == 422
        assert "onderwerpen" in answer.json()["error"]["message"]


async def test_stopping_the_service_ends_open_streams(tmp_path: Path) -> None:
    """A server stops promptly while pages are connected: their streams end."""
    async with running_service(tmp_path / "s", listen=True) as h:
        client = httpx.AsyncClient(base_url=str(h.client.base_url))
        create_user(h.service, "agent", "agent")
        await log_in(client, "agent")
        response = await client.send(
            client.build_request("GET", "/live/events?topics=message"), stream=True
        )
        lines = response.aiter_lines()
        assert (await anext(lines)).startswith("retry")
        await h.service.live.stop()
        async with asyncio.timeout(5):
            async for _ in lines:
                pass
        await response.aclose()
        await client.aclose()
