"""Kannel's delivery-report receiver for bench/vs_kannel.py: a loopback HTTP server of its own.

It runs as a separate process so that its CPU is neither the load client's nor Kannel's, and
counts every `GET /dlr?...type=1...` (delivered) with the wall-clock time of the last one.
`GET /status` answers "<delivered> <wall time of the last>"; anything else answers 200 too.
Keep-alive HTTP/1.1, one asyncio protocol per connection, no parsing beyond the request line.

    python bench/_dlr_receiver.py PORT
"""

from __future__ import annotations

import asyncio
import socket
import sys
import time
from typing import cast

_OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nok"


class Tally:
    delivered = 0
    other = 0
    last_at = 0.0


class _Receiver(asyncio.Protocol):
    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head, self.buffer = self.buffer[:end], self.buffer[end + 4 :]
            self._answer(head[: head.find(b" HTTP/")] if b" HTTP/" in head else head)

    def _answer(self, request_line: bytes) -> None:
        assert self.transport is not None
        if request_line.startswith(b"GET /dlr"):
            if b"type=1" in request_line:
                Tally.delivered += 1
                Tally.last_at = time.time()
            else:
                Tally.other += 1
            self.transport.write(_OK)
        elif request_line.startswith(b"GET /status"):
            body = f"{Tally.delivered} {Tally.last_at!r} {Tally.other}".encode()
            self.transport.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body))
            self.transport.write(body)
        else:
            self.transport.write(_OK)


def status(port: int) -> tuple[int, float, int]:
    """(delivered reports, wall time of the last, other reports) from a running receiver."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"GET /status HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
        answer = b""
        while chunk := sock.recv(4096):
            answer += chunk
            if b"\r\n\r\n" in answer and len(answer.split(b"\r\n\r\n", 1)[1]) > 0:
                head, body = answer.split(b"\r\n\r\n", 1)
                length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
                if len(body) >= length:
                    break
    delivered, last_at, other = answer.split(b"\r\n\r\n", 1)[1].split()
    return int(delivered), float(last_at), int(other)


async def serve(port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(_Receiver, "127.0.0.1", port, backlog=1024)
    print("ready", flush=True)
    async with server:
        await server.serve_forever()


def main() -> None:
    try:
        import uvloop

        runner = asyncio.Runner(loop_factory=uvloop.new_event_loop)
    except ImportError:
        runner = asyncio.Runner()
    with runner:
        runner.run(serve(int(sys.argv[1])))


if __name__ == "__main__":
    main()
