"""Replies to a mailing: an SMS from a recipient within a week of the mailing's SMS is linked
to it, becomes a request (or waits in the unrecognised list, as the mailing says), and the
request page links back to the mailing."""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from smsdesk.store.mailing_replies import answered_mailings
from smsdesk.store.mailing_tables import mailing_recipients, mailing_replies, mailings
from smsdesk.testing import FakeClock
from tests.conftest import database_url
from tests.integration.test_status_indexes import statements
from tests.support.harness import Harness, running_service
from tests.support.webui import create_user, log_in

ANNA, BOB, CARL = "+31620000001", "+31620000002", "+31620000003"
DAY = 86400.0


@pytest.fixture
async def desk(tmp_path: Path, engine: Engine) -> AsyncIterator[tuple[Harness, FakeClock]]:
    """smsdesk whose SMS endpoint code is HELP, on a fake clock."""
    clock = FakeClock(time.time())
    async with running_service(tmp_path, database_url(engine), clock=clock) as h:
        await h.configure(
            module_settings={"simulator": {"report_delay": 0.02}},
            inbound={"sms_endpoint": "HELP"},
        )
        yield h, clock


async def sent_mailing(h: Harness, name: str, numbers: list[str], **fields: Any) -> str:
    """A mailing started and done (its messages sent by the service's own sender)."""
    body = {"name": name, "text": "Our summer sale starts today", "override_consent": True}
    created = await h.post("/api/v1/mailings", {**body, **fields})
    assert created.status_code == 201, created.text
    mailing_id: str = created.json()["id"]
    added = await h.post(f"/api/v1/mailings/{mailing_id}/recipients", {"numbers": numbers})
    assert added.status_code == 200, added.text
    assert (await h.post(f"/api/v1/mailings/{mailing_id}/start")).status_code == 200
    sender = h.service.mailings
    assert sender is not None

    def done() -> bool:
        sender.wake()
        with h.service.engine.connect() as conn:
            status = conn.execute(
                sa.select(mailings.c.status).where(mailings.c.id == mailing_id)
            ).scalar_one()
        return bool(status == "done")

    await h.wait_until(done, f"mailing {name} done")
    return mailing_id


def replies(h: Harness) -> list[tuple[str, str | None, bool]]:
    """(mailing id, request id, opt-out) of every reply recorded, oldest first."""
    with h.service.engine.connect() as conn:
        rows = conn.execute(
            sa.select(
                mailing_replies.c.mailing_id,
                mailing_replies.c.request_id,
                mailing_replies.c.opt_out,
            ).order_by(mailing_replies.c.id)
        )
        return [(r.mailing_id, r.request_id, bool(r.opt_out)) for r in rows]


async def test_a_reply_becomes_a_request_linked_to_the_mailing(
    desk: tuple[Harness, FakeClock],
) -> None:
    """Without the endpoint code, a recipient's answer becomes a request (an SMS from anyone
    else does not); the reply is recorded with its request, and the request page links to
    the mailing, in English and in Dutch."""
    h, _ = desk
    mailing_id = await sent_mailing(h, "Summer sale", [ANNA, BOB])

    answer = await h.receive(ANNA, "Is the blue one in the sale too?")
    stranger = await h.receive(CARL, "Is the blue one in the sale too?")
    assert answer["state"] == "request"
    assert stranger["state"] == "unrecognised"
    request_id = answer["request_id"]
    assert replies(h) == [(mailing_id, request_id, False)]

    for language, words in (
        ("en", "Reply to mailing Summer sale"),
        ("nl", "Antwoord op mailing Summer sale"),
    ):
        create_user(h.service, f"agent-{language}", "admin", language)
        async with h.browser() as browser:
            await log_in(browser, f"agent-{language}")
            page = (await browser.get(f"/requests/{request_id}")).text
        assert f'<a href="/mailings/{mailing_id}">{words}</a>' in page


