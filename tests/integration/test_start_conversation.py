"""Agents start conversations: POST /api/v1/requests and `smsdesk requests start`.

A new request whose first message is an outbound SMS linked to it; the customer is found by
number or created; the customer's answer threads into the request; an opted-out number is
refused before anything is stored.
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from typer.testing import CliRunner

from smsdesk.cli import app
from smsdesk.store.tables import audit_log, customers, messages, requests
from tests.support.harness import Harness

ADA = "+31612345678"


async def _desk(h: Harness) -> None:
    await h.configure(default_country_code="+31", inbound={"sms_endpoint": "HELP"})


def _counts(h: Harness) -> tuple[int, int, int]:
    with h.service.engine.connect() as conn:
        return tuple(  # type: ignore[return-value]
            conn.execute(sa.select(sa.func.count()).select_from(t)).scalar_one()
            for t in (customers, requests, messages)
        )


async def test_a_number_typed_nationally_starts_a_request_and_the_answer_threads_into_it(
    any_db_harness: Harness,
) -> None:
    """06-1234 5678 becomes +31612345678, a customer is created, the SMS is queued linked to
    the new request, and the customer's answer (without the endpoint code) joins it."""
    h = any_db_harness
    await _desk(h)
    made = await h.post(
        "/api/v1/requests", {"number": "06-1234 5678", "text": "Your parcel is ready."}
    )
    assert made.status_code == 201, made.text
    body = made.json()
    assert body["title"] == "Your parcel is ready."
    assert body["customer"]["name"] == ADA and body["customer_created"] is True
    assert body["message"]["to"] == ADA
    message_id = body["message"]["id"]
    await h.wait_for(message_id, "sent", "delivered")

    answer = await h.receive(ADA, "Thanks, I will pick it up")
    assert answer["request_id"] == body["id"] and answer["state"] == "request"
    conversation = (await h.get(f"/api/v1/requests/{body['id']}")).json()["conversation"]
    assert [(e["direction"], e["body"]) for e in conversation] == [
        ("out", "Your parcel is ready."),
        ("in", "Thanks, I will pick it up"),
    ]
    assert conversation[0]["message_id"] == message_id


async def test_an_existing_customer_is_found_and_title_and_owner_are_kept(
    any_db_harness: Harness,
) -> None:
    """A number belonging to a customer starts a request of that customer; a customer id
    alone uses its first number; the owner is a user named in the request."""
    h = any_db_harness
    await _desk(h)
    customer = (await h.post("/api/v1/customers", {"name": "Ada", "numbers": [ADA]})).json()
    h.service.users.create("sam", "correct horse battery staple", "agent", "en", 0.0)
    by_number = await h.post(
        "/api/v1/requests",
        {"number": "0612345678", "text": "Hello Ada", "title": "Delivery", "owner": "sam"},
    )
    assert by_number.status_code == 201, by_number.text
    first = by_number.json()
    assert first["customer"] == {"id": customer["id"], "name": "Ada"}
    assert first["title"] == "Delivery" and first["customer_created"] is False
    assert first["owner_id"] is not None
    by_id = await h.post("/api/v1/requests", {"customer_id": customer["id"], "text": "Again"})
    assert by_id.status_code == 201, by_id.text
    assert by_id.json()["customer"]["id"] == customer["id"]
    assert by_id.json()["owner_id"] is None  # an API key is nobody's


async def test_an_opted_out_number_is_refused_before_anything_is_stored(
    any_db_harness: Harness,
) -> None:
    """The refusal names the number field and says how it opted out; no customer, request or
    message was created."""
    h = any_db_harness
    await _desk(h)
    await h.receive(ADA, "STOP")
    before = _counts(h)
    refused = await h.post("/api/v1/requests", {"number": "06 12345678", "text": "Hi"})
    assert refused.status_code == 422, refused.text
    error = refused.json()["error"]
    assert error["fields"][0]["field"] == "number"
    assert "opted out" in error["message"] and "STOP" in error["message"]
    assert _counts(h) == before


async def test_bad_input_is_refused_by_field(harness: Harness) -> None:
    """A number that is none, neither text nor template, an unknown customer, group or owner."""
    h = harness
    await _desk(h)
    cases = [
        ({"number": "12", "text": "Hi"}, 422, "number"),
        ({"number": ADA}, 422, "text"),
        ({"text": "Hi"}, 422, "number"),
        ({"number": ADA, "text": "Hi", "group": "Nobody"}, 422, "group"),
        ({"number": ADA, "text": "Hi", "owner": "ghost"}, 422, "owner"),
    ]
    for body, status, field in cases:
        answer = await h.post("/api/v1/requests", body)
        assert answer.status_code == status, (body, answer.text)
        assert answer.json()["error"]["fields"][0]["field"] == field, answer.text
    unknown = await h.post("/api/v1/requests", {"customer_id": "X" * 26, "text": "Hi"})
    assert unknown.status_code == 404
    assert _counts(h) == (0, 0, 0)


async def test_the_first_text_can_come_from_a_template(harness: Harness) -> None:
    """template + variables render for the number's customer, as a send would."""
    h = harness
    await _desk(h)
    await h.post("/api/v1/customers", {"name": "Ada", "numbers": [ADA]})
    made = await h.post(
        "/api/v1/templates",
        {"name": "Ready", "language": "en", "body": "Hi {customer.name}, {prompt:item} is ready"},
    )
    assert made.status_code == 201, made.text
    started = await h.post(
        "/api/v1/requests",
        {"number": ADA, "template": "Ready", "variables": {"item": "your bike"}},
    )
    assert started.status_code == 201, started.text
    assert started.json()["title"] == "Hi Ada, your bike is ready"
    missing = await h.post("/api/v1/requests", {"number": ADA, "template": "Ready"})
    assert missing.status_code == 422 and "item" in missing.text


async def test_starting_is_in_the_audit_trail(harness: Harness) -> None:
    """request.started names the request and the queued message, not the number or text."""
    h = harness
    await _desk(h)
    made = (await h.post("/api/v1/requests", {"number": ADA, "text": "Secret text"})).json()
    with h.service.engine.connect() as conn:
        rows = conn.execute(
            sa.select(audit_log).where(audit_log.c.action == "request.started")
        ).all()
    assert len(rows) == 1 and rows[0].target_id == made["id"]
    assert "Secret text" not in str(rows[0]) and ADA not in str(rows[0])


def test_the_command_starts_a_conversation(tmp_path: Path) -> None:
    """`smsdesk requests start 06... TEXT` queues the SMS in a new request; an opted-out
    number fails with the reason."""
    data = tmp_path / "data"
    runner = CliRunner(env={"SMSDESK_DATA_DIR": str(data), "COLUMNS": "200"})
    assert runner.invoke(app, ["settings", "set", "default_country_code=+31"]).exit_code == 0
    result = runner.invoke(app, ["requests", "start", "06 1234 5678", "Your bike is ready"])
    assert result.exit_code == 0, result.output
    request_id, number, state = result.stdout.split()
    assert number == ADA and state == "queued"
    shown = runner.invoke(app, ["requests", "show", request_id])
    assert "Your bike is ready" in shown.stdout
    assert runner.invoke(app, ["optouts", "add", ADA]).exit_code == 0
    refused = runner.invoke(app, ["requests", "start", ADA, "Again"])
    assert refused.exit_code != 0 and "opted out" in refused.stderr
