"""Outgoing webhooks never reach internal addresses unless the installation allows them:
refused at subscribe time (API and CLI, create and change), and at each delivery after DNS,
connecting to the address that was checked; redirects are not followed."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import threading
import time
import tomllib
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import uvicorn
from cryptography.fernet import Fernet
from sqlalchemy.engine import Engine
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from typer.testing import CliRunner

from smsdesk.cli import app as cli
from smsdesk.crypto import SecretBox
from smsdesk.domain.webhook_settings import WebhookSettings
from smsdesk.store.writer import Writer
from smsdesk.webhooks_out.deliverer import WebhookDeliverer
from smsdesk.webhooks_out.subscriptions import WebhookStore
from tests.support.harness import Harness

INTERNAL_URLS = [
    "http://127.0.0.1:8080/events",
    "http://169.254.169.254/latest/meta-data/",
    "http://localhost/events",
    "http://app.localhost/events",
    "http://[::1]/events",
    "http://10.0.0.1/events",
    "http://192.168.1.1/events",
    "http://172.16.5.4/events",
    "http://100.64.0.1/events",
    "http://0.0.0.0/events",
    "http://2130706433/events",
    "http://0177.0.0.1/events",
    "http://0x7f.1/events",
    "http://0x7f000001/events",
    "http://127.1/events",
    "http://[::ffff:127.0.0.1]/events",
    "http://[::ffff:a9fe:a9fe]/latest/meta-data/",
    "http://[64:ff9b::10.0.0.1]/events",
    "http://[fd00::1]/events",
    "http://[fe80::1]/events",
    "http://224.0.0.1/events",
    "http://255.255.255.255/events",
    "http://[::]/events",
    "http://evil@127.0.0.1/events",
]


class Endpoint:
    """An HTTP endpoint on a loopback address: records POSTs, answers 200 or redirects."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []
        self.redirect_to: str | None = None
        self.app = Starlette(routes=[Route("/events", self.endpoint, methods=["POST"])])

    async def endpoint(self, request: Request) -> Response:
        self.bodies.append(await request.body())
        if self.redirect_to:
            return Response(b"", 302, headers={"location": self.redirect_to})
        return Response(b"ok", 200)


@contextlib.asynccontextmanager
async def serving(host: str, port: int = 0) -> AsyncIterator[tuple[Endpoint, int]]:
    endpoint = Endpoint()
    sock = socket.socket()
    sock.bind((host, port))
    server = uvicorn.Server(
        uvicorn.Config(endpoint.app, log_level="warning", lifespan="off", access_log=False)
    )
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            await asyncio.sleep(0.005)
        yield endpoint, sock.getsockname()[1]
    finally:
        server.should_exit = True
        await task
        sock.close()


@contextlib.asynccontextmanager
async def inside_and_outside() -> AsyncIterator[tuple[Endpoint, Endpoint, int]]:
    """An internal service on 127.0.0.1 and, on the same port, an allowed receiver on
    127.0.0.2 (loopback's /8 stands in for the public internet and an internal network)."""
    async with serving("127.0.0.1") as (internal, port), serving("127.0.0.2", port) as (ok, _):
        yield internal, ok, port


async def create(h: Harness, url: str) -> Any:
    return await h.post("/api/v1/webhooks", {"url": url, "events": ["message.status"]})


def assert_refused(response: Any, url: str) -> None:
    assert response.status_code == 422, (url, response.text)
    error = response.json()["error"]
    assert error["fields"][0]["field"] == "url", url
    assert error["code"] == "invalid_field"


async def test_internal_addresses_are_refused_in_every_spelling(any_db_harness: Harness) -> None:
    """Create and change refuse each internal address; the refusal says why and what to do;
    a refused change leaves the subscription as it was."""
    h = any_db_harness
    h.service.webhooks.store.resolve = lambda host, port: ["93.184.216.34"]  # DNS, faked
    kept = await create(h, "https://hooks.example.com/events")
    assert kept.status_code == 201, kept.text
    path = f"/api/v1/webhooks/{kept.json()['id']}"
    for url in INTERNAL_URLS:
        assert_refused(await create(h, url), url)
        changed = await h.client.patch(path, json={"url": url}, headers=h.headers)
        assert_refused(changed, url)
    metadata = (await create(h, "http://169.254.169.254/latest/meta-data/")).json()
    message = metadata["error"]["message"]
    assert "the cloud metadata address" in message and "webhooks.allow_private" in message
    decimal = (await create(h, "http://2130706433/")).json()["error"]["message"]
    assert "2130706433: it means 127.0.0.1, a loopback address" in decimal
    assert (await h.get(path)).json()["url"] == "https://hooks.example.com/events"
    assert [s.url for s in h.service.webhooks.store.all()] == ["https://hooks.example.com/events"]


async def test_a_name_resolving_to_an_internal_address_is_refused(
    any_db_harness: Harness,
) -> None:
    """Every address a name resolves to is checked, at create and at change."""
    h = any_db_harness
    answers = {"crm.example.com": ["198.51.100.7", "93.184.216.34"]}
    answers["mixed.example.com"] = ["93.184.216.34", "10.0.0.7"]
    answers["public.example.com"] = ["93.184.216.34"]
    h.service.webhooks.store.resolve = lambda host, port: answers[host]  # DNS, faked
    good = await create(h, "https://public.example.com/hook")
    assert good.status_code == 201, good.text
    for url in ("https://mixed.example.com/hook", "https://crm.example.com/hook"):
        assert_refused(await create(h, url), url)
        path = f"/api/v1/webhooks/{good.json()['id']}"
        assert_refused(await h.client.patch(path, json={"url": url}, headers=h.headers), url)
    message = (await create(h, "https://mixed.example.com/hook")).json()["error"]["message"]
    assert "mixed.example.com: it resolves to 10.0.0.7, a private address" in message


