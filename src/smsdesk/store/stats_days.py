"""The dashboard's figures per day, the settled days kept in memory between views.

A day's messages change little once it is over: by the day before yesterday nearly all of them
are delivered, failed or expired. Those days ("settled": every day of the period before
yesterday, in the period's time zone) are read from the database once per process and kept in
a small cache (`DayCache`, one per engine, keyed by the time zone and the date, at most
`DayCache.MAX_DAYS` days, each reused for at most `DayCache.MAX_AGE` seconds); today and
yesterday are read on every view. What a settled day shows may therefore lag the database by
up to an hour: a late delivery report for a message still within its validity, a message
scheduled days ahead that was sent later, or messages purged or erased since.

Medians cannot be added up, so each day keeps its delivery times (`final_at - sent_at` of
delivered messages) as a histogram of log-spaced buckets 2 % wide from 0.1 s to two days, with
one bucket below and one above. Each bucket holds its count and its smallest and largest time;
the median of a period is taken from the merged histograms, interpolating by rank between the
bucket's smallest and largest time. It is therefore accurate to within a bucket's width (2 %;
exact when the middle values are alone in their buckets); below 0.1 s and above two days only
to within the spread of those times.
"""

from __future__ import annotations

import math
import threading
from array import array
from bisect import bisect_left
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any
from weakref import WeakKeyDictionary

import sqlalchemy as sa
from sqlalchemy import Connection, Engine

from smsdesk.domain.message import Status
from smsdesk.store import db, stats
from smsdesk.store.tables import messages

m = messages

LOWEST = 0.1  # seconds: the first bucket's lower edge
HIGHEST = 2 * 86_400.0  # seconds: times from here on share the last bucket
RATIO = 1.02  # each bucket's upper edge over its lower edge
_LOG_RATIO = math.log(RATIO)
BELOW = -1  # the bucket of times under LOWEST (zero, or clocks that disagree)
ABOVE = math.ceil(math.log(HIGHEST / LOWEST) / _LOG_RATIO)  # the bucket from HIGHEST on


def bucket_of(seconds: float) -> int:
    """The histogram bucket of a delivery time."""
    if seconds < LOWEST:
        return BELOW
    if seconds >= HIGHEST:
        return ABOVE
    return min(int(math.log(seconds / LOWEST) / _LOG_RATIO), ABOVE - 1)


@dataclass(frozen=True, slots=True)
class Histogram:
    """Delivery times by bucket, in ascending bucket order: count, smallest and largest each."""

    buckets: array[int]
    counts: array[int]
    lows: array[float]
    highs: array[float]

    @property
    def total(self) -> int:
        return sum(self.counts)


class Tally:
    """A histogram being built, a time or a bucket's group of times at a time."""

    def __init__(self) -> None:
        self._cells: dict[int, list[float]] = {}  # bucket -> [count, smallest, largest]

    def add(self, seconds: float, count: int = 1, largest: float | None = None) -> None:
        """Add a time, or `count` times in one bucket from `seconds` to `largest`."""
        bucket = bucket_of(seconds)
        high = seconds if largest is None else largest
        cell = self._cells.get(bucket)
        if cell is None:
            self._cells[bucket] = [count, seconds, high]
        else:
            cell[0] += count
            if seconds < cell[1]:
                cell[1] = seconds
            if high > cell[2]:
                cell[2] = high

    def freeze(self) -> Histogram:
        order = sorted(self._cells)
        cells = [self._cells[bucket] for bucket in order]
        return Histogram(
            array("i", order),
            array("q", [int(cell[0]) for cell in cells]),
            array("d", [cell[1] for cell in cells]),
            array("d", [cell[2] for cell in cells]),
        )


