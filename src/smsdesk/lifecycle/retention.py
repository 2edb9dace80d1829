"""Retention: the nightly, once-per-cluster purge of data older than the configuration keeps.

The process leading the `retention` job (`cluster.Leadership`) schedules it; a run (scheduled or
started by hand in any process) takes the `retention` lease in `cluster_jobs` and deletes each
kind of data (`domain/retention_settings.KINDS`) older than its cut-off, then the housekeeping
rows that expire on their own (web sessions, failed logins, Idempotency-Key answers). It
deletes in small batches, each its own short transaction: on SQLite through the process's
writer, so accepted messages are committed between two batches instead of waiting for the
database lock; on PostgreSQL in plain transactions beside the writer's. Every run leaves one
`retention.purged` audit entry and its counts in `cluster_jobs.last_result`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any, TypeVar

from sqlalchemy import Connection

from smsdesk.cluster import JobGate
from smsdesk.domain.audit import Actor
from smsdesk.domain.retention_settings import KINDS, RetentionSettings
from smsdesk.host import Host
from smsdesk.scan_loop import cancel_and_wait
from smsdesk.store import audit, db, jobs
from smsdesk.store import retention as sql

log = logging.getLogger(__name__)

JOB = "retention"
DAY = 86_400.0
HOUSEKEEPING = ("sessions", "login_failures", "idempotency_keys")
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class KindPlan:
    """One kind of data at one moment: days kept, and the cut-off (None: kept forever)."""

    kind: str
    days: int
    cutoff: float | None


@dataclass(slots=True)
class RunResult:
    """What one run deleted, per kind and per housekeeping table."""

    started_at: float
    finished_at: float = 0.0
    purged: dict[str, int] = field(default_factory=dict)
    housekeeping: dict[str, int] = field(default_factory=dict)
    cutoffs: dict[str, float | None] = field(default_factory=dict)
    complete: bool = True  # False when the lease was lost or the run was stopped

    def as_json(self) -> dict[str, Any]:
        return {
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "purged": dict(self.purged),
            "housekeeping": dict(self.housekeeping),
            "cutoffs": dict(self.cutoffs),
            "complete": self.complete,
            "total": sum(self.purged.values()),
        }


class LeaseHeld(Exception):
    """Another process is running the purge."""

    def __init__(self, owner: str | None, until: float | None) -> None:
        super().__init__(f"The purge is already running in {owner} (lease until {until}).")
        self.owner = owner
        self.until = until


FIRST_BATCH = 50  # rows in the first batch of each kind; later ones follow `hold`
SMALLEST_BATCH = 10


def next_batch_size(size: int, busy: float, hold: float, largest: int) -> int:
    """The next batch's row count, so that one batch holds the database about `hold` seconds:
    shrunk at once in proportion when a batch took longer, grown by half when it took less
    than half."""
    if busy > hold:
        return max(SMALLEST_BATCH, int(size * hold / busy))
    if busy < hold / 2:
        return min(largest, max(size + 1, size * 3 // 2))
    return size


def plan(settings: RetentionSettings, now: float) -> list[KindPlan]:
    """The cut-off of every kind for a run at `now`."""
    return [
        KindPlan(
            kind,
            settings.days(kind),
            now - settings.days(kind) * DAY if settings.days(kind) else None,
        )
        for kind in KINDS
    ]


def next_run(settings: RetentionSettings, now: float) -> float:
    """The next time at the configured hour (UTC), strictly after `now`."""
    slot = _slot(settings, now)
    return slot + DAY if slot <= now else slot


def _slot(settings: RetentionSettings, now: float) -> float:
    """Today's run time (UTC): midnight of `now`'s day plus the configured hour."""
    return (now // DAY) * DAY + settings.hour * 3600.0


def last_slot(settings: RetentionSettings, now: float) -> float:
    """The most recent run time at or before `now`."""
    slot = _slot(settings, now)
    return slot if slot <= now else slot - DAY


class RetentionJob:
    """Previews, runs and schedules the purge for one process (safe in every process)."""

    def __init__(
        self,
        host: Host,
        *,
        owner: str,
        hash_key: Callable[[], bytes],
        batch: int = 500,
        pause: float = 0.0,
        share: float | None = None,
        hold: float = 0.008,
        lease_seconds: float = 300.0,
        check_interval: float = 60.0,
    ) -> None:
        self.host = host
        self.owner = owner
        self.hash_key = hash_key
        self.batch = batch
        self.pause = pause
        # The purge's share of the time (the rest: rests after each batch). Measured with
        # `bench/retention.py`: on SQLite half keeps accepts within 1.5x their p99; on
        # PostgreSQL a batch runs in this process and its CPU competes with the accepts, so
        # it takes less.
        if share is None:
            share = 0.3 if db.is_postgres(host.engine) else 0.5
        self.share = share
        self.hold = hold  # seconds one batch should hold the database, at most (about)
        self.lease_seconds = lease_seconds
        self.check_interval = check_interval
        self.runs = 0
        self._stopping = False
        self._wake = asyncio.Event()
        self._main: asyncio.Task[None] | None = None
        self._forecast: tuple[float, dict[str, int]] | None = None
        self._by_hand: set[asyncio.Task[None]] = set()

    # What would go

    def settings(self) -> RetentionSettings:
        return self.host.settings.load().retention

    def preview(self, at: float | None = None) -> list[tuple[KindPlan, int]]:
        """Each kind with its cut-off and how many rows a run at `at` (default now) deletes."""
        when = self.host.clock() if at is None else at
        with self.host.engine.connect() as conn:
            return [
                (p, sql.count_purgeable(conn, p.kind, p.cutoff) if p.cutoff is not None else 0)
                for p in plan(self.settings(), when)
            ]

    def forecast(self, max_age: float = 300.0) -> dict[str, int]:
        """Counts the next scheduled run will purge; recounted at most every `max_age` s."""
        now = self.host.clock()
        if self._forecast is None or abs(now - self._forecast[0]) > max_age:
            at = next_run(self.settings(), now)
            self._forecast = (now, {p.kind: n for p, n in self.preview(at)})
        return dict(self._forecast[1])

    def state(self) -> jobs.JobState:
        with self.host.engine.connect() as conn:
            return jobs.state(conn, JOB)

    # Running

    def _write(self, job: Callable[[Connection], T]) -> T:
        """One short write transaction: through the writer on SQLite (the single writer)."""
        if db.is_postgres(self.host.engine):
            with db.write_transaction(self.host.engine) as conn, conn.begin():
                return job(conn)
        return self.host.writer.submit(job).result()

    def run(self, *, stop: Callable[[], bool] = lambda: False) -> RunResult:
        """Purge now if no other process is (else LeaseHeld); blocking, batch by batch."""
        clock = self.host.clock
        started = clock()
        if not self._write(lambda c: jobs.claim(c, JOB, self.owner, started, self.lease_seconds)):
            held = self.state()
            raise LeaseHeld(held.owner, held.lease_until)
        result = RunResult(started_at=started)
        renewed = [started]

        def keep_lease() -> bool:
            now = clock()
            if now - renewed[0] < self.lease_seconds / 3:
                return True
            renewed[0] = now
            return self._write(lambda c: jobs.renew(c, JOB, self.owner, now, self.lease_seconds))

        def go_on(busy: float) -> bool:
            """Rest after a batch that took `busy` seconds, so that other writers get their
            turn; then say whether to go on (not stopped, the lease still ours)."""
            rest = self.pause + busy * (1.0 / max(self.share, 0.01) - 1.0)
            if rest > 0:
                time.sleep(rest)
            return not stop() and keep_lease()

        try:
            for item in plan(self.settings(), started):
                result.cutoffs[item.kind] = item.cutoff
                result.purged[item.kind] = 0
                if item.cutoff is not None and result.complete:
                    done = self._purge_kind(item.kind, item.cutoff, result, go_on)
                    result.complete = result.complete and done
            if result.complete:
                self._housekeeping(started, result)
        except BaseException:
            result.complete = False
            raise
        finally:
            result.finished_at = clock()
            self._finish(result)
        self.runs += 1
        self._forecast = None
        log.info("retention run purged %s", result.purged)
        return result

    def _purge_kind(
        self, kind: str, cutoff: float, result: RunResult, go_on: Callable[[float], bool]
    ) -> bool:
        step = self._step(kind, cutoff)
        after: Any = None
        # SQLite has one writer: a batch there holds every accept back, so its size follows
        # the time budget. PostgreSQL writers do not wait for each other; there a batch only
        # costs CPU and I/O, which the rest after it (`share`) gives back, and small batches
        # would only add round trips.
        timed = not db.is_postgres(self.host.engine)
        size = min(self.batch, FIRST_BATCH) if timed else self.batch
        while True:
            deleted, after, busy = self._write_step(partial(step, after=after, limit=size))
            result.purged[kind] += deleted
            if after is None:
                return True
            if timed:
                size = next_batch_size(size, busy, self.hold, self.batch)
            if not go_on(busy):
                return False

    def _write_step(self, step: Callable[[Connection], sql.Batch]) -> tuple[int, Any, float]:
        """One batch in a transaction of its own, timed from its first statement to its last.

        On SQLite the writer runs it only when no other write is waiting, so an accepted
        message waits for one short batch at most, never for a queue of them.
        """

        def timed(conn: Connection) -> tuple[int, Any, float]:
            began = time.monotonic()
            deleted, after = step(conn)
            return deleted, after, time.monotonic() - began

        if db.is_postgres(self.host.engine):
            return self._write(timed)
        return self.host.writer.submit_background(timed).result()

    def _step(self, kind: str, cutoff: float) -> Callable[..., sql.Batch]:
        if kind in ("timelines", "unmatched_reports"):
            bound = sql.last_id_before(self.host.engine, kind, cutoff)
            purge = sql.purge_timelines if kind == "timelines" else sql.purge_unmatched_reports
            return partial(purge, cutoff=cutoff, bound=bound)
        purge_by_kind = {
            "requests": sql.purge_requests,
            "outbound": sql.purge_outbound,
            "inbound": sql.purge_inbound,
            "webhook_deliveries": sql.purge_webhook_deliveries,
            "mailings": sql.purge_mailings,
            "audit": sql.purge_audit,
        }[kind]
        return partial(purge_by_kind, cutoff=cutoff)

    def _housekeeping(self, now: float, result: RunResult) -> None:
        result.housekeeping["sessions"] = self._write(lambda c: sql.purge_sessions(c, now))
        for name, purge in (
            ("login_failures", sql.purge_login_failures),
            ("idempotency_keys", sql.purge_idempotency_keys),
        ):
            total = 0
            while deleted := self._write(partial(purge, now=now, limit=self.batch)):
                total += deleted
            result.housekeeping[name] = total

    def _finish(self, result: RunResult) -> None:
        key = self.hash_key()
        details = {**result.purged, **result.housekeeping, "complete": result.complete}

        def record(conn: Connection) -> None:
            audit.append(
                conn,
                key,
                Actor.system(JOB),
                "retention.purged",
                result.finished_at,
                details=details,
            )
            jobs.finish(conn, JOB, self.owner, result.finished_at, result.as_json())

        self._write(record)

    # Scheduling

    def due(self, now: float) -> bool:
        """Whether the nightly run is due: the configured hour has come since the last run.

        An installation that never ran waits for the hour; one whose last run is older than
        the latest hour (the service was down then) catches up now.
        """
        settings = self.settings()
        slot = last_slot(settings, now)
        last = self.state().last_started_at
        if last is None:
            return now - slot < self.check_interval * 2
        return last < slot

    async def start(self, gate: JobGate | None = None) -> None:
        """Schedule the nightly run; only while `gate` says this process leads `retention`
        (without a gate, this process does)."""
        self._gate = gate or JobGate(JOB, self.owner)
        self._stopping = False
        self._main = asyncio.create_task(self._loop(), name="retention")

    async def stop(self) -> None:
        self._stopping = True
        self._wake.set()
        for task in list(self._by_hand):
            with contextlib.suppress(Exception):
                await task
        if self._main is not None:
            await cancel_and_wait(self._main)
            self._main = None

    async def start_now(self) -> None:
        """Run the purge in the background now (LeaseHeld at once if another one is running)."""
        held = await asyncio.to_thread(self.state)
        if held.running(self.host.clock()):
            raise LeaseHeld(held.owner, held.lease_until)
        task = asyncio.create_task(self._run_in_background(), name="retention-now")
        self._by_hand.add(task)
        task.add_done_callback(self._by_hand.discard)

    async def _run_in_background(self) -> None:
        try:
            await asyncio.to_thread(self.run, stop=lambda: self._stopping)
        except LeaseHeld:
            log.info("the retention purge runs in another process")
        except Exception:
            log.exception("retention run failed")

    def wake(self) -> None:
        """Look at the clock now rather than at the next check (from the event loop's thread)."""
        self._wake.set()

    async def _loop(self) -> None:
        gate = self._gate
        while not self._stopping:
            self._wake.clear()  # before the run: a wake during it asks for another
            try:
                if gate.leads() and await asyncio.to_thread(self.due, self.host.clock()):
                    with gate.run():
                        await asyncio.to_thread(
                            self.run, stop=lambda: self._stopping or not gate.leads()
                        )
            except asyncio.CancelledError:
                raise
            except LeaseHeld:
                log.info("the retention purge runs in another process")
            except Exception:
                log.exception("retention run failed; trying again at the next check")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.check_interval)
