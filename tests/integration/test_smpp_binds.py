"""SMPP binds are capped across the installation: `binds` slots per connection, held as locks
in the database (or lock files beside SQLite), so processes never bind more often than the
SMSC allows; a freed slot is taken by a waiting process."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy.engine import Engine

from smsdesk.outbox.bind_slots import BindSlots
from smsdesk.providers.base import ProviderContext
from smsdesk.providers.smpp.provider import SmppProvider
from smsdesk.providers.smpp.settings import SmppSettings
from smsdesk.store.leadership import open_locks
from tests.support.smsc import TestSmsc


@pytest.fixture
def smsc() -> Iterator[TestSmsc]:
    peer = TestSmsc().start()
    try:
        yield peer
    finally:
        peer.stop()


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


async def wait_for(condition: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.01)


def provider(
    engine: Engine, smsc: TestSmsc, http: httpx.AsyncClient, name: str, tmp_path: Path, binds: int
) -> SmppProvider:
    """One process's SMPP provider for the connection `bulk`, asking for a bind slot."""
    settings = SmppSettings(
        host="127.0.0.1",
        port=smsc.port,
        system_id="smsdesk",
        password=SecretStr("secret"),
        timeout=2,
        reconnect_backoff=0.05,
        binds=binds,
    )
    made = SmppProvider(settings, http, ProviderContext(data_dir=tmp_path))
    slots = BindSlots(lambda: open_locks(engine, f"smsdesk {name}"), "bulk", binds, interval=0.05)
    made.use_bind_permit(slots)
    return made


@pytest.mark.parametrize("binds", [1, 2])
async def test_processes_bind_no_more_often_than_the_setting_allows(
    engine: Engine, smsc: TestSmsc, http: httpx.AsyncClient, tmp_path: Path, binds: int
) -> None:
    """Three processes want to bind; `binds` of them are bound, the others wait. When a bound
    one stops, a waiting one binds in its place; the SMSC never sees more than `binds`."""
    providers = [provider(engine, smsc, http, f"p{n}", tmp_path, binds) for n in range(3)]
    try:
        for each in providers:
            await each.start()
        await wait_for(lambda: sum(p.bound for p in providers) == binds, f"{binds} binds")
        await wait_for(lambda: smsc.bound == binds, "the SMSC to count them")
        assert [p.permitted for p in providers] == [p.bound for p in providers]
        first = next(p for p in providers if p.bound)
        await first.close()
        providers.remove(first)
        await wait_for(lambda: sum(p.bound for p in providers) == binds, "a waiting one to bind")
        await wait_for(lambda: smsc.bound == binds, "the SMSC to count them")
        assert smsc.binds == binds + 1  # one more bind in all: the one that took the freed slot
    finally:
        for each in providers:
            await each.close()
