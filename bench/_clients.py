"""HTTP/1.1 keep-alive clients for load generation: httpx, or a lean raw-asyncio one.

On a 2-core machine the load generator shares the CPU with the server, so its own cost per
request matters. `httpx.AsyncClient` with a pool of 128 connections is far too expensive for
that: httpcore re-scans the whole pool on every request start and finish, and on this machine
it took a whole core to drive 420 requests/s over 32 connections. The raw client (one
asyncio protocol per connection, at most one request in flight on each, responses framed by
Content-Length) drives 1,500+ requests/s with 0.04 core. Both send the same requests."""

from __future__ import annotations

import asyncio
from typing import Protocol, cast
from urllib.parse import urlsplit

import httpx


class Session(Protocol):
    """One client's view of the server: requests are sent one after another."""

    async def request(self, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
        """Send a request and return the status code and the whole response body."""
        ...


class Pool(Protocol):
    async def session(self) -> Session: ...

    async def close(self) -> None: ...


class HttpxPool:
    """One `httpx.AsyncClient` per server, its connection pool sized to the sessions."""

    def __init__(self, base_urls: list[str], api_key: str, connections: int) -> None:
        per_server = max(1, -(-connections // len(base_urls)))
        self.clients = [
            httpx.AsyncClient(
                base_url=url,
                headers={"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"},
                limits=httpx.Limits(
                    max_connections=per_server, max_keepalive_connections=per_server
                ),
                timeout=httpx.Timeout(120.0),
                http1=True,
                http2=False,
            )
            for url in base_urls
        ]
        self.opened = 0

    async def session(self) -> Session:
        client = self.clients[self.opened % len(self.clients)]
        self.opened += 1
        return HttpxSession(client)

    async def close(self) -> None:
        for client in self.clients:
            await client.aclose()


class HttpxSession:
    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client

    async def request(self, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
        response = await self.client.request(method, path, content=body)
        return response.status_code, response.content


class _Connection(asyncio.Protocol):
    """One keep-alive connection; at most one request in flight."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.waiter: asyncio.Future[tuple[int, bytes]] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's are not subclasses

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            return
        head = bytes(self.buffer[:end]).lower()
        at = head.find(b"\r\ncontent-length:")
        if at < 0:
            self._finish(RuntimeError(f"response without Content-Length: {head[:200]!r}"))
            return
        line_end = head.find(b"\r\n", at + 2)
        length = int(head[at + 17 : line_end if line_end >= 0 else len(head)])
        if len(self.buffer) < end + 4 + length:
            return
        status = int(head[9:12])
        body = bytes(self.buffer[end + 4 : end + 4 + length])
        del self.buffer[: end + 4 + length]
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result((status, body))

    def connection_lost(self, exc: Exception | None) -> None:
        self._finish(exc or ConnectionResetError("the server closed the connection"))

    def _finish(self, exc: BaseException) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(exc)


class RawSession:
    """A session on its own raw connection."""

    def __init__(self, connection: _Connection, host: str, api_key: str) -> None:
        self.connection = connection
        self.prefix = f"\r\nHost: {host}\r\nAuthorization: Bearer {api_key}\r\n".encode()

    async def request(self, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
        transport = self.connection.transport
        if transport is None or transport.is_closing():
            raise ConnectionResetError("connection closed")
        payload = body or b""
        head = f"{method} {path} HTTP/1.1".encode() + self.prefix
        if body is not None:
            head += b"Content-Type: application/json\r\n"
        head += b"Content-Length: %d\r\n\r\n" % len(payload)
        waiter: asyncio.Future[tuple[int, bytes]] = asyncio.get_running_loop().create_future()
        self.connection.waiter = waiter
        transport.write(head + payload)
        return await waiter


class RawPool:
    """A fresh TCP connection per session, spread round-robin over the servers."""

    def __init__(self, base_urls: list[str], api_key: str) -> None:
        self.addresses = [
            (p.hostname or "127.0.0.1", p.port or 80) for p in map(urlsplit, base_urls)
        ]
        self.api_key = api_key
        self.connections: list[_Connection] = []

    async def session(self) -> Session:
        host, port = self.addresses[len(self.connections) % len(self.addresses)]
        loop = asyncio.get_running_loop()
        _, connection = await loop.create_connection(_Connection, host, port)
        self.connections.append(connection)
        return RawSession(connection, f"{host}:{port}", self.api_key)

    async def close(self) -> None:
        for connection in self.connections:
            if connection.transport is not None:
                connection.transport.close()
        self.connections.clear()


def make_pool(kind: str, base_urls: list[str], api_key: str, connections: int) -> Pool:
    if kind == "httpx":
        return HttpxPool(base_urls, api_key, connections)
    if kind == "raw":
        return RawPool(base_urls, api_key)
    raise ValueError(f"unknown client {kind!r}; use httpx or raw")
