"""The HTTP server's own cost per request: a bare ASGI application under the server `serve` uses.

The application reads the body and answers a small JSON 201, as `POST /api/v1/messages` does,
with no smsdesk code at all. Driven by vs_kannel.py's load client with the same request, it
shows the floor the HTTP layer sets under every accepted message: whatever smsdesk's own code
costs comes on top of it.

    python bench/http_floor.py                     # uvicorn (uvloop + httptools), C=128
    python bench/http_floor.py --server granian    # another ASGI server, if it is installed
    python bench/http_floor.py -n 50000 -c 32 --runs 5
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _lean_client import LeanClient
from _server import free_port
from _vs_systems import tree_cpu_seconds

APP = """
async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            kind = message["type"].replace("lifespan.", "")
            await send({"type": f"lifespan.{kind}.complete"})
            if kind == "shutdown":
                return
    while (await receive()).get("more_body"):
        pass
    body = b'{"id":"01JB3Z8W5Q7J1N2M3K4P5R6S7T","status":"queued","segments":1}'
    await send({"type": "http.response.start", "status": 201, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
"""

BODY = b'{"to": "+31612345678", "text": "Your code is 123456"}'


def command(server: str, port: int) -> list[str]:
    if server == "uvicorn":
        return [
            sys.executable, "-m", "uvicorn", "floor_app:app", "--port", str(port),
            "--loop", "uvloop", "--http", "httptools", "--no-access-log", "--log-level", "warning",
        ]  # fmt: skip
    return [
        sys.executable, "-m", "granian", "--interface", "asgi", "--port", str(port),
        "--workers", "1", "--runtime-threads", "1", "--log-level", "warning", "floor_app:app",
    ]  # fmt: skip


def wait_listening(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"the server did not listen on {port}") from None
            time.sleep(0.05)


async def one_run(port: int, pid: int, count: int, connections: int) -> tuple[float, float]:
    request = (
        b"POST /api/v1/messages HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(BODY)
    ) + BODY
    client = LeanClient("127.0.0.1", port, connections)
    await client.open()
    await client.run([request] * min(count, 2000))  # warm up
    before = tree_cpu_seconds(pid)
    result = await client.run([request] * count)
    used = tree_cpu_seconds(pid) - before
    client.close()
    if result.errors or set(result.statuses) != {201}:
        raise RuntimeError(f"unexpected answers: {dict(result.statuses)} {result.errors[:3]}")
    return count / result.seconds, used / count * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server", choices=("uvicorn", "granian"), default="uvicorn")
    parser.add_argument("-n", "--requests", type=int, default=20_000)
    parser.add_argument("-c", "--connections", type=int, default=128)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        (work / "floor_app.py").write_text(APP)
        rates, costs = measure(args, work)
    print(
        f"{args.server}, C={args.connections}, N={args.requests:,}, median of {args.runs}: "
        f"{statistics.median(rates):,.0f} requests/s, "
        f"{statistics.median(costs):.4f} ms of server CPU per request"
    )


def measure(args: argparse.Namespace, work: Path) -> tuple[list[float], list[float]]:
    """Each run's requests per second and server CPU milliseconds per request."""
    rates, costs = [], []
    for run in range(1, args.runs + 1):
        port = free_port()
        server = subprocess.Popen(command(args.server, port), cwd=work)
        try:
            wait_listening(port)
            rate, cost = asyncio.run(one_run(port, server.pid, args.requests, args.connections))
        finally:
            server.terminate()
            server.wait(10)
        rates.append(rate)
        costs.append(cost)
        print(f"run {run}/{args.runs}: {rate:,.0f} requests/s, {cost:.4f} ms server CPU each")
    return rates, costs


if __name__ == "__main__":
    main()
