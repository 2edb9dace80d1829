"""How certain a failed SMPP send is, against a real SMSC on loopback.

A bind that is down or refused, throttling and a full queue mean the SMSC did not take the
message (it may go to another connection); a submit_sm left unanswered is ambiguous.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from smsdesk.domain.ids import new_id
from smsdesk.domain.sms import OutboundSms
from smsdesk.providers.base import (
    AuthenticationError,
    ProviderContext,
    ProviderError,
    RateLimitedError,
    SendResult,
    TemporaryError,
)
from smsdesk.providers.smpp import SmppProvider, SmppSettings
from tests.support.smsc import BindRefuser, TestSmsc, free_port

TO = "+31612345678"
TIMEOUT = 1.0
BINDS = {0x01, 0x02, 0x09}  # bind_receiver, bind_transmitter, bind_transceiver
ENQUIRE_LINK, UNBIND, SUBMIT_SM = 0x15, 0x06, 0x04


class SilentSmsc:
    """An SMSC that binds anyone and answers enquire_link, but never answers submit_sm."""

    def __init__(self) -> None:
        self.submits = 0
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen()
        self.port: int = self._sock.getsockname()[1]
        self._connections: list[socket.socket] = []
        threading.Thread(target=self._accept, name="silent-smsc", daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            self._connections.append(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while (header := _read(conn, 16)) is not None:
                length, command_id, _, sequence = struct.unpack(">IIII", header)
                _read(conn, length - 16)
                if command_id == SUBMIT_SM:
                    self.submits += 1
                    continue
                body = b"silent\0" if command_id in BINDS else b""
                resp = struct.pack(">IIII", 16 + len(body), command_id | 0x80000000, 0, sequence)
                conn.sendall(resp + body)
                if command_id == UNBIND:
                    return

    def stop(self) -> None:
        self._sock.close()
        for conn in self._connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
                conn.close()


def _read(conn: socket.socket, size: int) -> bytes | None:
    data = b""
    while len(data) < size:
        chunk = conn.recv(size - len(data))
        if not chunk:
            return None
        data += chunk
    return data


@pytest.fixture
def smsc() -> Iterator[TestSmsc]:
    started = TestSmsc().start()
    yield started
    started.stop()


@pytest.fixture
async def connect(tmp_path: Path) -> AsyncIterator[Callable[[int], SmppProvider]]:
    """SMPP providers bound to an SMSC on a loopback port; closed after the test."""
    providers: list[SmppProvider] = []
    async with httpx.AsyncClient() as client:  # unused by SMPP, but every provider gets one

        def build(port: int) -> SmppProvider:
            settings = SmppSettings(
                host="127.0.0.1",
                port=port,
                system_id="smsdesk",
                password="secret",
                timeout=TIMEOUT,
            )
            provider = SmppProvider(settings, client, ProviderContext(data_dir=tmp_path))
            providers.append(provider)
            return provider

        yield build
        for provider in providers:
            await provider.close()


def outbound() -> OutboundSms:
    return OutboundSms(new_id(), TO, "Smsdesk", "Your table is ready", "gsm7", 1, 2)


async def send_one(provider: SmppProvider) -> SendResult:
    sms = outbound()
    try:
        [result] = await provider.send([sms])
    except ProviderError as exc:
        return SendResult(sms.message_id, error=exc, raw_code=exc.code)
    return result


def certainty(result: SendResult) -> tuple[Any, bool, bool]:
    error = result.error
    assert error is not None, "the send was accepted"
    return type(error), error.not_taken, error.connection_level


async def test_no_smsc_listening_means_the_bind_is_down_and_nothing_taken(
    connect: Callable[[int], SmppProvider],
) -> None:
    """Nothing listens at the port: not bound, so the message certainly did not go."""
    result = await send_one(connect(free_port()))

    assert certainty(result) == (TemporaryError, True, True)


async def test_a_refused_bind_is_not_taken(connect: Callable[[int], SmppProvider]) -> None:
    """The SMSC refuses the password (0x0E): the credentials' fault, nothing taken."""
    refuser = BindRefuser(status=0x0E).start()
    try:
        result = await send_one(connect(refuser.port))
    finally:
        refuser.stop()

    assert certainty(result) == (AuthenticationError, True, True)


@pytest.mark.parametrize("status", [0x58, 0x14], ids=["throttled", "queue-full"])
async def test_throttling_and_a_full_queue_are_not_taken(
    connect: Callable[[int], SmppProvider], smsc: TestSmsc, status: int
) -> None:
    """submit_sm answered ESME_RTHROTTLED or ESME_RMSGQFUL: refused before it was taken."""
    smsc.refuse.append(status)

    result = await send_one(connect(smsc.port))

    assert certainty(result) == (RateLimitedError, True, True)
    assert smsc.accepted == []


async def test_a_system_error_is_not_taken(
    connect: Callable[[int], SmppProvider], smsc: TestSmsc
) -> None:
    """submit_sm answered ESME_RSYSERR (0x08): the SMSC failed and did not take it."""
    smsc.refuse.append(0x08)

    result = await send_one(connect(smsc.port))

    assert certainty(result) == (TemporaryError, True, True)


async def test_an_unanswered_submit_is_ambiguous(connect: Callable[[int], SmppProvider]) -> None:
    """submit_sm reached the SMSC but no answer came: it may have taken the message."""
    silent = SilentSmsc()
    try:
        result = await send_one(connect(silent.port))
    finally:
        silent.stop()

    assert certainty(result) == (TemporaryError, False, True)
    assert result.error is not None and "may have taken" in result.error.message
    assert silent.submits == 1


async def test_a_bound_smsc_takes_the_message(
    connect: Callable[[int], SmppProvider], smsc: TestSmsc
) -> None:
    """The same provider and SMSC without a refusal: accepted, so the failures above are real."""
    result = await send_one(connect(smsc.port))

    assert result.accepted
    assert len(smsc.accepted) == 1


async def test_a_message_with_some_parts_taken_is_ambiguous(
    connect: Callable[[int], SmppProvider], smsc: TestSmsc
) -> None:
    """One part throttled, the other taken: the phone may get half, so it is not 'not taken'."""
    smsc.refuse.append(0x58)
    text = "Your table is ready and waiting for you by the window. " * 3
    sms = OutboundSms(new_id(), TO, "Smsdesk", text, "gsm7", 2, 2)

    [result] = await connect(smsc.port).send([sms])

    assert certainty(result) == (RateLimitedError, False, True)
    assert len(smsc.accepted) == 1
