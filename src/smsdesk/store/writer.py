"""Group commit: one thread performs this process's writes, many callers per transaction.

An API request must not answer before its message is committed, but a commit per request
would cap throughput at the disk's flush rate. Callers hand a job to the writer and await it;
the writer runs every job waiting at that moment in one transaction and wakes all callers
after the commit. If the shared transaction fails, each job is retried in a transaction of its
own so one bad job fails alone.

A caller on an event loop (`run`) waits on a future of its own loop, which the writer settles
through the loop's thread-safe call: no thread-pool future, lock or condition per job, which
cost the accept path more than the SQL of its message.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import queue
import threading
import weakref
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any, NamedTuple, Protocol, TypeVar

from sqlalchemy import Connection
from sqlalchemy.engine import Engine

from smsdesk.store.db import write_transaction

log = logging.getLogger(__name__)

T = TypeVar("T")
Job = Callable[[Connection], Any]
_STOP = object()


class _Waiter(Protocol):
    """What the writer needs of a caller's future (a `concurrent.futures.Future` has it)."""

    def set_running_or_notify_cancel(self) -> bool: ...

    def set_result(self, result: Any) -> None: ...

    def set_exception(self, exception: BaseException | None) -> None: ...


class _LoopWaiter:
    """A caller waiting on an event loop; settled on that loop, from the writer thread."""

    __slots__ = ("future", "loop")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.future: asyncio.Future[Any] = loop.create_future()

    def set_running_or_notify_cancel(self) -> bool:
        return not self.future.cancelled()  # a caller that gave up is skipped

    def set_result(self, result: Any) -> None:
        self._settle(result, None)

    def set_exception(self, exception: BaseException | None) -> None:
        self._settle(None, exception)

    def _settle(self, result: Any, exception: BaseException | None) -> None:
        with contextlib.suppress(RuntimeError):  # a closed loop: nobody is waiting any more
            self.loop.call_soon_threadsafe(_settle, self.future, result, exception)


def _settle(future: asyncio.Future[Any], result: Any, exception: BaseException | None) -> None:
    if future.done():  # cancelled while the job ran: the commit stands, nobody hears of it
        return
    if exception is None:
        future.set_result(result)
    else:
        future.set_exception(exception)


def _settle_group(waiters: list[_Waiter], results: list[Any]) -> None:
    """Every caller of a group commit told its result: those on an event loop in one call
    scheduled on that loop (a call per caller cost a wake-up and a handle each), others at
    once."""
    on_loops: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Any], Any]]] = {}
    for waiter, result in zip(waiters, results, strict=True):
        if isinstance(waiter, _LoopWaiter):
            on_loops.setdefault(waiter.loop, []).append((waiter.future, result))
        else:
            waiter.set_result(result)
    for loop, settled in on_loops.items():
        with contextlib.suppress(RuntimeError):  # a closed loop: nobody is waiting any more
            loop.call_soon_threadsafe(_settle_results, settled)


def _settle_results(settled: list[tuple[asyncio.Future[Any], Any]]) -> None:
    for future, result in settled:
        if not future.done():  # cancelled while the job ran: the commit stands
            future.set_result(result)


