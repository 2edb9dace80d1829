"""The dispatcher: claims due messages per connection, sends them, records outcomes.

Messages go out by SMS priority (1 first), oldest first within a priority, never faster than
their connection's rate limit and with at most its `concurrency` provider requests at once. A
claim is a lease: if this process dies, another dispatcher takes the messages up again when the
lease expires.

Each connection has a circuit breaker (`breaker.py`, kept in `store/connection_health.py`):
an open circuit is not sent through; its waiting messages move on to the next healthy
connection of their route plan at once, or wait. After a failed send, `failover.py` decides
whether the message retries the same connection or fails over; only a failure the provider
certainly did not take (or a refusal about the account) ever goes to another connection.
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
from smsdesk.domain.connections import Connection as SmsConnection
from smsdesk.domain.connections import Health
from smsdesk.domain.message import Status
from smsdesk.domain.settings import SmsConfiguration
from smsdesk.domain.sms import OutboundSms
from smsdesk.events import EventSink
from smsdesk.outbox.breaker import CLOSED, after_results, may_send
from smsdesk.outbox.expired import release_expired
from smsdesk.outbox.failover import off_open_circuit
from smsdesk.outbox.limiter import Limits
from smsdesk.outbox.outcomes import Scan, judge, log_outcome, log_sent
from smsdesk.outbox.pool import ProviderPool
from smsdesk.outbox.retry import RetryPolicy, decide
from smsdesk.outbox.targets import (
    HealthView,
    Target,
    by_id,
    module_of,
    owner_of,
    placed,
    plan_of,
    targets,
    usable,
)
from smsdesk.providers.base import (
    ProviderError,
    RateLimitedError,
    SendResult,
    TemporaryError,
    Transport,
)
from smsdesk.providers.registry import all_modules, get_module
from smsdesk.scan_loop import cancel_and_wait
from smsdesk.store import connection_health as health_store
from smsdesk.store import messages as repo
from smsdesk.store.configuration import ConfigurationStore
from smsdesk.store.optouts import opted_out
from smsdesk.store.reports import connections_awaiting_reports
from smsdesk.store.writer import Writer

log = logging.getLogger(__name__)

RELEASE_GRACE = 5.0  # seconds after start before expired leases are looked at (at most)
LEASE_MARGIN = 2.0  # seconds of a lease left (at most a quarter of it) for a send to start


def callback_url(public_url: str, module: str, kind: str, secret: str) -> str:
    """A module's callback URL: the default connection's and the implicit stand-ins'."""
    return f"{public_url}/webhooks/{module}/{kind}/{secret}"


def connection_callback_url(public_url: str, connection_id: str, kind: str, secret: str) -> str:
    """A connection's own callback URL (every connection but the default)."""
    return f"{public_url}/webhooks/connections/{connection_id}/{kind}/{secret}"


