"""`smsdesk serve` sending through every provider module to its fake on loopback.

What an administrator does: pick the module, enter its settings, give the provider the
callback URLs, press *Send test*, then send through the API; both messages end *delivered* from
the provider's own delivery report arriving at the running service.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest

from smsdesk.testing import free_port
from smsdesk.testing.fakes import FAKES, FakeProvider, FakeSms, load_fake
from tests.e2e.test_serve import api, wait_for_status
from tests.support.processes import Processes, Server, smsdesk_env, wait_until

pytestmark = pytest.mark.slow


def report(fake: FakeProvider, sms: FakeSms) -> httpx.Response:
    async def send() -> httpx.Response:
        async with httpx.AsyncClient(timeout=10) as client:
            return await fake.send_report(client, sms, True)

    return asyncio.run(send())


def configure(client: httpx.Client, module: str, settings: dict[str, Any]) -> None:
    saved = client.put(
        "/api/v1/settings",
        json={"module": module, "sender": "Smsdesk", "module_settings": {module: settings}},
    )
    assert saved.status_code == 200, saved.text


def started(processes: Processes, data_dir: Path) -> tuple[Server, str]:
    server = processes.server(smsdesk_env(data_dir=data_dir)).wait_ready()
    key = server.first_key()
    assert key is not None, server.output()
    return server, key


@pytest.mark.parametrize("module", sorted(FAKES))
def test_send_test_and_the_api_deliver_through_the_module(
    module: str, processes: Processes, tmp_path: Path
) -> None:
    with load_fake(module)() as fake:
        server, key = started(processes, tmp_path / "data")
        with api(server, key) as client:
            urls = client.get(f"/api/v1/modules/{module}/callbacks").json()
            fake.point_callbacks(urls["status"], urls["inbound"])
            configure(client, module, fake.module_settings())

            tested = client.post(
                "/api/v1/settings/test", json={"to": "+31612345678", "text": "Send test"}
            ).json()
            assert tested["accepted"] is True, tested
            sent = client.post(
                "/api/v1/messages", json={"to": "+31687654321", "text": "Your request is solved"}
            )
            assert sent.status_code == 201, sent.text
            message_id = sent.json()["id"]
            wait_for_status(client, message_id, "sent")

            for sms in (*fake.sent_to("+31612345678"), *fake.sent_to("+31687654321")):
                assert report(fake, sms).is_success
            for delivered_id in (tested["id"], message_id):
                delivered = wait_for_status(client, delivered_id, "delivered")
                assert delivered["timeline"][-1]["source"] == "report"
    assert server.stop() == 0, server.output()


def test_an_outage_keeps_messages_queued_and_sends_each_once_after(
    processes: Processes, tmp_path: Path
) -> None:
    """The provider is down when messages are sent; they wait, retry, and go out exactly once."""
    port = free_port()
    fake = load_fake("intelecom")()
    fake.start(port)
    settings = fake.module_settings()
    fake.stop()
    server, key = started(processes, tmp_path / "data")
    numbers = [f"+3161234500{i}" for i in range(5)]
    with api(server, key) as client:
        configure(client, "intelecom", settings)
        ids = [
            client.post("/api/v1/messages", json={"to": n, "text": "During the outage"}).json()[
                "id"
            ]
            for n in numbers
        ]

        def waiting_with_reason() -> bool:
            bodies = [client.get(f"/api/v1/messages/{i}").json() for i in ids]
            return all(
                b["status"] == "queued" and "could not reach" in (b["error"] or "").lower()
                for b in bodies
            )

        wait_until(waiting_with_reason, "every message queued with the connection error")
        fake.start(port)
        try:
            for message_id in ids:
                wait_for_status(client, message_id, "sent")
            assert sorted(sms.to for sms in fake.messages) == sorted(numbers)
            attempts = [client.get(f"/api/v1/messages/{i}").json()["attempts"] for i in ids]
            assert min(attempts) >= 2
        finally:
            fake.stop()
    assert server.stop() == 0, server.output()