class WriteTurns:
    """Writers of several processes on one SQLite file take turns through a lock file.

    SQLite's own wait for its write lock sleeps between tries for longer and longer (1, 2, 5
    ... 100 ms), so under `serve --processes N` a writer slept long after the lock was free and
    lost it again to a process that tried at the right moment: a p99 of 0.6-0.9 s. A writer
    here first takes its turn, waiting on `flock`, which the kernel ends as soon as the turn is
    given up (a wait that tries every 0.2-2 ms instead measured twice the p99), and then
    SQLite's lock, free by then. A turn held for longer than a minute (a frozen process) is
    given up on, and SQLite's own timeout applies. A process that dies gives its turn up with
    it (the kernel drops the lock). One lock per writer (an open file of its own); nothing to
    do for PostgreSQL or an in-memory database.
    """

    def __init__(self, path: Path | None, wait: float = 60.0) -> None:
        self._path = path
        self._wait = wait
        self._fd: int | None = None
        self._held = False
        self._waiter: _TurnWaiter | None = None

    @classmethod
    def of(cls, engine: Engine, wait: float = 60.0) -> WriteTurns:
        """The turns of `engine`'s database; `wait`: seconds to wait for a turn (as long as
        SQLite's own busy timeout by default)."""
        url = engine.url
        database = url.database if url.get_backend_name() == "sqlite" else None
        if not database or database == ":memory:" or database.startswith("file:"):
            return cls(None)
        return cls(Path(f"{database}.writer.lock"), wait)

    def __enter__(self) -> None:
        if self._path is None:
            return
        if self._fd is None:
            self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600)
            weakref.finalize(self, os.close, self._fd)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if self._waiter is None:
                self._waiter = _TurnWaiter(self._fd)
            self._held = self._waiter.take(self._wait)
            if not self._held:
                log.warning(
                    "another smsdesk process has held the SQLite write turn for %g s; "
                    "writing without it",
                    self._wait,
                )
        else:
            self._held = True

    def __exit__(self, *_: object) -> None:
        if self._held and self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            self._held = False

    def close(self) -> None:
        """End the waiting thread, if one was started."""
        if self._waiter is not None:
            self._waiter.close()
            self._waiter = None


class _TurnRequest:
    __slots__ = ("abandoned", "granted", "ready")

    def __init__(self) -> None:
        self.ready = threading.Event()
        self.granted = False
        self.abandoned = False


class _TurnWaiter:
    """A thread that waits on `flock` for the writer, so the writer can stop waiting after a
    while (a blocking `flock` cannot time out). The lock belongs to the open file, so the
    writer gives it up itself."""

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._requests: queue.SimpleQueue[_TurnRequest | None] = queue.SimpleQueue()
        self._decided = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="smsdesk-write-turn", daemon=True)
        self._thread.start()

    def take(self, timeout: float) -> bool:
        request = _TurnRequest()
        self._requests.put(request)
        if request.ready.wait(timeout):
            return True
        with self._decided:
            if request.granted:
                return True
            request.abandoned = True
            return False

    def _run(self) -> None:
        while (request := self._requests.get()) is not None:
            try:
                fcntl.flock(self._fd, fcntl.LOCK_EX)
            except OSError:  # the file was closed: its writer is gone
                return
            with self._decided:
                if request.abandoned:  # the writer went on without it
                    fcntl.flock(self._fd, fcntl.LOCK_UN)
                    continue
                request.granted = True
            request.ready.set()

    def close(self) -> None:
        self._requests.put(None)


class _Background(NamedTuple):
    job: Job
    future: Future[Any]


