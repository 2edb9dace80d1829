"""Once-per-cluster jobs and the process heartbeat.

`Leadership` keeps trying, every `interval` seconds, to take the lock of each job this process
does not lead (`store/leadership.py`: a PostgreSQL advisory lock, or a lock file beside a SQLite
database) and checks that the locks it holds are still its own. A lost lock connection is lost
leadership at once: every job is given up and its loop stops running work. When a leader dies
its database session ends and another process takes each job at its next try, within about
`interval` seconds. A frozen leader (SIGSTOP) keeps its session and so its jobs: resume or kill
it.

A job's loop asks its `JobGate` whether it may run (`leads()`) and records each run in the
journal (`run()`): a log line per run with the job, the process and when it started and ended,
and the `smsdesk_job_runs` counter, so exclusivity can be checked from the logs.

`Heartbeat` rewrites this process's row in `cluster_processes` every few seconds: role, the
jobs it leads, the messages it holds leased; `smsdesk cluster status` reads the rows.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from sqlalchemy import Connection

from smsdesk import metrics
from smsdesk.scan_loop import cancel_and_wait
from smsdesk.store import cluster_processes as rows
from smsdesk.store.leadership import JobLocks
from smsdesk.store.writer import Writer

log = logging.getLogger("smsdesk.cluster")

JOBS = ("reconcile", "webhook-retries", "inbound-recovery", "retention")


class JobGate:
    """What one job's loop needs: whether this process leads the job, and a journal of runs."""

    def __init__(self, job: str, owner: str, leads: Callable[[], bool] = lambda: True) -> None:
        self.job = job
        self.owner = owner
        self._leads = leads
        self.runs = 0
        self.last_run: tuple[float, float] | None = None
        self._listeners: list[Callable[[bool], None]] = []

    def leads(self) -> bool:
        return self._leads()

    def on_change(self, callback: Callable[[bool], None]) -> None:
        """Call `callback(True)` when this process takes the job, `(False)` when it loses it."""
        self._listeners.append(callback)

    def changed(self, held: bool) -> None:
        for callback in self._listeners:
            try:
                callback(held)
            except Exception:
                log.exception("a leadership listener failed", extra={"job": self.job})

    @contextlib.contextmanager
    def run(self, *, announce: bool = True) -> Iterator[None]:
        """Journal one run: a start line (if `announce`), and one line when it ends."""
        started = time.time()
        if announce:
            log.info("job run started", extra={"job": self.job, "owner": self.owner, "at": started})
        try:
            yield
        finally:
            self.record(started)

    def record(self, started: float) -> None:
        """Journal a run that began at `started` and has just ended."""
        ended = time.time()
        self.runs += 1
        self.last_run = (started, ended)
        metrics.JOB_RUNS.labels(self.job).inc()
        log.info(
            "job run",
            extra={"job": self.job, "owner": self.owner, "started": started, "ended": ended},
        )