def status_url(public_url: str, connection: SmsConnection, secret: str) -> str:
    """Where a connection's delivery reports go; the default keeps its module's URL, so the
    URLs already set at providers stay valid."""
    if connection.is_default or connection.implicit:
        return callback_url(public_url, connection.module, "status", secret)
    return connection_callback_url(public_url, connection.id, "status", secret)


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
    """Turn a provider's answer into the message's next status (one connection, no failover)."""
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
    conn: Connection,
    *,
    owner: str,
    limit: int,
    now: float,
    lease_until: float,
    connection_id: str | None = None,
    module: str | None = None,
) -> tuple[list[Row[Any]], list[Row[Any]]]:
    """Claim due messages; also return those among them whose recipient has opted out.

    Transactional messages (allowed for permitted API keys) go out even then.
    """
    rows = repo.claim_due(
        conn,
        connection_id=connection_id,
        module=module,
        owner=owner,
        limit=limit,
        now=now,
        lease_until=lease_until,
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
        # Rate and concurrency per connection: shared by every process on PostgreSQL.
        self._limits = Limits(clock, shared=writer.engine.dialect.name == "postgresql")
        self._inflight: dict[str, int] = {}  # per connection id
        self._tasks: set[asyncio.Task[None]] = set()
        self._wake = asyncio.Event()
        self._housekeeping_at = 0.0
        self._release_after = 0.0  # expired leases are looked at from then on
        # Connections whose reports come over their own session (SMPP) with reports still due.
        self._awaiting_reports: set[tuple[str | None, str]] = set()
        self._unstartable: set[str] = set()  # connections whose start failed (logged once)
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
        await self._start_selected(config, targets(config, self.pool.connections()))
        # Reports providers retry while we were down (Kannel's http-request-retry) may prove
        # that a dead process's messages were taken: give them a moment to come in first.
        self._release_after = self.clock() + min(self.lease_seconds / 10, RELEASE_GRACE)
        self._main = asyncio.create_task(self._run(), name="dispatcher")

    async def _start_selected(self, config: SmsConfiguration, found: Sequence[Target]) -> None:
        """Keep the connections in use started (an SMPP session receives while nothing is sent).

        Those are the default and every enabled stored connection. A module's stand-in is
        started only when a message of its is claimed: a module nobody uses opens no connection
        and logs nothing (an unconfigured SMPP session retried a bind to :2775 every few
        seconds). A connection switched away from keeps its session while receipts of its
        messages are due.
        """
        known = by_id(found)
        default = found[0].connection
        wanted = [c for c in known.values() if not c.implicit and usable(c)]
        wanted += [
            owner_of(connection_id, module, known, default)
            for connection_id, module in sorted(self._awaiting_reports, key=str)
        ]
        for connection in wanted:
            try:
                await self.pool.get(connection, config)
            except Exception:
                # One connection that cannot start must not stop the others from sending.
                if connection.id not in self._unstartable:
                    log.exception("connection could not start", extra={"connection": connection.id})
                self._unstartable.add(connection.id)
            else:
                self._unstartable.discard(connection.id)

    def _connections_awaiting_reports(self, now: float) -> set[tuple[str | None, str]]:
        connected = [
            info.name
            for info in all_modules()
            if info.provider_class is not None and info.provider_class.transport is Transport.SMPP
        ]
        with self.writer.engine.connect() as conn:
            return connections_awaiting_reports(conn, connected, now)

    def _read_health(self) -> dict[str, Health]:
        with self.writer.engine.connect() as conn:
            return health_store.states(conn)

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
                await cancel_and_wait(self._main)
            self._main = None
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _run(self) -> None:
        while not self._stopping:
            self._limits.held.clear()
            # Cleared before the scan, not after it: work that arrives during the scan wakes
            # the next one instead of waiting for the poll.
            self._wake.clear()
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
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._idle_wait())

    def _idle_wait(self) -> float:
        """The poll interval, or less: until the next token of a connection that the last scan
        held back by its limits (0 when one came meanwhile); no connection held, no hurry."""
        held = self._limits.wait()
        return self.poll_interval if held is None else min(self.poll_interval, held)

    async def run_once(self) -> int:
        """One scan: housekeeping if due, then claim and start sending; returns messages claimed
        (or moved off a connection whose circuit is open)."""
        now = self.clock()
        if now >= self._housekeeping_at:
            if now >= self._release_after:
                await release_expired(
                    self.writer,
                    self.store,
                    self.pool,
                    owner=self.owner,
                    now=now,
                    lease_seconds=self.lease_seconds,
                    clock=self.clock,
                    events=self.events,
                )
            await self.writer.run(lambda c: repo.expire_overdue(c, now, self.events))
            self._awaiting_reports = await asyncio.to_thread(
                self._connections_awaiting_reports, now
            )
            self._housekeeping_at = now + min(self.lease_seconds / 4, 5.0)
        config = await self.store.current()
        found = targets(config, self.pool.connections())
        await self._start_selected(config, found)
        health = await asyncio.to_thread(self._read_health)
        scan = Scan(config, by_id(found), health)
        claimed = 0
        for target in found:
            claimed += await self._serve(target, scan)
        self.scans += 1
        return claimed

    async def _serve(self, target: Target, scan: Scan) -> int:
        """Claim and send for one connection as its circuit allows; returns messages handled."""
        connection = target.connection
        now = self.clock()
        health = scan.health.get(connection.id, CLOSED)
        if not connection.implicit:
            metrics.set_circuit(connection.id, health.state)
        allowed = may_send(health, now, connection.cool_down) if usable(connection) else "no"
        if allowed == "no":
            return await self._move_off(target, scan, now)
        inflight = self._inflight.get(connection.id, 0)
        free = connection.concurrency - inflight
        if free <= 0 or not self.pool.may_send(connection, scan.config):
            return 0
        provider_class = get_module(connection.module).provider_class
        assert provider_class is not None  # only connections of available modules are served
        max_batch = provider_class.max_batch
        wanted = self._limits.allowance(connection, min(self.claim_batch, free * max_batch))
        if wanted <= 0:
            return 0
        if allowed == "probe":
            if inflight:
                return await self._move_off(target, scan, now)
            if not await self._waiting(target, now, 1):
                return 0  # the probe is taken when there is a message to send
            if not await self._take_probe(connection, now):
                return await self._move_off(target, scan, now)
            wanted = 1
        claim = await self.writer.run(
            lambda c: self._limits.claim(
                c,
                connection,
                wanted,
                now,
                max_batch,
                lambda limit: claim_sendable(
                    c,
                    connection_id=connection.id,
                    module=target.unassigned,
                    owner=self.owner,
                    limit=limit,
                    now=now,
                    lease_until=now + self.lease_seconds,
                ),
                target.unassigned,
            )
        )
        self._limits.settle(connection, claim)
        if claim.blocked:
            await self._refuse_opted_out(claim.blocked)
        blocked_ids = {row.id for row in claim.blocked}
        rows = [row for row in claim.rows if row.id not in blocked_ids]
        if not rows:
            return len(claim.rows)
        # The configuration loaded before the claim may predate a save that came before some
        # of these messages were accepted: send them with the settings as they are now.
        current = await self.store.current()
        fresh = by_id(targets(current, self.pool.connections()))
        connection = fresh.get(connection.id, connection)
        provider = await self.pool.get(connection, current)
        size = provider.max_batch
        for start in range(0, len(rows), size):
            self._spawn(connection, provider, rows[start : start + size], scan)
        return len(rows)

    async def _take_probe(self, connection: SmsConnection, now: float) -> bool:
        until = now + self.lease_seconds
        return bool(
            await self.writer.run(
                lambda c: health_store.take_probe(
                    c,
                    connection.id,
                    self.owner,
                    now,
                    until,
                    cool_down=connection.cool_down,
                    events=self.events,
                )
            )
        )

    async def _waiting(self, target: Target, now: float, limit: int) -> list[Row[Any]]:
        """Due messages waiting on a connection (read, not claimed)."""

        def read() -> list[Row[Any]]:
            with self.writer.engine.connect() as conn:
                return repo.waiting_on(
                    conn, target.connection.id, now, limit, module=target.unassigned
                )

        return await asyncio.to_thread(read)

    async def _move_off(self, target: Target, scan: Scan, now: float) -> int:
        """Messages waiting on a connection that takes none go on to the next healthy one of
        their plan at once; those with nowhere to go wait."""
        connection = target.connection
        view = HealthView(scan.health, scan.known)
        moves = []
        for row in await self._waiting(target, now, self.claim_batch):
            step = off_open_circuit(
                placed(row, connection.id), plan_of(row, connection.id), view, now
            )
            if step is not None and step.connection_id is not None:
                module = module_of(step.connection_id, scan.known)
                moves.append(
                    repo.Move(
                        row.id,
                        row.connection_id,
                        step.connection_id,
                        module,
                        step.plan_index,
                        step.reason,
                    )
                )
        if not moves:
            return 0

        def move(c: Connection) -> int:
            moved = repo.move_connection(c, moves, now)
            health_store.add_stats(c, connection.id, now, health_store.Tally(failovers=moved))
            return moved

        moved: int = await self.writer.run(move)
        metrics.count_connection_sends(connection.id, {}, moved)
        return moved

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

    def _spawn(
        self, connection: SmsConnection, provider: Any, rows: Sequence[Row[Any]], scan: Scan
    ) -> None:
        key = connection.id
        self._inflight[key] = self._inflight.get(key, 0) + 1
        task = asyncio.create_task(self._send(connection, provider, rows, scan))
        self._tasks.add(task)

        def done(t: asyncio.Task[None]) -> None:
            self._tasks.discard(t)
            if not t.cancelled() and t.exception() is not None:
                log.error("send task failed", exc_info=t.exception())
            self._inflight[key] -= 1
            self._wake.set()

        task.add_done_callback(done)

    async def _send(
        self, connection: SmsConnection, provider: Any, rows: Sequence[Row[Any]], scan: Scan
    ) -> None:
        now = self.clock()
        # A claim whose lease ran out (this process froze or stalled) may already belong to
        # another dispatcher: never send it from here.
        margin = min(LEASE_MARGIN, self.lease_seconds / 4)
        lost = [row for row in rows if row.lease_until - margin <= now]
        if lost:
            log.warning(
                "%d claimed messages not sent: their lease ran out before sending", len(lost)
            )
            rows = [row for row in rows if row.lease_until - margin > now]
        live = [row for row in rows if row.expires_at > now]
        outcomes = [
            repo.Outcome(row.id, Status.EXPIRED, None, "validity period ended", tried=connection.id)
            for row in rows
            if row.expires_at <= now
        ]
        url = status_url(self.public_url, connection, self._secret or "")
        started = time.perf_counter()
        results = await send_batch(provider, live, url) if live else []
        metrics.SEND_LATENCY.labels(connection.module).observe(time.perf_counter() - started)
        now = self.clock()
        batch = judge(connection, live, results, scan, now, self.policy, self.rng)
        outcomes += batch.outcomes
        claims = {row.id: row.attempts for row in rows}
        for row, result, outcome in zip(live, results, batch.outcomes, strict=True):
            if isinstance(result.error, RateLimitedError):
                self._bucket_pause(connection.id, result.error)
            log_outcome(connection, row, outcome)
        log_sent(connection, batch.outcomes)

        def record(c: Connection) -> repo.Recorded:
            recorded = repo.record_send_outcomes(
                c, self.owner, outcomes, now, self.events, attempts=claims
            )
            if batch.counted and not connection.implicit:
                before = health_store.health_of(c, connection.id, lock=True)
                after = after_results(before, batch.counted, now, connection.failure_threshold)
                health_store.transition(c, connection.id, before, after, now, self.events)
            health_store.add_stats(c, connection.id, now, batch.tally)
            return recorded

        try:
            recorded = await self.writer.run(record)
        except Exception:
            log.exception("recording send outcomes failed; leases will expire and retry")
            return
        metrics.count_recorded(connection.module, recorded)
        metrics.count_connection_sends(connection.id, batch.results, batch.tally.failovers)

    def _bucket_pause(self, connection_id: str, error: RateLimitedError) -> None:
        """Pause the connection here, and in every process on PostgreSQL."""
        seconds = error.retry_after if error.retry_after is not None else 1.0
        self._limits.pause(connection_id, seconds, self.writer.submit)
