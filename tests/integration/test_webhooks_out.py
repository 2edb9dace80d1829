"""Webhooks to other systems: signed, retried with backoff, dead after 24 h, replayable, and
never in the way of SMS."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
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
from smsdesk.process_config import AppConfig
from smsdesk.service import Service
from smsdesk.store import db
from smsdesk.store.tables import webhook_subscriptions
from smsdesk.store.webhooks import claim_due, record_attempt
from smsdesk.testing import FakeClock
from smsdesk.webhooks_out.signing import TIMESTAMP_HEADER, verify_signature
from smsdesk.webhooks_out.subscriptions import WebhookStore
from tests.conftest import database_url
from tests.support.harness import Harness, running_service

TO = "+31612345678"
# The receivers of these tests listen on loopback, which webhooks reach only when allowed.
LOOPBACK_ALLOWED = {"allow_private": ["127.0.0.0/8"]}


@pytest.fixture
async def harness(harness: Harness) -> Harness:
    await harness.configure(webhooks=LOOPBACK_ALLOWED)
    return harness


@pytest.fixture
async def any_db_harness(any_db_harness: Harness) -> Harness:
    await any_db_harness.configure(webhooks=LOOPBACK_ALLOWED)
    return any_db_harness


class Receiver:
    """Another system's webhook endpoint on loopback: records requests, answers as told."""

    def __init__(self) -> None:
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self.status = 200
        self.hang = False
        self.release = asyncio.Event()
        self.app = Starlette(routes=[Route("/events", self.endpoint, methods=["POST"])])

    async def endpoint(self, request: Request) -> Response:
        self.requests.append((dict(request.headers), await request.body()))
        if self.hang:
            await self.release.wait()
        return Response(b"receiver says no" if self.status >= 300 else b"ok", self.status)

    def events(self) -> list[dict[str, Any]]:
        return [json.loads(body) for _, body in self.requests]


@contextlib.asynccontextmanager
async def receiving() -> AsyncIterator[tuple[Receiver, str]]:
    """A receiver served on a loopback port; yields it and its URL."""
    receiver = Receiver()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(
        uvicorn.Config(receiver.app, log_level="warning", lifespan="off", access_log=False)
    )
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            await asyncio.sleep(0.005)
        yield receiver, f"http://127.0.0.1:{sock.getsockname()[1]}/events"
    finally:
        receiver.release.set()
        server.should_exit = True
        await task
        sock.close()


async def subscribe(h: Harness, url: str, *events: str) -> dict[str, Any]:
    response = await h.post("/api/v1/webhooks", {"url": url, "events": list(events)})
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def deliveries(h: Harness, subscription_id: str) -> list[Any]:
    return h.service.webhooks.store.deliveries(subscription_id=subscription_id)


async def send_sms(h: Harness, text: str = "hello") -> str:
    response = await h.post("/api/v1/messages", {"to": TO, "text": text})
    assert response.status_code == 201, response.text
    message_id: str = response.json()["id"]
    return message_id


