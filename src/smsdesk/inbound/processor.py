"""The background task that processes stored inbound SMS (see `inbound.pipeline`)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from functools import partial

from sqlalchemy import Connection

from smsdesk.cluster import JobGate
from smsdesk.events import EventSink
from smsdesk.inbound.pipeline import ReplySms, Tally, process_pending, process_rows
from smsdesk.scan_loop import cancel_and_wait
from smsdesk.store import inbound as store
from smsdesk.store.configuration import ConfigurationStore
from smsdesk.store.writer import Writer

log = logging.getLogger(__name__)


class InboundProcessor:
    """Processes pending inbound SMS as soon as they are stored, in batches.

    Messages stored by another process (or left pending by one that died) are found by a
    recovery scan every `poll_interval` seconds, run only by the process leading the
    `inbound-recovery` job (`gate`; without one, this process); a scan that found some is
    journalled. A process woken because it stored messages itself processes them at once.
    A batch that fails is retried message by message; a message that fails alone is marked
    invalid with the error, visible to administrators, so one bad message cannot block the rest.
    `reply` builds the confirmations of opt-outs and opt-ins (see `inbound.pipeline.ReplySms`).
    """

    def __init__(
        self,
        *,
        writer: Writer,
        settings: ConfigurationStore,
        events: Callable[[], EventSink],
        clock: Callable[[], float],
        reply: ReplySms,
        on_outbound: Callable[[], None] = lambda: None,
        poll_interval: float = 2.0,
        batch_size: int = 500,
        gate: JobGate | None = None,
    ) -> None:
        self.writer = writer
        self.gate = gate or JobGate("inbound-recovery", "this process")
        self.settings = settings
        self.events = events
        self.clock = clock
        self.reply = reply
        self.on_outbound = on_outbound
        self.poll_interval = poll_interval
        self.batch_size = batch_size
        self.processed = 0
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="smsdesk-inbound")

    async def stop(self) -> None:
        if self._task is not None:
            await cancel_and_wait(self._task)
            self._task = None

    def wake(self) -> None:
        self._wake.set()

    async def run_once(self) -> Tally:
        """Process one batch now (the loop calls this; tests may too)."""
        config = await asyncio.to_thread(self.settings.load)
        sink = self.events()
        now = self.clock()
        try:
            tally: Tally = await self.writer.run(
                lambda conn: process_pending(
                    conn, config, sink, now, self.batch_size, reply=self.reply
                )
            )
        except Exception:
            log.exception("processing a batch of inbound SMS failed; retrying one by one")
            tally = await self._one_by_one()
        self.processed += tally.processed
        if tally.outbound:
            self.on_outbound()
        return tally

    async def _one_by_one(self) -> Tally:
        config = await asyncio.to_thread(self.settings.load)
        sink = self.events()
        total = Tally()
        ids = await self.writer.run(
            lambda conn: [row.id for row in store.claim_pending(conn, self.batch_size)]
        )
        for inbound_id in ids:

            def one(conn: Connection, inbound_id: str = inbound_id) -> Tally:
                rows = store.pending_by_id(conn, inbound_id)
                return process_rows(conn, rows, config, sink, self.clock(), reply=self.reply)

            try:
                tally = await self.writer.run(one)
            except Exception as exc:
                log.exception("inbound SMS %s could not be processed", inbound_id)
                reason = f"Processing failed: {type(exc).__name__}: {exc}"
                await self.writer.run(
                    partial(store.mark_failed, inbound_id=inbound_id, reason=reason)
                )
                total.count("invalid")
                continue
            total.processed += tally.processed
            total.outbound += tally.outbound
        return total

    async def _run(self) -> None:
        while True:
            recovery = not self._wake.is_set()
            self._wake.clear()
            started = time.time()
            tally = Tally()
            try:
                if not recovery or self.gate.leads():
                    tally = await self.run_once()
            except Exception:
                log.exception("inbound processing failed")
            if recovery and tally.processed:
                self.gate.record(started)
            if tally.processed >= self.batch_size:
                self._wake.set()  # more of the same work: go on at once
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.poll_interval)
