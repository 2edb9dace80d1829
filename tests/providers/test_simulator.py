"""The simulator module's own lifecycle: its report loop ends when the provider is closed."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx

from smsdesk.domain.sms import OutboundSms
from smsdesk.providers.base import ProviderContext
from smsdesk.providers.simulator import SimulatorProvider, SimulatorSettings


def sms(message_id: str) -> OutboundSms:
    return OutboundSms(
        message_id=message_id,
        to="+31612345678",
        sender="Smsdesk",
        text="Hello",
        encoding="gsm7",
        segments=1,
        priority=2,
        status_callback_url="http://127.0.0.1:9/never",
    )


async def until_idle(provider: SimulatorProvider) -> None:
    for _ in range(5000):
        if provider.idle:
            return
        await asyncio.sleep(0.001)
    raise AssertionError("the report loop never waited for work")


async def test_closing_right_after_a_send_ends_the_report_loop(tmp_path: Path) -> None:
    """A send wakes the waiting report loop; closing in that same moment (a Send test, then
    the service stops) still ends the loop, so a stopping `serve` does not hang."""
    async with httpx.AsyncClient() as http:
        provider = SimulatorProvider(
            SimulatorSettings(report_delay=60), http, ProviderContext(tmp_path)
        )
        await provider.start()
        await until_idle(provider)
        [result] = await provider.send([sms("msg-1")])
        assert result.error is None
        closing = asyncio.ensure_future(provider.close())
        done, _ = await asyncio.wait({closing}, timeout=10)
        assert done, "close() did not return: the report loop is still running"
        closing.result()


async def test_a_closed_simulator_can_start_again(tmp_path: Path) -> None:
    """After close and start, reports due are delivered again (the loop runs)."""
    async with httpx.AsyncClient() as http:
        provider = SimulatorProvider(
            SimulatorSettings(report_delay=60), http, ProviderContext(tmp_path)
        )
        await provider.start()
        await provider.close()
        await provider.start()
        await until_idle(provider)
        await provider.close()
