"""Sending a mailing through the ordinary outbox: batches at priority 3, the send window in
each recipient's own time zone, the throttle, and pause, resume and cancel."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from smsdesk.domain.message import Status
from smsdesk.mailings.sender import MailingSender
from smsdesk.store.customers import insert_customers
from smsdesk.store.mailing_consents import set_consents
from smsdesk.store.messages import change_status
from smsdesk.store.optouts import add_opt_out
from smsdesk.store.tables import messages
from smsdesk.testing import FakeClock
from tests.support.harness import Harness, running_service

NL = [f"+3162000000{i}" for i in range(1, 6)]
LOS_ANGELES = "+14155550123"


def utc(day: int, hour: int, minute: int = 0, second: int = 0) -> float:
    return datetime(2026, 6, day, hour, minute, second, tzinfo=UTC).timestamp()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(utc(15, 8))  # Monday 15 June 2026, 10:00 in Amsterdam, 01:00 in LA


@pytest.fixture
async def still(tmp_path: Path, clock: FakeClock) -> AsyncIterator[Harness]:
    """smsdesk on a fake clock without a dispatcher: queued messages stay queued."""
    async with running_service(tmp_path, dispatcher=False, clock=clock) as h:
        await h.configure(spend={"allowed_countries": ["NL", "US"]})
        yield h


async def mailing(h: Harness, numbers: list[str], **fields: Any) -> str:
    body = {"name": "Notice", "text": "Hello", "override_consent": True, **fields}
    created = await h.post("/api/v1/mailings", body)
    assert created.status_code == 201, created.text
    mailing_id: str = created.json()["id"]
    added = await h.post(f"/api/v1/mailings/{mailing_id}/recipients", {"numbers": numbers})
    assert added.json()["counts"]["valid"] == len(numbers), added.text
    return mailing_id


async def act(h: Harness, mailing_id: str, action: str) -> dict[str, Any]:
    response = await h.post(f"/api/v1/mailings/{mailing_id}/{action}")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def queued(h: Harness) -> list[sa.Row[Any]]:
    with h.service.engine.connect() as conn:
        return list(
            conn.execute(
                sa.select(
                    messages.c.recipient,
                    messages.c.priority,
                    messages.c.status,
                    messages.c.next_attempt_at,
                ).order_by(messages.c.next_attempt_at, messages.c.recipient)
            )
        )


async def statistics(h: Harness, mailing_id: str) -> dict[str, Any]:
    body: dict[str, Any] = (await h.get(f"/api/v1/mailings/{mailing_id}/statistics")).json()
    return body


async def test_a_mailing_is_delivered_in_batches_and_skips_a_late_opt_out(
    any_db_harness: Harness,
) -> None:
    """Five recipients in batches of two through the simulator: the one who opted out after
    the check is not sent to, the others are delivered at priority 3, and the mailing is done."""
    h = any_db_harness
    mailing_id = await mailing(h, NL)
    with h.service.engine.begin() as conn:
        add_opt_out(conn, NL[4], keyword="STOP", source="sms", inbound_id=None, now=0.0)
    await act(h, mailing_id, "start")
    sender = MailingSender(h.service, batch=2)

    def delivered() -> bool:
        """One pass of the sender, then whether all four were delivered."""
        sender.step()
        return {row.status for row in queued(h)} == {"delivered"} and len(queued(h)) == 4

    await h.wait_until(delivered, "four messages delivered")
    stats = await statistics(h, mailing_id)
    assert stats["messages"] == {"delivered": 4, "opted_out": 1}
    assert {row.priority for row in queued(h)} == {3}
    assert (await h.get(f"/api/v1/mailings/{mailing_id}")).json()["status"] == "done"


async def test_recipients_outside_their_window_are_held_until_it_opens(
    still: Harness, clock: FakeClock
) -> None:
    """Weekdays 09:00-17:00: Amsterdam (10:00) is sent at once; Los Angeles (01:00) is held,
    not sent a second before 09:00 there (16:00 UTC), and sent when it opens."""
    h = still
    window = {"days": ["mon", "tue", "wed", "thu", "fri"], "from": "09:00", "to": "17:00"}
    mailing_id = await mailing(h, [NL[0], LOS_ANGELES], window=window)
    await act(h, mailing_id, "start")
    sender = MailingSender(h.service)

    (first,) = sender.step().values()
    assert (first.queued, first.held) == (1, 1)
    assert [row.recipient for row in queued(h)] == [NL[0]]

    clock.now = utc(15, 15, 59, 59)
    (early,) = sender.step().values()
    assert (early.queued, early.finished) == (0, False)

    clock.now = utc(15, 16)
    (opened,) = sender.step().values()
    assert (opened.queued, opened.finished) == (1, False)  # its messages are still queued
    assert [row.recipient for row in queued(h)] == [NL[0], LOS_ANGELES]
    assert queued(h)[1].next_attempt_at == utc(15, 16)
    assert (await statistics(h, mailing_id))["messages"] == {"queued": 2}


async def test_the_throttle_spreads_the_messages_over_each_minute(
    still: Harness, clock: FakeClock
) -> None:
    """Two a minute: two messages are queued 30 s apart, nothing more within that minute,
    the next two a minute later."""
    h = still
    mailing_id = await mailing(h, NL, throttle_per_minute=2)
    await act(h, mailing_id, "start")
    sender = MailingSender(h.service)
    start = clock.now

    assert [p.queued for p in sender.step().values()] == [2]
    assert [row.next_attempt_at - start for row in queued(h)] == [0, 30]
    clock.advance(59)
    assert [p.queued for p in sender.step().values()] == [0]
    clock.advance(2)
    assert [p.queued for p in sender.step().values()] == [2]
    assert len(queued(h)) == 4


async def test_pause_resume_and_cancel_while_sending(still: Harness, clock: FakeClock) -> None:
    """A pause takes back what is still queued and queues nothing more; resumed, the same
    recipients are queued again; cancelled, its queued messages are cancelled and nothing more
    is queued; the counts add up to every recipient."""
    h = still
    mailing_id = await mailing(h, NL, throttle_per_minute=2)
    await act(h, mailing_id, "start")
    sender = MailingSender(h.service)

    sender.step()
    assert (await act(h, mailing_id, "pause"))["status"] == "paused"
    assert {row.status for row in queued(h)} == {"cancelled"}
    assert (await statistics(h, mailing_id))["messages"] == {"waiting": 5}
    clock.advance(61)
    assert sender.step() == {}
    assert (await act(h, mailing_id, "resume"))["status"] == "sending"
    assert [p.queued for p in sender.step().values()] == [2]
    queued_again = [row.recipient for row in queued(h) if row.status == "queued"]
    assert queued_again == NL[:2]
    assert (await act(h, mailing_id, "cancel"))["status"] == "cancelled"
    clock.advance(61)
    assert sender.step() == {}
    assert {row.status for row in queued(h)} == {"cancelled"}
    stats = await statistics(h, mailing_id)
    assert stats["messages"] == {"cancelled": 2, "waiting": 3}
    refused = await h.post(f"/api/v1/mailings/{mailing_id}/resume")
    assert refused.status_code == 422
    assert refused.json()["error"]["message"] == (
        "A mailing that is cancelled cannot resume; only a mailing that is paused can."
    )


async def test_consent_withdrawn_after_the_check_is_respected_when_sending(
    still: Harness,
) -> None:
    """A customer who withdraws consent between the check and the send gets no SMS; the
    recipient shows why."""
    h = still
    with h.service.engine.begin() as conn:
        insert_customers(
            conn,
            [
                {
                    "id": f"01CUSTOMER00000000000000{i}",
                    "name": f"C{i}",
                    "language": "nl",
                    "created_from_sms": False,
                    "created_at": 0.0,
                    "updated_at": 0.0,
                }
                for i in (1, 2)
            ],
            [{"number": NL[i - 1], "customer_id": f"01CUSTOMER00000000000000{i}"} for i in (1, 2)],
        )
        set_consents(
            conn,
            ["01CUSTOMER000000000000001", "01CUSTOMER000000000000002"],
            given=True,
            source="test",
            now=0.0,
        )
    mailing_id = await mailing(h, NL[:2], override_consent=False)
    withdrawn = await h.put("/api/v1/mailings/consents/01CUSTOMER000000000000002", {"given": False})
    assert withdrawn.status_code == 200, withdrawn.text
    await act(h, mailing_id, "start")
    (done,) = MailingSender(h.service).step().values()
    assert (done.queued, done.refused, done.finished) == (1, 1, False)
    rows = (await h.get(f"/api/v1/mailings/{mailing_id}/recipients")).json()["recipients"]
    assert [(r["status"], r["reason"]) for r in rows] == [
        ("queued", None),
        ("no_consent", "The customer withdrew consent to mailings."),
    ]


def settle(h: Harness, now: float, *steps: tuple[Status, Status]) -> None:
    """Move every message of the outbox through `steps` (from, to), as a dispatcher and a
    provider's reports would."""
    with h.service.engine.begin() as conn:
        ids = list(conn.execute(sa.select(messages.c.id)).scalars())
        for expected, new in steps:
            for message_id in ids:
                change_status(conn, message_id, expected, new, now, "test")


