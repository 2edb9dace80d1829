"""The smpp module through a running service against smpp34's SMSC on loopback."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from smsdesk.domain.encoding import from_gsm7_septets, to_gsm7_septets
from smsdesk.store.tables import inbound_messages, unmatched_reports
from smsdesk.testing import FakeClock
from tests.support.harness import Harness, running_service
from tests.support.smsc import BindRefuser, TestSmsc

TO = "+46701234567"


@pytest.fixture
def smsc() -> Iterator[TestSmsc]:
    peer = TestSmsc().start()
    try:
        yield peer
    finally:
        peer.stop()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(time.time())


@pytest.fixture
async def service(tmp_path: Path, smsc: TestSmsc, clock: FakeClock) -> AsyncIterator[Harness]:
    async with running_service(tmp_path, clock=clock) as harness:
        await harness.configure(
            module="smpp",
            sender="Smsdesk",
            module_settings={
                "smpp": {
                    "host": "127.0.0.1",
                    "port": smsc.port,
                    "system_id": "smsdesk",
                    "password": "secret",
                    "timeout": 2,
                    "reconnect_backoff": 0.05,
                    "throttle_backoff": 1,
                }
            },
            limits={"smpp": {"rate_limit": 0, "concurrency": 4}},
        )
        yield harness


async def send(h: Harness, text: str, to: str = TO) -> str:
    response = await h.post("/api/v1/messages", {"to": to, "text": text})
    assert response.status_code == 201, response.text
    message_id: str = response.json()["id"]
    return message_id


def rows(h: Harness, table: sa.Table) -> list[Any]:
    with h.service.engine.connect() as conn:
        return list(conn.execute(sa.select(table)))


async def test_one_message_is_sent_and_delivered(service: Harness, smsc: TestSmsc) -> None:
    message = await service.wait_for(await send(service, "Hej på dig"), "delivered")
    [got] = smsc.accepted
    assert message["provider_message_id"] == got.message_id
    assert (got.destination_addr, got.dest_addr_ton) == ("46701234567", 1)
    assert (got.source_addr, got.source_addr_ton, got.source_addr_npi) == ("Smsdesk", 5, 0)
    assert got.data_coding == 0 and got.registered_delivery == 1
    assert from_gsm7_septets(got.short_message) == "Hej på dig"


async def test_unicode_goes_as_ucs2(service: Harness, smsc: TestSmsc) -> None:
    await service.wait_for(await send(service, "Привет 👋"), "delivered")
    [got] = smsc.accepted
    assert got.data_coding == 8
    assert got.short_message.decode("utf-16-be") == "Привет 👋"


async def test_long_text_arrives_as_concatenated_parts(service: Harness, smsc: TestSmsc) -> None:
    text = ("Lorem ipsum {dolor} sit amet € " * 12).strip()
    message = await service.wait_for(await send(service, text), "delivered")
    parts = smsc.accepted
    assert len(parts) == message["segments"] == 3
    headers = [p.short_message[:6] for p in parts]
    assert {h[3] for h in headers} == {headers[0][3]}  # one reference
    assert sorted((h[:3], h[4], h[5]) for h in headers) == [
        (b"\x05\x00\x03", 3, seq) for seq in (1, 2, 3)
    ]
    assert all(p.esm_class & 0x40 for p in parts)
    ordered = sorted(parts, key=lambda p: p.short_message[5])
    assert all(len(p.short_message) - 6 <= 153 for p in parts)
    assert "".join(from_gsm7_septets(p.short_message[6:]) for p in ordered) == text
    first = next(p for p in parts if p.short_message[5] == 1)
    assert message["provider_message_id"] == first.message_id


async def test_receipt_ids_in_decimal_still_match(service: Harness, smsc: TestSmsc) -> None:
    smsc.decimal_receipt_ids = True
    message = await service.wait_for(await send(service, "decimal receipt"), "delivered")
    assert int(message["provider_message_id"], 16) > 9  # hex id answered, decimal in receipt


async def test_throttled_answer_is_retried_and_sent_once(
    service: Harness, smsc: TestSmsc, clock: FakeClock
) -> None:
    smsc.refuse.append(0x58)
    message_id = await send(service, "slow down")
    await service.wait_until(lambda: not smsc.refuse, "the throttled answer")
    await service.idle_scans(2)
    body = (await service.get(f"/api/v1/messages/{message_id}")).json()
    assert body["status"] == "queued" and "throttl" in body["error"]
    clock.advance(5)
    await service.wait_for(message_id, "delivered")
    assert [p.short_message for p in smsc.accepted] == [to_gsm7_septets("slow down")]


async def test_smsc_disappearing_mid_batch_loses_nothing_and_resends_nothing_sent(
    service: Harness, smsc: TestSmsc, clock: FakeClock
) -> None:
    """Messages in flight when the link drops go again after the rebind; sent ones never do.

    A submit_sm whose answer was lost with the link may reach the SMSC twice: SMPP has no
    idempotent submit. What was recorded as sent before the drop must not go again.
    """
    await service.wait_for(await send(service, "warm up"), "delivered")
    ids = [await send(service, f"batch {i}") for i in range(40)]
    await service.wait_until(lambda: len(smsc.accepted) > 10, "some of the batch sent")
    before = [(await service.get(f"/api/v1/messages/{i}")).json() for i in ids]
    already_sent = {b["text"] for b in before if b["status"] in ("sent", "delivered")}
    smsc.stop()
    restarted = TestSmsc(smsc.port).start()
    try:
        for _ in range(200):
            bodies = [(await service.get(f"/api/v1/messages/{i}")).json() for i in ids]
            if all(b["status"] in ("sent", "delivered") for b in bodies):
                break
            clock.advance(30)
            await service.idle_scans(1)
        assert {b["status"] for b in bodies} <= {"sent", "delivered"}, bodies
        reached = [p.short_message for p in smsc.accepted + restarted.accepted]
        for i in range(40):
            assert to_gsm7_septets(f"batch {i}") in reached
        again = {p.short_message for p in restarted.accepted}
        assert not {to_gsm7_septets(text) for text in already_sent} & again
    finally:
        restarted.stop()


async def test_mobile_originated_messages_become_requests(service: Harness, smsc: TestSmsc) -> None:
    await service.wait_for(await send(service, "bind first"), "delivered")
    smsc.deliver("46701234562", "12345", to_gsm7_septets("Svar: ja {ok}"))
    smsc.deliver("46701234563", "12345", "Ответ".encode("utf-16-be"), data_coding=8)
    long = "Ett långt svar " * 15
    first, second = long[:153], long[153:]
    for seq, chunk in ((2, second), (1, first)):
        udh = bytes([5, 0, 3, 7, 2, seq])
        smsc.deliver("46701234564", "12345", udh + to_gsm7_septets(chunk), esm_class=0x40)
    await service.wait_until(lambda: len(rows(service, inbound_messages)) == 3, "3 MO rows")
    got = {r.sender: r.body for r in rows(service, inbound_messages)}
    assert got == {"+46701234562": "Svar: ja {ok}", "+46701234563": "Ответ", "+46701234564": long}
    await service.wait_until(
        lambda: all(r.state == "request" for r in rows(service, inbound_messages)),
        "each became a request",
    )


async def test_malformed_receipt_is_kept_unmatched(service: Harness, smsc: TestSmsc) -> None:
    await service.wait_for(await send(service, "bind first"), "delivered")
    smsc.deliver("46701234567", "Smsdesk", b"this is no receipt", esm_class=0x04)
    await service.wait_until(lambda: len(rows(service, unmatched_reports)) == 1, "unmatched")
    [row] = rows(service, unmatched_reports)
    assert row.provider_message_id.startswith("malformed:")
    await service.wait_for(await send(service, "still working"), "delivered")


async def test_send_test_shows_a_refused_connection(service: Harness, smsc: TestSmsc) -> None:
    body = (await service.post("/api/v1/settings/test", {"to": TO, "text": "hello"})).json()
    assert body["accepted"] is True and body["provider_message_id"] == smsc.accepted[0].message_id


async def test_a_refused_bind_shows_as_wrong_credentials_in_send_test(tmp_path: Path) -> None:
    refuser = BindRefuser(status=0x0E).start()  # ESME_RINVPASWD
    try:
        async with running_service(tmp_path, dispatcher=False) as harness:
            settings = {
                "module": "smpp",
                "sender": "Smsdesk",
                "module_settings": {
                    "smpp": {
                        "host": "127.0.0.1",
                        "port": refuser.port,
                        "system_id": "smsdesk",
                        "password": "wrong",
                        "timeout": 2,
                    }
                },
            }
            response = await harness.post(
                "/api/v1/settings/test", {"to": TO, "text": "Test", "settings": settings}
            )
    finally:
        refuser.stop()
    body = response.json()
    assert body["accepted"] is False, body
    assert "password" in body["error"]["message"]
    assert body["error"]["kind"] == "AuthenticationError"
    assert body["error"]["code"] == "0x0E"
    assert "password" in body["error"]["message"]
    assert refuser.binds >= 1


async def test_long_text_as_sar_tlvs_or_one_payload(service: Harness, smsc: TestSmsc) -> None:
    """The two other ways SMSCs take long texts: sar_* TLVs per part, or message_payload."""
    text = ("Lorem ipsum {dolor} sit amet " * 12).strip()
    await service.configure(module_settings={"smpp": {"long_messages": "sar"}})
    await service.idle_scans(2)
    await service.wait_for(await send(service, text), "delivered")
    parts = [dict(p.tlvs) for p in smsc.accepted]
    assert len(parts) == 3
    assert {p[0x020C] for p in parts} == {parts[0][0x020C]}  # one reference
    assert sorted(p[0x020F][0] for p in parts) == [1, 2, 3]
    assert all(p[0x020E] == b"\x03" for p in parts)
    ordered = sorted(smsc.accepted, key=lambda p: dict(p.tlvs)[0x020F][0])
    assert all(not p.esm_class & 0x40 for p in ordered)
    assert "".join(from_gsm7_septets(p.short_message) for p in ordered) == text

    await service.configure(module_settings={"smpp": {"long_messages": "payload"}})
    await service.idle_scans(2)
    await service.wait_for(await send(service, text, to="+46701234568"), "delivered")
    [whole] = [p for p in smsc.accepted if p.destination_addr == "46701234568"]
    assert whole.short_message == b""
    assert from_gsm7_septets(dict(whole.tlvs)[0x0424]) == text


async def test_transmitter_and_receiver_sessions(service: Harness, smsc: TestSmsc) -> None:
    """Bound as two sessions: messages go out on one and receipts come back on the other."""
    await service.configure(module_settings={"smpp": {"bind_mode": "transmitter+receiver"}})
    await service.idle_scans(2)
    await service.wait_for(await send(service, "Two sessions"), "delivered")
    await service.wait_until(lambda: len(smsc._sessions) == 2, "the old session to go")
    assert sorted(e.can_receive for e in smsc._sessions.values()) == [False, True]
