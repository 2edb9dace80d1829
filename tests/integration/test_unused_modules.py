"""A module that is not in use opens no connection and logs nothing.

Every `serve` start used to start every module: an SMPP session with no SMSC configured
retried a bind to :2775 and logged a warning every few seconds while the simulator was in use.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from tests.conftest import database_url
from tests.support.harness import Harness, running_service
from tests.support.smsc import TestSmsc


@pytest.fixture
def smsc() -> Iterator[TestSmsc]:
    peer = TestSmsc().start()
    try:
        yield peer
    finally:
        peer.stop()


def smpp_records(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name.startswith("smsdesk.providers.smpp")]


async def send(h: Harness, text: str) -> str:
    response = await h.post("/api/v1/messages", {"to": "+46701234567", "text": text})
    assert response.status_code == 201, response.text
    message_id: str = response.json()["id"]
    return message_id


async def test_smpp_stays_closed_and_silent_while_the_simulator_is_in_use(
    tmp_path: Path, engine: Engine, smsc: TestSmsc, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="smsdesk.providers.smpp")
    async with running_service(tmp_path, database_url(engine)) as h:
        await h.configure(module_settings={"simulator": {"report_delay": 0.01}})
        await h.wait_for(await send(h, "through the simulator"), "delivered")
        await h.idle_scans(5)
        assert smpp_records(caplog) == []  # no SMPP configured: no bind to :2775, no warning

        smpp = {"host": "127.0.0.1", "port": smsc.port, "timeout": 2}
        await h.configure(module_settings={"smpp": smpp})  # configured, not selected
        await h.wait_for(await send(h, "still the simulator"), "delivered")
        await h.idle_scans(5)
        assert smsc.binds == 0 and smpp_records(caplog) == []

        await h.configure(module="smpp")  # selected: bound without waiting for a message
        await h.wait_until(lambda: smsc.bound == 1, "the SMPP session to bind")


async def test_a_module_switched_away_from_keeps_its_session_while_receipts_are_due(
    tmp_path: Path, engine: Engine, smsc: TestSmsc
) -> None:
    """After a switch to another module and a restart, SMPP binds again for its due receipts."""
    smpp = {"host": "127.0.0.1", "port": smsc.port, "timeout": 2, "receipt_id_base": "as_is"}
    smsc.receipts = False  # the receipt comes later, by hand
    async with running_service(tmp_path, database_url(engine)) as h:
        await h.configure(module="smpp", module_settings={"smpp": smpp})
        message_id = await send(h, "its receipt comes after the switch")
        await h.wait_for(message_id, "sent")
        await h.configure(module="simulator")
    binds_before = smsc.binds

    async with running_service(tmp_path, database_url(engine)) as h:
        await h.wait_until(lambda: smsc.binds > binds_before, "SMPP to bind for the receipt")
        (submitted,) = smsc.accepted
        receipt = (
            f"id:{submitted.message_id} sub:001 dlvrd:001 submit date:2601010000 "
            "done date:2601010000 stat:DELIVRD err:000 text:"
        )
        smsc.deliver("46701234567", submitted.source_addr, receipt.encode(), esm_class=0x04)
        await h.wait_for(message_id, "delivered")