async def test_a_mailing_is_done_once_its_messages_left_the_outbox_and_late_reports_count(
    still: Harness, clock: FakeClock
) -> None:
    """Every recipient queued is not done yet: the mailing is done once none of its messages
    is queued or being sent (sent and awaiting a report is enough). A report arriving after
    that still reaches the mailing's statistics, which outlive the purge of the messages."""
    h = still
    mailing_id = await mailing(h, NL[:2])
    await act(h, mailing_id, "start")
    sender = MailingSender(h.service)

    (queueing,) = sender.step().values()
    assert (queueing.queued, queueing.finished) == (2, False)
    assert [p.finished for p in sender.step().values()] == [False]
    settle(h, clock.now, (Status.QUEUED, Status.SENDING))
    assert [p.finished for p in sender.step().values()] == [False]

    settle(h, clock.now, (Status.SENDING, Status.SENT))
    assert [p.finished for p in sender.step().values()] == [True]
    assert (await h.get(f"/api/v1/mailings/{mailing_id}")).json()["status"] == "done"

    clock.advance(3600)  # an hour later, the reports come
    settle(h, clock.now, (Status.SENT, Status.DELIVERED))
    assert sender.step() == {}
    with h.service.engine.begin() as conn:
        conn.execute(messages.delete())  # purged
    assert (await statistics(h, mailing_id))["messages"] == {"delivered": 2}
    rows = (await h.get(f"/api/v1/mailings/{mailing_id}/recipients")).json()["recipients"]
    assert [r["status"] for r in rows] == ["delivered", "delivered"]
