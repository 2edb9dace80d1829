"""A customer's SMS conversation through `smsdesk serve`, with the simulator and provider fakes.

The customer writes "HELP my order 123"; a request opens for them with "my order 123"; the
agent's reply goes out and is delivered; the customer's answer joins the request; "STOP" opts
the number out and the next SMS to it is refused. Another system subscribed to webhooks gets
every event, signed with its secret.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from smsdesk.testing.fakes import FakeProvider, load_fake
from smsdesk.webhooks_out.signing import verify_signature
from tests.e2e.test_serve import api, wait_for_status
from tests.support.processes import Processes, smsdesk_env, wait_until
from tests.support.receiver import WebhookReceiver

pytestmark = pytest.mark.slow

CUSTOMER = "+31612345678"
OUR_NUMBER = "+3197010200300"
EVENTS = ["inbound.received", "request.created", "message.status", "optout.changed"]


class Channel:
    """How the customer's phone reaches smsdesk: a provider fake, or the simulator's webhook."""

    def __init__(self, module: str, fake: FakeProvider | None, client: httpx.Client) -> None:
        self.module = module
        self.fake = fake
        self.client = client
        self.inbound_url = ""
        self.count = 0

    def configure(self) -> None:
        urls = self.client.get(f"/api/v1/modules/{self.module}/callbacks").json()
        self.inbound_url = urls["inbound"]
        settings: dict[str, Any] = {"report_delay": 0.05}
        if self.fake is not None:
            self.fake.point_callbacks(urls["status"], urls["inbound"])
            settings = self.fake.module_settings()
        saved = self.client.put(
            "/api/v1/settings",
            json={
                "module": self.module,
                "default_country_code": "+31",
                "sender": "Support",
                "inbound": {"sms_endpoint": "HELP"},
                "module_settings": {self.module: settings},
                # The other system's receiver listens on loopback.
                "webhooks": {"allow_private": ["127.0.0.0/8"]},
            },
        )
        assert saved.status_code == 200, saved.text

    def customer_writes(self, text: str) -> None:
        self.count += 1
        if self.fake is None:
            response = httpx.post(
                self.inbound_url,
                json={"id": f"mo-{self.count}", "from": CUSTOMER, "to": OUR_NUMBER, "text": text},
            )
        else:
            fake = self.fake

            async def forward() -> httpx.Response:
                async with httpx.AsyncClient(timeout=10) as client:
                    return await fake.send_inbound(client, CUSTOMER, OUR_NUMBER, text)

            response = asyncio.run(forward())
        assert response.is_success, response.text

    def phone_receives(self, message_id: str) -> None:
        """The reply reaches the phone: the provider reports it delivered."""
        if self.fake is None:
            return  # the simulator reports by itself
        fake = self.fake
        wait_for_status(self.client, message_id, "sent")

        async def report() -> None:
            async with httpx.AsyncClient(timeout=10) as client:
                for sms in fake.sent_to(CUSTOMER):
                    assert (await fake.send_report(client, sms, True)).is_success

        asyncio.run(report())


@contextmanager
def provider(module: str) -> Iterator[FakeProvider | None]:
    if module == "simulator":
        yield None
        return
    with load_fake(module)() as fake:
        yield fake


def inbound_states(client: httpx.Client) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = client.get("/api/v1/inbound", params={"state": "all"}).json()[
        "inbound"
    ]
    return items


def wait_processed(client: httpx.Client, count: int) -> list[dict[str, Any]]:
    """The first `count` inbound SMS, oldest first, once all of them are processed."""

    def done() -> list[dict[str, Any]] | None:
        items = inbound_states(client)
        if len(items) >= count and all(i["state"] != "pending" for i in items):
            return list(reversed(items))
        return None

    return wait_until(done, f"{count} inbound SMS processed", timeout=15)


@pytest.mark.parametrize("module", ["simulator", "intelecom", "twilio"])
def test_a_customer_conversation_from_help_to_stop(
    module: str, processes: Processes, tmp_path: Path
) -> None:
    with provider(module) as fake, WebhookReceiver() as receiver:
        server = processes.server(smsdesk_env(data_dir=tmp_path / "data")).wait_ready()
        key = server.first_key()
        assert key is not None, server.output()
        with api(server, key) as client:
            channel = Channel(module, fake, client)
            channel.configure()
            subscription = client.post(
                "/api/v1/webhooks", json={"url": receiver.url, "events": EVENTS}
            )
            assert subscription.status_code == 201, subscription.text
            secret = subscription.json()["secret"]
            customer = client.post(
                "/api/v1/customers", json={"name": "Anna de Vries", "numbers": ["0612345678"]}
            )
            assert customer.status_code == 201, customer.text
            customer_id = customer.json()["id"]

            channel.customer_writes("HELP my order 123")
            [first] = wait_processed(client, 1)
            assert (first["state"], first["content"]) == ("request", "my order 123")
            assert first["customer_id"] == customer_id
            request_id = first["request_id"]

            reply = client.post(
                f"/api/v1/requests/{request_id}/reply",
                json={"text": "It ships tomorrow.", "author": "Bob"},
            )
            assert reply.status_code == 201, reply.text
            channel.phone_receives(reply.json()["id"])
            wait_for_status(client, reply.json()["id"], "delivered")

            channel.customer_writes("HELP thanks, and the invoice?")
            second = wait_processed(client, 2)[1]
            assert second["request_id"] == request_id

            request = client.get(f"/api/v1/requests/{request_id}").json()
            assert request["customer"]["name"] == "Anna de Vries"
            assert [(e["direction"], e["body"], e["status"]) for e in request["conversation"]] == [
                ("in", "my order 123", "received"),
                ("out", "It ships tomorrow.", "delivered"),
                ("in", "thanks, and the invoice?", "received"),
            ]

            channel.customer_writes("STOP")
            assert wait_processed(client, 3)[2]["state"] == "opt_out"
            refused = client.post("/api/v1/messages", json={"to": CUSTOMER, "text": "Offer!"})
            assert refused.status_code == 422
            assert "opted out" in refused.json()["error"]["message"]

            def every_event_arrived() -> bool:
                types = [e["type"] for e in receiver.events()]
                return (
                    types.count("inbound.received") == 3
                    and types.count("request.created") == 1
                    and types.count("optout.changed") == 1
                    and any(
                        e["data"]["status"] == "delivered"
                        for e in receiver.events("message.status")
                    )
                )

            wait_until(every_event_arrived, "every event at the receiver", timeout=15)
        assert server.stop() == 0, server.output()

    for headers, body in receiver.received():
        assert verify_signature(secret, headers, body), headers
        assert not verify_signature(secret, headers, body.replace(b"}", b" }", 1))
        assert not verify_signature("another secret", headers, body)
        assert not verify_signature(secret, headers, body, now=time.time() + 3600)
    created = receiver.events("request.created")[0]["data"]
    assert (created["id"], created["customer_id"]) == (request_id, customer_id)
    opted = receiver.events("optout.changed")[0]["data"]
    assert (opted["number"], opted["opted_out"], opted["keyword"]) == (CUSTOMER, True, "STOP")
    statuses = [e["data"]["status"] for e in receiver.events("message.status")]
    assert statuses[-2:] == ["sent", "delivered"] or statuses == ["sent", "delivered"]
