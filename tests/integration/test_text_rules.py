"""What a text, a validity, a scheduled time and a priority may be, on each database.

Control characters in a text to send are refused naming the character and its place; in a
received SMS they are replaced and the SMS marked, never a server error (a provider would
retry it forever). Validity 0, schedules outside the window and booleans for numbers are 422.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from typer.testing import CliRunner

from smsdesk.cli import app
from smsdesk.store.tables import inbound_messages, messages
from smsdesk.testing import FakeClock
from tests.conftest import database_url
from tests.support.harness import Harness, running_service
from tests.support.webui import create_user, csrf_of, log_in

TO = "+31612345678"
NUL_TEXT = "code\u00001234"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(time.time())


@pytest.fixture
async def desk(tmp_path: Path, engine: Engine, clock: FakeClock) -> AsyncIterator[Harness]:
    """smsdesk on each database, with a clock the test moves, the inbox open for HELP."""
    async with running_service(tmp_path, database_url(engine), clock=clock) as h:
        await h.configure(
            default_country_code="+47",
            inbound={"sms_endpoint": "HELP"},
            spend={"allowed_countries": ["NO", "NL"]},
        )
        yield h


def stored_messages(h: Harness) -> list[Any]:
    with h.service.engine.connect() as conn:
        return list(conn.execute(sa.select(messages)))


def stored_inbound(h: Harness) -> list[Any]:
    with h.service.engine.connect() as conn:
        return list(conn.execute(sa.select(inbound_messages).order_by(inbound_messages.c.id)))


def field_error(response: httpx.Response, field: str) -> str:
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    messages_: list[str] = [f["message"] for f in error["fields"] if f["field"] == field]
    assert messages_, error
    return messages_[0]


def at(clock: FakeClock, seconds: float) -> str:
    return datetime.fromtimestamp(clock() + seconds, UTC).isoformat()


async def test_a_nul_in_a_single_send_is_refused_naming_it(desk: Harness) -> None:
    answer = await desk.post("/api/v1/messages", {"to": TO, "text": NUL_TEXT})
    assert "U+0000 (NUL) at position 5" in field_error(answer, "text")
    assert stored_messages(desk) == []


async def test_a_nul_in_a_batch_refuses_that_message_alone(desk: Harness) -> None:
    body = {
        "messages": [
            {"to": TO, "text": "fine"},
            {"to": TO, "text": NUL_TEXT},
            {"to": TO, "text": "esc\x1b[0m"},
        ]
    }
    answer = await desk.post("/api/v1/messages/batch", body)
    assert answer.status_code == 200, answer.text
    results = answer.json()["results"]
    assert [r["accepted"] for r in results] == [True, False, False]
    assert "U+0000 (NUL) at position 5" in results[1]["error"]["fields"][0]["message"]
    assert "U+001B (escape) at position 4" in results[2]["error"]["message"]
    one_text = await desk.post("/api/v1/messages/batch", {"to": [TO, TO], "text": NUL_TEXT})
    assert one_text.json()["rejected"] == 2
    assert len(stored_messages(desk)) == 1


@pytest.mark.parametrize("text", ["\u200b", "\u200b\u200d\ufeff", " \u2060\n", "\x01\x02"])
async def test_a_text_that_shows_nothing_is_refused(desk: Harness, text: str) -> None:
    answer = await desk.post("/api/v1/messages", {"to": TO, "text": text})
    assert field_error(answer, "text")
    assert stored_messages(desk) == []


async def test_agent_api_refuses_a_control_character_for_that_message(desk: Harness) -> None:
    items = [{"to": TO, "content": NUL_TEXT}, {"to": TO, "content": "ok"}]
    answer = await desk.post("/api/v1/agent/send", {"plugin": "simulator", "messages": items})
    assert answer.status_code == 200, answer.text
    statuses = answer.json()
    assert [s["status"] for s in statuses] == ["failed", "queued"]
    assert "U+0000" in statuses[0]["status_description"]


async def test_a_nul_in_an_inbound_webhook_is_stored_replaced_and_marked(desk: Harness) -> None:
    secret = desk.service.settings.callback_secret()
    sms = {"messageid": "n1", "originator": "+4791234567", "sno": "2030", "content": "HELP a\0b"}
    answer = await desk.client.post(
        f"/webhooks/intelecom/inbound/{secret}",
        content=orjson.dumps({"mo": [sms]}),
        headers={"content-type": "application/json"},
    )
    assert answer.status_code == 200, answer.text
    (row,) = stored_inbound(desk)
    assert row.body == "HELP a\ufffdb" and row.text_altered is True
    await desk.wait_until(lambda: stored_inbound(desk)[0].state == "request", "the request")


async def test_a_nul_in_the_inbound_api_is_stored_replaced_and_marked(desk: Harness) -> None:
    received = await desk.receive("+4791234567", "HELP \x00\x07 there", id="x\x00y")
    assert received["text"] == "HELP \ufffd\ufffd there"
    assert received["text_altered"] is True
    assert received["provider_message_id"] == "x\ufffdy"
    plain = await desk.receive("+4791234568", "HELP plain")
    assert plain["text_altered"] is False


async def test_a_reply_with_a_control_character_is_refused_in_the_page_language(
    desk: Harness,
) -> None:
    received = await desk.receive("+4791234567", "HELP hello")
    create_user(desk.service, "agent", "admin", "nl")
    async with desk.browser() as browser:
        await log_in(browser, "agent")
        page = await browser.get(f"/requests/{received['request_id']}")
        answer = await browser.post(
            f"/requests/{received['request_id']}/reply",
            data={"text": NUL_TEXT, "csrf_token": csrf_of(page.text)},
        )
    assert answer.status_code == 422
    assert "stuurteken U+0000 (NUL) op positie 5" in answer.text
    assert stored_messages(desk) == []


@pytest.mark.parametrize("hours", [0, -1, 337, 0.0])
async def test_a_validity_out_of_range_is_refused_with_the_range(
    desk: Harness, hours: float
) -> None:
    answer = await desk.post("/api/v1/messages", {"to": TO, "text": "hi", "validity_hours": hours})
    assert "at most 336 hours" in field_error(answer, "validity_hours")


@pytest.mark.parametrize(
    "field, value",
    [("priority", True), ("priority", False), ("validity_hours", True)],
)
async def test_a_boolean_is_not_a_number(desk: Harness, field: str, value: bool) -> None:
    answer = await desk.post("/api/v1/messages", {"to": TO, "text": "hi", field: value})
    assert "not a boolean" not in field_error(answer, field)
    batch = await desk.post("/api/v1/messages/batch", {"to": [TO], "text": "hi", field: value})
    assert field_error(batch, field)
    assert stored_messages(desk) == []


async def test_a_schedule_up_to_5_minutes_past_is_now_and_says_so(
    desk: Harness, clock: FakeClock
) -> None:
    answer = await desk.post(
        "/api/v1/messages", {"to": TO, "text": "hi", "scheduled_at": at(clock, -290)}
    )
    assert answer.status_code == 201, answer.text
    accepted = answer.json()
    assert accepted["scheduled_at"] is None
    assert "sent now" in accepted["notice"]
    batch = await desk.post(
        "/api/v1/messages/batch", {"to": [TO], "text": "hi", "scheduled_at": at(clock, -60)}
    )
    assert "sent now" in batch.json()["results"][0]["message"]["notice"]
    later = await desk.post(
        "/api/v1/messages", {"to": TO, "text": "hi", "scheduled_at": at(clock, 60)}
    )
    assert later.status_code == 201 and "notice" not in later.json()


@pytest.mark.parametrize(
    "offset, phrase",
    [(-86400, "in the past"), (-301, "in the past"), (35 * 86400 + 60, "too far ahead")],
)
async def test_a_schedule_outside_the_window_is_refused(
    desk: Harness, clock: FakeClock, offset: float, phrase: str
) -> None:
    body = {"to": TO, "text": "hi", "scheduled_at": at(clock, offset)}
    message = field_error(await desk.post("/api/v1/messages", body), "scheduled_at")
    assert phrase in message and "35 days" in message
    far = {"to": TO, "text": "hi", "scheduled_at": "9999-12-31T00:00:00Z"}
    assert "too far ahead" in field_error(await desk.post("/api/v1/messages", far), "scheduled_at")
    assert stored_messages(desk) == []


def test_the_cli_refuses_a_control_character(tmp_path: Path) -> None:
    """The rule is checked before the database is touched: SQLite stands for both here."""
    env = {"SMSDESK_DATA_DIR": str(tmp_path / "data"), "COLUMNS": "200"}
    result = CliRunner(env=env).invoke(
        app, ["send", "--to", TO, "--text", "\x1b[31mred", "--priority", "1"]
    )
    assert result.exit_code == 1, result.output
    assert "U+001B (escape) at position 1" in result.stderr
