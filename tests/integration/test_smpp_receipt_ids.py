"""Receipts reach their own message whatever the SMSC's ids look like, on both databases.

An SMSC whose ids start at 00000001 exposed the reading of every id in hex and in decimal at
once: the receipt for 0000000d marked 00000013 (0x0d = 13) delivered. Each case sends enough
messages for ids that look alike in both bases, some to a number whose receipts say UNDELIV.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from smsdesk.store.tables import messages, unmatched_reports
from tests.conftest import database_url
from tests.support.harness import Harness, running_service
from tests.support.smsc import TestSmsc

COUNT = 64


@pytest.fixture
def smsc_peers() -> Iterator[list[TestSmsc]]:
    started: list[TestSmsc] = []
    yield started
    for peer in started:
        peer.stop()


def number(i: int) -> str:
    return f"+4670{i:07d}"


def failing(i: int) -> bool:
    return i % 5 == 3


async def send_all(h: Harness) -> list[str]:
    ids = []
    for i in range(COUNT):
        response = await h.post("/api/v1/messages", {"to": number(i), "text": f"message {i}"})
        assert response.status_code == 201, response.text
        ids.append(response.json()["id"])
    return ids


def statuses(h: Harness) -> dict[str, Any]:
    with h.service.engine.connect() as conn:
        rows = conn.execute(sa.select(messages.c.recipient, messages.c.status)).all()
    return {row.recipient: row.status for row in rows}


@pytest.mark.parametrize(
    ("id_format", "receipts_in", "setting"),
    [
        ("hex8", "as_is", "auto"),  # 00000001, 00000002, ... 0000000a ...
        ("decimal", "as_is", "auto"),  # 1, 2, ... 10 ...
        ("hex", "decimal", "decimal"),  # answered "13", receipt says "19"
        ("decimal", "hex", "hex"),  # answered "19", receipt says "13"
        ("hex8", "as_is", "as_is"),
    ],
)
async def test_every_message_ends_with_its_own_receipts_status(
    tmp_path: Path,
    engine: Engine,
    smsc_peers: list[TestSmsc],
    id_format: str,
    receipts_in: str,
    setting: str,
) -> None:
    smsc = TestSmsc(id_start=1, id_format=id_format)
    smsc.decimal_receipt_ids = receipts_in == "decimal"
    smsc.hex_receipt_ids = receipts_in == "hex"
    smsc.fail_to = {number(i).lstrip("+") for i in range(COUNT) if failing(i)}
    smsc_peers.append(smsc.start())
    async with running_service(tmp_path, database_url(engine)) as h:
        await h.configure(
            module="smpp",
            sender="Smsdesk",
            module_settings={
                "smpp": {
                    "host": "127.0.0.1",
                    "port": smsc.port,
                    "system_id": "smsdesk",
                    "timeout": 2,
                    "reconnect_backoff": 0.05,
                    "receipt_id_base": setting,
                }
            },
            limits={"smpp": {"rate_limit": 0, "concurrency": 4}},
        )
        await send_all(h)
        await h.wait_until(
            lambda: (
                all(s in ("delivered", "undelivered") for s in statuses(h).values())
                and len(statuses(h)) == COUNT
            ),
            "every receipt applied",
            timeout=20,
        )
        got = statuses(h)
    want = {number(i): "undelivered" if failing(i) else "delivered" for i in range(COUNT)}
    assert got == want
    assert smsc.accepted[0].message_id in ("1", "00000001")


def delivered_counter(text: str) -> float:
    key = 'smsdesk_messages_total{module="smpp",status="delivered"}'
    lines = dict(line.rsplit(" ", 1) for line in text.splitlines() if line[:1] not in ("", "#"))
    return float(lines.get(key, 0))


async def test_a_report_that_waited_for_its_send_is_counted_once(
    tmp_path: Path, engine: Engine, smsc_peers: list[TestSmsc]
) -> None:
    """The receipt comes first and is kept unmatched; recording the send applies and counts it."""
    smsc = TestSmsc(id_start=1, id_format="hex8")
    smsc_peers.append(smsc.start())
    async with running_service(tmp_path, database_url(engine)) as h:
        await h.configure(
            module="smpp",
            sender="Smsdesk",
            module_settings={"smpp": {"host": "127.0.0.1", "port": smsc.port, "timeout": 2}},
            limits={"smpp": {"rate_limit": 0, "concurrency": 4}},
        )
        before = delivered_counter((await h.get("/metrics")).text)
        response = await h.post("/api/v1/messages", {"to": number(1), "text": "warm up"})
        await h.wait_for(response.json()["id"], "delivered")
        smsc.receipts = False
        early = smsc.next_id()
        smsc.deliver(
            number(2).lstrip("+"),
            "Smsdesk",
            f"id:{early} sub:001 dlvrd:001 stat:DELIVRD err:000 text:".encode(),
            esm_class=0x04,
        )
        await h.wait_until(lambda: unmatched(h) == [early], "the receipt kept as unmatched")
        response = await h.post("/api/v1/messages", {"to": number(2), "text": "late send"})
        message = await h.wait_for(response.json()["id"], "delivered")
        assert message["provider_message_id"] == early and unmatched(h) == []
        after = delivered_counter((await h.get("/metrics")).text)
        assert list(statuses(h).values()) == ["delivered", "delivered"]
    assert after - before == 2


def unmatched(h: Harness) -> list[str]:
    with h.service.engine.connect() as conn:
        return list(conn.execute(sa.select(unmatched_reports.c.provider_message_id)).scalars())
