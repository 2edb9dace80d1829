"""An smsdesk service running in-process, reachable over an httpx client, for tests.

By default providers' callbacks (the simulator's delivery reports) are sent through the same
client, so they travel the real webhook path without a network socket. With `listen=True` the
service serves HTTP on a loopback port instead, so that a provider's fake server in another
thread can call its webhooks, and providers reach their fakes over real sockets.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa
import uvicorn

from smsdesk.process_config import AppConfig
from smsdesk.service import Service
from smsdesk.store.tables import inbound_messages
from smsdesk.web.app import create_app

BASE_URL = "http://smsdesk.test"
# How long a test waits for what normally takes milliseconds. Generous, so that a stall of a
# loaded CI machine is not a failure; a condition that never comes true still fails.
PATIENCE = 30.0


class Harness:
    """A started service, an HTTP client bound to its app, and an admin API key."""

    def __init__(
        self, service: Service, client: httpx.AsyncClient, key: str, app: Any = None
    ) -> None:
        self.service = service
        self.client = client
        self.app = app
        self.key = key
        self.headers = {"Authorization": f"Bearer {key}"}

    async def post(self, path: str, body: Any = None, **kwargs: Any) -> httpx.Response:
        return await self.client.post(path, json=body, headers=self.headers, **kwargs)

    def browser(self) -> httpx.AsyncClient:
        """A client of its own (own cookies, no API key), as a person's browser would be."""
        return httpx.AsyncClient(
            transport=httpx.ASGITransport(self.app), base_url=str(self.client.base_url)
        )

    async def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return await self.client.get(path, headers=self.headers, **kwargs)

    async def put(self, path: str, body: Any) -> httpx.Response:
        return await self.client.put(path, json=body, headers=self.headers)

    async def receive(self, sender: str, text: str, **extra: Any) -> dict[str, Any]:
        """Hand an SMS to the service (POST /api/v1/inbound) and wait until it is processed."""
        response = await self.post(
            "/api/v1/inbound", {"from": sender, "to": "+3197010", "text": text, **extra}
        )
        assert response.status_code in (200, 202), response.text
        inbound_id = response.json()["id"]

        def processed() -> bool:
            with self.service.engine.connect() as conn:
                state = conn.execute(
                    sa.select(inbound_messages.c.state).where(inbound_messages.c.id == inbound_id)
                ).scalar_one()
            return bool(state != "pending")

        await self.wait_until(processed, f"inbound {inbound_id} processed")
        body: dict[str, Any] = (await self.get(f"/api/v1/inbound/{inbound_id}")).json()
        return body

    async def configure(self, **changes: Any) -> None:
        response = await self.put("/api/v1/settings", changes)
        assert response.status_code == 200, response.text

    async def wait_for(
        self, message_id: str, *statuses: str, timeout: float = PATIENCE
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

    async def wait_error(self, message_id: str, timeout: float = PATIENCE) -> dict[str, Any]:
        """Wait until a failed attempt is recorded and the message is queued again."""
        deadline = time.monotonic() + timeout
        while True:
            body: dict[str, Any] = (await self.get(f"/api/v1/messages/{message_id}")).json()
            if body["status"] == "queued" and body["attempts"] >= 1 and body["error"]:
                return body
            assert body["status"] in ("queued", "sending"), body
            assert time.monotonic() < deadline, f"no failed attempt recorded: {body}"
            await self.idle_scans(1)

    async def wait_until(
        self, condition: Callable[[], bool], what: str, timeout: float = PATIENCE
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
    listen: bool = False,
    **options: Any,
) -> AsyncIterator[Harness]:
    config = AppConfig(data_dir=data_dir, database_url=database_url, poll_interval=0.02, **options)
    service = Service(config, clock=clock)
    service.upgrade()
    app = create_app(service, manage_service=False)
    if listen:
        async with (
            _served(app) as base_url,
            httpx.AsyncClient(base_url=base_url, timeout=PATIENCE) as client,
        ):
            await service.start(dispatcher=dispatcher, public_url=base_url)
            async with _started(service) as key:
                yield Harness(service, client, key, app)
        return
    transport = httpx.ASGITransport(app)
    async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as client:
        await service.start(dispatcher=dispatcher, http=client, public_url=BASE_URL)
        async with _started(service) as key:
            yield Harness(service, client, key, app)


@asynccontextmanager
async def _started(service: Service) -> AsyncIterator[str]:
    """An admin key for a started service, which is stopped and closed afterwards."""
    try:
        _, key = service.keys.create("test admin", "admin")
        yield key
    finally:
        await service.stop()
        service.close()


@asynccontextmanager
async def _served(app: Any) -> AsyncIterator[str]:
    """Serve `app` on a loopback port in this event loop; yields its base URL."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(app, log_level="warning", lifespan="off", access_log=False)
    )
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.005)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await task
        sock.close()
