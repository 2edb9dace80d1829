"""What every fake provider server shares: a loopback HTTP server in its own thread.

A fake keeps every request it received and every SMS it accepted, can be told to fail the
next requests in the ways real providers fail, and sends delivery reports and inbound messages
to smsdesk's webhooks the way its provider does. It runs in a thread with its own event loop,
so the service under test may run in the test's loop or in another process.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import json
import socket
import threading
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, ClassVar, Self
from urllib.parse import parse_qsl, urlsplit, urlunsplit

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class FailureMode(StrEnum):
    """The ways a provider fails that every module must survive."""

    SERVER_ERROR = "server_error"  # a 5xx (or the provider's own "internal error")
    TIMEOUT = "timeout"  # no answer until the client gives up
    THROTTLE = "throttle"  # "too many requests", with Retry-After where the provider gives one
    AUTH = "auth"  # the credentials are refused
    PARTIAL = "partial"  # a batch where the provider refuses some messages and takes the rest
    # The port refuses connections (the server is down) until `release_held()`; the messages
    # the fake took so far stay. Not one request: nothing can be counted at a closed port.
    REFUSE_CONNECTION = "refuse_connection"
    # The next send is taken (stored, as if it went out) but its answer is held until the
    # client gave up: the provider has the message and the client cannot know.
    ACCEPT_THEN_TIMEOUT = "accept_then_timeout"


@dataclass(frozen=True, slots=True)
class ReceivedRequest:
    """One HTTP request as the fake received it."""

    method: str
    path: str
    query: Mapping[str, str]
    headers: Mapping[str, str]
    body: bytes

    def form(self, encoding: str = "utf-8") -> dict[str, list[str]]:
        """The body as an HTML form (every value of every field, in order)."""
        fields: dict[str, list[str]] = {}
        for name, value in parse_qsl(
            self.body.decode(encoding), keep_blank_values=True, encoding=encoding
        ):
            fields.setdefault(name, []).append(value)
        return fields

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass(slots=True)
class FakeSms:
    """One SMS the fake accepted, in smsdesk's terms whatever the wire format was."""

    provider_id: str
    to: str  # E.164 with "+"
    sender: str
    text: str  # decoded
    reference: str | None = None  # our message id, where the protocol carries one
    unicode: bool = False
    report_requested: bool = True
    callback_url: str | None = None  # where this message's reports go, if given per message
    priority: str | None = None  # the provider's own priority value, as sent
    fields: dict[str, Any] = field(default_factory=dict)  # everything else, as sent
    # The outcome the provider knows (None: still under way), reported to us or not; what a
    # status query answers.
    delivered: bool | None = None


def forge_url(url: str) -> str:
    """The same callback URL with its secret (the last path segment) replaced."""
    parts = urlsplit(url)
    head, _, _secret = parts.path.rpartition("/")
    return urlunsplit(parts._replace(path=f"{head}/not-the-secret"))


