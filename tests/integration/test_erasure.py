"""Erasing a customer leaves nothing of them in any table, keeps their opt-out as a hash, and
an export before it holds everything about them and nothing of anyone else."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from smsdesk.customers import erasure
from smsdesk.domain.audit import Actor
from smsdesk.domain.times import iso
from smsdesk.outbox.optout_cache import OptOutCache
from smsdesk.store import optouts
from smsdesk.store.hash_key import keyed_hash
from smsdesk.store.optouts import get_opt_out, opted_out
from smsdesk.store.tables import (
    audit_log,
    erased_opt_outs,
    messages,
    metadata,
    opt_outs,
    webhook_deliveries,
)
from smsdesk.testing import FakeClock
from tests.support.harness import Harness

ADA_NAME = "Ada Zwartkop-Erasmus"
ADA_1, ADA_2 = "+31612345678", "+31687654321"
BOB_NAME = "Bob Blijft"
BOB = "+31623456789"
ADA_TEXTS = (
    "where is parcel ZX-ADA-1",
    "my second question ZX-ADA-2",
    "we are looking into it ZX-ADA-3",
    "your code is ZX-ADA-4",
    "idempotent hello ZX-ADA-5",
    "stray text without a code ZX-ADA-6",
)
BOB_TEXT = "bob keeps this ZX-BOB-1"


@dataclass
class World:
    ada: str
    bob: str
    requests: list[str] = field(default_factory=list)
    bob_request: str = ""
    subscription: str = ""


async def subscribe_everything(h: Harness) -> str:
    """A webhook subscription to every event (to a port nobody listens on)."""
    await h.configure(webhooks={"allow_private": ["127.0.0.0/8"]})
    events = ["inbound.received", "request.created", "message.status", "optout.changed"]
    answer = await h.post("/api/v1/webhooks", {"url": "http://127.0.0.1:9/in", "events": events})
    assert answer.status_code == 201, answer.text
    subscription: str = answer.json()["id"]
    return subscription


async def add_customer(h: Harness, name: str, *numbers: str) -> str:
    answer = await h.post("/api/v1/customers", {"name": name, "numbers": list(numbers)})
    assert answer.status_code == 201, answer.text
    customer_id: str = answer.json()["id"]
    return customer_id


async def send(h: Harness, to: str, text: str, **headers: str) -> str:
    answer = await h.client.post(
        "/api/v1/messages", json={"to": to, "text": text}, headers={**h.headers, **headers}
    )
    assert answer.status_code == 201, answer.text
    message_id: str = answer.json()["id"]
    return message_id


async def build_world(h: Harness) -> World:
    """Ada with two numbers, requests, replies, messages with reports, inbound SMS (one
    unrecognised, from her number written as digits), an idempotent send and an opt-out;
    Bob with a request and a message of his own; webhooks for everything."""
    await h.configure(default_country_code="+31", inbound={"sms_endpoint": "HELP"})
    subscription = await subscribe_everything(h)
    ada = await add_customer(h, ADA_NAME, ADA_1, ADA_2)
    world = World(ada, await add_customer(h, BOB_NAME, BOB), subscription=subscription)
    first = (await h.receive(ADA_1, f"HELP {ADA_TEXTS[0]}"))["request_id"]
    reply = await h.post(f"/api/v1/requests/{first}/reply", {"text": ADA_TEXTS[2]})
    closed = await h.client.patch(
        f"/api/v1/requests/{first}", json={"status": "closed"}, headers=h.headers
    )
    assert closed.status_code == 200, closed.text
    second = (await h.receive(ADA_2, f"HELP {ADA_TEXTS[1]}"))["request_id"]
    world.requests = [first, second]
    assert first != second
    assert reply.status_code == 201, reply.text
    sent = [
        reply.json()["id"],
        await send(h, ADA_2, ADA_TEXTS[3]),
        await send(h, ADA_1, ADA_TEXTS[4], **{"Idempotency-Key": "ada-once"}),
    ]
    for message_id in sent:
        await h.wait_for(message_id, "delivered")
    stray = await h.receive(ADA_2.lstrip("+"), ADA_TEXTS[5])
    assert stray["state"] == "unrecognised"
    assert (await h.receive(ADA_1, "STOP"))["state"] == "opt_out"
    world.bob_request = (await h.receive(BOB, f"HELP {BOB_TEXT}"))["request_id"]
    await h.wait_for(await send(h, BOB, BOB_TEXT), "delivered")
    return world


def needles() -> list[str]:
    """Ada in every form smsdesk could have stored her."""
    forms = [ADA_NAME, *ADA_TEXTS]
    for number in (ADA_1, ADA_2):
        forms += [number, number.lstrip("+")]
    return forms


def where_found(h: Harness, wanted: list[str]) -> list[str]:
    """Table.column: value for every text column of every table that holds one of `wanted`."""
    found: list[str] = []
    with h.service.engine.connect() as conn:
        for table in metadata.sorted_tables:
            columns = [c for c in table.columns if isinstance(c.type, sa.String | sa.Text)]
            if not columns:
                continue
            for row in conn.execute(sa.select(*columns)):
                for column, value in zip(columns, row, strict=True):
                    if isinstance(value, str) and any(n in value for n in wanted):
                        found.append(f"{table.name}.{column.name}: {value[:120]}")
    return found


async def test_erasure_leaves_nothing_of_the_customer_and_keeps_the_opt_out(
    any_db_harness: Harness,
) -> None:
    """After erasing, no text column of any table holds Ada's numbers, name or texts; Bob is
    intact; her opted-out number is still refused; the audit entry holds counts only."""
    h = any_db_harness
    world = await build_world(h)
    assert where_found(h, needles()), "the search finds Ada before the erasure"
    answer = await h.client.delete(
        f"/api/v1/customers/{world.ada}", params={"erase": "true"}, headers=h.headers
    )
    assert answer.status_code == 200, answer.text
    counts = answer.json()["erased"]
    assert counts["customers"] == 1 and counts["numbers"] == 2 and counts["requests"] == 2
    assert counts["inbound_sms"] == 4 and counts["opt_outs_kept_as_hash"] == 1
    assert counts["messages"] == 3 and counts["webhook_deliveries"] > 0
    assert counts["idempotency_keys"] == 1

    assert where_found(h, needles()) == []
    assert where_found(h, [BOB_NAME, BOB, BOB_TEXT]), "Bob's data stays"
    bob = (await h.get(f"/api/v1/customers/{world.bob}")).json()
    assert bob["name"] == BOB_NAME and bob["numbers"] == [BOB]
    conversation = (await h.get(f"/api/v1/requests/{world.bob_request}")).json()
    assert [e["body"] for e in conversation["conversation"]] == [BOB_TEXT]
    assert (await h.get(f"/api/v1/customers/{world.ada}")).status_code == 404
    assert (await h.get(f"/api/v1/requests/{world.requests[0]}")).status_code == 404

    refused = await h.post("/api/v1/messages", {"to": ADA_1, "text": "Our new offers"})
    assert refused.status_code == 422 and "opted out" in refused.json()["error"]["message"]
    with h.service.engine.connect() as conn:
        assert opted_out(conn, [ADA_1, ADA_2, BOB]) == {ADA_1}  # the dispatcher's own check
        kept = conn.execute(sa.select(erased_opt_outs)).one()
        listed = get_opt_out(conn, ADA_1)
    assert kept.keyword == "STOP" and kept.source == "sms"
    assert listed is not None and (listed.number, listed.keyword) == (ADA_1, "STOP")

    retried = await h.client.post(
        "/api/v1/messages",
        json={"to": ADA_1, "text": ADA_TEXTS[4]},
        headers={**h.headers, "Idempotency-Key": "ada-once"},
    )
    assert retried.headers["Idempotent-Replayed"] == "true"
    assert retried.json()["status"] == "erased"
    assert where_found(h, needles()) == []

    [entry] = audit_entries(h, "customer.erased")
    assert (entry.actor_kind, entry.target_id) == ("api_key", world.ada)
    assert json.loads(entry.details) == {"counts": counts}
    # her other number never opted out: it may receive SMS again
    assert (await h.post("/api/v1/messages", {"to": ADA_2, "text": "hi"})).status_code == 201


async def test_a_start_after_the_erasure_opts_the_number_in_again(any_db_harness: Harness) -> None:
    """The hash keeps the STOP until the number itself texts START, as any number may."""
    h = any_db_harness
    await h.configure(default_country_code="+31", inbound={"sms_endpoint": "HELP"})
    ada = await add_customer(h, ADA_NAME, ADA_1)
    assert (await h.receive(ADA_1, "STOP"))["state"] == "opt_out"
    erased = await h.client.delete(
        f"/api/v1/customers/{ada}", params={"erase": "true"}, headers=h.headers
    )
    assert erased.status_code == 200
    assert (await h.post("/api/v1/messages", {"to": ADA_1, "text": "hi"})).status_code == 422
    assert (await h.receive(ADA_1, "START"))["state"] == "opt_in"
    assert (await h.post("/api/v1/messages", {"to": ADA_1, "text": "hi"})).status_code == 201
    with h.service.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(erased_opt_outs)).scalar() == 0


async def test_the_export_holds_everything_about_the_customer_and_nothing_of_others(
    any_db_harness: Harness,
) -> None:
    """By id and by number: the customer, numbers with opt-out state, requests with their
    conversations, messages with timelines, inbound SMS and webhook deliveries; no Bob."""
    h = any_db_harness
    world = await build_world(h)
    answer = await h.get(f"/api/v1/customers/{world.ada}/export")
    assert answer.status_code == 200, answer.text
    document = answer.json()
    assert document["customer"]["name"] == ADA_NAME
    assert {n["number"]: n["opt_out"] is not None for n in document["numbers"]} == {
        ADA_1: True,
        ADA_2: False,
    }
    assert sorted(r["id"] for r in document["requests"]) == sorted(world.requests)
    said = [e["text"] for r in document["requests"] for e in r["conversation"]]
    assert set(said) >= {ADA_TEXTS[0], ADA_TEXTS[1], ADA_TEXTS[2]}
    sent = {m["text"]: m for m in document["messages"]}
    assert {ADA_TEXTS[2], ADA_TEXTS[3], ADA_TEXTS[4]} <= set(sent)
    assert [e["status"] for e in sent[ADA_TEXTS[3]]["timeline"]][-1] == "delivered"
    received = [i["text"] for i in document["inbound_sms"]]
    assert ADA_TEXTS[5] in received and "STOP" in received
    assert document["webhook_deliveries"]
    text = json.dumps(document, ensure_ascii=False)
    assert BOB not in text and BOB_NAME not in text and BOB_TEXT not in text
    assert world.bob not in text
    for secret in ("secret", h.key):
        assert f'"{secret}"' not in text

    by_number = (await h.get(f"/api/v1/numbers/{ADA_2.lstrip('+')}/export")).json()
    assert by_number["customer"]["id"] == world.ada
    assert len(by_number["messages"]) == len(document["messages"])
    assert [e.target_id for e in audit_entries(h, "customer.exported")] == [world.ada] * 2
    assert all(ADA_NAME not in e.details and ADA_1 not in e.details for e in audit_entries(h))


async def test_unknown_ids_and_numbers_are_404_and_other_keys_are_refused(
    any_db_harness: Harness,
) -> None:
    h = any_db_harness
    ada = await add_customer(h, ADA_NAME, ADA_1)
    unknown = "01J00000000000000000000000"
    for answer in (
        await h.get(f"/api/v1/customers/{unknown}/export"),
        await h.client.delete(
            f"/api/v1/customers/{unknown}", params={"erase": "true"}, headers=h.headers
        ),
        await h.get("/api/v1/numbers/+31611111111/export"),
    ):
        assert answer.status_code == 404, answer.text
    _, sender_key = h.service.keys.create("crm", "sender")
    sender = {"Authorization": f"Bearer {sender_key}"}
    for answer in (
        await h.client.get(f"/api/v1/customers/{ada}/export", headers=sender),
        await h.client.get(f"/api/v1/numbers/{ADA_1}/export", headers=sender),
        await h.client.delete(f"/api/v1/customers/{ada}", params={"erase": "true"}, headers=sender),
    ):
        assert answer.status_code == 403, answer.text
    assert (await h.get(f"/api/v1/customers/{ada}")).status_code == 200
    assert audit_entries(h, "customer.") == []


async def test_a_message_being_sent_makes_the_erasure_wait_and_queued_ones_are_erased(
    any_db_harness: Harness,
) -> None:
    """While a dispatcher holds one of her messages the erasure is refused (409) and changes
    nothing; once it is no longer being sent, her queued messages go with her, never sent."""
    h = any_db_harness
    ada = await add_customer(h, ADA_NAME, ADA_1)
    scheduled_at = h.service.clock() + 3600
    later = {"to": ADA_1, "text": ADA_TEXTS[3], "scheduled_at": iso(scheduled_at)}
    answer = await h.post("/api/v1/messages", later)
    assert answer.status_code == 201, answer.text
    queued = answer.json()["id"]
    held = await h.post("/api/v1/messages", {**later, "text": ADA_TEXTS[4]})
    leased = held.json()["id"]
    await h.service.writer.run(
        lambda conn: conn.execute(
            messages.update()
            .where(messages.c.id == leased)
            .values(status="sending", lease_owner="elsewhere", lease_until=scheduled_at)
        )
    )
    refused = await h.client.delete(
        f"/api/v1/customers/{ada}", params={"erase": "true"}, headers=h.headers
    )
    assert refused.status_code == 409
    assert refused.json()["error"] == {
        "code": "message_being_sent",
        "message": "A message to this customer is being sent right now; try again in a minute.",
    }
    assert (await h.get(f"/api/v1/customers/{ada}")).status_code == 200
    assert (await h.get(f"/api/v1/messages/{queued}")).json()["status"] == "queued"
    await h.service.writer.run(
        lambda conn: conn.execute(
            messages.update().where(messages.c.id == leased).values(status="sent")
        )
    )
    erased = await h.client.delete(
        f"/api/v1/customers/{ada}", params={"erase": "true"}, headers=h.headers
    )
    assert erased.status_code == 200 and erased.json()["erased"]["messages"] == 2
    assert (await h.get(f"/api/v1/messages/{queued}")).status_code == 404
    assert where_found(h, needles()) == []


async def test_erasing_a_number_nobody_holds_removes_its_messages_and_inbound_sms(
    any_db_harness: Harness,
) -> None:
    """A number without a customer: its messages, timelines, inbound SMS and webhook
    deliveries go; other numbers' stay."""
    h = any_db_harness
    await h.configure(default_country_code="+31", inbound={"sms_endpoint": ""})
    await subscribe_everything(h)
    await h.wait_for(await send(h, ADA_1, ADA_TEXTS[3]), "delivered")
    await h.wait_for(await send(h, BOB, BOB_TEXT), "delivered")
    answer = await h.get(f"/api/v1/numbers/{ADA_1}/export")
    assert answer.status_code == 200 and answer.json()["customer"] is None
    assert [m["text"] for m in answer.json()["messages"]] == [ADA_TEXTS[3]]
    erased = await asyncio.to_thread(erasure.erase_number, h.service, "0612345678", Actor.cli())
    assert erased.customer_id is None and erased.counts["messages"] == 1
    assert where_found(h, needles()) == []
    with h.service.engine.connect() as conn:
        payloads = conn.execute(sa.select(webhook_deliveries.c.payload)).scalars().all()
    assert payloads and all(BOB in p for p in payloads)


