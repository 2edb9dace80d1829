"""Inbound SMS through the running service: recognition, customers, requests, replies, opt-out."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from smsdesk.domain.ids import new_id
from smsdesk.store.tables import customer_numbers, customers
from smsdesk.testing import FakeClock
from tests.conftest import database_url
from tests.support.harness import Harness, running_service


@pytest.fixture
async def desk(tmp_path: Path, engine: Engine) -> AsyncIterator[Harness]:
    async with running_service(tmp_path, database_url(engine)) as h:
        await h.configure(
            default_country_code="+31",
            module_settings={"simulator": {"report_delay": 0.02}},
            inbound={"sms_endpoint": "HELP"},
        )
        yield h


async def receive(h: Harness, sender: str, text: str, **extra: Any) -> dict[str, Any]:
    return await h.receive(sender, text, **extra)


async def conversation(h: Harness, request_id: str) -> dict[str, Any]:
    response = await h.get(f"/api/v1/requests/{request_id}")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def add_customer(h: Harness, name: str, *numbers: str) -> str:
    customer_id = new_id()
    now = time.time()

    def insert(conn: sa.Connection) -> None:
        conn.execute(
            customers.insert().values(
                id=customer_id,
                name=name,
                language="nl",
                created_from_sms=False,
                created_at=now,
                updated_at=now,
            )
        )
        conn.execute(
            customer_numbers.insert(),
            [{"number": n, "customer_id": customer_id} for n in numbers],
        )

    await h.service.writer.run(insert)
    return customer_id


async def test_an_sms_with_the_endpoint_code_opens_a_request_for_the_known_customer(
    desk: Harness,
) -> None:
    customer = await add_customer(desk, "Anna de Vries", "+31612345678")
    inbound = await receive(desk, "0612345678", "HELP my order 123")
    assert inbound["state"] == "request"
    assert inbound["content"] == "my order 123"
    assert inbound["customer_id"] == customer
    request = await conversation(desk, inbound["request_id"])
    assert request["status"] == "open"
    assert request["customer"] == {"id": customer, "name": "Anna de Vries"}
    assert request["title"] == "my order 123"
    assert (request["category"], request["priority"]) == ("SMS", "normal")
    assert [(e["direction"], e["body"]) for e in request["conversation"]] == [
        ("in", "my order 123")
    ]


async def test_the_code_is_matched_without_regard_to_case_and_needs_a_word_boundary(
    desk: Harness,
) -> None:
    assert (await receive(desk, "+31612345670", "help\nwhere is it"))["content"] == "where is it"
    assert (await receive(desk, "+31612345671", "HELP"))["state"] == "request"
    other = await receive(desk, "+31612345672", "HELPDESK where is it")
    assert other["state"] == "unrecognised"
    assert "HELP" in other["reason"]


async def test_an_unknown_sender_becomes_a_customer_flagged_as_created_from_sms(
    desk: Harness,
) -> None:
    inbound = await receive(desk, "+31612345679", "HELP hello")
    with desk.service.engine.connect() as conn:
        row = conn.execute(
            sa.select(customers).where(customers.c.id == inbound["customer_id"])
        ).one()
        numbers = (
            conn.execute(
                sa.select(customer_numbers.c.number).where(customer_numbers.c.customer_id == row.id)
            )
            .scalars()
            .all()
        )
    assert row.created_from_sms is True
    assert numbers == ["+31612345679"]


async def test_reply_answer_and_follow_up_share_one_request(desk: Harness) -> None:
    first = await receive(desk, "+31612345678", "HELP my order 123")
    request_id = first["request_id"]
    reply = await desk.post(
        f"/api/v1/requests/{request_id}/reply",
        {"text": "It ships tomorrow.", "author": "Bob", "status": "pending"},
    )
    assert reply.status_code == 201, reply.text
    sent = await desk.wait_for(reply.json()["id"], "delivered")
    assert sent["to"] == "+31612345678"
    answer = await receive(desk, "+31612345678", "HELP thanks!")
    assert answer["request_id"] == request_id
    request = await conversation(desk, request_id)
    assert request["status"] == "open"  # the customer's answer reopens it
    assert [(e["direction"], e["body"], e["status"]) for e in request["conversation"]] == [
        ("in", "my order 123", "received"),
        ("out", "It ships tomorrow.", "delivered"),
        ("in", "thanks!", "received"),
    ]


async def test_an_sms_carrying_a_session_key_joins_that_request(desk: Harness) -> None:
    first = await receive(desk, "+31612345678", "HELP first")
    request = await conversation(desk, first["request_id"])
    other = await receive(
        desk, "+31687654321", "HELP from another phone", session_key=request["session_key"]
    )
    assert other["request_id"] == first["request_id"]


async def test_a_closed_request_is_not_joined_by_a_new_question(desk: Harness) -> None:
    first = await receive(desk, "+31612345678", "HELP first question")
    closed = await desk.client.patch(
        f"/api/v1/requests/{first['request_id']}", json={"status": "closed"}, headers=desk.headers
    )
    assert closed.status_code == 200 and closed.json()["status"] == "closed"
    second = await receive(desk, "+31612345678", "HELP new question")
    assert second["request_id"] != first["request_id"]


async def test_unrecognised_sms_are_kept_and_can_be_assigned_or_deleted(desk: Harness) -> None:
    one = await receive(desk, "+31612345678", "hello there")
    two = await receive(desk, "+31612345677", "wrong number")
    listed = (await desk.get("/api/v1/inbound")).json()["inbound"]
    assert {i["id"] for i in listed} == {one["id"], two["id"]}
    assigned = await desk.post(f"/api/v1/inbound/{one['id']}/assign", {})
    assert assigned.status_code == 200, assigned.text
    assert assigned.json()["state"] == "request"
    request = await conversation(desk, assigned.json()["request_id"])
    assert request["conversation"][0]["body"] == "hello there"
    deleted = await desk.client.delete(f"/api/v1/inbound/{two['id']}", headers=desk.headers)
    assert deleted.status_code == 200 and deleted.json()["state"] == "deleted"
    assert (await desk.get("/api/v1/inbound")).json()["inbound"] == []
    again = await desk.post(f"/api/v1/inbound/{one['id']}/assign", {})
    assert again.status_code == 409


async def test_an_unrecognised_sms_can_be_assigned_to_an_existing_request(desk: Harness) -> None:
    first = await receive(desk, "+31612345678", "HELP my order")
    stray = await receive(desk, "+31612345678", "and also the invoice")
    response = await desk.post(
        f"/api/v1/inbound/{stray['id']}/assign", {"request_id": first["request_id"]}
    )
    assert response.status_code == 200, response.text
    request = await conversation(desk, first["request_id"])
    assert [e["body"] for e in request["conversation"]] == ["my order", "and also the invoice"]


async def test_stop_opts_out_and_start_opts_back_in(desk: Harness) -> None:
    stop = await receive(desk, "+31612345678", "Stop!")
    assert stop["state"] == "opt_out"
    refused = await desk.client.post(
        "/api/v1/messages",
        json={"to": "0612345678", "text": "Our new offers"},
        headers={"Authorization": f"Bearer {desk.service.keys.create('crm', 'sender')[1]}"},
    )
    assert refused.status_code == 422
    assert "opted out" in refused.json()["error"]["message"]
    code = await desk.post(
        "/api/v1/messages", {"to": "0612345678", "text": "Code 1234", "transactional": True}
    )
    assert code.status_code == 201, code.text
    assert (await receive(desk, "+31612345678", "HELP START"))["state"] == "opt_in"
    again = await desk.post("/api/v1/messages", {"to": "0612345678", "text": "Welcome back"})
    assert again.status_code == 201


async def test_a_sender_key_cannot_send_transactional_messages(desk: Harness) -> None:
    _, plain = desk.service.keys.create("crm", "sender")
    response = await desk.client.post(
        "/api/v1/messages",
        json={"to": "+31612345678", "text": "x", "transactional": True},
        headers={"Authorization": f"Bearer {plain}"},
    )
    assert response.status_code == 403
    _, allowed = desk.service.keys.create("otp", "sender", transactional=True)
    response = await desk.client.post(
        "/api/v1/messages",
        json={"to": "+31612345678", "text": "x", "transactional": True},
        headers={"Authorization": f"Bearer {allowed}"},
    )
    assert response.status_code == 201, response.text


async def test_in_a_batch_only_the_opted_out_number_is_refused(desk: Harness) -> None:
    await receive(desk, "+31612345678", "STOP")
    response = await desk.post(
        "/api/v1/messages/batch", {"to": ["+31612345678", "+31612345679"], "text": "Hi"}
    )
    results = response.json()["results"]
    assert [r["accepted"] for r in results] == [False, True]
    assert "opted out" in results[0]["error"]["message"]


async def test_opt_out_sends_the_configured_confirmation(desk: Harness) -> None:
    await desk.configure(inbound={"opt_out_confirmation": "You will get no more SMS."})
    await receive(desk, "+31612345678", "AFMELDEN")
    messages = (await desk.get("/api/v1/messages", params={"to": "+31612345678"})).json()
    assert [m["text"] for m in messages["messages"]] == ["You will get no more SMS."]
    await desk.wait_for(messages["messages"][0]["id"], "delivered")


async def test_a_repeated_provider_message_is_stored_once(desk: Harness) -> None:
    first = await receive(desk, "+31612345678", "HELP one", id="abc-1", plugin="simulator")
    second = await desk.post(
        "/api/v1/inbound",
        {"from": "+31612345678", "text": "HELP one", "id": "abc-1", "plugin": "simulator"},
    )
    assert second.status_code == 200 and second.json() == {"id": first["id"], "duplicate": True}
    request = await conversation(desk, first["request_id"])
    assert len(request["conversation"]) == 1


async def test_senders_that_cannot_be_answered_are_kept_as_invalid(desk: Harness) -> None:
    alpha = await receive(desk, "Vodafone", "HELP your bill")
    assert alpha["state"] == "invalid"
    assert "Vodafone" in alpha["reason"]
    empty = await receive(desk, "+31612345678", "   ")
    assert empty["state"] == "invalid" and "empty" in empty["reason"]


async def test_without_an_endpoint_code_every_sms_is_accepted(desk: Harness) -> None:
    await desk.configure(inbound={"sms_endpoint": ""})
    inbound = await receive(desk, "+31612345678", "hello")
    assert inbound["state"] == "request" and inbound["content"] == "hello"


async def test_a_module_with_its_own_sms_endpoint_uses_it(desk: Harness) -> None:
    await desk.configure(module_settings={"original_intelecom": {"sms_endpoint": "SUPPORT"}})
    own = await receive(desk, "+31612345678", "SUPPORT hi", plugin="original_intelecom")
    assert own["state"] == "request" and own["content"] == "hi"
    general = await receive(desk, "+31612345678", "HELP hi", plugin="original_intelecom")
    assert general["state"] == "unrecognised"


async def test_a_queued_message_to_a_number_that_opts_out_is_not_sent(tmp_path: Path) -> None:
    clock = FakeClock(time.time())
    async with running_service(tmp_path, clock=clock) as h:
        later = clock.now + 3600
        response = await h.post(
            "/api/v1/messages",
            {
                "to": "+31612345678",
                "text": "Reminder",
                "scheduled_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(later)),
            },
        )
        assert response.status_code == 201, response.text
        await receive(h, "+31612345678", "STOP")
        clock.now = later + 1
        failed = await h.wait_for(response.json()["id"], "failed", "sent", "delivered")
        assert failed["status"] == "failed"
        assert failed["status_code"] == "opted_out"
        assert "opted out" in failed["error"]


async def test_the_conversation_window_decides_whether_a_request_is_joined(
    tmp_path: Path,
) -> None:
    clock = FakeClock(time.time())
    async with running_service(tmp_path, clock=clock) as h:
        await h.configure(inbound={"conversation_days": 2})
        first = await receive(h, "+31612345678", "one")
        clock.now += 86400
        second = await receive(h, "+31612345678", "two")
        assert second["request_id"] == first["request_id"]
        clock.now += 3 * 86400
        third = await receive(h, "+31612345678", "three")
        assert third["request_id"] != first["request_id"]