class FakeProvider(abc.ABC):
    """A provider's API on loopback, stateful and strict, with failure modes.

    Subclasses give the routes, the module settings that point smsdesk at the fake, and how
    the provider delivers reports and inbound messages.
    """

    module: ClassVar[str]
    supports_inbound: ClassVar[bool] = True
    send_paths: ClassVar[tuple[str, ...]] = ()  # the paths of the API's send endpoints

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.requests: list[ReceivedRequest] = []
        self.messages: list[FakeSms] = []
        self.status_url: str | None = None  # reports URL configured at the provider (portal)
        self.inbound_url: str | None = None  # where the provider forwards inbound SMS
        self.refused_numbers: set[str] = set()  # E.164 numbers refused as invalid/unknown
        self._failures: deque[FailureMode] = deque()
        self._release = threading.Event()
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None
        self._port: int | None = None
        self._down = False
        self._counter = 0

    # -- what each provider's fake defines -------------------------------------------------

    @abc.abstractmethod
    def routes(self) -> list[BaseRoute]:
        """The provider's API endpoints."""

    @abc.abstractmethod
    def module_settings(self) -> dict[str, Any]:
        """smsdesk settings for this module: valid credentials and this fake's base URL."""

    @abc.abstractmethod
    async def send_report(
        self, client: httpx.AsyncClient, sms: FakeSms, delivered: bool, *, forged: bool = False
    ) -> httpx.Response:
        """Send a delivery report for `sms` as the provider does; `forged` breaks its proof."""

    async def send_inbound(
        self,
        client: httpx.AsyncClient,
        sender: str,
        recipient: str,
        text: str,
        *,
        forged: bool = False,
    ) -> httpx.Response:
        """Forward an SMS from `sender` (E.164) to `recipient` as the provider does."""
        raise NotImplementedError(f"{self.module} does not forward inbound SMS")

    # -- control ---------------------------------------------------------------------------

    def lose_report(self, sms: FakeSms, delivered: bool) -> None:
        """The message reached its end at the provider, but the report never reaches us."""
        with self.lock:
            sms.delivered = delivered

    def fail_next(self, mode: FailureMode, times: int = 1) -> None:
        """Make the next `times` send requests fail in this way.

        REFUSE_CONNECTION closes the port at once, until `release_held()`.
        """
        if mode is FailureMode.REFUSE_CONNECTION:
            self._go_down()
            return
        with self.lock:
            self._failures.extend([mode] * times)

    def reset(self) -> None:
        """Forget what earlier tests did, so one started fake can serve many tests."""
        self.release_held()
        with self.lock:
            self.requests.clear()
            self.messages.clear()
            self.refused_numbers.clear()
            self._failures.clear()
        self.status_url = self.inbound_url = None

    def refuse_number(self, number: str) -> None:
        """Refuse sends to `number` (E.164) the way the provider refuses an invalid number."""
        with self.lock:
            self.refused_numbers.add(number)

    def is_send(self, path: str) -> bool:
        """Whether `path` is one of the API's send endpoints."""
        return path in self.send_paths

    def send_requests(self) -> list[ReceivedRequest]:
        """The requests that reached a send endpoint."""
        with self.lock:
            return [r for r in self.requests if self.is_send(r.path)]

    def point_callbacks(self, status_url: str | None, inbound_url: str | None) -> None:
        """What the customer configures in the provider's portal."""
        self.status_url = status_url
        self.inbound_url = inbound_url

    def release_held(self) -> None:
        """Let requests held by a TIMEOUT failure finish (their client is long gone), and
        open the port again after REFUSE_CONNECTION."""
        release, self._release = self._release, threading.Event()
        release.set()
        if self._down and self._port is not None:
            self._down = False
            self.start(self._port)

    def sent_to(self, number: str) -> list[FakeSms]:
        with self.lock:
            return [sms for sms in self.messages if sms.to == number]

    def by_reference(self, reference: str) -> list[FakeSms]:
        with self.lock:
            return [sms for sms in self.messages if sms.reference == reference]

    def find(self, provider_id: str) -> FakeSms:
        with self.lock:
            for sms in self.messages:
                if sms.provider_id == provider_id:
                    return sms
        raise KeyError(f"{self.module} fake has no message {provider_id}")

    # -- for subclasses ----------------------------------------------------------------------

    async def received(self, request: Request) -> ReceivedRequest:
        """Read and keep a request."""
        body = await request.body()
        item = ReceivedRequest(
            request.method,
            request.url.path,
            dict(request.query_params),
            {k.lower(): v for k, v in request.headers.items()},
            body,
        )
        with self.lock:
            self.requests.append(item)
        return item

    def next_failure(self) -> FailureMode | None:
        with self.lock:
            return self._failures.popleft() if self._failures else None

    def _take_failure(self, mode: FailureMode) -> bool:
        """Take the next failure if it is `mode`, before the send handler sees it."""
        with self.lock:
            if self._failures and self._failures[0] is mode:
                self._failures.popleft()
                return True
        return False

    def _answer_late(self, app: ASGIApp) -> ASGIApp:
        """`app`, with ACCEPT_THEN_TIMEOUT: the send handler takes the message as always, and
        its answer is held until released (the client's timeout fires first)."""

        async def late(scope: Scope, receive: Receive, send: Send) -> None:
            if not (
                scope["type"] == "http"
                and self.is_send(scope["path"])
                and self._take_failure(FailureMode.ACCEPT_THEN_TIMEOUT)
            ):
                await app(scope, receive, send)
                return

            async def held(message: Message) -> None:
                if message["type"] == "http.response.start":
                    await self.hold()
                await send(message)

            await app(scope, receive, held)

        return late

    async def hold(self) -> None:
        """Do not answer until released or stopped: the client's timeout fires first."""
        await asyncio.to_thread(self._release.wait, 120)

    def new_id(self, prefix: str = "", width: int = 12) -> str:
        with self.lock:
            self._counter += 1
            return f"{prefix}{self._counter:0{width}d}"

    def accept(self, sms: FakeSms) -> FakeSms:
        with self.lock:
            self.messages.append(sms)
        return sms

    def report_url(self, sms: FakeSms, forged: bool) -> str:
        """Where a report for `sms` goes: its own callback URL or the portal's."""
        url = sms.callback_url or self.status_url
        if not url:
            raise RuntimeError(f"{self.module} fake: no callback URL for {sms.provider_id}")
        return forge_url(url) if forged else url

    def forward_url(self, forged: bool) -> str:
        if not self.inbound_url:
            raise RuntimeError(f"{self.module} fake: no inbound URL configured")
        return forge_url(self.inbound_url) if forged else self.inbound_url

    # -- running -----------------------------------------------------------------------------

    @property
    def url(self) -> str:
        if self._port is None:
            raise RuntimeError("the fake is not started")
        return f"http://127.0.0.1:{self._port}"

    def _go_down(self) -> None:
        """Close the port (connections are refused) but keep every message and control."""
        if self._server is None or self._down:
            return
        port = self._port
        self.stop()
        self._port, self._down = port, True

    def start(self, port: int = 0) -> Self:
        """Serve on `port` (0: any free one); a restarted fake can take its old port again."""
        self._release = threading.Event()
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))
        self._socket = sock
        self._port = sock.getsockname()[1]
        self._down = False
        app = self._answer_late(Starlette(routes=self.routes()))
        self._server = uvicorn.Server(
            uvicorn.Config(app, log_level="warning", lifespan="off", access_log=False)
        )
        server = self._server
        self._thread = threading.Thread(
            target=server.run, kwargs={"sockets": [sock]}, name=f"fake-{self.module}", daemon=True
        )
        self._thread.start()
        ready = threading.Event()

        def wait_started() -> None:
            while not server.started and self._thread is not None and self._thread.is_alive():
                ready.wait(0.005)

        wait_started()
        if not server.started:
            raise RuntimeError(f"the {self.module} fake did not start")
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        self._release.set()
        if self._thread is not None:
            self._thread.join(10)
        if self._socket is not None:
            with contextlib.suppress(OSError):
                self._socket.close()
        self._server = self._thread = None
        self._down = False

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