def median_of(histograms: Sequence[Histogram]) -> float | None:
    """The middle time of the merged histograms (the mean of the two middle ones for an even
    count), estimated within its bucket; None when they are empty."""
    counts = [0] * (ABOVE + 2)  # by bucket + 1
    for histogram in histograms:
        for bucket, count in zip(histogram.buckets, histogram.counts, strict=True):
            counts[bucket + 1] += count
    total = sum(counts)
    if not total:
        return None
    lower = _at_rank(histograms, counts, (total - 1) // 2)
    return (lower + _at_rank(histograms, counts, total // 2)) / 2


def _at_rank(histograms: Sequence[Histogram], counts: list[int], rank: int) -> float:
    """The time of 0-based `rank`: interpolated between its bucket's smallest and largest."""
    passed = 0
    for index, count in enumerate(counts):
        if rank < passed + count:
            low, high = _spread(histograms, index - 1)
            if count == 1:
                return low
            return low + (high - low) * (rank - passed) / (count - 1)
        passed += count
    raise ValueError("rank beyond the histograms")


def _spread(histograms: Sequence[Histogram], bucket: int) -> tuple[float, float]:
    """The smallest and largest time in `bucket` over the histograms."""
    low, high = math.inf, -math.inf
    for histogram in histograms:
        at = bisect_left(histogram.buckets, bucket)
        if at < len(histogram.buckets) and histogram.buckets[at] == bucket:
            low = min(low, histogram.lows[at])
            high = max(high, histogram.highs[at])
    return low, high


@dataclass(frozen=True, slots=True)
class DayFigures:
    """One day: counts of messages to customers per module, test sends and agent notifications
    apart, and the delivery times per module."""

    by_module: Mapping[str, stats.Counts]
    tests: stats.Counts
    notices: stats.Counts
    times: Mapping[str, Histogram]


def read_days(conn: Connection, bounds: Sequence[float]) -> list[DayFigures]:
    """The figures of the days between consecutive `bounds` (epoch seconds), in one scan.

    PostgreSQL groups the messages, delivery times by bucket; SQLite, whose `ln` depends on
    how it was built, gives each message and the buckets are found here.
    """
    days = len(bounds) - 1
    groups: dict[tuple[int, str, str, int, bool], int] = {}
    tallies: list[dict[str, Tally]] = [{} for _ in range(days)]
    grouped = conn.dialect.name == "postgresql"
    query = _grouped(bounds) if grouped else _each(bounds)
    for day, module, status, whom, reached, count, low, high in conn.execute(query):
        key = (day, module, status, whom, bool(reached))
        groups[key] = groups.get(key, 0) + count
        if low is not None:  # delivered to a customer, with both times
            found = tallies[day].get(module)
            if found is None:
                found = tallies[day][module] = Tally()
            found.add(low, count, high)
    cells: list[dict[str, stats.Counts]] = [{} for _ in range(days)]
    tests = [stats.Counts() for _ in range(days)]
    notices = [stats.Counts() for _ in range(days)]
    for (day, module, status, whom, was_sent), count in groups.items():
        counts = stats._counts(Status(status), was_sent, count)
        if whom == _TEST:
            tests[day] = tests[day] + counts
        elif whom == _NOTICE:
            notices[day] = notices[day] + counts
        else:
            cells[day][module] = cells[day].get(module, stats.Counts()) + counts
    return [
        DayFigures(
            cells[i], tests[i], notices[i], {name: t.freeze() for name, t in tallies[i].items()}
        )
        for i in range(days)
    ]


_CUSTOMER, _TEST, _NOTICE = 0, 1, 2  # whom a message is for (test sends first)


def _columns(bounds: Sequence[float]) -> list[sa.ColumnElement[Any]]:
    """Day index, module, status, whom for, reached the provider (1 or 0) and the delivery
    time of a message delivered to a customer (None for every other)."""
    whens = [(m.c.created_at < bound, index) for index, bound in enumerate(bounds[1:-1])]
    last = len(bounds) - 2
    day = sa.case(*whens, else_=last) if whens else sa.literal(last)
    whom = sa.case(
        (m.c.is_test.is_(True), _TEST), (stats._is_notification(), _NOTICE), else_=_CUSTOMER
    )
    delivered = sa.and_(
        m.c.status == Status.DELIVERED.value,
        m.c.is_test.is_(False),
        sa.not_(stats._is_notification()),
    )
    seconds = sa.case((delivered, m.c.final_at - m.c.sent_at), else_=sa.null())
    reached = sa.case((m.c.sent_at.is_(None), 0), else_=1)
    return [
        day.label("day"),
        m.c.module,
        m.c.status,
        whom.label("whom"),
        reached.label("reached"),
        seconds.label("seconds"),
    ]


def _each(bounds: Sequence[float]) -> sa.Select[Any]:
    """Each message created within the bounds as a group of one (see `read_days`)."""
    *keys, seconds = _columns(bounds)
    return sa.select(*keys, sa.literal(1), seconds, seconds).where(
        m.c.created_at >= bounds[0], m.c.created_at < bounds[-1]
    )


def _grouped(bounds: Sequence[float]) -> sa.Select[Any]:
    """The messages created within the bounds grouped by `_columns` and delivery-time bucket:
    the count, smallest and largest time of each group."""
    inner = (
        sa.select(*_columns(bounds))
        .where(m.c.created_at >= bounds[0], m.c.created_at < bounds[-1])
        .subquery()
    )
    seconds = inner.c.seconds
    bucket = sa.case(
        (seconds < LOWEST, BELOW),
        (seconds >= HIGHEST, ABOVE),
        else_=sa.func.floor(sa.func.ln(seconds / LOWEST) / _LOG_RATIO),
    )
    keys = [inner.c.day, inner.c.module, inner.c.status, inner.c.whom, inner.c.reached]
    # Grouped outside: PostgreSQL sees the CASE's parameters in GROUP BY as other values.
    outer = sa.select(*keys, bucket.label("bucket"), seconds).subquery()
    columns = [outer.c[name] for name in ("day", "module", "status", "whom", "reached", "bucket")]
    return sa.select(
        *columns[:5], sa.func.count(), sa.func.min(outer.c.seconds), sa.func.max(outer.c.seconds)
    ).group_by(*columns)


class DayCache:
    """Settled days' figures of one database, keyed by (time zone, date); the least recently
    used go first beyond `MAX_DAYS`, and a day is read again after `MAX_AGE` seconds."""

    MAX_DAYS = 200  # a 90-day period in two time zones, and some
    MAX_AGE = 3600.0

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._days: OrderedDict[tuple[str, date], tuple[float, DayFigures]] = OrderedDict()

    def get(self, key: tuple[str, date], now: float) -> DayFigures | None:
        with self._lock:
            found = self._days.get(key)
            if found is None or not 0 <= now - found[0] < self.MAX_AGE:
                return None
            self._days.move_to_end(key)
            return found[1]

    def put(self, key: tuple[str, date], now: float, figures: DayFigures) -> None:
        with self._lock:
            self._days[key] = (now, figures)
            self._days.move_to_end(key)
            while len(self._days) > self.MAX_DAYS:
                self._days.popitem(last=False)


_caches: WeakKeyDictionary[Engine, DayCache] = db.per_engine()
_caches_lock = threading.Lock()


def cache_of(engine: Engine) -> DayCache:
    """The settled days' cache of this engine's database in this process."""
    with _caches_lock:
        cache = _caches.get(engine)
        if cache is None:
            cache = _caches[engine] = DayCache()
        return cache


def figures_of_days(
    conn: Connection, zone: str, dates: Sequence[date], bounds: Sequence[float], now: float
) -> list[DayFigures]:
    """Every day's figures: the settled ones (before yesterday) from the cache where it has
    them, read together in one go where it has not; yesterday and today always read."""
    cache = cache_of(conn.engine)
    settled = max(len(dates) - 2, 0)
    found = [cache.get((zone, day), now) for day in dates[:settled]]
    missing = [i for i, figures in enumerate(found) if figures is None]
    if missing:
        first, last = missing[0], missing[-1]
        for offset, figures in enumerate(read_days(conn, bounds[first : last + 2])):
            found[first + offset] = figures
            cache.put((zone, dates[first + offset]), now, figures)
    fresh = read_days(conn, bounds[settled:])
    return [figures for figures in found if figures is not None] + fresh


def medians(days: Sequence[DayFigures]) -> tuple[float | None, dict[str, float]]:
    """The median delivery time over `days`, overall and per module (modules with times)."""
    per_module: dict[str, list[Histogram]] = {}
    for figures in days:
        for module, histogram in figures.times.items():
            per_module.setdefault(module, []).append(histogram)
    found = {module: median_of(histograms) for module, histograms in per_module.items()}
    everything = [histogram for figures in days for histogram in figures.times.values()]
    return median_of(everything), {
        module: value for module, value in found.items() if value is not None
    }
