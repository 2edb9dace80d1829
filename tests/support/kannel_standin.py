"""A recording stand-in for Kannel's smsbox, for kill tests and benches of the kannel module.

It answers `/cgi-bin/sendsms` as smsbox does ("0: Accepted for delivery", HTTP 202) after a
random round trip, and records every request it took: our message id (the `ref=` of the
dlr-url the kannel module sends), when it arrived and whether the answer reached the caller.
Like smsbox it takes the message once it has read the request, whether or not the caller is
still there to hear the answer, so a caller killed mid-request leaves a message at the
provider and no trace at home.

A short while after answering it calls the message's dlr-url with the escapes smsbox fills in
(`%d` the DLR type, 1 = delivered to the phone; `%A` the SMSC's answer; `%F` the SMSC's message
id; `%T` the time as UNIX seconds), as `providers/kannel.py:DLR_QUERY` asks. A call that fails
(smsdesk down, or an answer other than 2xx) is tried again `report_retries` times,
`retry_delay` seconds apart: what smsbox does with `http-request-retry = N` and
`http-queue-delay = S` in its `group = smsbox`. A default smsbox (`http-request-retry = 0`)
drops the report instead.

`hold(n)` keeps the answers of the next n requests back until `release()`: the caller has a
request in flight for as long as a test needs (to freeze or kill it at that moment).
"""

from __future__ import annotations

import heapq
import itertools
import random
import re
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import httpx

SEND_PATH = "/cgi-bin/sendsms"
ACCEPTED = "0: Accepted for delivery"
DELIVERED = "1"  # %d: delivered to the phone
_ESCAPE = re.compile(r"%([A-Za-z])")
_HOLD_LIMIT = 300.0  # a held answer goes out after this long even if no one releases it


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # restarted callers open their connections all at once


@dataclass
class Received:
    """One sendsms request the stand-in took."""

    index: int
    message_id: str  # the dlr-url's ref= (our message id); "" without a dlr-url
    to: str
    at: float  # time.time() when the request was read
    answered_at: float | None = None
    answer_reached: bool | None = None  # False: the caller was gone before the answer


@dataclass
class Report:
    """The delivery report of one received request: the dlr-url call and its retries."""

    message_id: str
    send_index: int
    attempts: int = 0
    delivered_at: float | None = None  # when smsdesk answered it with 2xx
    dropped: bool = False  # every try failed
    last_failure: str = ""  # what the last failed try got: an HTTP status or an error


@dataclass(order=True)
class _Due:
    at: float
    seq: int
    report: Report
    url: str


