"""The out-of-hours answer: an SMS arriving while its group is closed gets the group's answer
once per conversation per closed stretch, on SQLite and PostgreSQL, with a clock under the
test's control (Europe/Amsterdam: 09:00-17:00 on weekdays)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from smsdesk.store.tables import audit_log, messages, request_messages, requests
from smsdesk.testing import FakeClock
from tests.conftest import database_url
from tests.support.harness import Harness, running_service

ANSWER = "We are closed. We answer on the next working day from 09:00."
CUSTOMER = "0612345678"
NUMBER = "+31612345678"


def utc(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(utc("2026-12-04T19:00"))  # Friday 20:00 in Amsterdam


@pytest.fixture
async def desk(tmp_path: Path, engine: Engine, clock: FakeClock) -> AsyncIterator[Harness]:
    """A desk whose SMS starting with HELP go to the Service group, closed now."""
    async with running_service(tmp_path, database_url(engine), clock=clock) as h:
        await h.configure(
            default_country_code="+31",
            inbound={"sms_endpoint": "HELP"},
            module_settings={"simulator": {"report_delay": 0.02}},
        )
        created = await h.post("/api/v1/groups", {"name": "Service"})
        assert created.status_code == 201, created.text
        rule = {"kind": "endpoint_code", "value": "HELP", "group": "Service"}
        assert (await h.post("/api/v1/routing-rules", rule)).status_code == 201
        await set_hours(
            h,
            time_zone="Europe/Amsterdam",
            hours={day: ["09:00-17:00"] for day in ("mon", "tue", "wed", "thu", "fri")},
            out_of_hours_reply=ANSWER,
        )
        yield h


async def set_hours(h: Harness, **fields: Any) -> dict[str, Any]:
    answer = await h.client.patch("/api/v1/groups/Service", json=fields, headers=h.headers)
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def answers_to(h: Harness, request_id: str) -> list[Any]:
    """The automatic answers linked to a request, oldest first."""
    with h.service.engine.connect() as conn:
        return list(
            conn.execute(
                sa.select(messages.c.recipient, messages.c.body, messages.c.session_key)
                .where(messages.c.request_id == request_id)
                .order_by(messages.c.created_at, messages.c.id)
            ).all()
        )


def marked(h: Harness, request_id: str) -> bool:
    with h.service.engine.connect() as conn:
        return bool(
            conn.execute(
                sa.select(requests.c.out_of_hours).where(requests.c.id == request_id)
            ).scalar_one()
        )


async def sms(h: Harness, clock: FakeClock, when: str, text: str, sender: str = CUSTOMER) -> str:
    clock.now = utc(when)
    body = await h.receive(sender, text)
    assert body["request_id"], body
    return str(body["request_id"])


async def test_one_answer_per_night_and_none_in_opening_hours(
    desk: Harness, clock: FakeClock
) -> None:
    """Friday 20:00 gets the answer; a second SMS that weekend none; Monday at 10:00 none and
    the mark is gone; Monday 20:00 again one."""
    h = desk
    request_id = await sms(h, clock, "2026-12-04T19:00", "HELP my order is late")
    sent = answers_to(h, request_id)
    assert [(m.recipient, m.body) for m in sent] == [(NUMBER, ANSWER)]
    with h.service.engine.connect() as conn:
        session_key = conn.execute(
            sa.select(requests.c.session_key).where(requests.c.id == request_id)
        ).scalar_one()
    assert sent[0].session_key == session_key
    assert marked(h, request_id)

    assert await sms(h, clock, "2026-12-05T22:00", "Hello? Anyone?") == request_id
    assert len(answers_to(h, request_id)) == 1

    assert await sms(h, clock, "2026-12-07T09:00", "Still waiting") == request_id  # 10:00
    assert len(answers_to(h, request_id)) == 1
    assert not marked(h, request_id)

    assert await sms(h, clock, "2026-12-07T19:00", "And now?") == request_id  # Monday 20:00
    assert len(answers_to(h, request_id)) == 2
    assert marked(h, request_id)
    shown = (await h.get(f"/api/v1/requests/{request_id}")).json()
    assert shown["out_of_hours"] is True
    assert [e["author"] for e in shown["conversation"] if e["direction"] == "out"] == [None, None]

    with h.service.engine.connect() as conn:
        entries = conn.execute(
            sa.select(request_messages.c.direction, request_messages.c.author)
            .where(request_messages.c.request_id == request_id)
            .order_by(request_messages.c.id)
        ).all()
    assert [(e.direction, e.author) for e in entries] == [
        ("in", NUMBER),
        ("out", None),
        ("in", NUMBER),
        ("in", NUMBER),
        ("in", NUMBER),
        ("out", None),
    ]


async def test_a_holiday_is_answered_and_an_opted_out_customer_is_not(
    desk: Harness, clock: FakeClock
) -> None:
    """Wednesday 9 December as a holiday: at 11:00 the answer goes, except to a number that
    sent STOP; its request is still marked out of hours."""
    h = desk
    await set_hours(h, holidays=["2026-12-09"])
    request_id = await sms(h, clock, "2026-12-08T10:00", "HELP open day")  # Tuesday 11:00
    assert answers_to(h, request_id) == [] and not marked(h, request_id)

    assert await sms(h, clock, "2026-12-09T10:00", "HELP on the holiday") == request_id
    assert len(answers_to(h, request_id)) == 1 and marked(h, request_id)

    stop = await h.receive("0687654321", "STOP")
    assert stop["state"] == "opt_out"
    refused = await sms(h, clock, "2026-12-09T10:05", "HELP me anyway", sender="0687654321")
    assert answers_to(h, refused) == [] and marked(h, refused)


async def test_no_answer_text_marks_without_answering_and_no_hours_is_always_open(
    desk: Harness, clock: FakeClock
) -> None:
    """Without an answer text the request is only marked; without hours nothing happens."""
    h = desk
    await set_hours(h, out_of_hours_reply="")
    request_id = await sms(h, clock, "2026-12-04T19:00", "HELP")
    assert answers_to(h, request_id) == [] and marked(h, request_id)

    await set_hours(h, hours={}, out_of_hours_reply=ANSWER)
    later = await sms(h, clock, "2026-12-05T02:00", "HELP again", sender="0611111111")
    assert answers_to(h, later) == [] and not marked(h, later)


@pytest.mark.parametrize(
    ("closed", "opened"),
    [
        ("2026-03-27T17:30", "2026-03-30T07:00"),  # spring: 18:30 CET to 09:00 CEST
        ("2026-10-23T16:30", "2026-10-26T08:00"),  # autumn: 18:30 CEST to 09:00 CET
    ],
)
async def test_a_weekend_across_a_change_of_the_clocks_is_one_stretch(
    desk: Harness, clock: FakeClock, closed: str, opened: str
) -> None:
    """Friday evening to Monday 09:00 local gets one answer whichever way the clocks went."""
    h = desk
    request_id = await sms(h, clock, closed, "HELP weekend")
    assert len(answers_to(h, request_id)) == 1
    monday_early = datetime.fromtimestamp(utc(opened) - 60, UTC).strftime("%Y-%m-%dT%H:%M")
    assert await sms(h, clock, monday_early, "before opening") == request_id
    assert len(answers_to(h, request_id)) == 1 and marked(h, request_id)
    assert await sms(h, clock, opened, "at opening") == request_id
    assert len(answers_to(h, request_id)) == 1 and not marked(h, request_id)


async def test_hours_are_checked_and_audited_through_the_api(desk: Harness) -> None:
    """A bad zone, an interval across midnight and a too long answer are refused by field;
    a change is read back and written to the audit trail without the answer's text."""
    h = desk
    for fields, field in [
        ({"time_zone": "Mars/Olympus"}, "time_zone"),
        ({"hours": {"sat": ["22:00-02:00"]}}, "hours.sat"),
        ({"holidays": ["25-12-2026"]}, "holidays"),
        ({"out_of_hours_reply": "x" * 2000}, "out_of_hours_reply"),
    ]:
        refused = await h.client.patch("/api/v1/groups/Service", json=fields, headers=h.headers)
        assert refused.status_code == 422, refused.text
        assert refused.json()["error"]["fields"][0]["field"] == field

    body = await set_hours(h, hours={"sat": "10:00-12:00, 11:00-14:00"}, holidays=["2026-12-25"])
    assert body["hours"]["sat"] == ["10:00-14:00"] and body["hours"]["mon"] == []
    assert body["holidays"] == ["2026-12-25"] and body["time_zone"] == "Europe/Amsterdam"
    assert body["out_of_hours_reply"] == ANSWER
    with h.service.engine.connect() as conn:
        details = conn.execute(
            sa.select(audit_log.c.details)
            .where(audit_log.c.action == "group.hours_changed")
            .order_by(audit_log.c.id.desc())
        ).first()
    assert details is not None and ANSWER not in str(details[0])