class Leadership:
    """Which once-per-cluster jobs this process leads; re-checked every `interval` seconds."""

    def __init__(
        self,
        open_locks: Callable[[], JobLocks],
        *,
        owner: str,
        jobs: tuple[str, ...] = JOBS,
        interval: float = 2.0,
        check_timeout: float = 5.0,
    ) -> None:
        self.open_locks = open_locks
        self.owner = owner
        self.jobs = jobs
        self.interval = interval
        self.check_timeout = check_timeout
        self.gates = {job: JobGate(job, owner, self._holding(job)) for job in jobs}
        self.kind = ""
        self._locks: JobLocks | None = None
        self._held: set[str] = set()
        self._main: asyncio.Task[None] | None = None

    def holds(self, job: str) -> bool:
        return job in self._held

    def _holding(self, job: str) -> Callable[[], bool]:
        return lambda: job in self._held

    @property
    def held(self) -> tuple[str, ...]:
        return tuple(job for job in self.jobs if job in self._held)

    def gate(self, job: str) -> JobGate:
        return self.gates[job]

    async def start(self) -> None:
        await self.tick()
        self._main = asyncio.create_task(self._loop(), name="leadership")

    async def stop(self) -> None:
        """Give every job up (closing the lock session), so another process takes them now."""
        if self._main is not None:
            await cancel_and_wait(self._main)
            self._main = None
        locks, self._locks = self._locks, None
        self._lose_all("this process is stopping")
        if locks is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.to_thread(locks.close), self.check_timeout)

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.tick()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("checking job leadership failed")

    async def _call(self, step: Callable[[], Any]) -> Any:
        return await asyncio.wait_for(asyncio.to_thread(step), self.check_timeout)

    async def tick(self) -> None:
        """One round: check the held locks are still ours, then try to take the others."""
        locks = self._locks
        if locks is None:
            try:
                locks = await self._open_locks()
            except Exception as exc:
                log.warning("cannot open the job locks; trying again: %s", exc)
                return
            self._locks, self.kind = locks, locks.kind
        elif self._held and not await self._alive(locks):
            self._drop(locks, "the lock connection was lost")
            return
        for job in self.jobs:
            if job in self._held:
                continue
            try:
                taken = await self._call(functools.partial(locks.take, job))
            except Exception as exc:
                self._drop(locks, f"taking a job lock failed: {exc}")
                return
            if taken:
                self._held.add(job)
                self._announce(job, True, "took the job")

    async def _open_locks(self) -> JobLocks:
        """A lock session, opened in a thread. If the wait ends first (a timeout, or this
        process stopping), the session the thread still opens is closed when it is ready,
        rather than left to the garbage collector with its connection open."""
        opening = asyncio.get_running_loop().run_in_executor(None, self.open_locks)
        try:
            return await asyncio.wait_for(asyncio.shield(opening), self.check_timeout)
        except BaseException:
            opening.add_done_callback(_close_unused)
            raise

    async def _alive(self, locks: JobLocks) -> bool:
        try:
            return bool(await self._call(locks.alive))
        except Exception:
            return False

    def _drop(self, locks: JobLocks, why: str) -> None:
        """Every lock is lost: stop leading now and close the session in the background."""
        self._locks = None
        self._lose_all(why)
        asyncio.get_running_loop().run_in_executor(None, locks.close)

    def _lose_all(self, why: str) -> None:
        for job in self.held:
            self._held.discard(job)
            self._announce(job, False, why)

    def _announce(self, job: str, held: bool, why: str) -> None:
        metrics.JOB_LEADER.labels(job).set(1 if held else 0)
        log.log(
            logging.INFO if held else logging.WARNING,
            "leading %s" if held else "no longer leading %s",
            job,
            extra={"job": job, "owner": self.owner, "at": time.time(), "reason": why},
        )
        self.gates[job].changed(held)


class Heartbeat:
    """Rewrites this process's `cluster_processes` row every `interval` seconds."""

    def __init__(
        self,
        writer: Writer,
        *,
        owner: str,
        role: str,
        jobs: Callable[[], tuple[str, ...]],
        clock: Callable[[], float] = time.time,
        interval: float = 5.0,
        limiter: Callable[[], list[dict[str, Any]]] = list,
    ) -> None:
        self.writer = writer
        self.limiter = limiter
        self.owner = owner
        self.role = role
        self.jobs = jobs
        self.clock = clock
        self.interval = interval
        self.started_at = clock()
        self.leased = 0
        self._main: asyncio.Task[None] | None = None

    async def start(self) -> None:
        for role in ("api", "worker", "both"):
            metrics.PROCESS_ROLE.labels(role).set(1 if role == self.role else 0)
        self._main = asyncio.create_task(self._loop(), name="heartbeat")

    async def stop(self) -> None:
        if self._main is not None:
            await cancel_and_wait(self._main)
            self._main = None
            with contextlib.suppress(Exception):
                await self.writer.run(lambda c: rows.leave(c, self.owner))

    async def beat_once(self) -> None:
        now = self.clock()

        def write(conn: Connection) -> int:
            leased = rows.leased_messages(conn, self.owner, now)
            row = rows.ProcessRow(
                id=self.owner,
                host=socket.gethostname(),
                pid=os.getpid(),
                role=self.role,
                jobs=self.jobs(),
                leased=leased,
                started_at=self.started_at,
                last_seen=now,
            )
            rows.beat(conn, row)
            return leased

        self.leased = await self.writer.run(write)
        metrics.leased_messages().set(self.leased)
        metrics.set_limiter_state(await asyncio.to_thread(self.limiter))

    async def _loop(self) -> None:
        while True:
            try:
                await self.beat_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("writing the heartbeat failed; trying again")
            await asyncio.sleep(self.interval)


def _close_unused(opened: asyncio.Future[JobLocks]) -> None:
    """Close a lock session nobody waited for, off the event loop (closing may block)."""
    if opened.cancelled() or opened.exception() is not None:
        return
    threading.Thread(target=opened.result().close, name="close-job-locks", daemon=True).start()
