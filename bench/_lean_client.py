"""The load client of bench/vs_kannel.py: prebuilt HTTP/1.1 requests over keep-alive sockets.

On a 2-core machine the client shares the CPU with the servers it measures, so it does as
little as it can: every request is encoded before the clock starts, each connection is one
asyncio protocol with at most one request in flight, and an answer is framed by its
Content-Length and reduced to its status code. Its own CPU time during the load is measured
(`time.process_time`) and printed next to the servers'. The same client drives Kannel's
sendsms GETs and smsdesk's JSON POSTs.
"""

from __future__ import annotations

import asyncio
import time
from array import array
from collections import Counter
from dataclasses import dataclass, field
from typing import cast


class _Connection(asyncio.Protocol):
    """One keep-alive connection; a request is written whole and its answer awaited."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = b""
        self.waiter: asyncio.Future[int] | None = None
        self.first_error = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's are not subclasses

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            return
        at = self.buffer.find(b"ength:", 0, end)  # Content-Length / content-length
        if at < 0:
            self._fail(RuntimeError(f"no Content-Length: {self.buffer[:200]!r}"))
            return
        line_end = self.buffer.find(b"\r\n", at)
        length = int(self.buffer[at + 6 : line_end if 0 <= line_end < end else end])
        if len(self.buffer) < end + 4 + length:
            return
        status = int(self.buffer[9:12])
        if status >= 300 and not self.first_error:
            self.first_error = self.buffer[: end + 4 + length][:400]
        self.buffer = self.buffer[end + 4 + length :]
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(status)

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail(exc or ConnectionResetError("the server closed the connection"))

    def _fail(self, exc: BaseException) -> None:
        if self.transport is not None:
            self.transport.close()
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(exc)

    async def send(self, request: bytes) -> int:
        if self.transport is None or self.transport.is_closing():
            raise ConnectionResetError("connection closed")
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(request)
        return await self.waiter


@dataclass
class LoadResult:
    """What the client saw while it sent one list of requests."""

    requests: int
    seconds: float  # from the first request to the last answer
    started_wall: float  # time.time() at the first request, to compare with servers' clocks
    latencies: array[float] = field(default_factory=lambda: array("d"))
    statuses: Counter[int] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)
    cpu_seconds: float = 0.0  # this process's CPU while sending

    def answered(self, status: int) -> int:
        return self.statuses[status]


class LeanClient:
    """C keep-alive connections to one server; requests go to whichever connection is free."""

    def __init__(self, host: str, port: int, connections: int) -> None:
        self.address = (host, port)
        self.count = connections
        self.connections: list[_Connection] = []

    async def open(self) -> None:
        """Connect one after another: Kannel's HTTP server listens with a backlog of 10."""
        for _ in range(self.count):
            self.connections.append(await self._connect())

    async def _connect(self) -> _Connection:
        loop = asyncio.get_running_loop()
        _, connection = await loop.create_connection(_Connection, *self.address)
        return connection

    async def run(self, requests: list[bytes]) -> LoadResult:
        """Send every request once, at most one in flight per connection."""
        pending = iter(range(len(requests)))
        latencies = array("d")
        statuses: Counter[int] = Counter()
        errors: list[str] = []

        async def worker(slot: int) -> None:
            connection = self.connections[slot]
            for index in pending:
                started = time.perf_counter()
                try:
                    status = await connection.send(requests[index])
                except (OSError, RuntimeError) as exc:
                    statuses[0] += 1
                    errors.append(f"{type(exc).__name__}: {exc}")
                    connection = self.connections[slot] = await self._connect()
                    continue
                latencies.append(time.perf_counter() - started)
                statuses[status] += 1

        cpu_before = time.process_time()
        started_wall, started = time.time(), time.perf_counter()
        await asyncio.gather(*(worker(slot) for slot in range(len(self.connections))))
        seconds = time.perf_counter() - started
        result = LoadResult(len(requests), seconds, started_wall, latencies, statuses, errors)
        result.cpu_seconds = time.process_time() - cpu_before
        for connection in self.connections:
            if connection.first_error:
                result.errors.append(connection.first_error.decode(errors="replace"))
                connection.first_error = b""
        return result

    def close(self) -> None:
        for connection in self.connections:
            if connection.transport is not None:
                connection.transport.close()
        self.connections.clear()


def percentile(values: array[float] | list[float], share: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]
