"""The dashboard's figures on SQLite and PostgreSQL: days, timezones, modules, rates, medians."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.engine import Engine

from smsdesk.domain.ids import new_id
from smsdesk.store import messages as repo
from smsdesk.store.db import write_transaction
from smsdesk.store.stats import Counts, DashboardStats, QueueDepth, dashboard_stats

# Friday 20 March 2026, 12:00 UTC (13:00 in Amsterdam, before the switch to summer time).
NOW = datetime(2026, 3, 20, 12, 0, tzinfo=UTC).timestamp()
HOUR = 3600.0
DAY = 86400.0


def row(
    status: str = "delivered",
    *,
    module: str = "cm",
    at: float = NOW - HOUR,
    sent_after: float | None = 1.0,
    delivered_after: float | None = 10.0,
    is_test: bool = False,
) -> dict[str, Any]:
    """A message created at `at`; sent and final times follow from its status."""
    sent = status in ("sent", "delivered", "undelivered") and sent_after is not None
    sent_at = at + sent_after if sent and sent_after is not None else None
    final = status in ("delivered", "undelivered", "failed", "expired", "cancelled")
    final_at = None
    if final:
        final_at = (sent_at or at) + (delivered_after if delivered_after is not None else 1.0)
    return {
        "id": new_id(),
        "module": module,
        "recipient": "+31612345678",
        "sender": "smsdesk",
        "body": "hello",
        "encoding": "gsm7",
        "segments": 1,
        "priority": 2,
        "status": status,
        "created_at": at,
        "updated_at": at,
        "next_attempt_at": at,
        "expires_at": at + DAY,
        "scheduled_at": None,
        "attempts": 1,
        "reference": None,
        "api_key_id": None,
        "is_test": is_test,
        "delivery_report": True,
        "sent_at": sent_at,
        "final_at": final_at,
    }


def insert(engine: Engine, *rows: dict[str, Any]) -> None:
    with write_transaction(engine) as conn, conn.begin():
        repo.insert_messages(conn, list(rows), "test")


def stats(engine: Engine, **kwargs: Any) -> DashboardStats:
    with engine.connect() as conn:
        return dashboard_stats(conn, now=kwargs.pop("now", NOW), **kwargs)


def test_every_day_of_the_period_is_present_when_nothing_happened(engine: Engine) -> None:
    """An empty database gives 14 consecutive days ending today, all zero, and no rates."""
    result = stats(engine)
    assert len(result.days) == 14
    assert (result.days[0].day, result.days[-1].day) == (date(2026, 3, 7), date(2026, 3, 20))
    assert all(d.counts == Counts() and d.by_module == {} for d in result.days)
    assert all(b.start == a.end for a, b in zip(result.days, result.days[1:], strict=False))
    assert result.totals == Counts()
    assert result.modules == ()
    assert result.delivery_rate is None
    assert result.median_delivery_seconds is None
    assert result.queue == QueueDepth()


def test_the_day_boundary_follows_the_timezone(engine: Engine) -> None:
    """23:30 UTC on the 18th is the 18th in UTC and 00:30 on the 19th in Amsterdam."""
    insert(engine, row(at=datetime(2026, 3, 18, 23, 30, tzinfo=UTC).timestamp()))
    in_utc = {d.day: d.counts.created for d in stats(engine).days}
    in_amsterdam = {
        d.day: d.counts.created for d in stats(engine, tz=ZoneInfo("Europe/Amsterdam")).days
    }
    assert in_utc[date(2026, 3, 18)] == 1
    assert in_utc[date(2026, 3, 19)] == 0
    assert in_amsterdam[date(2026, 3, 18)] == 0
    assert in_amsterdam[date(2026, 3, 19)] == 1


def test_days_follow_summer_time(engine: Engine) -> None:
    """The day clocks go forward has 23 hours; a message at 23:30 local that day still counts."""
    now = datetime(2026, 4, 2, 12, tzinfo=UTC).timestamp()
    late = datetime(2026, 3, 29, 21, 30, tzinfo=UTC).timestamp()  # 23:30 summer time
    insert(engine, row(at=late))
    result = stats(engine, now=now, tz="Europe/Amsterdam")
    day = next(d for d in result.days if d.day == date(2026, 3, 29))
    assert day.end - day.start == 23 * HOUR
    assert day.counts.created == 1
    assert result.timezone == "Europe/Amsterdam"


def test_counts_per_status_and_module(engine: Engine) -> None:
    """Sent, delivered and failed follow the documented definitions, per module and in all."""
    insert(
        engine,
        row("delivered", module="cm"),
        row("delivered", module="cm"),
        row("sent", module="cm"),
        row("undelivered", module="cm"),
        row("failed", module="twilio"),
        row("expired", module="twilio"),
        row("cancelled", module="twilio"),
        row("queued", module="twilio"),
        row("sending", module="twilio"),
    )
    result = stats(engine)
    cm, twilio = result.by_module["cm"], result.by_module["twilio"]
    assert result.modules == ("cm", "twilio")
    assert cm == Counts(created=4, sent=4, awaiting_report=1, delivered=2, undelivered=1)
    assert twilio == Counts(created=5, in_outbox=2, rejected=1, expired=1, cancelled=1)
    assert (cm.failed, twilio.failed, result.totals.failed) == (1, 2, 3)
    assert result.totals == cm + twilio
    assert result.days[-1].counts == result.totals
    assert result.days[-1].by_module == {"cm": cm, "twilio": twilio}
    assert cm.delivery_rate == 2 / 3
    assert twilio.delivery_rate == 0.0
    assert result.delivery_rate == 2 / 5


def test_an_expired_message_counts_as_sent_only_if_it_reached_the_provider(
    engine: Engine,
) -> None:
    """Expiry after the send (`sent_at` kept) counts as sent and failed; before, only failed."""
    after_send = row("expired")
    after_send["sent_at"] = after_send["created_at"] + 1
    insert(engine, after_send, row("expired"))
    totals = stats(engine).totals
    assert (totals.sent, totals.expired, totals.failed) == (1, 2, 2)


def test_median_delivery_time_with_odd_and_even_counts(engine: Engine) -> None:
    """The middle value for an odd count, the mean of the two middle ones for an even count."""
    odd = [row(module="cm", delivered_after=s) for s in (60.0, 10.0, 20.0)]
    even = [row(module="twilio", delivered_after=s) for s in (100.0, 5.0, 9.0, 7.0)]
    fast_report = row(module="cm", sent_after=None, delivered_after=1000.0)
    insert(engine, *odd, *even, fast_report, row("sent", module="mblox"))
    result = stats(engine)
    assert result.median_delivery_by_module == {"cm": 20.0, "mblox": None, "twilio": 8.0}
    assert result.median_delivery_seconds == 10.0  # of 5, 7, 9, 10, 20, 60, 100


def test_queue_depth_counts_the_outbox_now(engine: Engine) -> None:
    """Queued and sending make the queue, whenever created; sent ones await a report apart."""
    old = NOW - 30 * DAY
    insert(
        engine,
        row("queued"),
        row("queued", at=old),
        row("sending"),
        row("sent", at=old),
        row("delivered"),
        row("failed"),
    )
    queue = stats(engine).queue
    assert queue == QueueDepth(queued=2, sending=1, awaiting_report=1)
    assert queue.total == 3


def test_test_sends_are_counted_apart(engine: Engine) -> None:
    """Test sends stay out of the days, modules, rates and medians, and are counted apart."""
    insert(
        engine,
        row("delivered", delivered_after=30.0),
        row("delivered", delivered_after=500.0, is_test=True),
        row("failed", is_test=True),
    )
    result = stats(engine)
    assert result.totals == Counts(created=1, sent=1, delivered=1)
    assert result.test_sends == Counts(created=2, sent=1, delivered=1, rejected=1)
    assert result.delivery_rate == 1.0
    assert result.median_delivery_seconds == 30.0


def test_messages_outside_the_period_are_left_out(engine: Engine) -> None:
    """Only messages created from the first day's midnight to the end of today count."""
    first_midnight = datetime(2026, 3, 7, tzinfo=UTC).timestamp()
    insert(
        engine,
        row(at=first_midnight - 1),
        row(at=first_midnight),
        row(at=NOW + DAY),
    )
    result = stats(engine)
    assert result.start == first_midnight
    assert result.totals.created == 1
    assert result.days[0].counts.created == 1


def test_a_single_day(engine: Engine) -> None:
    """A one-day period is today alone."""
    insert(engine, row(at=NOW - DAY), row(at=NOW - HOUR))
    result = stats(engine, days=1)
    assert [d.day for d in result.days] == [date(2026, 3, 20)]
    assert result.totals.created == 1
