"""The deliverer: claims due webhook deliveries, POSTs them signed, records what happened.

It runs as its own asyncio task with its own HTTP client, apart from the SMS dispatcher: a
receiver that hangs or fails holds at most `concurrency` delivery slots for `timeout` seconds
each and never delays sending or receiving SMS. A claim is a lease (`lease_seconds`): if this
process stops mid-delivery, the delivery is taken up again once the lease has expired, so a
receiver may see the same delivery twice and should de-duplicate on the event id.

Each attempt resolves the receiver's host, checks every address (`destinations`: public, or in
the installation's `webhooks.allow_private`) and connects to a checked one (`transport`).
Redirects are not followed: a 3xx is a failed attempt.

Every process with a deliverer sends fresh deliveries at once (woken by its own hub, or at its
next poll for those queued elsewhere), so first-delivery latency does not depend on which
process leads. Retries (deliveries tried before) are claimed only by the process leading the
`webhook-retries` job (`cluster.Leadership`); each of its scans that took a retry is journalled.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable, Sequence

import httpx

from smsdesk import __version__
from smsdesk.cluster import JobGate
from smsdesk.crypto import SecretBox, SecretKeyError
from smsdesk.domain.webhook_settings import Network
from smsdesk.scan_loop import ScanLoop
from smsdesk.store.webhook_claims import claim_first_attempts
from smsdesk.store.webhooks import Claimed, claim_due, record_attempt
from smsdesk.store.writer import Writer
from smsdesk.webhooks_out.destinations import (
    Address,
    DestinationRefused,
    Resolver,
    checked_addresses,
    resolve_host,
)
from smsdesk.webhooks_out.retry import DeliveryPolicy, next_attempt_at
from smsdesk.webhooks_out.signing import sign_headers
from smsdesk.webhooks_out.transport import PinnedTransport

log = logging.getLogger(__name__)
ERROR_BODY_BYTES = 300


class WebhookDeliverer(ScanLoop):
    """One process's delivery loop; several may run against one PostgreSQL database (without a
    `gate` this process retries too, e.g. in tests)."""

    scan_failed = "webhook delivery scan failed; trying again"
    scan_log = log

    def __init__(
        self,
        *,
        writer: Writer,
        box: SecretBox,
        clock: Callable[[], float] = time.time,
        concurrency: int = 8,
        timeout: float = 10.0,
        poll_interval: float = 1.0,
        lease_seconds: float = 60.0,
        policy: DeliveryPolicy = DeliveryPolicy(),
        allowed: Callable[[], Sequence[Network]] = tuple,
        resolve: Resolver = resolve_host,
        gate: JobGate | None = None,
    ) -> None:
        self.writer = writer
        self.gate = gate or JobGate("webhook-retries", "this process")
        self.box = box
        self.clock = clock
        self.concurrency = concurrency
        self.timeout = timeout
        self.poll_interval = poll_interval
        self.lease_seconds = max(lease_seconds, timeout * 3)
        self.policy = policy
        self.rng = random.Random()
        self.allowed = allowed
        self.resolve = resolve
        self._client: httpx.AsyncClient | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._wake = asyncio.Event()
        self._main: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping = False
        self.scans = 0
        self.attempts = 0  # attempts finished and recorded (for tests and metrics)

    @property
    def in_flight(self) -> int:
        return len(self._tasks)

    def wake(self) -> None:
        """Deliveries were queued: scan now instead of at the next poll (from any thread)."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            self._wake.set()
        else:
            loop.call_soon_threadsafe(self._wake.set)

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(self.timeout),
            transport=PinnedTransport(self._check),
            follow_redirects=False,
            headers={"User-Agent": f"smsdesk/{__version__} (webhooks)"},
        )
        self._main = asyncio.create_task(self._scan_forever(), name="webhook-deliverer")

    async def stop(self) -> None:
        """Stop at once: deliveries under way are cut short and retried after their lease."""
        self._stopping = True
        for task in [self._main, *self._tasks]:
            if task is not None:
                task.cancel()
        for task in [self._main, *self._tasks]:
            if task is not None:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._main = None
        if self._client is not None:
            await self._client.aclose()
            self._client = None
        self._loop = None

    def _check(self, host: str, port: int) -> list[Address]:
        """The addresses of `host` this attempt may connect to (run in a worker thread)."""
        return checked_addresses(host, port, self.allowed(), self.resolve)

    async def run_once(self) -> int:
        """Claim as many due deliveries as there are free slots and start them."""
        free = self.concurrency - len(self._tasks)
        if free <= 0:
            return 0
        now = self.clock()
        started = time.time()
        retries = self.gate.leads()
        claim = claim_due if retries else claim_first_attempts
        claimed = await self.writer.run(
            lambda c: claim(c, now=now, lease_until=now + self.lease_seconds, limit=free)
        )
        if retries and any(item.attempts for item in claimed):
            self.gate.record(started)
        for item in claimed:
            task = asyncio.create_task(self._deliver(item), name=f"webhook-{item.id}")
            self._tasks.add(task)
            task.add_done_callback(self._finished)
        self.scans += 1
        return len(claimed)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("webhook delivery task failed", exc_info=task.exception())
        self._wake.set()

    async def _deliver(self, item: Claimed) -> None:
        status_code, error = await self._post(item)
        now = self.clock()
        retry_at = None
        if error is not None:
            retry_at = next_attempt_at(
                item.attempts + 1, now, item.created_at, self.policy, self.rng
            )
        await self.writer.run(
            lambda c: record_attempt(
                c, item.id, now=now, status_code=status_code, error=error, next_attempt_at=retry_at
            )
        )
        self.attempts += 1
        self._log(item, status_code, error, retry_at)

    async def _post(self, item: Claimed) -> tuple[int | None, str | None]:
        """One attempt: (HTTP status or None, None if delivered else what went wrong)."""
        assert self._client is not None, "the deliverer is not started"
        try:
            secret = self.box.decrypt(item.sealed_secret)
        except SecretKeyError as exc:
            return None, str(exc)
        headers = sign_headers(
            secret, item.payload, event_type=item.event_type, delivery_id=item.id, now=self.clock()
        )
        try:
            async with asyncio.timeout(self.timeout):
                request = self._client.build_request(
                    "POST", item.url, content=item.payload.encode(), headers=headers
                )
                response = await self._client.send(request, stream=True)
                try:
                    excerpt = await _read_some(response, ERROR_BODY_BYTES)
                finally:
                    await response.aclose()
        except TimeoutError:
            return None, f"no answer within {self.timeout:g} s"
        except DestinationRefused as exc:
            return None, exc.message
        except httpx.HTTPError as exc:
            return None, f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        if 200 <= response.status_code < 300:
            return response.status_code, None
        if 300 <= response.status_code < 400:
            return response.status_code, _redirect_error(response)
        detail = excerpt.decode("utf-8", "replace").strip()
        return response.status_code, f"HTTP {response.status_code}" + (
            f": {detail}" if detail else ""
        )

    @staticmethod
    def _log(item: Claimed, code: int | None, error: str | None, retry_at: float | None) -> None:
        extra = {
            "delivery_id": item.id,
            "subscription_id": item.subscription_id,
            "event_type": item.event_type,
            "status_code": code,
            "attempt": item.attempts + 1,
        }
        if error is None:
            log.info("webhook delivered", extra=extra)
        elif retry_at is None:
            log.warning("webhook delivery dead: %s", error, extra=extra)
        else:
            log.info("webhook delivery failed: %s; retrying", error, extra=extra)


def _redirect_error(response: httpx.Response) -> str:
    location = response.headers.get("location", "")
    return (
        f"HTTP {response.status_code}: redirects are not followed; give the webhook the final "
        "URL" + (f" (the receiver pointed to {location[:200]})" if location else "")
    )


async def _read_some(response: httpx.Response, limit: int) -> bytes:
    """At most `limit` bytes of the body: enough to show in `last_error`, never a flood."""
    data = b""
    async for chunk in response.aiter_bytes():
        data += chunk
        if len(data) >= limit:
            break
    return data[:limit]
