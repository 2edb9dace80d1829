"""The API processes of one `smsdesk serve --processes N`, and the wakes between them.

The first process holds the port, runs the dispatcher and the background jobs, and starts N
processes that serve the web app on that port (`commands/serve_processes.py`). Each of those
holds one end of a socket pair to the first: when it stores work (an SMS to send, an inbound SMS,
a webhook event) it writes one byte, so the dispatcher starts at once rather than at its
next poll. When the first process ends, its ends close: the others see that and stop too.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import subprocess
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger(__name__)

WAKE_DISPATCHER = b"d"
WAKE_INBOUND = b"i"
WAKE_WEBHOOKS = b"w"
WAKE_NOTIFICATIONS = b"n"
WAKES = (WAKE_DISPATCHER, WAKE_INBOUND, WAKE_WEBHOOKS, WAKE_NOTIFICATIONS)
READY = b"r"  # an API process listens

# A process that ends soon after its start is started again after a growing pause, so a
# process that cannot start (a broken configuration) does not spin.
FIRST_PAUSE = 1.0
LONGEST_PAUSE = 30.0
STOP_GRACE = 30.0  # seconds a process has to finish its open requests before SIGKILL

Spawn = Callable[[int, socket.socket], subprocess.Popen[bytes]]


class ParentLink:
    """An API process's end of the pair: wakes go out; the other end closing means the
    first process is gone, and this one should stop."""

    def __init__(self, sock: socket.socket) -> None:
        sock.setblocking(False)
        self._sock = sock
        self._watching: asyncio.AbstractEventLoop | None = None

    def send(self, kind: bytes) -> None:
        # A full buffer already holds wakes the first process has not read; a closed one
        # means it is gone, and watch() stops this process.
        with contextlib.suppress(OSError):
            self._sock.send(kind)

    def watch(self, on_gone: Callable[[], None]) -> None:
        """Call `on_gone` once, when the first process closes its end (it stopped or died)."""
        loop = asyncio.get_running_loop()

        def readable() -> None:
            data = _received(self._sock)
            if data is None:
                return
            if not data:
                loop.remove_reader(self._sock)
                self._watching = None
                on_gone()

        loop.add_reader(self._sock, readable)
        self._watching = loop

    def close(self) -> None:
        if self._watching is not None:
            self._watching.remove_reader(self._sock)
            self._watching = None
        self._sock.close()


def _received(sock: socket.socket) -> bytes | None:
    """What a readable end holds: bytes, b"" when the other end is gone, None for nothing."""
    try:
        return sock.recv(4096)
    except (BlockingIOError, InterruptedError):
        return None
    except OSError:
        return b""


@dataclass
class _Sibling:
    slot: int
    process: subprocess.Popen[bytes]
    sock: socket.socket
    started: float


class SiblingProcesses:
    """The first process's side: starts `count` API processes through `spawn`, turns their
    bytes into wakes, starts one again if it ends on its own, and stops them all at the end."""

    def __init__(
        self, count: int, spawn: Spawn, ended: Callable[[int], None] = lambda pid: None
    ) -> None:
        self.count = count
        self._spawn = spawn
        self._ended_pid = ended  # told the pid of each process that has ended and been reaped
        self._wake: Callable[[bytes], None] = lambda kind: None
        self._running: dict[int, _Sibling] = {}
        self._pauses: dict[int, float] = {}
        self._stopping = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._ready: set[int] = set()
        self._all_ready: asyncio.Event | None = None

    @property
    def pids(self) -> list[int]:
        return [sibling.process.pid for sibling in self._running.values()]

    async def start(self, wake: Callable[[bytes], None]) -> None:
        self._loop = asyncio.get_running_loop()
        self._wake = wake
        self._all_ready = asyncio.Event()
        for slot in range(1, self.count + 1):
            self._launch(slot)

    async def ready(self) -> None:
        """Return once every API process has listened (each at least once)."""
        assert self._all_ready is not None, "start() first"
        await self._all_ready.wait()

    def _launch(self, slot: int) -> None:
        if self._stopping or self._loop is None:
            return
        ours, theirs = socket.socketpair()
        try:
            process = self._spawn(slot, theirs)
        except OSError as exc:
            ours.close()
            log.error("could not start API process %d: %s", slot, exc)
            self._again_later(slot)
            return
        finally:
            theirs.close()
        ours.setblocking(False)
        sibling = _Sibling(slot, process, ours, self._loop.time())
        self._running[slot] = sibling
        self._loop.add_reader(ours, self._readable, sibling)
        log.info("API process %d started (pid %d)", slot, process.pid)

    def _readable(self, sibling: _Sibling) -> None:
        data = _received(sibling.sock)
        if data is None:
            return
        if data:
            if READY in data:
                self._ready.add(sibling.slot)
                if len(self._ready) == self.count and self._all_ready is not None:
                    self._all_ready.set()
            for kind in WAKES:
                if kind in data:
                    self._wake(kind)
            return
        self._ended(sibling)

    def _ended(self, sibling: _Sibling) -> None:
        assert self._loop is not None
        self._loop.remove_reader(sibling.sock)
        sibling.sock.close()
        self._running.pop(sibling.slot, None)
        if not self._stopping:
            task = self._loop.create_task(self._start_again(sibling))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _start_again(self, sibling: _Sibling) -> None:
        """A process ended on its own (killed, crashed): say so, and start another."""
        code = await asyncio.to_thread(sibling.process.wait)
        self._ended_pid(sibling.process.pid)
        assert self._loop is not None
        lived = self._loop.time() - sibling.started
        log.warning(
            "API process %d (pid %d) ended with exit code %d after %.0f s; starting it again",
            sibling.slot,
            sibling.process.pid,
            code,
            lived,
        )
        if lived > LONGEST_PAUSE:
            self._pauses.pop(sibling.slot, None)
        self._again_later(sibling.slot)

    def _again_later(self, slot: int) -> None:
        assert self._loop is not None
        pause = self._pauses.get(slot, FIRST_PAUSE / 2) * 2
        self._pauses[slot] = min(pause, LONGEST_PAUSE)
        self._loop.call_later(self._pauses[slot], self._launch, slot)

    async def stop(self) -> None:
        """Ask each process to finish (SIGTERM), wait, and SIGKILL one that does not."""
        self._stopping = True
        for task in list(self._tasks):
            task.cancel()
        siblings = list(self._running.values())
        self._running.clear()
        for sibling in siblings:
            if self._loop is not None:
                self._loop.remove_reader(sibling.sock)
            with contextlib.suppress(ProcessLookupError):
                sibling.process.terminate()
        for sibling in siblings:
            try:
                await asyncio.to_thread(sibling.process.wait, STOP_GRACE)
            except subprocess.TimeoutExpired:
                log.warning("API process %d did not stop in time; killing it", sibling.slot)
                sibling.process.kill()
                await asyncio.to_thread(sibling.process.wait)
            self._ended_pid(sibling.process.pid)
            sibling.sock.close()
