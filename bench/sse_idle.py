"""Idle live pages: what 200 browsers holding an event stream open cost a real `smsdesk serve`.

A fresh `smsdesk serve` (dispatcher and simulator in the same process, as users run it) gets
a logged-in agent; each round opens --clients streams (`GET /live/events?topics=message`, as
the outbox page asks), waits until every one has its first event, and then, with nothing
happening, reads the server's CPU time from /proc over --seconds. Printed per round and as the
median: the server's CPU % (of one core) with the streams open, and the same without any
stream (the dispatcher's own idle scans) for comparison. Target: < 5 % with 200 streams.

    python bench/sse_idle.py                         # 200 streams, 30 s, 3 rounds
    python bench/sse_idle.py --clients 50 --seconds 5 --rounds 1      # a smoke test
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import time

import httpx
from _server import Server, _environment, running_server, smsdesk_command

PASSWORD = "bench password for live streams"


def create_agent(server: Server) -> None:
    env = _environment(server.data_dir, None, "WARNING")
    subprocess.run(
        [*smsdesk_command(), "users", "create", "bench", "--role", "agent", "--password-stdin"],
        input=PASSWORD + "\n",
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )


def session_cookie(base_url: str) -> str:
    """Log in as a browser does; answers the session cookie's header value."""
    with httpx.Client(base_url=base_url, timeout=10) as client:
        page = client.get("/login")
        token = page.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
        answer = client.post(
            "/login", data={"csrf_token": token, "username": "bench", "password": PASSWORD}
        )
        assert answer.status_code == 303, answer.text
        return "; ".join(f"{name}={value}" for name, value in client.cookies.items())


class Stream:
    """One idle browser: a raw HTTP/1.1 connection reading an event stream."""

    def __init__(self) -> None:
        self.writer: asyncio.StreamWriter | None = None
        self.ready = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    async def open(self, host: str, port: int, cookie: str) -> None:
        reader, self.writer = await asyncio.open_connection(host, port)
        self.writer.write(
            (
                "GET /live/events?topics=message HTTP/1.1\r\n"
                f"Host: {host}:{port}\r\nAccept: text/event-stream\r\nCookie: {cookie}\r\n\r\n"
            ).encode()
        )
        await self.writer.drain()
        self.task = asyncio.create_task(self._read(reader))

    async def _read(self, reader: asyncio.StreamReader) -> None:
        while line := await reader.readline():
            if line.startswith(b"event: ready"):
                self.ready.set()

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        if self.task is not None:
            self.task.cancel()


async def cpu_percent(server: Server, seconds: float) -> float:
    before_cpu, before = server.cpu_seconds(), time.monotonic()
    await asyncio.sleep(seconds)
    return 100.0 * (server.cpu_seconds() - before_cpu) / (time.monotonic() - before)


async def one_round(
    server: Server, cookie: str, clients: int, seconds: float
) -> tuple[float, float]:
    host, port = server.base_urls[0].removeprefix("http://").split(":")
    baseline = await cpu_percent(server, seconds)
    streams = [Stream() for _ in range(clients)]
    for stream in streams:
        await stream.open(host, int(port), cookie)
    await asyncio.wait_for(asyncio.gather(*(s.ready.wait() for s in streams)), 60)
    await asyncio.sleep(1.0)  # let the connections settle
    with_streams = await cpu_percent(server, seconds)
    for stream in streams:
        await stream.close()
    await asyncio.sleep(1.0)
    return baseline, with_streams


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with running_server(dispatcher=True) as server:
        create_agent(server)
        cookie = session_cookie(server.base_urls[0])
        results = []
        for number in range(1, args.rounds + 1):
            baseline, busy = asyncio.run(one_round(server, cookie, args.clients, args.seconds))
            results.append((baseline, busy))
            print(
                f"round {number}: no streams {baseline:.2f} % CPU, "
                f"{args.clients} idle streams {busy:.2f} % CPU",
                flush=True,
            )
        stream_median = statistics.median(r[1] for r in results)
        print(
            f"median over {args.rounds} rounds of {args.seconds:.0f} s: "
            f"no streams {statistics.median(r[0] for r in results):.2f} %, "
            f"{args.clients} idle streams {stream_median:.2f} % CPU of one core "
            f"(target < 5 %; {os.cpu_count()} cores)"
        )


if __name__ == "__main__":
    main()