class Writer:
    """Runs write jobs in batches on a dedicated thread; safe to call from any thread."""

    def __init__(self, engine: Engine, max_jobs: int = 1000, turn_wait: float = 60.0) -> None:
        self.engine = engine
        self.max_jobs = max_jobs
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self.batches = 0
        self._turns = WriteTurns.of(engine, turn_wait)

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="smsdesk-writer", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        if self._thread is not None:
            self._queue.put(_STOP)
            self._thread.join()
            self._thread = None
        self._turns.close()

    def waiting(self) -> int:
        """Jobs queued and not yet taken by the writer (approximate while it runs)."""
        return self._queue.qsize()

    def submit(self, job: Callable[[Connection], T]) -> Future[T]:
        """Queue a job; the future resolves after the transaction that ran it commits.

        A job whose future is cancelled before the writer reaches it is skipped; once started,
        it runs to its commit or rollback and cancelling no longer has any effect.
        """
        future: Future[T] = Future()
        if self._thread is None:
            future.set_running_or_notify_cancel()
            self._run_alone(job, future)
        else:
            self._queue.put((job, future))
        return future

    async def run(self, job: Callable[[Connection], T]) -> T:
        """Run a job and wait for its commit without blocking the event loop.

        Cancelling the wait before the writer reaches the job skips it; once started, it runs
        to its commit or rollback."""
        if self._thread is None:
            return await asyncio.wrap_future(self.submit(job))
        waiter = _LoopWaiter(asyncio.get_running_loop())
        self._queue.put((job, waiter))
        result: T = await waiter.future
        return result

    def run_sync(self, job: Callable[[Connection], T]) -> T:
        return self.submit(job).result()

    def submit_background(self, job: Callable[[Connection], T]) -> Future[T]:
        """Queue a job that may wait: it runs alone, and only when no other job is waiting.

        For long-running maintenance (the retention purge) done in small steps: a step never
        shares a transaction with callers who are waiting for an answer, and callers who arrive
        during a step wait for that one step only.
        """
        future: Future[T] = Future()
        if self._thread is None:
            future.set_running_or_notify_cancel()
            self._run_alone(job, future)
        else:
            self._queue.put(_Background(job, future))
        return future

    def _loop(self) -> None:
        deferred: deque[_Background] = deque()
        while True:
            try:
                item = self._queue.get(block=not deferred)
            except queue.Empty:
                waiting = deferred.popleft()
                if waiting.future.set_running_or_notify_cancel():
                    self._run_alone(waiting.job, waiting.future)
                continue
            if isinstance(item, _Background):
                deferred.append(item)
                continue
            if item is not _STOP and not item[1].set_running_or_notify_cancel():
                continue  # the caller gave up before the job started: do not run it
            if item is _STOP:
                self._drain(deferred)
                return
            batch = [item]
            stop = False
            while len(batch) < self.max_jobs:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is _STOP:
                    stop = True
                    break
                if isinstance(item, _Background):
                    deferred.append(item)
                elif item[1].set_running_or_notify_cancel():
                    batch.append(item)
            self._run_batch(batch)
            if stop:
                self._drain(deferred)
                return

    def _drain(self, deferred: deque[_Background]) -> None:
        """Run the background jobs still waiting at stop, so no caller waits forever."""
        for waiting in deferred:
            if waiting.future.set_running_or_notify_cancel():
                self._run_alone(waiting.job, waiting.future)

    def _run_batch(self, batch: list[tuple[Job, _Waiter]]) -> None:
        """Jobs marked `urgent` (an API answer waits for them) first, in a transaction of
        their own, then the others (the dispatcher's claims and outcomes, reports): an answer
        does not wait for the SQL of a 500-message claim, and the inserts, now next to each
        other, merge into one statement."""
        urgent = [item for item in batch if getattr(item[0], "urgent", False)]
        if urgent and len(urgent) < len(batch):
            self._run_group(urgent)
            self._run_group([item for item in batch if not getattr(item[0], "urgent", False)])
        else:
            self._run_group(batch)

    def _run_group(self, batch: list[tuple[Job, _Waiter]]) -> None:
        if len(batch) == 1:
            self._run_alone(*batch[0])
            return
        try:
            with self._turns, write_transaction(self.engine) as conn, conn.begin():
                results: list[Any] = []
                for job, count in _merged([job for job, _ in batch]):
                    result = job(conn)
                    results.extend([result] * count)
        except BaseException:
            log.debug("shared transaction failed; running %d jobs one by one", len(batch))
            for job, future in batch:
                self._run_alone(job, future)
            return
        self.batches += 1
        _settle_group([future for _, future in batch], results)

    def _run_alone(self, job: Job, future: _Waiter) -> None:
        try:
            with self._turns, write_transaction(self.engine) as conn, conn.begin():
                result = job(conn)
        except BaseException as exc:
            future.set_exception(exc)
        else:
            self.batches += 1
            future.set_result(result)


def _merged(jobs: list[Job]) -> list[tuple[Job, int]]:
    """Consecutive jobs that know how to merge (a `merge` method) become one; with counts.

    A merged job's result is handed to each of the callers it stands for.
    """
    merged: list[tuple[Job, int]] = []
    for job in jobs:
        if merged:
            previous, count = merged[-1]
            merge = getattr(previous, "merge", None)
            combined = merge(job) if merge is not None else None
            if combined is not None:
                merged[-1] = (combined, count + 1)
                continue
        merged.append((job, 1))
    return merged
