"""A mailing with a send window, through the whole running service on a fake clock: the
mailing sender's own loop, the dispatcher and the simulator's delivery reports. Recipients
whose window is open are sent at once; those in a zone where it is closed wait (neither queued
nor sent nor dropped) until it opens there, and not a second earlier."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from smsdesk.store import mailings as mailing_store
from smsdesk.store.tables import message_events, messages
from smsdesk.testing import FakeClock
from tests.conftest import database_url
from tests.support.harness import Harness, running_service

AMSTERDAM = ["+31620000001", "+31620000002", "+31620000003"]  # 10:00 on Monday
LONDON = ["+447400123456"]  # 09:00
LOS_ANGELES = ["+14155550123", "+14155550124", "+14155550125"]  # 01:00
TOKYO = ["+819012345678", "+819012345679"]  # 17:00, the window has just closed
WEEKDAYS = {"days": ["mon", "tue", "wed", "thu", "fri"], "from": "09:00", "to": "17:00"}


def utc(day: int, hour: int, minute: int = 0, second: int = 0) -> float:
    return datetime(2026, 6, day, hour, minute, second, tzinfo=UTC).timestamp()


LA_OPENS = utc(15, 16)  # Monday 09:00 in Los Angeles
TOKYO_OPENS = utc(16, 0)  # Tuesday 09:00 in Tokyo


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(utc(15, 8))  # Monday 15 June 2026, 08:00 UTC


@pytest.fixture
async def running(tmp_path: Path, engine: Engine, clock: FakeClock) -> AsyncIterator[Harness]:
    """smsdesk on a fake clock with its dispatcher, mailing sender and the simulator, on each
    database."""
    async with running_service(tmp_path, database_url(engine), clock=clock) as h:
        await h.configure(
            module_settings={"simulator": {"report_delay": 0.02}},
            spend={"allowed_countries": ["NL", "GB", "US", "JP"]},
        )
        yield h


def sent(h: Harness) -> dict[str, dict[str, Any]]:
    """Number -> its message (status, created_at and when it was first sent) in the outbox."""
    first_sent = (
        sa.select(sa.func.min(message_events.c.at))
        .where(message_events.c.message_id == messages.c.id, message_events.c.status == "sent")
        .scalar_subquery()
    )
    query = sa.select(messages.c.recipient, messages.c.status, messages.c.created_at, first_sent)
    with h.service.engine.connect() as conn:
        return {
            row[0]: {"status": row[1], "created_at": row[2], "sent_at": row[3]}
            for row in conn.execute(query)
        }


async def passes(h: Harness, count: int = 2) -> None:
    """Wait until the service's own mailing sender has made `count` more passes (so at least
    one whole pass read the clock as it is now), and the dispatcher is idle."""
    loop = h.service.mailings
    assert loop is not None, "the mailing sender is not running"
    target = loop.passes + count
    loop.wake()
    await h.wait_until(lambda: loop.passes >= target, f"{count} mailing sender passes")
    await h.idle_scans(1)


def status(h: Harness, mailing_id: str) -> str:
    with h.service.engine.connect() as conn:
        mailing = mailing_store.get_mailing(conn, mailing_id)
    assert mailing is not None
    return mailing.status.value


async def counts(h: Harness, mailing_id: str) -> dict[str, int]:
    """The mailing's valid recipients by status, as its statistics count them (none blocked)."""
    stats = (await h.get(f"/api/v1/mailings/{mailing_id}/statistics")).json()
    assert not any(stats["blocked"].values()), stats
    return {status: n for status, n in stats["status"].items() if n}


async def recipients(h: Harness, mailing_id: str) -> dict[str, dict[str, Any]]:
    body = (await h.get(f"/api/v1/mailings/{mailing_id}/recipients")).json()
    return {row["number"]: row for row in body["recipients"]}


async def test_a_send_window_holds_recipients_until_it_opens_in_their_zone(
    running: Harness, clock: FakeClock
) -> None:
    """Weekdays 09:00-17:00: Amsterdam and London are delivered at once; Los Angeles waits
    until 09:00 there (16:00 UTC) and Tokyo until Tuesday 09:00 there (00:00 UTC), none sent
    a second early, none dropped; the mailing is done once the last zone has been sent."""
    h = running
    created = await h.post(
        "/api/v1/mailings",
        {
            "name": "Opening hours",
            "text": "We open at 9",
            "override_consent": True,
            "window": WEEKDAYS,
        },
    )
    assert created.status_code == 201, created.text
    mailing_id = created.json()["id"]
    everyone = [*AMSTERDAM, *LONDON, *LOS_ANGELES, *TOKYO]
    added = await h.post(f"/api/v1/mailings/{mailing_id}/recipients", {"numbers": everyone})
    assert added.json()["counts"]["valid"] == len(everyone), added.text
    assert (await h.post(f"/api/v1/mailings/{mailing_id}/start")).status_code == 200

    open_now = [*AMSTERDAM, *LONDON]
    await h.wait_until(
        lambda: (
            {n: m["status"] for n, m in sent(h).items()} == dict.fromkeys(open_now, "delivered")
        ),
        "Amsterdam and London delivered",
    )
    await passes(h)
    assert set(sent(h)) == set(open_now)
    waiting = await recipients(h, mailing_id)
    assert {n: (r["status"], r["message_id"]) for n, r in waiting.items() if n not in open_now} == (
        dict.fromkeys([*LOS_ANGELES, *TOKYO], (None, None))
    )
    assert await counts(h, mailing_id) == {"delivered": 4, "waiting": 5}

    clock.now = LA_OPENS - 1
    await passes(h)
    assert set(sent(h)) == set(open_now), "sent before the window opened in Los Angeles"

    clock.now = LA_OPENS
    await h.wait_until(
        lambda: all(sent(h).get(n, {}).get("status") == "delivered" for n in LOS_ANGELES),
        "Los Angeles delivered once its window opened",
    )
    await passes(h)
    assert set(sent(h)) == {*open_now, *LOS_ANGELES}
    assert status(h, mailing_id) == "sending"

    clock.now = TOKYO_OPENS - 1
    await passes(h)
    assert set(sent(h)) == {*open_now, *LOS_ANGELES}, "sent before the window opened in Tokyo"

    clock.now = TOKYO_OPENS
    await h.wait_until(
        lambda: all(sent(h).get(n, {}).get("status") == "delivered" for n in TOKYO),
        "Tokyo delivered once its window opened",
    )
    opened = {**dict.fromkeys(open_now, utc(15, 8)), **dict.fromkeys(LOS_ANGELES, LA_OPENS)}
    opened.update(dict.fromkeys(TOKYO, TOKYO_OPENS))
    for number, message in sent(h).items():
        assert message["created_at"] == opened[number], number
        assert message["sent_at"] >= opened[number], number

    await h.wait_until(lambda: status(h, mailing_id) == "done", "the mailing done")
    assert await counts(h, mailing_id) == {"delivered": len(everyone)}