async def test_delivered_sms_is_announced_with_a_verifiable_signature(
    any_db_harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    """A message.status event per public status reaches the receiver, signed with the secret;
    an altered body, another secret or a forged signature fails the check."""
    h = any_db_harness
    async with receiving() as (receiver, url):
        sub = await subscribe(h, url, "message.status")
        message_id = await send_sms(h)
        await h.wait_for(message_id, "delivered")
        await h.wait_until(lambda: len(receiver.requests) >= 2, "two status events")
        await h.wait_until(
            lambda: all(d.status == "delivered" for d in deliveries(h, sub["id"])),
            "deliveries recorded as delivered",
        )
    by_status = {event["data"]["status"]: event for event in receiver.events()}
    assert set(by_status) == {"sent", "delivered"}
    event = by_status["delivered"]
    assert event["type"] == "message.status" and event["created_at"].endswith("Z")
    assert event["data"]["message_id"] == message_id
    assert event["data"]["recipient"] == TO
    assert event["data"]["module"] == "simulator"
    assert event["data"]["code"]
    assert {"reference", "request_id", "at"} <= set(event["data"])
    secret = sub["secret"]
    for headers, body in receiver.requests:
        assert headers["x-smsdesk-event"] == "message.status"
        assert headers["x-smsdesk-delivery"]
        assert verify_signature(secret, headers, body, now=time.time())
        assert not verify_signature(secret, headers, body.replace(TO.encode(), b"+31600000000"))
        assert not verify_signature("whsec_not-the-right-secret", headers, body)
        forged = {**headers, "x-smsdesk-signature": "v1=" + "0" * 64}
        assert not verify_signature(secret, forged, body)
    listed = (await h.get(f"/api/v1/webhooks/{sub['id']}/deliveries")).json()["deliveries"]
    assert {d["payload"]["data"]["status"] for d in listed} == {"sent", "delivered"}
    assert all(d["attempts"] == 1 and d["last_status_code"] == 200 for d in listed)
    assert secret not in caplog.text


async def test_events_of_unsubscribed_types_are_not_delivered(harness: Harness) -> None:
    """A subscriber to inbound SMS hears nothing about sent messages; inactive ones neither."""
    async with receiving() as (receiver, url):
        inbound_only = await subscribe(harness, url, "inbound.received")
        paused = await subscribe(harness, url, "message.status")
        await harness.client.patch(
            f"/api/v1/webhooks/{paused['id']}", json={"active": False}, headers=harness.headers
        )
        await harness.wait_for(await send_sms(harness), "delivered")
    # Events are recorded in the transaction of the status change: none can come later.
    assert deliveries(harness, inbound_only["id"]) == []
    assert deliveries(harness, paused["id"]) == []
    assert receiver.requests == []


async def test_failing_receiver_is_retried_with_backoff_until_dead_then_replayed(
    tmp_path: Path, engine: Engine
) -> None:
    """500s are retried 10 s, then 20 s later (±20 %); after 24 h the delivery is dead; a
    replay delivers the same event (same id and body) once the receiver is back."""
    clock = FakeClock()
    async with (
        running_service(tmp_path, database_url(engine), clock=clock) as h,
        receiving() as (receiver, url),
    ):
        await h.configure(webhooks=LOOPBACK_ALLOWED)
        deliverer = h.service.deliverer
        assert deliverer is not None
        receiver.status = 500
        sub = await subscribe(h, url, "message.status")
        ping = (await h.post(f"/api/v1/webhooks/{sub['id']}/ping")).json()
        created = clock.now

        async def attempt(expected: int) -> Any:
            deliverer.wake()
            await h.wait_until(
                lambda: deliveries(h, sub["id"])[0].attempts >= expected, f"attempt {expected}"
            )
            return deliveries(h, sub["id"])[0]

        first = await attempt(1)
        assert (first.status, first.last_status_code) == ("pending", 500)
        assert first.last_error == "HTTP 500: receiver says no"
        assert 8 <= first.next_attempt_at - clock.now <= 12
        clock.advance(first.next_attempt_at - clock.now)
        second = await attempt(2)
        assert second.status == "pending"
        assert 16 <= second.next_attempt_at - clock.now <= 24
        clock.advance(25 * 3600)
        dead = await attempt(3)
        assert dead.status == "dead" and clock.now - created >= 24 * 3600
        listed = (await h.get("/api/v1/webhook-deliveries", params={"status": "dead"})).json()
        assert [d["id"] for d in listed["deliveries"]] == [ping["id"]]

        receiver.status = 200
        replay = await h.post(f"/api/v1/webhook-deliveries/{ping['id']}/replay")
        assert replay.status_code == 202, replay.text
        assert replay.json()["event_id"] == ping["event_id"]
        replayed = replay.json()["id"]
        await h.wait_until(
            lambda: any(
                d.id == replayed and d.status == "delivered" for d in deliveries(h, sub["id"])
            ),
            "the replay delivered",
        )
    assert len(receiver.requests) == 4
    headers, body = receiver.requests[-1]
    assert body == receiver.requests[0][1]  # same event, same body
    assert json.loads(body)["type"] == "ping"
    assert headers[TIMESTAMP_HEADER.lower()] == str(int(clock.now))
    assert verify_signature(sub["secret"], headers, body, now=clock.now)


async def test_replay_of_a_pending_delivery_is_refused(tmp_path: Path) -> None:
    clock = FakeClock()
    async with running_service(tmp_path, clock=clock) as h, receiving() as (receiver, url):
        await h.configure(webhooks=LOOPBACK_ALLOWED)
        receiver.status = 503
        sub = await subscribe(h, url, "optout.changed")
        ping = (await h.post(f"/api/v1/webhooks/{sub['id']}/ping")).json()
        refused = await h.post(f"/api/v1/webhook-deliveries/{ping['id']}/replay")
        assert refused.status_code == 409
        assert "still pending" in refused.json()["error"]["message"]
        missing = await h.post("/api/v1/webhook-deliveries/NOPE/replay")
        assert missing.status_code == 404


async def test_deactivated_or_deleted_subscription_makes_pending_deliveries_dead(
    tmp_path: Path,
) -> None:
    """Waiting retries do not go to a subscription that was paused or removed."""
    clock = FakeClock()
    async with running_service(tmp_path, clock=clock) as h, receiving() as (receiver, url):
        await h.configure(webhooks=LOOPBACK_ALLOWED)
        deliverer = h.service.deliverer
        assert deliverer is not None
        receiver.status = 500
        paused = await subscribe(h, url, "message.status")
        removed = await subscribe(h, url, "message.status")
        await h.post(f"/api/v1/webhooks/{paused['id']}/ping")
        await h.post(f"/api/v1/webhooks/{removed['id']}/ping")
        await h.wait_until(lambda: len(receiver.requests) == 2, "first attempts")
        await h.wait_until(lambda: deliverer.attempts == 2, "attempts recorded")
        patch = {"active": False}
        await h.client.patch(f"/api/v1/webhooks/{paused['id']}", json=patch, headers=h.headers)
        assert (
            await h.client.delete(f"/api/v1/webhooks/{removed['id']}", headers=h.headers)
        ).status_code == 204
        assert deliveries(h, removed["id"])[0].last_error == "subscription was deleted"
        clock.advance(3600)
        deliverer.wake()
        await h.wait_until(
            lambda: deliveries(h, paused["id"])[0].status == "dead", "paused delivery dead"
        )
        assert deliveries(h, paused["id"])[0].last_error == "subscription is deactivated"
        assert len(receiver.requests) == 2
        refused = await h.post(f"/api/v1/webhooks/{paused['id']}/ping")
        assert refused.status_code == 409


async def test_hanging_receiver_does_not_delay_sms(harness: Harness) -> None:
    """With every webhook slot stuck on a receiver that never answers, SMS still go out and
    are delivered promptly (well within the webhook timeout)."""
    async with receiving() as (receiver, url):
        receiver.hang = True
        await subscribe(harness, url, "message.status")
        started = time.monotonic()
        ids = [await send_sms(harness, f"hello {i}") for i in range(20)]
        for message_id in ids:
            await harness.wait_for(message_id, "delivered", timeout=5.0)
        elapsed = time.monotonic() - started
        deliverer = harness.service.deliverer
        assert deliverer is not None
        await harness.wait_until(lambda: deliverer.in_flight == deliverer.concurrency, "stuck")
        assert len(receiver.requests) == deliverer.concurrency
    assert elapsed < 5.0


async def test_invalid_subscriptions_are_refused_with_clear_errors(harness: Harness) -> None:
    for url in ("ftp://example.com/x", "not a url", "http://"):
        response = await harness.post(
            "/api/v1/webhooks", {"url": url, "events": ["message.status"]}
        )
        assert response.status_code == 422, url
        error = response.json()["error"]
        assert error["fields"][0]["field"] == "url"
        assert "http:// or https://" in error["message"]
    response = await harness.post(
        "/api/v1/webhooks", {"url": "https://crm.example.com/x", "events": ["message.sent"]}
    )
    assert response.status_code == 422
    message = response.json()["error"]["message"]
    assert "message.sent" in message
    assert "inbound.received, request.created, message.status, optout.changed" in message
    assert (await harness.get("/api/v1/webhooks/NOPE")).status_code == 404
    bad_status = await harness.get("/api/v1/webhook-deliveries", params={"status": "lost"})
    assert bad_status.status_code == 422


async def test_secret_is_shown_once_and_never_again(harness: Harness, tmp_path: Path) -> None:
    """Only the answer that creates (or rotates) a secret carries it: not the listings, not
    the database (encrypted), not the CLI."""
    created = await subscribe(harness, "https://crm.example.com/hook", "message.status")
    secret, sub_id = created["secret"], created["id"]
    assert secret.startswith("whsec_")
    await harness.post(f"/api/v1/webhooks/{sub_id}/ping")
    answers = [
        await harness.get("/api/v1/webhooks"),
        await harness.get(f"/api/v1/webhooks/{sub_id}"),
        await harness.client.patch(
            f"/api/v1/webhooks/{sub_id}", json={"description": "CRM"}, headers=harness.headers
        ),
        await harness.get(f"/api/v1/webhooks/{sub_id}/deliveries"),
        await harness.get("/api/v1/webhook-deliveries"),
    ]
    for answer in answers:
        assert answer.status_code == 200, answer.text
        assert secret not in answer.text and '"secret"' not in answer.text
    rotated = await harness.client.patch(
        f"/api/v1/webhooks/{sub_id}", json={"rotate_secret": True}, headers=harness.headers
    )
    new_secret = rotated.json()["secret"]
    assert new_secret != secret
    assert new_secret not in (await harness.get(f"/api/v1/webhooks/{sub_id}")).text
    with harness.service.engine.connect() as conn:
        stored = conn.execute(webhook_subscriptions.select()).one().secret
    assert new_secret not in stored and harness.service.box.decrypt(stored) == new_secret


def test_cli_adds_lists_replays_and_removes_without_showing_secrets(tmp_path: Path) -> None:
    data = tmp_path / "data"
    run = CliRunner(env={"SMSDESK_DATA_DIR": str(data), "COLUMNS": "250"})

    def ok(*args: str) -> str:
        result = run.invoke(cli, ["webhooks", *args])
        assert result.exit_code == 0, result.output
        return result.stdout

    def fails(*args: str) -> str:
        result = run.invoke(cli, ["webhooks", *args])
        assert result.exit_code != 0, result.output
        return result.stderr

    assert "http:// or https://" in fails("add", "ftp://x", "-e", "message.status")
    assert "Valid types" in fails("add", "https://crm.example.com/h", "-e", "nope")
    secret = ok("add", "https://crm.example.com/h", "-e", "message.status", "-e", "optout.changed")
    secret = secret.strip()
    assert secret.startswith("whsec_")
    listing = ok("list")
    assert "crm.example.com" in listing and secret not in listing
    service = Service(AppConfig(data_dir=data))
    store = service.webhooks.store
    sub_id = store.all()[0].id
    pending = store.ping(sub_id)
    assert "still pending" in fails("replay", pending.id)
    service.writer.run_sync(
        lambda c: record_attempt(
            c, pending.id, now=time.time(), status_code=410, error="HTTP 410", next_attempt_at=None
        )
    )
    assert "dead" in ok("deliveries", "--status", "dead")
    replayed = ok("replay", pending.id)
    assert f"event {pending.event_id}" in replayed
    as_json = json.loads(ok("deliveries", "--json", "--subscription", sub_id))
    assert [d["status"] for d in as_json] == ["pending", "dead"]
    assert secret not in json.dumps(as_json)
    assert "removed" in ok("remove", sub_id)
    assert [d.status for d in store.deliveries()] == ["dead", "dead"]
    assert "no webhook subscription" in fails("remove", sub_id)
    service.close()


@pytest.mark.postgres
def test_two_deliverers_never_claim_the_same_delivery(pg_engine: Engine) -> None:
    """On PostgreSQL a delivery being claimed by one process is skipped by another, and a
    leased one is not due for anyone until its lease expires."""
    store = WebhookStore(pg_engine, SecretBox(Fernet.generate_key()), time.time)
    sub, _ = store.create("https://crm.example.com/h", ["message.status"])
    for _ in range(6):
        store.ping(sub.id)
    now = time.time() + 1
    with db.write_transaction(pg_engine) as first, first.begin():
        mine = claim_due(first, now=now, lease_until=now + 60, limit=3)
        with db.write_transaction(pg_engine) as second, second.begin():
            theirs = claim_due(second, now=now, lease_until=now + 60, limit=6)
    assert len(mine) == 3 and len(theirs) == 3
    assert not {c.id for c in mine} & {c.id for c in theirs}
    with db.write_transaction(pg_engine) as third, third.begin():
        assert claim_due(third, now=now + 1, lease_until=now + 61, limit=6) == []
        assert len(claim_due(third, now=now + 61, lease_until=now + 121, limit=6)) == 6
