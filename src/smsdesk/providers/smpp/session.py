"""The bound SMPP session(s) to the SMSC, kept up in the background for as long as the provider.

smpp34 keeps the PDU sequence window, enquire_link and response timers; this module binds
(transceiver, or transmitter + receiver), rebinds with backoff when the link drops, hands every
deliver_sm to the provider, and turns a bind or submit_sm failure into a provider error.

SMSCs cap the binds of an account, so the installation shares `binds` slots per connection
among its processes: with a `BindPermit`, a session binds only once it holds a slot, and unbinds
as soon as the slot is lost (the lock behind it went with its database session).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol, TypeVar

import smpp34

from smsdesk.providers.base import AuthenticationError, ProviderError, TemporaryError
from smsdesk.providers.smpp import statuses
from smsdesk.providers.smpp.codec import SubmitSm
from smsdesk.providers.smpp.settings import BindMode, SmppSettings

log = logging.getLogger("smsdesk.providers.smpp")  # one logger for the module, as before the split
T = TypeVar("T")
CLOSE_TIMEOUT = 10.0  # seconds a stopping session may take before a close goes on without it
INBOUND_CAPACITY = 20_000  # deliver_sm waiting for the reader (receipts come in bursts)

OnDeliver = Callable[[smpp34.DeliverSmEvent], Awaitable[None]]


class BindPermit(Protocol):
    """One of the installation's bind slots for this SMSC account (see `outbox.bind_slots`)."""

    async def acquire(self) -> int:
        """Wait until this process holds a slot; its number."""

    async def until_lost(self) -> None:
        """Return when the slot held is no longer this process's."""

    async def release(self) -> None:
        """Give the slot up."""

    def held(self) -> bool:
        """Whether this process holds a slot now."""


async def within(awaitable: Awaitable[T], timeout: float) -> T:
    """`awaitable`'s result, or TimeoutError after `timeout` seconds without waiting for it.

    asyncio.wait_for waits for a cancelled awaitable to finish; smpp34's futures may not
    finish when cancelled (a stop or connect in progress), which hung a provider's close.
    """
    task = asyncio.ensure_future(awaitable)
    try:
        done, _ = await asyncio.wait({task}, timeout=timeout)
    except asyncio.CancelledError:
        task.cancel()
        raise
    if not done:
        task.cancel()
        raise TimeoutError
    return task.result()


