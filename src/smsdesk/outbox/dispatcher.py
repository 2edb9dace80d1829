"""The dispatcher: claims due messages, sends them through their module, records outcomes.

Messages go out by SMS priority (1 first), oldest first within a priority, never faster than the
module's rate limit and with at most `concurrency` provider requests at once. A claim is a lease:
if this process dies, another dispatcher takes the messages up again when the lease expires.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import Connection, Row

from smsdesk import metrics
from smsdesk.domain.message import Status
from smsdesk.domain.settings import SmsConfiguration
from smsdesk.domain.sms import OutboundSms
from smsdesk.events import EventSink
from smsdesk.outbox.pool import ProviderPool
from smsdesk.outbox.ratelimit import TokenBucket
from smsdesk.outbox.retry import RetryPolicy, decide
from smsdesk.providers.base import (
    ProviderError,
    RateLimitedError,
    SendResult,
    TemporaryError,
    Transport,
)
from smsdesk.providers.registry import all_modules, get_module
from smsdesk.store import messages as repo
from smsdesk.store.configuration import ConfigurationStore
from smsdesk.store.optouts import opted_out
from smsdesk.store.writer import Writer

log = logging.getLogger(__name__)


def callback_url(public_url: str, module: str, kind: str, secret: str) -> str:
    return f"{public_url}/webhooks/{module}/{kind}/{secret}"


def to_outbound(row: Row[Any], status_callback_url: str | None) -> OutboundSms:
    return OutboundSms(
        message_id=row.id,
        to=row.recipient,
        sender=row.sender,
        text=row.body,
        encoding=row.encoding,
        segments=row.segments,
        priority=row.priority,
        expires_at=row.expires_at,
        delivery_report=bool(row.delivery_report),
        status_callback_url=status_callback_url if row.delivery_report else None,
    )


def outcome_for(
    row: Row[Any],
    result: SendResult,
    now: float,
    policy: RetryPolicy,
    rng: random.Random,
    *,
    retry: bool = True,
) -> repo.Outcome:
    """Turn a provider's answer into the message's next status."""
    if result.error is None:
        return repo.Outcome(
            row.id,
            Status.SENT,
            result.raw_code,
            "accepted by the provider",
            result.provider_message_id,
        )
    error = result.error
    code = error.code or type(error).__name__
    if not retry:
        return repo.Outcome(row.id, Status.FAILED, code, error.message)
    decision = decide(error, row.attempts, now, row.expires_at, policy, rng)
    return repo.Outcome(
        row.id, decision.status, code, decision.reason, next_attempt_at=decision.retry_at
    )


def claim_sendable(
    conn: Connection, *, module: str, owner: str, limit: int, now: float, lease_until: float
) -> tuple[list[Row[Any]], list[Row[Any]]]:
    """Claim due messages; also return those among them whose recipient has opted out.

    Transactional messages (allowed for permitted API keys) go out even then.
    """
    rows = repo.claim_due(
        conn, module=module, owner=owner, limit=limit, now=now, lease_until=lease_until
    )
    candidates = {row.recipient for row in rows if not row.transactional}
    refused = opted_out(conn, candidates) if candidates else set()
    return rows, [row for row in rows if row.recipient in refused and not row.transactional]


async def send_batch(provider: Any, rows: Sequence[Row[Any]], url: str | None) -> list[SendResult]:
    """Call the provider; an unexpected exception becomes a temporary error, never a loss."""
    batch = [to_outbound(row, url) for row in rows]
    try:
        results = await provider.send(batch)
        if len(results) != len(batch):
            raise TemporaryError(f"provider answered {len(results)} results for {len(batch)}")
        return list(results)
    except ProviderError as exc:
        return [SendResult(sms.message_id, error=exc, raw_code=exc.code) for sms in batch]
    except Exception as exc:
        log.exception("provider failed unexpectedly")
        error = TemporaryError(f"unexpected provider failure: {exc!r}")
        return [SendResult(sms.message_id, error=error) for sms in batch]


class Dispatcher:
    """One dispatcher process's loop; several may run against one PostgreSQL database."""

    def __init__(
        self,
        *,
        writer: Writer,
        store: ConfigurationStore,
        pool: ProviderPool,
        owner: str,
        public_url: str,
        lease_seconds: float = 60.0,
        poll_interval: float = 0.5,
        claim_batch: int = 500,
        clock: Callable[[], float] = time.time,
        policy: RetryPolicy = RetryPolicy(),
        events: EventSink | None = None,
    ) -> None:
        self.writer = writer
        self.store = store
        self.pool = pool
        self.owner = owner
        self.public_url = public_url
        self.lease_seconds = lease_seconds
        self.poll_interval = poll_interval
        self.claim_batch = claim_batch
        self.clock = clock
        self.policy = policy
        self.events = events
        self.rng = random.Random()
        self._buckets: dict[str, TokenBucket] = {}
        self._inflight: dict[str, int] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._wake = asyncio.Event()
        self._housekeeping_at = 0.0
        # Modules whose reports come over their own connection (SMPP) with reports still due.
        self._awaiting_reports: set[str] = set()
        self._secret: str | None = None
        self._main: asyncio.Task[None] | None = None
        self._stopping = False
        self.scans = 0
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def sends_in_flight(self) -> int:
        return len(self._tasks)

    def wake(self) -> None:
        """New work arrived: scan now instead of at the next poll (callable from any thread)."""
        loop = self._loop
        if loop is None:
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            self._wake.set()
        else:
            loop.call_soon_threadsafe(self._wake.set)

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._secret = await asyncio.to_thread(self.store.callback_secret)
        config = await asyncio.to_thread(self.store.load)
        await self._start_selected(config)
        self._main = asyncio.create_task(self._run(), name="dispatcher")

    async def _start_selected(self, config: SmsConfiguration) -> None:
        """Keep the module in use started (an SMPP session receives while nothing is sent).

        Other modules are started only when a message of theirs is claimed: a module nobody
        uses opens no connection and logs nothing (an unconfigured SMPP session retried a bind
        to :2775 every few seconds).
        """
        info = get_module(config.module)
        if info.available:
            await self.pool.get(info.name, config)
        # A module switched away from keeps its session while receipts of its messages are due.
        for module in sorted(self._awaiting_reports - {info.name}):
            await self.pool.get(module, config)

    def _modules_awaiting_reports(self, now: float) -> set[str]:
        connected = [
            info.name
            for info in all_modules()
            if info.provider_class is not None and info.provider_class.transport is Transport.SMPP
        ]
        with self.writer.engine.connect() as conn:
            return repo.modules_awaiting_reports(conn, connected, now)

    async def stop(self, grace: float = 10.0) -> None:
        """Finish the scan in progress and the sends under way, then stop.

        Stopping between steps rather than cancelling keeps a claim and its sends together;
        whatever is cut short after `grace` seconds stays leased and is taken up again.
        """
        self._stopping = True
        self._wake.set()
        if self._main is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self._main), grace)
            except TimeoutError:
                self._main.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._main
            self._main = None
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _run(self) -> None:
        while not self._stopping:
            try:
                claimed = await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("dispatcher scan failed; trying again")
                claimed = 0
            if claimed or self._stopping:
                await asyncio.sleep(0)
                continue
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._idle_wait())

    def _idle_wait(self) -> float:
        waits = [b.wait_time() for b in self._buckets.values() if b.wait_time() > 0]
        return max(0.005, min([self.poll_interval, *waits]))

    async def run_once(self) -> int:
        """One scan: housekeeping if due, then claim and start sending; returns messages claimed."""
        now = self.clock()
        if now >= self._housekeeping_at:
            await self.writer.run(lambda c: repo.release_expired_leases(c, now))
            await self.writer.run(lambda c: repo.expire_overdue(c, now, self.events))
            self._awaiting_reports = await asyncio.to_thread(self._modules_awaiting_reports, now)
            self._housekeeping_at = now + min(self.lease_seconds / 4, 5.0)
        config = await asyncio.to_thread(self.store.load)
        await self._start_selected(config)
        claimed = 0
        for info in all_modules():
            if info.available:
                claimed += await self._claim_and_send(info.name, config)
        self.scans += 1
        return claimed

    def _bucket(self, module: str, config: SmsConfiguration) -> TokenBucket:
        rate = config.limits_for(module).rate_limit
        bucket = self._buckets.get(module)
        if bucket is None or bucket.rate != rate:
            bucket = self._buckets[module] = TokenBucket(rate, self.clock)
        return bucket

    async def _claim_and_send(self, module: str, config: SmsConfiguration) -> int:
        limits = config.limits_for(module)
        free = limits.concurrency - self._inflight.get(module, 0)
        if free <= 0:
            return 0
        provider_class = get_module(module).provider_class
        assert provider_class is not None  # only available modules are scanned
        bucket = self._bucket(module, config)
        wanted = bucket.available(min(self.claim_batch, free * provider_class.max_batch))
        if wanted <= 0:
            return 0
        now = self.clock()
        claimed, blocked = await self.writer.run(
            lambda c: claim_sendable(
                c,
                module=module,
                owner=self.owner,
                limit=wanted,
                now=now,
                lease_until=now + self.lease_seconds,
            )
        )
        if blocked:
            await self._refuse_opted_out(blocked)
        blocked_ids = {row.id for row in blocked}
        rows = [row for row in claimed if row.id not in blocked_ids]
        if not rows:
            return len(claimed)
        bucket.take(len(rows))
        # The configuration loaded before the claim may predate a save that came before some
        # of these messages were accepted: send them with the settings as they are now.
        current = await asyncio.to_thread(self.store.load)
        provider = await self.pool.get(module, current)
        size = provider.max_batch
        for start in range(0, len(rows), size):
            self._spawn(module, provider, rows[start : start + size])
        return len(rows)

    async def _refuse_opted_out(self, rows: Sequence[Row[Any]]) -> None:
        """Messages to numbers that opted out after the message was accepted are not sent."""
        now = self.clock()
        outcomes = [
            repo.Outcome(
                row.id,
                Status.FAILED,
                "opted_out",
                "The recipient opted out of SMS after this message was accepted; it was not sent.",
            )
            for row in rows
        ]
        await self.writer.run(
            lambda c: repo.record_outcomes(c, self.owner, outcomes, now, self.events)
        )

    def _spawn(self, module: str, provider: Any, rows: Sequence[Row[Any]]) -> None:
        self._inflight[module] = self._inflight.get(module, 0) + 1
        task = asyncio.create_task(self._send(module, provider, rows))
        self._tasks.add(task)

        def done(t: asyncio.Task[None]) -> None:
            self._tasks.discard(t)
            if not t.cancelled() and t.exception() is not None:
                log.error("send task failed", exc_info=t.exception())
            self._inflight[module] -= 1
            self._wake.set()

        task.add_done_callback(done)

    async def _send(self, module: str, provider: Any, rows: Sequence[Row[Any]]) -> None:
        now = self.clock()
        live = [row for row in rows if row.expires_at > now]
        outcomes = [
            repo.Outcome(row.id, Status.EXPIRED, None, "validity period ended")
            for row in rows
            if row.expires_at <= now
        ]
        url = callback_url(self.public_url, module, "status", self._secret or "")
        started = time.perf_counter()
        results = await send_batch(provider, live, url) if live else []
        metrics.SEND_LATENCY.labels(module).observe(time.perf_counter() - started)
        now = self.clock()
        for row, result in zip(live, results, strict=True):
            outcome = outcome_for(row, result, now, self.policy, self.rng)
            outcomes.append(outcome)
            if isinstance(result.error, RateLimitedError):
                self._bucket_pause(module, result.error)
            self._log_outcome(module, row, outcome)
        try:
            recorded = await self.writer.run(
                lambda c: repo.record_send_outcomes(c, self.owner, outcomes, now, self.events)
            )
        except Exception:
            log.exception("recording send outcomes failed; leases will expire and retry")
            return
        metrics.count_recorded(module, recorded)

    def _bucket_pause(self, module: str, error: RateLimitedError) -> None:
        bucket = self._buckets.get(module)
        if bucket is not None:
            bucket.pause(error.retry_after if error.retry_after is not None else 1.0)

    @staticmethod
    def _log_outcome(module: str, row: Row[Any], outcome: repo.Outcome) -> None:
        level = logging.INFO if outcome.status is Status.SENT else logging.WARNING
        if log.isEnabledFor(level):
            log.log(
                level,
                "message %s",
                outcome.status.value,
                extra={
                    "message_id": row.id,
                    "sms_module": module,
                    "status": outcome.status.value,
                    "code": outcome.code,
                    "detail": outcome.detail,
                    "provider_message_id": outcome.provider_message_id,
                    "attempt": row.attempts,
                },
            )