async def test_replies_to_a_mailing_that_wants_them_unrecognised(
    desk: tuple[Harness, FakeClock],
) -> None:
    """A mailing whose replies go to the unrecognised list: the answer waits there, still
    counted as the mailing's reply, and is linked to the request it becomes once accepted;
    one with the endpoint code is a request as always."""
    h, _ = desk
    mailing_id = await sent_mailing(h, "Outage", [ANNA, BOB], replies="unrecognised")

    plain = await h.receive(ANNA, "When will it be fixed?")
    coded = await h.receive(BOB, "HELP my internet is down")
    assert (plain["state"], plain["request_id"]) == ("unrecognised", None)
    assert coded["state"] == "request"
    assert replies(h) == [(mailing_id, None, False), (mailing_id, coded["request_id"], False)]

    accepted = await h.post(f"/api/v1/inbound/{plain['id']}/assign", {})
    assert accepted.status_code == 200, accepted.text
    request_id = accepted.json()["request_id"]
    assert request_id is not None
    assert sorted(replies(h), key=str) == sorted(
        [(mailing_id, request_id, False), (mailing_id, coded["request_id"], False)], key=str
    )


async def test_a_stop_reply_is_an_opt_out_of_the_mailing(
    desk: tuple[Harness, FakeClock],
) -> None:
    """STOP in answer to a mailing opts the number out and is recorded as the mailing's
    opt-out."""
    h, _ = desk
    mailing_id = await sent_mailing(h, "Newsletter", [ANNA])

    stop = await h.receive(ANNA, "stop")
    assert stop["state"] == "opt_out"
    assert replies(h) == [(mailing_id, stop["request_id"], True)]
    refused = await h.post("/api/v1/messages", {"to": ANNA, "text": "More offers"})
    assert refused.status_code == 422


async def test_the_most_recent_mailing_within_a_week_is_answered(
    desk: tuple[Harness, FakeClock],
) -> None:
    """Two mailings to the same number: an answer belongs to the later one; after seven days
    it belongs to neither, and waits in the unrecognised list."""
    h, clock = desk
    await sent_mailing(h, "First", [ANNA])
    clock.advance(DAY)
    second = await sent_mailing(h, "Second", [ANNA])

    clock.advance(6 * DAY)
    answer = await h.receive(ANNA, "Thanks!")
    assert replies(h) == [(second, answer["request_id"], False)]

    clock.advance(DAY + 1)
    late = await h.receive(ANNA, "Thanks again!")
    assert late["state"] == "unrecognised"
    assert len(replies(h)) == 1


async def test_finding_the_mailing_stays_cheap_with_a_hundred_thousand_recipients(
    engine: Engine,
) -> None:
    """With a 100,000-recipient mailing (and an older, finished one), looking up 501 senders
    takes a query per 500, each finding its recipients through the (mailing, number) index,
    not by reading the table (the plans of the statements sent; a timing would measure the
    machine)."""
    now = time.time()
    with engine.begin() as conn:
        for mailing_id, finished in (("01RECENT", None), ("01OLD", now - 30 * DAY)):
            conn.execute(
                mailings.insert().values(
                    id=mailing_id,
                    name=mailing_id,
                    status="done" if finished else "sending",
                    priority=3,
                    tags="[]",
                    replies="request",
                    override_consent=True,
                    created_at=now,
                    updated_at=now,
                    finished_at=finished,
                )
            )
            conn.execute(
                mailing_recipients.insert(),
                [
                    {
                        "mailing_id": mailing_id,
                        "line": n,
                        "given": f"+3161{n:07d}",
                        "number": f"+3161{n:07d}",
                        "check_result": "valid",
                        "message_id": f"{mailing_id}{n}",
                        "queued_at": now - DAY,
                    }
                    for n in range(100_000)
                ],
            )
        if engine.dialect.name == "postgresql":
            conn.execute(sa.text("ANALYZE"))  # as autovacuum does after such an insert
    senders = [f"+3161{n:07d}" for n in range(0, 100_000, 200)] + ["+31699999999"]
    with statements(engine) as sent, engine.connect() as conn:
        found = answered_mailings(conn, senders, now - 7 * DAY)
    assert len(found) == 500
    assert {a.mailing_id for a in found.values()} == {"01RECENT"}
    queries = [(sql, params) for sql, params in sent if sql.startswith("SELECT")]
    assert len(queries) == 2
    for sql, params in queries:
        with engine.connect() as conn:
            if engine.dialect.name == "postgresql":
                lines = conn.exec_driver_sql("EXPLAIN " + sql, params).scalars().all()
            else:
                lines = [
                    row[-1] for row in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql, params)
                ]
        shown = "\n".join(lines)
        assert "ix_mailing_recipients_number" in shown, shown  # by mailing and number
        assert not any(
            re.search(r"Seq Scan on mailing_recipients|^SCAN mailing_recipients", line.strip())
            for line in lines
        ), shown
