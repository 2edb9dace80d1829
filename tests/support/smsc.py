"""A real SMSC for tests: smpp34's server on loopback, in its own thread and event loop.

The protocol side is smpp34's (not ours); this wrapper only decides what to answer: it accepts
submit_sm (or refuses with a queued status), sends delivery receipts in text form with the
receipted_message_id/message_state TLVs, and injects mobile-originated deliver_sm on demand.
smpp34's Python server accepts any login, so a wrong password cannot be refused here.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import socket
import struct
import threading
import time
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any

import smpp34


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass(frozen=True, slots=True)
class Submitted:
    """One submit_sm the SMSC accepted."""

    message_id: str
    source_addr: str
    source_addr_ton: int
    source_addr_npi: int
    destination_addr: str
    dest_addr_ton: int
    esm_class: int
    data_coding: int
    registered_delivery: int
    short_message: bytes
    tlvs: tuple[tuple[int, bytes], ...]


class TestSmsc:
    """Start with `start()`; `accepted` lists what arrived; stop with `stop()`."""

    __test__ = False

    def __init__(
        self,
        port: int | None = None,
        *,
        receipt_delay: float = 0.02,
        id_start: int = 0x1001,
        id_format: str = "hex",
    ) -> None:
        """`id_format`: "hex", "hex8" (zero-padded to 8) or "decimal" for submit_sm_resp ids."""
        self.port = port or free_port()
        self.receipt_delay = receipt_delay
        self.receipts = True
        self.decimal_receipt_ids = False  # hex ids answered, written in decimal in receipts
        self.hex_receipt_ids = False  # decimal ids answered, written in hex in receipts
        self.id_start = id_start
        self.id_format = id_format
        self.fail_to: set[str] = set()  # destination_addr whose receipts say UNDELIV
        self.accepted: list[Submitted] = []
        self.receipt_failures: list[str] = []  # refused hand-overs of receipts (retried)
        self.refuse: list[int] = []  # command_status for the next submit_sm, one each
        self.binds = 0
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._task: asyncio.Task[None] | None = None
        self._sessions: dict[str, smpp34.Esme] = {}
        self._counter = 0

    # -- lifecycle, from the test's thread ------------------------------------------------

    def start(self) -> TestSmsc:
        ready = threading.Event()
        self._loop = asyncio.new_event_loop()

        def run() -> None:
            assert self._loop is not None
            asyncio.set_event_loop(self._loop)
            self._task = self._loop.create_task(self._serve(ready))
            self._loop.run_until_complete(asyncio.gather(self._task, return_exceptions=True))
            self._loop.close()

        self._thread = threading.Thread(target=run, name=f"smsc-{self.port}", daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError(f"the test SMSC did not start on port {self.port}")
        return self

    def stop(self) -> None:
        """Disappear: unbind every session (the client sees the link drop) and stop."""
        if self._loop is None or self._thread is None:
            return
        loop = self._loop
        with_timeout = asyncio.run_coroutine_threadsafe(self._unbind_all(), loop)
        with_timeout.result(10)
        assert self._task is not None
        loop.call_soon_threadsafe(self._task.cancel)
        self._thread.join(10)
        self._loop = self._thread = None

    def _call(self, coro: Coroutine[Any, Any, Any]) -> Any:
        assert self._loop is not None
        future: concurrent.futures.Future[Any] = asyncio.run_coroutine_threadsafe(coro, self._loop)
        return future.result(10)

    def deliver(self, source: str, destination: str, body: bytes, **fields: Any) -> None:
        """Send a deliver_sm (an MO message, or a hand-made receipt) to the first bound ESME."""
        self._call(self._deliver(source, destination, body, **fields))

    @property
    def bound(self) -> int:
        return len(self._sessions)

    # -- the server loop ------------------------------------------------------------------

    async def _serve(self, ready: threading.Event) -> None:
        server = smpp34.Server("127.0.0.1", self.port, system_id="testsmsc")
        await server.start()
        ready.set()
        background: set[asyncio.Task[None]] = set()
        try:
            while True:
                event = await server.next()
                if isinstance(event, smpp34.Esme):
                    self._sessions[event.session_id] = event
                    self.binds += 1
                elif isinstance(event, smpp34.Unbound):
                    self._sessions.pop(event.session_id, None)
                elif isinstance(event, smpp34.SubmitSmEvent):
                    task = self._on_submit(event)
                    if task is not None:
                        background.add(task)
                        task.add_done_callback(background.discard)
        finally:
            for task in background:
                task.cancel()
            await server.stop()

    def _on_submit(self, event: smpp34.SubmitSmEvent) -> asyncio.Task[None] | None:
        with self._lock:
            if self.refuse:
                event.reject(self.refuse.pop(0))
                return None
            message_id = self._format_id(self.id_start + self._counter)
            self._counter += 1
            self.accepted.append(
                Submitted(
                    message_id,
                    event.source_addr,
                    event.source_addr_ton,
                    event.source_addr_npi,
                    event.destination_addr,
                    event.dest_addr_ton,
                    event.esm_class,
                    event.data_coding,
                    event.registered_delivery,
                    event.short_message,
                    tuple((t.tag, t.value) for t in event.tlvs),
                )
            )
        event.accept(message_id=message_id)
        if not (self.receipts and event.registered_delivery & 1):
            return None
        esme = self._receiver()
        if esme is None:
            return None
        return asyncio.create_task(self._receipt(esme, event, message_id))

    def next_id(self) -> str:
        """The message id the next accepted submit_sm will be answered with."""
        with self._lock:
            return self._format_id(self.id_start + self._counter)

    def _format_id(self, number: int) -> str:
        if self.id_format == "decimal":
            return str(number)
        return f"{number:08x}" if self.id_format == "hex8" else f"{number:x}"

    def _receipt_form(self, mid: str) -> str:
        if self.decimal_receipt_ids:
            return str(int(mid, 16))
        return format(int(mid), "x") if self.hex_receipt_ids else mid

    def _receiver(self) -> smpp34.Esme | None:
        return next((e for e in self._sessions.values() if e.can_receive), None)

    async def _receipt(self, esme: smpp34.Esme, event: smpp34.SubmitSmEvent, mid: str) -> None:
        await asyncio.sleep(self.receipt_delay)
        shown = self._receipt_form(mid)
        stamp = time.strftime("%y%m%d%H%M")
        failed = event.destination_addr in self.fail_to
        stat, err, state = ("UNDELIV", "001", 5) if failed else ("DELIVRD", "000", 2)
        text = (
            f"id:{shown} sub:001 dlvrd:{0 if failed else 1:03d} submit date:{stamp} "
            f"done date:{stamp} stat:{stat} err:{err} text:"
        )
        for attempt in range(5):  # like a real SMSC, try a refused receipt again later
            try:
                await self._send_receipt(esme, event, text, shown, state)
                return
            except Exception as exc:  # the ESME refused it (busy), or the link went
                with self._lock:
                    self.receipt_failures.append(repr(exc))
                await asyncio.sleep(0.2 * (attempt + 1))

    async def _send_receipt(
        self, esme: smpp34.Esme, event: smpp34.SubmitSmEvent, text: str, shown: str, state: int
    ) -> None:
        await esme.deliver_sm(
            event.source_addr,
            text.encode(),
            source_addr=event.destination_addr,
            esm_class=0x04,
            tlvs=[
                smpp34.Tlv(0x001E, shown.encode() + b"\0"),
                smpp34.Tlv(0x0427, bytes([state])),
            ],
        )

    async def _deliver(self, source: str, destination: str, body: bytes, **fields: Any) -> None:
        esme = self._receiver()
        if esme is None:
            raise RuntimeError("no ESME is bound as receiver")
        await esme.deliver_sm(destination, body, source_addr=source, **fields)

    async def _unbind_all(self) -> None:
        for esme in list(self._sessions.values()):
            with contextlib.suppress(TimeoutError, smpp34.SmppError):
                await asyncio.wait_for(esme.unbind(), 3)
        self._sessions.clear()


class BindRefuser:
    """An SMSC that answers every bind with `status`: smpp34's server lets anyone in.

    Only the bind response is spoken here (a bare 16-byte header carrying the error status),
    which is all an ESME sees of an SMSC that refuses its credentials.
    """

    def __init__(self, status: int = 0x0E) -> None:
        self.status = status
        self.binds = 0
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen()
        self.port: int = self._sock.getsockname()[1]
        self._thread = threading.Thread(target=self._serve, name="smsc-bind-refuser", daemon=True)

    def start(self) -> BindRefuser:
        self._thread.start()
        return self

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            with conn:
                header = self._read(conn, 16)
                if header is None:
                    continue
                length, command_id, _, sequence = struct.unpack(">IIII", header)
                self._read(conn, length - 16)
                self.binds += 1
                conn.sendall(
                    struct.pack(">IIII", 16, command_id | 0x80000000, self.status, sequence)
                )
                with contextlib.suppress(OSError):
                    while conn.recv(4096):  # let the ESME read the answer and hang up itself
                        pass

    @staticmethod
    def _read(conn: socket.socket, size: int) -> bytes | None:
        data = b""
        while len(data) < size:
            chunk = conn.recv(size - len(data))
            if not chunk:
                return None
            data += chunk
        return data

    def stop(self) -> None:
        self._sock.close()
        self._thread.join(5)
