"""Reconciliation: ask the provider about messages whose delivery report never came.

Every `interval` seconds, for each connection whose module's API can be asked
(`supports_status_query`), the job takes messages that are *sent*, asked for a delivery report,
and were sent longer ago than the configuration's `reconcile_after_minutes`, and asks the
account that sent them about them in small batches (at most `per_module` messages per
connection per run). Final statuses go through `apply_reports`, which is idempotent and
order-safe, with "reconcile" as their timeline source.

A sent message's `next_attempt_at` (unused once a message is sent) says when it may be asked
about next: taking a message pushes it back by as long as it has been waiting (at least the
configured age, at most `MAX_BACKOFF`), so a message is asked about at about 1, 2, 4… times the
age and not on every run. Taking is one transaction that skips rows locked by another process,
so several processes never ask about the same message at once. Still, only the process that
leads the `reconcile` job (`cluster.Leadership`) runs it, and each run is journalled; one that
loses the lead mid-run stops before its next connection or batch. After `GIVE_UP_AFTER` a message
is no longer asked about.

A provider says how many ids one query takes (`status_query_batch`) and how often it may be
asked (`status_query_interval`, e.g. CPSMS's log: once per 2 minutes). Such a module gets one
query per run, and none before the interval has passed since this process last asked it
(another process may still ask in between: the provider then answers "slow down", which is
logged and asked again later).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import Connection

from smsdesk import metrics
from smsdesk.cluster import JobGate
from smsdesk.domain.settings import SmsConfiguration
from smsdesk.domain.sms import StatusReport
from smsdesk.events import EventSink
from smsdesk.outbox.pool import ProviderPool
from smsdesk.outbox.targets import Target, targets
from smsdesk.providers.base import ProviderError
from smsdesk.providers.registry import get_module
from smsdesk.scan_loop import cancel_and_wait
from smsdesk.store import reports as repo
from smsdesk.store.configuration import ConfigurationStore
from smsdesk.store.unreported import Unreported, take_unreported
from smsdesk.store.writer import Writer

log = logging.getLogger(__name__)

MAX_BACKOFF = 6 * 3600.0
GIVE_UP_AFTER = 7 * 24 * 3600.0


def next_ask(sent_at: float, now: float, age: float) -> float:
    """When a message taken now may be asked about again: back off as it keeps waiting."""
    return now + min(max(age, now - sent_at), MAX_BACKOFF)


def take_due(
    conn: Connection,
    *,
    module: str,
    now: float,
    age: float,
    limit: int,
    connection_id: str | None = None,
    unassigned: bool = False,
) -> list[Unreported]:
    """Take up to `limit` sent messages due for a question, and push their next question back."""
    return take_unreported(
        conn,
        module=module,
        sent_before=now - age,
        sent_after=now - GIVE_UP_AFTER,
        now=now,
        limit=limit,
        next_ask=lambda sent_at: next_ask(sent_at, now, age),
        connection_id=connection_id,
        unassigned=unassigned,
    )


class Reconciler:
    """The periodic job of the process leading `reconcile` (every process leads it without
    a `gate`, e.g. in tests)."""

    def __init__(
        self,
        *,
        writer: Writer,
        store: ConfigurationStore,
        pool: ProviderPool,
        clock: Callable[[], float] = time.time,
        events: Callable[[], EventSink | None] = lambda: None,
        interval: float = 60.0,
        batch: int = 20,
        per_module: int = 100,
        gate: JobGate | None = None,
    ) -> None:
        self.writer = writer
        self.gate = gate or JobGate("reconcile", "this process")
        self.store = store
        self.pool = pool
        self.clock = clock
        self.events = events
        self.interval = interval
        self.batch = batch
        self.per_module = per_module
        self.runs = 0
        self._wake = asyncio.Event()
        self._stopping = False
        self._main: asyncio.Task[None] | None = None
        self._last_query: dict[str, float] = {}  # connection -> when this process last asked it

    async def start(self) -> None:
        self._stopping = False
        self._main = asyncio.create_task(self._run(), name="reconciler")

    async def stop(self) -> None:
        self._stopping = True
        self._wake.set()
        if self._main is not None:
            await cancel_and_wait(self._main)
            self._main = None

    def wake(self) -> None:
        """Run now instead of at the next interval (from the event loop's thread)."""
        self._wake.set()

    async def _run(self) -> None:
        while not self._stopping:
            self._wake.clear()  # before the run: a wake during it asks for another
            try:
                if self.gate.leads():
                    with self.gate.run():
                        await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("reconciliation failed; trying again at the next run")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.interval)

    async def run_once(self) -> int:
        """One run over every connection that can be asked; returns how many messages were asked."""
        config = await self.store.current()
        asked = 0
        if config.reconcile_after_minutes > 0:
            for target in targets(config, self.pool.connections()):
                if not self.gate.leads():
                    break
                info = get_module(target.connection.module)
                if info.available and info.supports_status_query:
                    asked += await self._reconcile(target, config)
        self.runs += 1
        return asked

    async def _reconcile(self, target: Target, config: SmsConfiguration) -> int:
        now = self.clock()
        connection = target.connection
        module, key = connection.module, connection.id
        provider = await self.pool.get(connection, config)
        batch, limit = min(self.batch, provider.status_query_batch), self.per_module
        interval = provider.status_query_interval
        if interval > 0:
            if now < self._last_query.get(key, -interval) + interval:
                return 0
            batch = limit = provider.status_query_batch
        age = config.reconcile_after_minutes * 60.0
        taken = await self.writer.run(
            lambda c: take_due(
                c,
                module=module,
                now=now,
                age=age,
                limit=limit,
                connection_id=key,
                unassigned=target.unassigned == module,
            )
        )
        if not taken:
            return 0
        for start in range(0, len(taken), batch):
            if start and not self.gate.leads():
                return start  # the rest is asked about by the new leader, when due again
            part = taken[start : start + batch]
            self._last_query[key] = self.clock()
            try:
                reports = await provider.query_status([u.provider_message_id for u in part])
            except ProviderError as exc:
                log.warning(
                    "status query failed; asking again later: %s",
                    exc.message,
                    extra={"sms_module": module, "code": exc.code, "messages": len(part)},
                )
                return start
            except Exception:
                log.exception("status query failed unexpectedly", extra={"sms_module": module})
                return start
            await self._apply(module, part, reports)
        return len(taken)

    async def _apply(
        self, module: str, asked: Sequence[Unreported], reports: Sequence[StatusReport]
    ) -> None:
        wanted = {u.provider_message_id for u in asked}
        final = [r for r in reports if r.provider_message_id in wanted and r.status.is_final]
        by_pid = {u.provider_message_id: u.message_id for u in asked}
        for report in final:
            log.info(
                "status learnt by asking the provider: %s",
                report.status.value,
                extra={
                    "message_id": by_pid[report.provider_message_id],
                    "sms_module": module,
                    "status": report.status.value,
                    "code": report.raw_code,
                },
            )
        if not final:
            return
        now = self.clock()
        events = self.events()
        tally: Any = await self.writer.run(
            lambda c: repo.apply_reports(
                c, module, final, now, keep_unmatched=False, events=events, source="reconcile"
            )
        )
        metrics.count_reports(module, tally)
