"""An smsdesk service running in-process, reachable over an httpx client, for tests.

Providers' callbacks (the simulator's delivery reports) are sent through the same client, so
they travel the real webhook path without a network socket.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx

from smsdesk.config import AppConfig
from smsdesk.service import Service
from smsdesk.web.app import create_app

BASE_URL = "http://smsdesk.test"


class Harness:
    """A started service, an HTTP client bound to its app, and an admin API key."""

    def __init__(self, service: Service, client: httpx.AsyncClient, key: str) -> None:
        self.service = service
        self.client = client
        self.key = key
        self.headers = {"Authorization": f"Bearer {key}"}

    async def post(self, path: str, body: Any = None, **kwargs: Any) -> httpx.Response:
        return await self.client.post(path, json=body, headers=self.headers, **kwargs)

    async def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return await self.client.get(path, headers=self.headers, **kwargs)

    async def put(self, path: str, body: Any) -> httpx.Response:
        return await self.client.put(path, json=body, headers=self.headers)

    async def configure(self, **changes: Any) -> None:
        response = await self.put("/api/v1/settings", changes)
        assert response.status_code == 200, response.text

    async def wait_for(
        self, message_id: str, *statuses: str, timeout: float = 10.0
    ) -> dict[str, Any]:
        """Poll a message until it reaches one of `statuses`; fail after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            body: dict[str, Any] = (await self.get(f"/api/v1/messages/{message_id}")).json()
            if body["status"] in statuses:
                return body
            if time.monotonic() > deadline:
                raise AssertionError(f"{message_id} is {body['status']}, not {statuses}: {body}")
            await asyncio.sleep(0.01)

    async def wait_until(
        self, condition: Callable[[], bool], what: str, timeout: float = 10.0
    ) -> None:
        """Poll `condition` until it holds; fail after `timeout` seconds naming `what`."""
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}")
            await asyncio.sleep(0.01)

    async def idle_scans(self, count: int = 3) -> None:
        """Wait until the dispatcher has scanned the outbox `count` more times."""
        dispatcher = self.service.dispatcher
        assert dispatcher is not None, "the dispatcher is not running"
        target = dispatcher.scans + count
        dispatcher.wake()
        await self.wait_until(
            lambda: dispatcher.scans >= target and dispatcher.sends_in_flight == 0,
            f"{count} dispatcher scans",
        )


@asynccontextmanager
async def running_service(
    data_dir: Path,
    database_url: str = "",
    *,
    dispatcher: bool = True,
    clock: Callable[[], float] = time.time,
    **options: Any,
) -> AsyncIterator[Harness]:
    config = AppConfig(data_dir=data_dir, database_url=database_url, poll_interval=0.02, **options)
    service = Service(config, clock=clock)
    service.upgrade()
    app = create_app(service, manage_service=False)
    transport = httpx.ASGITransport(app)
    async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as client:
        await service.start(dispatcher=dispatcher, http=client, public_url=BASE_URL)
        _, key = service.keys.create("test admin", "admin")
        try:
            yield Harness(service, client, key)
        finally:
            await service.stop()
            service.close()
