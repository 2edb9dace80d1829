"""Every provider module against its fake server, through a service listening on loopback."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from smsdesk.providers.registry import get_module
from smsdesk.store.tables import inbound_messages
from smsdesk.testing import FakeClock
from smsdesk.testing.fakes import FAKES, FakeProvider, load_fake
from tests.support.harness import Harness, running_service

SENDER = "Smsdesk"


@dataclass
class Contract:
    """A running service whose module is pointed at a started fake of its provider."""

    module: str
    harness: Harness
    fake: FakeProvider
    clock: FakeClock

    @property
    def max_batch(self) -> int:
        provider_class = get_module(self.module).provider_class
        assert provider_class is not None
        return provider_class.max_batch

    async def send(self, to: str, text: str, **fields: Any) -> dict[str, Any]:
        response = await self.harness.post("/api/v1/messages", {"to": to, "text": text, **fields})
        assert response.status_code == 201, response.text
        body: dict[str, Any] = response.json()
        return body

    async def sent(self, to: str, text: str) -> dict[str, Any]:
        """Send one message and wait until the provider accepted it."""
        accepted = await self.send(to, text)
        return await self.harness.wait_for(accepted["id"], "sent")

    async def message(self, message_id: str) -> dict[str, Any]:
        body: dict[str, Any] = (await self.harness.get(f"/api/v1/messages/{message_id}")).json()
        return body

    async def wait_error(self, message_id: str) -> dict[str, Any]:
        return await self.harness.wait_error(message_id)

    async def later(self, seconds: float) -> None:
        """Move the clock on and let the dispatcher see it."""
        self.clock.advance(seconds)
        await self.harness.idle_scans(2)

    def inbound_rows(self) -> list[Any]:
        with self.harness.service.engine.connect() as conn:
            return list(
                conn.execute(
                    sa.select(inbound_messages).where(inbound_messages.c.module == self.module)
                )
            )


@pytest.fixture(params=sorted(FAKES))
async def contract(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Contract]:
    module: str = request.param
    fake = load_fake(module)().start()
    clock = FakeClock(time.time())
    try:
        async with running_service(tmp_path, listen=True, clock=clock) as harness:
            secret = harness.service.settings.callback_secret()
            base = f"{harness.service.public_url}/webhooks/{module}"
            fake.point_callbacks(f"{base}/status/{secret}", f"{base}/inbound/{secret}")
            await harness.configure(
                module=module,
                sender=SENDER,
                default_country_code="+31",
                module_settings={module: fake.module_settings()},
                limits={module: {"rate_limit": 0, "concurrency": 4}},
            )
            await harness.idle_scans(2)
            yield Contract(module, harness, fake, clock)
    finally:
        fake.stop()
