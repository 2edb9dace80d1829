"""The deliverer's HTTP transport: connects only to an address that was checked just before.

Checking a name and then letting the HTTP library look it up again would let a DNS server
answer a public address to the check and 127.0.0.1 to the connection (DNS rebinding). Here the
name is resolved once per request, every address is checked (`destinations`), and the request
goes to a checked address, with the URL's host kept in the `Host` header and as the TLS server
name (httpcore's `sni_hostname` extension), so certificates are verified against the name.

Connections are pooled per host name, never shared between names that share an address: a
connection is only reused for the name its certificate was checked for.
"""

from __future__ import annotations

import asyncio
import ssl
from collections import OrderedDict
from collections.abc import Callable, Sequence

import httpx

from smsdesk.webhooks_out.destinations import Address

Check = Callable[[str, int], Sequence[Address]]
MAX_POOLS = 64


class PinnedTransport(httpx.AsyncBaseTransport):
    """Sends each request to an address `check(host, port)` returned (tried in its order).

    `check` runs in a worker thread (it resolves names); it raises `DestinationRefused`
    for an address webhooks may not reach, and OSError when the name cannot be resolved.
    """

    def __init__(self, check: Check, *, verify: ssl.SSLContext | bool = True) -> None:
        self.check = check
        self.verify = verify  # certificates are checked against the URL's host name
        self._pools: OrderedDict[tuple[str, str, int], httpx.AsyncHTTPTransport] = OrderedDict()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        port = url.port or (443 if url.scheme == "https" else 80)
        try:
            addresses = await asyncio.to_thread(self.check, url.host, port)
        except OSError as exc:
            raise httpx.ConnectError(f"cannot resolve {url.host}: {exc}", request=request) from exc
        pool = await self._pool(url.scheme, url.host, port)
        extensions = dict(request.extensions)
        if url.scheme == "https":
            extensions["sni_hostname"] = url.host
        failure: httpx.ConnectError | None = None
        for address in addresses:
            pinned = httpx.Request(
                request.method,
                url.copy_with(host=str(address)),
                headers=request.headers,  # holds Host: the URL's own host (and port)
                stream=request.stream,
                extensions=extensions,
            )
            try:
                return await pool.handle_async_request(pinned)
            except httpx.ConnectError as exc:
                failure = exc  # nothing was sent: the next checked address may answer
        assert failure is not None
        raise failure

    async def _pool(self, scheme: str, host: str, port: int) -> httpx.AsyncHTTPTransport:
        key = (scheme, host, port)
        pool = self._pools.pop(key, None) or httpx.AsyncHTTPTransport(verify=self.verify)
        self._pools[key] = pool
        if len(self._pools) > MAX_POOLS:
            _, oldest = self._pools.popitem(last=False)
            await oldest.aclose()
        return pool

    async def aclose(self) -> None:
        pools, self._pools = list(self._pools.values()), OrderedDict()
        for pool in pools:
            await pool.aclose()