def audit_entries(h: Harness, action: str | None = None) -> list[Any]:
    """Audit entries, oldest first; `action` exact or a prefix ending in '.'."""
    with h.service.engine.connect() as conn:
        rows = conn.execute(sa.select(audit_log).order_by(audit_log.c.id)).all()
    if action is None:
        return list(rows)
    if action.endswith("."):
        return [r for r in rows if r.action.startswith(action)]
    return [r for r in rows if r.action == action]


def test_the_accept_cache_refuses_a_number_erased_by_another_process(engine: Engine) -> None:
    """An opt-out that became a hash elsewhere still refuses within the second; a START
    elsewhere (the hash removed) lets the number receive SMS again."""
    key = b"k" * 32
    optouts.use_hash_key(engine, lambda: key)
    clock = FakeClock(100.0)
    cache = OptOutCache(engine, ttl=1.0, clock=clock)
    with engine.begin() as conn:
        conn.execute(opt_outs.insert().values(number=ADA_1, source="sms", created_at=5.0))
    clock.advance(1.01)
    assert cache.opted_out({ADA_1, ADA_2}) == {ADA_1}
    with engine.begin() as conn:  # as an erasure in another process does it
        conn.execute(opt_outs.delete())
        conn.execute(
            erased_opt_outs.insert().values(
                number_hash=keyed_hash(key, ADA_1), source="sms", created_at=5.0, erased_at=9.0
            )
        )
    clock.advance(1.01)
    assert cache.opted_out({ADA_1, ADA_2}) == {ADA_1}
    small = OptOutCache(engine, ttl=1.0, max_cached=0, clock=clock)  # asks the database
    assert small.opted_out({ADA_1, ADA_2}) == {ADA_1}
    with engine.begin() as conn:
        conn.execute(erased_opt_outs.delete())
    clock.advance(1.01)
    assert cache.opted_out({ADA_1, ADA_2}) == set()
