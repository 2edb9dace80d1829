"""The dashboard's figures from cached days and merged histograms match a full scan of the
period, on SQLite and PostgreSQL: counts exactly, medians to within a bucket's width."""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import replace
from typing import Any, TypedDict

import pytest
from sqlalchemy.engine import Engine

from smsdesk.store import stats_days
from smsdesk.store.stats import DashboardStats, dashboard_stats
from tests.integration.test_stats import DAY, HOUR, NOW, insert, row

MODULES = ("cm", "twilio", "linkmobility")
STATUSES = ("delivered", "sent", "undelivered", "failed", "expired", "cancelled", "queued")
WEIGHTS = (70, 6, 5, 5, 4, 3, 7)
WIDTH = stats_days.RATIO - 1  # a bucket's width, relative to its lower edge


class Medians(TypedDict):
    median_delivery_seconds: float | None
    median_delivery_by_module: Mapping[str, float | None]


def seeded(rng: random.Random, count: int, days: int) -> list[dict[str, Any]]:
    """`count` messages over the last `days` days: every status, a few test sends and agent
    notifications, delivery times from under a second to over two days."""
    found = []
    for _ in range(count):
        status = rng.choices(STATUSES, WEIGHTS)[0]
        after = rng.choice([rng.lognormvariate(2.5, 1.5), rng.uniform(0, 0.2), 3 * DAY])
        message = row(
            status,
            module=rng.choice(MODULES),
            at=NOW - rng.uniform(0, days * DAY),
            sent_after=None if rng.random() < 0.03 else rng.uniform(0.5, 5),
            delivered_after=after,
            is_test=rng.random() < 0.02,
        )
        notice = rng.random() < 0.03
        message["reference"] = "notification:01ARZ3NDEKTSV4RRFFQ69G5FAV" if notice else None
        message["transactional"] = notice
        found.append(message)
    return found


def both(engine: Engine, **kwargs: Any) -> tuple[DashboardStats, DashboardStats]:
    """The figures read day by day (the cache filled on the way) and by a full scan."""
    with engine.connect() as conn:
        cached = dashboard_stats(conn, **kwargs)
        scanned = dashboard_stats(conn, scan=True, **kwargs)
    return cached, scanned


def assert_close(found: float | None, exact: float | None) -> None:
    assert (found is None) == (exact is None)
    if found is not None and exact is not None:
        assert found == pytest.approx(exact, rel=WIDTH, abs=0.1)


def assert_same(cached: DashboardStats, scanned: DashboardStats) -> None:
    """Counts equal; medians within a bucket (0.1 s absolute below the first bucket)."""
    without_medians: Medians = {"median_delivery_seconds": None, "median_delivery_by_module": {}}
    assert replace(cached, **without_medians) == replace(scanned, **without_medians)
    assert_close(cached.median_delivery_seconds, scanned.median_delivery_seconds)
    assert cached.median_delivery_by_module.keys() == scanned.median_delivery_by_module.keys()
    for module, exact in scanned.median_delivery_by_module.items():
        assert_close(cached.median_delivery_by_module[module], exact)


@pytest.mark.parametrize("tz", ["UTC", "Europe/Amsterdam"])
def test_cached_days_give_the_figures_of_a_full_scan(engine: Engine, tz: str) -> None:
    """Over a seeded month, every period gives the scan's counts and medians, the second
    view (days before yesterday from the cache) as the first."""
    rng = random.Random(20260320)
    insert(engine, *seeded(rng, 3000, days=35))
    for days in (1, 2, 3, 7, 14, 30):
        for _ in range(2):  # the first view fills the cache, the second reads it
            assert_same(*both(engine, now=NOW, days=days, tz=tz))


def test_today_and_yesterday_are_read_on_every_view(engine: Engine) -> None:
    """A message created today or yesterday shows in the next view; one in a settled day
    shows once the cached day is an hour old."""
    insert(engine, row(at=NOW - 3 * DAY))
    with engine.connect() as conn:
        first = dashboard_stats(conn, now=NOW)
    assert first.totals.created == 1
    insert(engine, row(at=NOW - HOUR), row(at=NOW - DAY), row(at=NOW - 5 * DAY))
    with engine.connect() as conn:
        second = dashboard_stats(conn, now=NOW + 60)
        later = dashboard_stats(conn, now=NOW + stats_days.DayCache.MAX_AGE + 60)
    assert second.totals.created == 3
    assert later.totals.created == 4


def test_the_cache_keeps_days_of_each_time_zone_apart(engine: Engine) -> None:
    """A day in Amsterdam is not the same day in UTC, whichever is viewed first."""
    insert(engine, *(row(at=NOW - 5 * DAY + h * HOUR) for h in range(-3, 4)))
    for tz in ("Europe/Amsterdam", "UTC", "Europe/Amsterdam", "America/New_York"):
        assert_same(*both(engine, now=NOW, tz=tz))