async def test_the_allow_list_lets_an_on_premises_receiver_through(
    any_db_harness: Harness,
) -> None:
    """Loopback is refused until the installation allows it; then subscribing and a ping
    work; when it is allowed no more, the next ping is refused at delivery time."""
    h = any_db_harness
    async with serving("127.0.0.1") as (receiver, port):
        url = f"http://127.0.0.1:{port}/events"
        assert_refused(await create(h, url), url)
        await h.configure(webhooks={"allow_private": ["127.0.0.0/8"]})
        created = await create(h, url)
        assert created.status_code == 201, created.text
        sub = created.json()["id"]
        await h.post(f"/api/v1/webhooks/{sub}/ping")
        await h.wait_until(lambda: len(receiver.bodies) == 1, "the ping at the receiver")
        await h.configure(webhooks={"allow_private": []})
        refused = (await h.post(f"/api/v1/webhooks/{sub}/ping")).json()["id"]
        await h.wait_until(lambda: _attempted(h, refused), "the second ping attempted")
    row = next(d for d in h.service.webhooks.store.deliveries() if d.id == refused)
    assert row.status == "pending" and row.last_status_code is None
    assert "127.0.0.1: it is a loopback address" in row.last_error
    assert len(receiver.bodies) == 1


async def test_a_redirect_to_loopback_is_not_followed(any_db_harness: Harness) -> None:
    """An allowed receiver answering 302 to an internal address: the attempt fails with the
    reason, and the internal address is never contacted."""
    h = any_db_harness
    await h.configure(webhooks={"allow_private": ["127.0.0.2/32"]})
    async with inside_and_outside() as (internal, receiver, port):
        receiver.redirect_to = f"http://127.0.0.1:{port}/events"
        created = await create(h, f"http://127.0.0.2:{port}/events")
        assert created.status_code == 201, created.text
        ping = (await h.post(f"/api/v1/webhooks/{created.json()['id']}/ping")).json()["id"]
        await h.wait_until(lambda: _attempted(h, ping), "the ping attempted")
    row = next(d for d in h.service.webhooks.store.deliveries() if d.id == ping)
    assert (row.status, row.last_status_code) == ("pending", 302)
    assert "redirects are not followed" in row.last_error
    assert f"http://127.0.0.1:{port}/events" in row.last_error
    assert len(receiver.bodies) == 1 and internal.bodies == []


async def test_a_rebinding_name_never_reaches_loopback(engine: Engine) -> None:
    """A name that answers an allowed address, then 127.0.0.1, then the allowed one again:
    each attempt connects to the address it checked, so the internal service hears nothing
    and the attempt that saw 127.0.0.1 fails saying so."""
    allowed = WebhookSettings(allow_private=["127.0.0.2/32"]).networks()
    lookups: list[str] = []
    lock = threading.Lock()

    def rebinding(host: str, port: int) -> list[str]:
        with lock:
            lookups.append(host)
            return ["127.0.0.2"] if len(lookups) % 2 else ["127.0.0.1"]

    box = SecretBox(Fernet.generate_key())
    store = WebhookStore(
        engine, box, time.time, allowed=lambda: allowed, resolve=lambda h, p: ["127.0.0.2"]
    )
    writer = Writer(engine)
    writer.start()
    deliverer = WebhookDeliverer(
        writer=writer, box=box, poll_interval=0.01, allowed=lambda: allowed, resolve=rebinding
    )
    try:
        async with inside_and_outside() as (internal, receiver, port):
            sub, _ = store.create(f"http://hooks.example.com:{port}/events", ["message.status"])
            await deliverer.start()
            for _ in range(4):
                store.ping(sub.id)
                deliverer.wake()
            await _wait(lambda: deliverer.attempts == 4, "four attempts")
    finally:
        await deliverer.stop()
        writer.stop()
    assert internal.bodies == []
    assert len(receiver.bodies) == 2 and len(lookups) == 4
    failed = [d for d in store.deliveries() if d.status == "pending"]
    assert len(failed) == 2
    for row in failed:
        assert "hooks.example.com: it resolves to 127.0.0.1, a loopback address" in row.last_error
    assert all(json.loads(body)["type"] == "ping" for body in receiver.bodies)


def test_cli_refuses_internal_urls_and_sets_the_allow_list(tmp_path: Path) -> None:
    run = CliRunner(env={"SMSDESK_DATA_DIR": str(tmp_path / "data"), "COLUMNS": "250"})
    refused = run.invoke(cli, ["webhooks", "add", "http://0x7f.1/x", "-e", "message.status"])
    assert refused.exit_code != 0
    assert "loopback address" in refused.stderr and "allow_private" in refused.stderr
    bad = run.invoke(cli, ["settings", "set", "webhooks.allow_private=10.1.2.0/33"])
    assert bad.exit_code != 0 and "e.g. 10.1.2.0/24" in bad.stderr
    ok = run.invoke(cli, ["settings", "set", "webhooks.allow_private=10.1.2.7/24,127.0.0.1"])
    assert ok.exit_code == 0, ok.output
    shown = tomllib.loads(run.invoke(cli, ["settings", "show"]).stdout)
    assert shown["webhooks"] == {"allow_private": ["10.1.2.0/24", "127.0.0.1/32"]}
    added = run.invoke(cli, ["webhooks", "add", "http://127.0.0.1:9/x", "-e", "message.status"])
    assert added.exit_code == 0, added.output


def _attempted(h: Harness, delivery_id: str) -> bool:
    return any(d.id == delivery_id and d.attempts for d in h.service.webhooks.store.deliveries())


async def _wait(condition: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.01)