class SmppSession:
    """Binds in the background and keeps bound; submits on the transmitting session."""

    def __init__(
        self, settings: SmppSettings, on_deliver: OnDeliver, permit: BindPermit | None = None
    ) -> None:
        self.settings = settings
        self.permit = permit  # set before start(); None: bind without asking
        self._on_deliver = on_deliver
        self._task: asyncio.Task[None] | None = None
        self._tx: smpp34.Smsc | None = None
        self._clients: list[smpp34.Client] = []
        self._bound = asyncio.Event()
        self._bind_error: ProviderError | None = None
        self._bind_attempted = asyncio.Event()
        self._window = asyncio.Semaphore(settings.window_size)

    @property
    def bound(self) -> bool:
        return self._bound.is_set()

    @property
    def permitted(self) -> bool:
        """Whether this process may bind (it holds a bind slot, or needs none)."""
        return self.permit is None or self.permit.held()

    def where(self) -> str:
        """The SMSC as host:port, for messages to the admin."""
        return f"{self.settings.host}:{self.settings.port}"

    async def start(self) -> None:
        """Start binding in the background (once)."""
        if self._task is None:
            self._task = asyncio.create_task(self._keep_bound(), name="smpp-session")

    async def close(self) -> None:
        """Unbind and stop; bounded, since smpp34 may never let a session finish."""
        if self._task is not None:
            self._task.cancel()
            done, _ = await asyncio.wait({self._task}, timeout=CLOSE_TIMEOUT)
            if not done:
                where = self.where()
                log.warning("SMPP session to %s did not end within %s s", where, CLOSE_TIMEOUT)
            self._task = None

    async def transmitter(self) -> smpp34.Smsc:
        """The bound transmitting session, waiting for a bind in progress up to the timeout."""
        await self.start()
        if not self._bound.is_set():
            with contextlib.suppress(TimeoutError):
                # A bind that times out is followed by a probe: up to two timeouts in all.
                await asyncio.wait_for(self._wait_bind(), 2 * self.settings.timeout + 1)
        if self._tx is None:
            if self._bind_error is not None:
                raise self._bind_error
            raise TemporaryError(
                f"Not bound to the SMSC at {self.where()} yet.",
                code="unbound",
                not_taken=True,
                connection_level=True,
            )
        return self._tx

    async def _wait_bind(self) -> None:
        """Until bound, or until a bind attempt failed for good (credentials)."""
        while not self._bound.is_set():
            self._bind_attempted.clear()
            await self._bind_attempted.wait()
            if isinstance(self._bind_error, AuthenticationError):
                return

    async def submit(self, session: smpp34.Smsc, sm: SubmitSm) -> str | ProviderError:
        """One submit_sm within the window: the SMSC's message id, or why there is none."""
        timeout = self.settings.timeout
        async with self._window:
            try:
                resp = await within(
                    session.submit_sm(
                        sm.destination_addr,
                        sm.short_message,
                        source_addr=sm.source_addr,
                        source_addr_ton=sm.source_addr_ton,
                        source_addr_npi=sm.source_addr_npi,
                        dest_addr_ton=sm.dest_addr_ton,
                        dest_addr_npi=sm.dest_addr_npi,
                        esm_class=sm.esm_class,
                        priority_flag=sm.priority_flag,
                        registered_delivery=sm.registered_delivery,
                        data_coding=sm.data_coding,
                        tlvs=[smpp34.Tlv(tag, value) for tag, value in sm.tlvs],
                    ),
                    timeout,
                )
            except TimeoutError:
                return statuses.submit_timeout(timeout)
            except smpp34.SmppError as exc:
                return statuses.session_failure(exc)
        return statuses.submit_outcome(
            resp.command_status, resp.message_id, self.settings.throttle_backoff
        )

    # -- binding -----------------------------------------------------------------------------

    def _client(self, bind_type: str) -> smpp34.Client:
        s = self.settings
        return smpp34.Client(
            s.host,
            s.port,
            s.system_id,
            s.password.get_secret_value(),
            bind_type=bind_type,
            system_type=s.system_type,
            tls=s.tls,
            window_size=s.window_size,
            # Receipts queue here until the reader takes them; when it is full the library
            # answers deliver_sm with ESME_RSYSERR and the SMSC has to try again later.
            inbound_capacity=INBOUND_CAPACITY,
            connect_timeout_ms=int(s.timeout * 1000),
        )

    async def _bind(self) -> list[smpp34.Smsc]:
        types = ["TRX"] if self.settings.bind_mode is BindMode.TRANSCEIVER else ["TX", "RX"]
        sessions = []
        for bind_type in types:
            client = self._client(bind_type)
            self._clients.append(client)
            sessions.append(await within(client.connect(), self.settings.timeout))
        return sessions

    async def _keep_bound(self) -> None:
        try:
            await self._bind_while_permitted()
        finally:
            if self.permit is not None:
                with contextlib.suppress(Exception):
                    await self.permit.release()

    async def _bind_while_permitted(self) -> None:
        backoff = self.settings.reconnect_backoff
        while True:
            if self.permit is not None:
                slot = await self.permit.acquire()
                log.info("SMPP bind slot %d for %s is ours", slot, self.where())
            try:
                sessions = await self._bind()
            except asyncio.CancelledError:
                await self._drop()
                raise
            except Exception as exc:
                await self._bind_failed(exc)
                await asyncio.sleep(backoff * random.uniform(0.8, 1.2))
                backoff = min(backoff * 2, 60.0)
                continue
            backoff = self.settings.reconnect_backoff
            self._bind_error = None
            self._tx = sessions[0]
            self._bound.set()
            self._bind_attempted.set()
            log.info("SMPP bound to %s as %s", self.where(), self.settings.system_id)
            await self._serve(sessions)
            log.warning("SMPP session to %s ended; binding again", self.where())
            await asyncio.sleep(self.settings.reconnect_backoff * random.uniform(0.5, 1.0))

    async def _bind_failed(self, exc: Exception) -> None:
        """Record why the bind failed (asking the SMSC again if it said nothing) and clean up."""
        silent = isinstance(exc, TimeoutError) or "bind timed out" in str(exc)
        if silent and (refused := await self._probe_bind()):
            exc = smpp34.SmppError(f"bind refused (0x{refused:02X})")
        self._bind_error = statuses.bind_failure(exc, self.where(), self.settings.timeout)
        self._bind_attempted.set()
        log.warning("SMPP bind to %s failed: %s", self.where(), self._bind_error.message)
        await self._drop()

    async def _serve(self, sessions: list[smpp34.Smsc]) -> None:
        """Read every session until one of them or the link check ends, then unbind all."""
        try:
            readers = [asyncio.create_task(self._read(s)) for s in sessions]
            readers.append(asyncio.create_task(self._watch()))
            if self.permit is not None:  # a lost slot ends the session at once
                readers.append(asyncio.create_task(self.permit.until_lost()))
            await asyncio.wait(readers, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for reader in readers:
                reader.cancel()
            await asyncio.wait(readers, timeout=CLOSE_TIMEOUT)
            self._bound.clear()
            self._tx = None
            await self._drop(sessions)

    async def _read(self, session: smpp34.Smsc) -> None:
        while True:
            event = await session.next()
            if isinstance(event, smpp34.Disconnected):
                return
            try:
                await self._on_deliver(event)
            except Exception:
                log.exception("SMPP deliver_sm could not be handled")

    async def _watch(self) -> None:
        """Ends when a client says its session is gone (the library sends enquire_link)."""
        while True:
            await asyncio.sleep(self.settings.enquire_link_interval)
            for client in self._clients:
                if not await client.is_alive():
                    return

    async def _drop(self, sessions: Sequence[smpp34.Smsc] = ()) -> None:
        for session in sessions:
            with contextlib.suppress(Exception):
                await within(session.unbind(), 2)
        for client in self._clients:
            with contextlib.suppress(Exception):
                await within(client.stop(), 2)
        self._clients = []

    async def _probe_bind(self) -> int | None:
        """The status of a bind_transmitter answered with an error, or None.

        smpp34's client reports a bind_resp carrying an error status as a timeout; asking once
        more by hand tells a refused password from an SMSC that does not answer.
        """
        s = self.settings
        pdu = statuses.bind_transmitter_pdu(
            s.system_id, s.password.get_secret_value(), s.system_type
        )
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(s.host, s.port, ssl=True if s.tls else None), s.timeout
            )
        except (OSError, TimeoutError):
            return None
        try:
            writer.write(pdu)
            header = await asyncio.wait_for(reader.readexactly(16), s.timeout)
        except (OSError, TimeoutError, asyncio.IncompleteReadError):
            return None
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
        return statuses.bind_refusal(header)
