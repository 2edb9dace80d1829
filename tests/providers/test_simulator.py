"""The simulator module's own lifecycle: its report loop ends when the provider is closed."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import httpx

from smsdesk.domain.sms import OutboundSms
from smsdesk.providers.base import ProviderContext
from smsdesk.providers.simulator import SimulatorLedger, SimulatorProvider, SimulatorSettings
from tests.support.receiver import WebhookReceiver


def sms(message_id: str, callback: str = "http://127.0.0.1:9/never") -> OutboundSms:
    return OutboundSms(
        message_id=message_id,
        to="+31612345678",
        sender="Smsdesk",
        text="Hello",
        encoding="gsm7",
        segments=1,
        priority=2,
        status_callback_url=callback,
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


def reports_waiting(data_dir: Path) -> list[tuple[int, str, str, str, str]]:
    """The reports a new claim would take now (claimed ones are not among them)."""
    ledger = SimulatorLedger(data_dir / "simulator.sqlite3")
    try:
        return ledger.claim_reports(10, 30)
    finally:
        ledger.close()


async def posting(provider: SimulatorProvider, receiver: WebhookReceiver) -> None:
    """Send one message and wait until its report is being posted to `receiver`."""
    [result] = await provider.send([sms("msg-1", receiver.url)])
    assert result.error is None
    for _ in range(5000):
        if receiver.received():
            return
        await asyncio.sleep(0.001)
    raise AssertionError("the report was never posted")


async def test_closing_while_a_report_is_posted_lets_it_arrive(tmp_path: Path) -> None:
    """A provider closed mid-post (the configuration changed) finishes that post: the report
    reaches the service and is not left claimed, to arrive only after `report_retry`."""
    gate = threading.Event()
    with WebhookReceiver(gate) as receiver:
        async with httpx.AsyncClient() as http:
            provider = SimulatorProvider(
                SimulatorSettings(report_delay=0), http, ProviderContext(tmp_path)
            )
            await provider.start()
            await posting(provider, receiver)
            closing = asyncio.ensure_future(provider.close())
            await asyncio.sleep(0)
            assert not closing.done()
            gate.set()
            done, _ = await asyncio.wait({closing}, timeout=10)
            assert done, "close() did not return"
    assert len(receiver.received()) == 1
    ledger = SimulatorLedger(tmp_path / "simulator.sqlite3")
    try:
        assert ledger.next_report_due() is None  # delivered and finished, none left
    finally:
        ledger.close()


async def test_a_post_that_outlasts_the_close_is_released_for_the_next_claim(
    tmp_path: Path,
) -> None:
    """A post still unanswered after the grace period is cut off; its report is due again at
    once, for the next simulator (or the next start) to deliver."""
    with WebhookReceiver(threading.Event()) as receiver:  # never answers
        async with httpx.AsyncClient() as http:
            provider = SimulatorProvider(
                SimulatorSettings(report_delay=0), http, ProviderContext(tmp_path)
            )
            provider.close_grace = 0.05
            await provider.start()
            await posting(provider, receiver)
            await asyncio.wait_for(provider.close(), timeout=10)
    [waiting] = reports_waiting(tmp_path)
    assert waiting[4] == receiver.url