class KannelStandIn:
    """smsbox's sendsms interface on 127.0.0.1 with a round trip, recording, and dlr-url calls."""

    def __init__(
        self,
        *,
        username: str = "smsdesk",
        password: str = "kannel-secret",
        round_trip: tuple[float, float] = (0.02, 0.1),
        report_delay: float = 0.05,
        report_retries: int = 30,
        retry_delay: float = 1.0,
        seed: int | None = None,
    ) -> None:
        self.username = username
        self.password = password
        self.round_trip = round_trip
        self.report_delay = report_delay
        self.report_retries = report_retries
        self.retry_delay = retry_delay
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._received: list[Received] = []
        self._reports: list[Report] = []
        self._released = threading.Event()
        self._released.set()
        self._held = 0
        self._to_hold: int | None = 0  # requests still to hold back; None: every one
        self._due: list[_Due] = []
        self._seq = itertools.count()
        self._wakeup = threading.Condition(self._lock)
        self._stopping = False
        self._calls = ThreadPoolExecutor(8, thread_name_prefix="dlr")
        self._local = threading.local()
        self._clients: list[httpx.Client] = []
        self._server = _Server(("127.0.0.1", 0), self._handler_class())
        self.port: int = self._server.server_address[1]
        self._threads = [
            threading.Thread(target=self._server.serve_forever, daemon=True),
            threading.Thread(target=self._schedule_reports, daemon=True),
        ]

    # -- what a kannel module needs ------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def module_settings(self) -> dict[str, Any]:
        """The kannel module's settings for this stand-in (final reports only, the default)."""
        return {"base_url": self.base_url, "username": self.username, "password": self.password}

    # -- what was received -------------------------------------------------------------------

    def received(self) -> list[Received]:
        with self._lock:
            return list(self._received)

    def reports(self) -> list[Report]:
        with self._lock:
            return list(self._reports)

    def count(self) -> int:
        with self._lock:
            return len(self._received)

    def times_received(self) -> Counter[str]:
        """How many requests each message id came in."""
        with self._lock:
            return Counter(r.message_id for r in self._received)

    def reports_pending(self) -> int:
        """dlr-url calls not yet answered by smsdesk nor given up."""
        with self._lock:
            return sum(1 for r in self._reports if r.delivered_at is None and not r.dropped)

    # -- holding answers back ----------------------------------------------------------------

    def hold(self, requests: int | None = None) -> None:
        """The next `requests` requests (all, if None) are taken but not answered until
        `release()`."""
        with self._lock:
            self._to_hold = requests
            self._released.clear()

    def release(self) -> None:
        with self._lock:
            self._to_hold = 0
            self._released.set()

    def held(self) -> int:
        """Requests waiting for `release()` now."""
        with self._lock:
            return self._held

    # -- serving -------------------------------------------------------------------------------

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        standin = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as smsbox offers

            def do_GET(self) -> None:
                status, body, taken = standin._sendsms(self.path)
                reached = self._answer(status, body)
                if taken is not None:
                    taken.answer_reached = reached

            def _answer(self, status: int, body: str) -> bool:
                data = body.encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "text/html")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                    self.wfile.flush()
                except OSError:
                    self.close_connection = True
                    return False
                return True

            def handle_one_request(self) -> None:
                try:
                    super().handle_one_request()
                except OSError:
                    self.close_connection = True  # the caller went away (killed)

            def log_message(self, format: str, *args: Any) -> None:
                return None

        return Handler

    def _sendsms(self, path: str) -> tuple[int, str, Received | None]:
        """Kannel's answer to one sendsms request, and the request if it was taken."""
        parts = urlsplit(path)
        if parts.path != SEND_PATH:
            return 404, "Unknown service", None
        query = {k: v[0] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        if query.get("username") != self.username or query.get("password") != self.password:
            return 403, "Authorization failed for sendsms", None
        if not query.get("to"):
            return 400, "Receiver number missing", None
        if not query.get("from"):
            return 400, "Sender missing and no global set, rejected", None
        dlr_url = query.get("dlr-url", "")
        ref = parse_qs(urlsplit(dlr_url).query).get("ref", [""])[0] if dlr_url else ""
        with self._lock:
            taken = Received(len(self._received), ref, query["to"], time.time())
            self._received.append(taken)
            delay = self._rng.uniform(*self.round_trip)
        self._wait_answer(delay)
        taken.answered_at = time.time()
        mask = int(query.get("dlr-mask") or 0)
        if dlr_url and mask & 1:
            self._schedule(taken, dlr_url)
        return 202, ACCEPTED, taken

    def _wait_answer(self, delay: float) -> None:
        """The round trip, then as long as this answer is held back."""
        time.sleep(delay)  # the provider's own latency, not a wait in a test
        with self._lock:
            holding = self._to_hold is None or self._to_hold > 0
            if holding and self._to_hold is not None:
                self._to_hold -= 1
            if holding:
                self._held += 1
        if not holding:
            return
        try:
            self._released.wait(_HOLD_LIMIT)
        finally:
            with self._lock:
                self._held -= 1

    # -- delivery reports ----------------------------------------------------------------------

    def _schedule(self, taken: Received, dlr_url: str) -> None:
        report = Report(taken.message_id, taken.index)
        url = self._fill_escapes(dlr_url, taken)
        with self._wakeup:
            self._reports.append(report)
            heapq.heappush(
                self._due, _Due(time.time() + self.report_delay, next(self._seq), report, url)
            )
            self._wakeup.notify()

    @staticmethod
    def _fill_escapes(dlr_url: str, taken: Received) -> str:
        """smsbox's substitutions in a dlr-url, each value URL-encoded."""
        now = time.time()
        stamp = time.strftime("%y%m%d%H%M", time.gmtime(now))
        smsc_id = f"{taken.index + 1:08x}"
        values = {
            "d": DELIVERED,
            "A": f"id:{smsc_id} sub:001 dlvrd:001 submit date:{stamp} done date:{stamp} "
            "stat:DELIVRD err:000 text:",
            "F": smsc_id,
            "T": str(int(now)),
            "p": "Smsdesk",
            "P": taken.to,
        }

        def fill(found: re.Match[str]) -> str:
            value = values.get(found.group(1))
            return found.group(0) if value is None else quote(value, safe="")

        return _ESCAPE.sub(fill, dlr_url)

    def _schedule_reports(self) -> None:
        with self._wakeup:
            while not self._stopping:
                if not self._due:
                    self._wakeup.wait()
                    continue
                wait = self._due[0].at - time.time()
                if wait > 0:
                    self._wakeup.wait(wait)
                    continue
                due = heapq.heappop(self._due)
                self._calls.submit(self._call, due)

    def _client(self) -> httpx.Client:
        client: httpx.Client | None = getattr(self._local, "client", None)
        if client is None:
            client = self._local.client = httpx.Client(timeout=10)
            with self._lock:
                self._clients.append(client)
        return client

    def _call(self, due: _Due) -> None:
        report = due.report
        try:
            response = self._client().get(due.url)
            ok, failure = response.is_success, f"HTTP {response.status_code} {response.text[:80]}"
        except httpx.HTTPError as exc:
            ok, failure = False, type(exc).__name__
        with self._wakeup:
            report.attempts += 1
            if not ok:
                report.last_failure = failure
            if ok:
                report.delivered_at = time.time()
            elif report.attempts > self.report_retries:
                report.dropped = True
            elif not self._stopping:
                due.at = time.time() + self.retry_delay
                heapq.heappush(self._due, due)
                self._wakeup.notify()

    # -- running -------------------------------------------------------------------------------

    def start(self) -> KannelStandIn:
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        with self._wakeup:
            self._stopping = True
            self._wakeup.notify_all()
        self._released.set()
        self._server.shutdown()
        self._server.server_close()
        self._calls.shutdown(wait=True, cancel_futures=True)
        for client in self._clients:
            client.close()

    def __enter__(self) -> KannelStandIn:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()
