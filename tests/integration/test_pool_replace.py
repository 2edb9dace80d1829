"""A connection's provider replaced after a settings change: the caller gets the new one at
once, while the old one finishes what it was doing in the background."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import httpx

from smsdesk.domain.settings import SmsConfiguration
from smsdesk.outbox.pool import ProviderPool
from smsdesk.providers.simulator import SimulatorProvider
from tests.providers.test_simulator import posting
from tests.support.receiver import WebhookReceiver


def simulator(report_delay: float) -> SmsConfiguration:
    return SmsConfiguration(module_settings={"simulator": {"report_delay": report_delay}})


async def test_a_replaced_provider_posting_a_report_does_not_hold_up_the_new_one(
    tmp_path: Path,
) -> None:
    """The old simulator is posting a report to this service when the settings change. The
    request asking for the provider may be that very report's callback, so it must get the
    new provider without waiting for the old one to finish posting."""
    gate = threading.Event()
    with WebhookReceiver(gate) as receiver:
        async with httpx.AsyncClient() as http:
            pool = ProviderPool(http, tmp_path, background=True)
            old = await pool.get("simulator", simulator(0))
            assert isinstance(old, SimulatorProvider)
            await posting(old, receiver)
            getting = asyncio.ensure_future(pool.get("simulator", simulator(0.5)))
            done, _ = await asyncio.wait({getting}, timeout=old.close_grace / 2)
            assert done, "the new provider waited for the old one's post"
            assert getting.result() is not old
            gate.set()  # the old one's post is answered; it closes
            await asyncio.wait_for(pool.close(), timeout=10)
    assert len(receiver.received()) == 1
