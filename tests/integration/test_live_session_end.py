"""An open live stream ends with its session: within 2 s of a logout, a revocation or the
session's expiry, and polling with that session's cookie is then refused with 401."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import pytest
from sqlalchemy.engine import Engine

from smsdesk.testing import FakeClock
from tests.conftest import database_url
from tests.support.harness import Harness, running_service
from tests.support.webui import create_user, log_in, page_csrf

SESSION_COOKIE = "smsdesk_session"
QUERY = "topics=request"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def site(tmp_path: Path, engine: Engine, clock: FakeClock) -> AsyncIterator[Harness]:
    """A served smsdesk on each database, on a clock the test moves."""
    async with running_service(tmp_path, database_url(engine), listen=True, clock=clock) as h:
        yield h


async def _ended_within(lines: AsyncIterator[str], seconds: float) -> None:
    """Read the stream until the server ends it; fail if it is still open after `seconds`."""
    async with asyncio.timeout(seconds):
        async for _ in lines:
            pass


async def _check_stream_ends(
    h: Harness, end_session: Callable[[httpx.AsyncClient], object]
) -> None:
    create_user(h.service, "anna", "agent")
    async with httpx.AsyncClient(base_url=str(h.client.base_url)) as client:
        assert (await log_in(client, "anna")).status_code == 303
        token = client.cookies[SESSION_COOKIE]
        async with client.stream("GET", f"/live/events?{QUERY}") as response:
            assert response.status_code == 200
            lines = response.aiter_lines()
            assert (await anext(lines)).startswith("retry:")
            result = end_session(client)
            if asyncio.iscoroutine(result):
                await result
            await _ended_within(lines, 2.0)
        async with httpx.AsyncClient(base_url=str(h.client.base_url)) as fresh:
            fresh.cookies.set(SESSION_COOKIE, token)
            polled = await fresh.get(f"/live/poll?{QUERY}")
    assert polled.status_code == 401
    assert polled.json()["error"]["code"] == "login_required"
    assert h.service.live.subscribers == 0


async def test_logout_ends_the_sessions_stream(site: Harness) -> None:
    """The user logs out in another tab: the stream closes, the old cookie polls 401."""

    async def log_out(client: httpx.AsyncClient) -> None:
        token = client.cookies[SESSION_COOKIE]
        csrf = await page_csrf(client, "/requests")
        answer = await client.post("/logout", data={"csrf_token": csrf})
        assert answer.status_code == 303
        client.cookies.set(SESSION_COOKIE, token)  # the stream's own cookie is unchanged

    await _check_stream_ends(site, log_out)


async def test_a_revoked_session_ends_its_stream(site: Harness) -> None:
    """An administrator deletes the user (its sessions go with it)."""
    await _check_stream_ends(site, lambda _: site.service.users.delete("anna"))


async def test_an_expired_session_ends_its_stream(site: Harness, clock: FakeClock) -> None:
    """Eight idle hours pass (no request renews the session while the page only listens)."""
    await _check_stream_ends(site, lambda _: clock.advance(8 * 3600 + 60))
