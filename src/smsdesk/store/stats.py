"""The figures behind the web interface's dashboard, read in three queries.

Definitions (every figure but the queue is about the messages *created* in the period, so a
day's bar shows what became of that day's messages and its parts never exceed its total):

- **sent**: reached the provider: status sent, delivered or undelivered, or expired after it
  was sent (`sent_at` recorded).
- **delivered**: status delivered.
- **failed**: ended without reaching the phone: status failed (*rejected* here: the provider
  refused it, or retries ran out), undelivered (the provider reported it did not arrive) or
  expired. `undelivered`, `rejected` and `expired` are kept apart as well.
- **cancelled** by an operator is neither delivered nor failed.
- **delivery rate**: delivered / (delivered + failed), None while nothing has ended.
- **median time to delivery**: `final_at - sent_at` of delivered messages. A delivery report
  that came with the send itself (sending → delivered) has no `sent_at` and is left out.
  The dashboard takes the medians from per-day histograms of delivery times merged over the
  period (`store/stats_days.py`), accurate to a bucket's width (2 %). With `scan=True`
  PostgreSQL computes them exactly (`percentile_cont`); SQLite has no percentile function, so
  there the period's delivery times are read and the medians taken in Python.
- **queue**: what the outbox still has to do: queued (due or waiting for a retry or a
  scheduled time) and sending. Messages waiting for a delivery report (status sent) are
  counted apart as `awaiting_report`: they have left the queue.

Test sends (the settings screen's "send test") are left out of every figure but the queue
and are counted apart in `DashboardStats.test_sends`; so are the SMS notifying agents
(`notify.sender`: transactional, without an API key, referenced `notification:<id>`), in
`DashboardStats.notification_sends`: neither is a message to a customer. The queue is the
outbox as it is.

Days are calendar days in the given timezone (DST days are 23 or 25 hours long); every day of
the period is present, with zeros when nothing happened.

No index covers `created_at`, so the period queries read the whole table: the days before
yesterday are therefore read once per process and kept in memory for up to an hour
(`store/stats_days.py`, which says what may lag); yesterday and today are read on every view.
The queue counts use `ix_messages_status_id` alone.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import date, datetime, timedelta
from datetime import time as clock_time
from statistics import median as median_of
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy import Connection

from smsdesk.domain.message import Status
from smsdesk.store import connection_health, stats_days
from smsdesk.store.tables import connections, messages

m = messages

_REACHED_PROVIDER = frozenset({Status.SENT, Status.DELIVERED, Status.UNDELIVERED})


@dataclass(frozen=True, slots=True)
class Counts:
    """What became of the messages created in a period (see the module docstring)."""

    created: int = 0
    in_outbox: int = 0  # still queued or sending
    sent: int = 0  # reached the provider
    awaiting_report: int = 0  # status sent: reached the provider, no final report yet
    delivered: int = 0
    undelivered: int = 0
    rejected: int = 0  # status failed
    expired: int = 0
    cancelled: int = 0

    @property
    def failed(self) -> int:
        """Ended without reaching the phone: rejected, undelivered or expired."""
        return self.rejected + self.undelivered + self.expired

    @property
    def final(self) -> int:
        """Delivered or failed: the messages the delivery rate is about."""
        return self.delivered + self.failed

    @property
    def delivery_rate(self) -> float | None:
        """Delivered out of those that ended (cancelled ones aside); None if none ended."""
        return self.delivered / self.final if self.final else None

    def __add__(self, other: Counts) -> Counts:
        return Counts(*(getattr(self, f.name) + getattr(other, f.name) for f in fields(self)))


@dataclass(frozen=True, slots=True)
class DayStats:
    """One calendar day: [start, end) in epoch seconds, with its counts in all and per module."""

    day: date
    start: float
    end: float
    counts: Counts
    by_module: Mapping[str, Counts]


@dataclass(frozen=True, slots=True)
class QueueDepth:
    """The outbox now, test sends included."""

    queued: int = 0
    sending: int = 0
    awaiting_report: int = 0  # status sent; not part of the queue

    @property
    def total(self) -> int:
        return self.queued + self.sending


@dataclass(frozen=True, slots=True)
class DashboardStats:
    timezone: str
    start: float  # the first day's midnight
    end: float  # the midnight after the last day (the one holding `now`)
    days: tuple[DayStats, ...]  # oldest first
    modules: tuple[str, ...]  # every module with a message in the period, sorted
    totals: Counts
    by_module: Mapping[str, Counts]
    median_delivery_seconds: float | None
    median_delivery_by_module: Mapping[str, float | None]  # every module in `modules`
    queue: QueueDepth
    test_sends: Counts  # left out of everything above but the queue
    notification_sends: Counts = Counts()  # SMS to agents: left out as test sends are

    @property
    def delivery_rate(self) -> float | None:
        return self.totals.delivery_rate


def dashboard_stats(
    conn: Connection,
    *,
    now: float,
    days: int = 14,
    tz: str | ZoneInfo = "UTC",
    scan: bool = False,
) -> DashboardStats:
    """The dashboard's figures for the `days` calendar days up to and including today.

    Days before yesterday come from this process's cache when it has them and the medians from
    merged histograms (`store/stats_days.py`); `scan` reads the whole period from the database
    instead, with exact medians.
    """
    if days < 1:
        raise ValueError("days must be at least 1")
    zone = tz if isinstance(tz, ZoneInfo) else ZoneInfo(tz)
    dates, bounds = day_bounds(now, days, zone)
    if scan:
        cells, tests, notices = _period_counts(conn, bounds)
        overall, per_module = _medians(conn, bounds[0], bounds[-1])
    else:
        cells, tests, notices, overall, per_module = _from_days(
            conn, str(zone.key), dates, bounds, now
        )
    modules = tuple(sorted({module for _, module in cells}))
    day_stats = tuple(
        DayStats(
            dates[i],
            bounds[i],
            bounds[i + 1],
            _sum(cells.get((i, module), Counts()) for module in modules),
            {module: cells.get((i, module), Counts()) for module in modules},
        )
        for i in range(days)
    )
    by_module = {module: _sum(d.by_module[module] for d in day_stats) for module in modules}
    return DashboardStats(
        timezone=str(zone.key),
        start=bounds[0],
        end=bounds[-1],
        days=day_stats,
        modules=modules,
        totals=_sum(d.counts for d in day_stats),
        by_module=by_module,
        median_delivery_seconds=overall,
        median_delivery_by_module={module: per_module.get(module) for module in modules},
        queue=queue_depth(conn),
        test_sends=tests,
        notification_sends=notices,
    )


def _from_days(
    conn: Connection, zone: str, dates: Sequence[date], bounds: Sequence[float], now: float
) -> tuple[dict[tuple[int, str], Counts], Counts, Counts, float | None, dict[str, float]]:
    """`_period_counts` and `_medians` from the figures per day of `stats_days`."""
    figures = stats_days.figures_of_days(conn, zone, dates, bounds, now)
    cells = {
        (index, module): counts
        for index, day in enumerate(figures)
        for module, counts in day.by_module.items()
    }
    tests = _sum(day.tests for day in figures)
    notices = _sum(day.notices for day in figures)
    return (cells, tests, notices, *stats_days.medians(figures))


def day_bounds(now: float, days: int, zone: ZoneInfo) -> tuple[list[date], list[float]]:
    """The last `days` local dates up to the one holding `now`, and their days + 1 midnights."""
    today = datetime.fromtimestamp(now, zone).date()
    dates = [today - timedelta(days=days - 1 - i) for i in range(days)]
    midnights = [*dates, today + timedelta(days=1)]
    return dates, [datetime.combine(d, clock_time(), zone).timestamp() for d in midnights]


def _sum(parts: Iterable[Counts]) -> Counts:
    total = Counts()
    for part in parts:
        total = total + part
    return total


def _is_notification() -> sa.ColumnElement[bool]:
    """An SMS notifying an agent (queued by `notify.sender`), not a message to a customer."""
    return sa.and_(
        m.c.reference.like("notification:%"),
        m.c.api_key_id.is_(None),
        m.c.transactional.is_(True),
    )


def _period_counts(
    conn: Connection, bounds: Sequence[float]
) -> tuple[dict[tuple[int, str], Counts], Counts, Counts]:
    """Counts per (day index, module) of messages to customers, the test sends' counts and
    the agent notifications' counts."""
    whens = [(m.c.created_at < bound, index) for index, bound in enumerate(bounds[1:-1])]
    last = len(bounds) - 2
    day = sa.case(*whens, else_=last) if whens else sa.literal(last)
    reached = sa.case((m.c.sent_at.is_(None), 0), else_=1)
    notice = sa.case((_is_notification(), 1), else_=0)
    # Grouped outside: PostgreSQL sees the CASE's parameters in GROUP BY as other values.
    inner = (
        sa.select(
            day.label("day"),
            m.c.module,
            m.c.status,
            m.c.is_test,
            notice.label("notice"),
            reached.label("reached"),
        )
        .where(m.c.created_at >= bounds[0], m.c.created_at < bounds[-1])
        .subquery()
    )
    columns = (
        inner.c.day,
        inner.c.module,
        inner.c.status,
        inner.c.is_test,
        inner.c.notice,
        inner.c.reached,
    )
    rows = conn.execute(sa.select(*columns, sa.func.count()).group_by(*columns)).all()
    cells: dict[tuple[int, str], Counts] = {}
    tests, notices = Counts(), Counts()
    for day_index, module, status, is_test, is_notice, was_sent, count in rows:
        counts = _counts(Status(status), bool(was_sent), int(count))
        if is_test:
            tests = tests + counts
        elif is_notice:
            notices = notices + counts
        else:
            key = (int(day_index), str(module))
            cells[key] = cells.get(key, Counts()) + counts
    return cells, tests, notices


def _counts(status: Status, was_sent: bool, count: int) -> Counts:
    """`count` messages of one status, as the dashboard counts them."""
    reached = status in _REACHED_PROVIDER or (status is Status.EXPIRED and was_sent)
    return Counts(
        created=count,
        in_outbox=count if status in (Status.QUEUED, Status.SENDING) else 0,
        sent=count if reached else 0,
        awaiting_report=count if status is Status.SENT else 0,
        delivered=count if status is Status.DELIVERED else 0,
        undelivered=count if status is Status.UNDELIVERED else 0,
        rejected=count if status is Status.FAILED else 0,
        expired=count if status is Status.EXPIRED else 0,
        cancelled=count if status is Status.CANCELLED else 0,
    )


def _medians(conn: Connection, start: float, end: float) -> tuple[float | None, dict[str, float]]:
    """The median delivery time of the period's real messages, overall and per module.

    PostgreSQL computes them (`percentile_cont`); SQLite has no such function, so there the
    delivery times of the period's delivered messages are read and the medians taken here.
    """
    duration = m.c.final_at - m.c.sent_at
    delivered = (
        m.c.created_at >= start,
        m.c.created_at < end,
        m.c.status == Status.DELIVERED.value,
        m.c.is_test.is_(False),
        sa.not_(_is_notification()),
        m.c.sent_at.is_not(None),
        m.c.final_at.is_not(None),
    )
    if conn.dialect.name == "postgresql":
        median = sa.func.percentile_cont(0.5).within_group(duration)
        # One scan for both: the row of the empty grouping set (module NULL) is the overall one.
        every = sa.func.grouping(m.c.module).label("every")
        rows = conn.execute(
            sa.select(m.c.module, every, median)
            .where(*delivered)
            .group_by(sa.func.grouping_sets(sa.tuple_(m.c.module), sa.tuple_()))
        ).all()
        per_module = {str(module): float(value) for module, every, value in rows if not every}
        overall = next((value for _, every, value in rows if every), None)
        return (None if overall is None else float(overall)), per_module
    durations: dict[str, list[float]] = {}
    for module, seconds in conn.execute(sa.select(m.c.module, duration).where(*delivered)):
        durations.setdefault(module, []).append(seconds)
    everything = [seconds for values in durations.values() for seconds in values]
    per_module = {module: float(median_of(values)) for module, values in durations.items()}
    return (float(median_of(everything)) if everything else None), per_module


def queue_depth(conn: Connection) -> QueueDepth:
    """Messages queued, sending and awaiting a report now (an index-only count)."""
    wanted = (Status.QUEUED.value, Status.SENDING.value, Status.SENT.value)
    rows = conn.execute(
        sa.select(m.c.status, sa.func.count()).where(m.c.status.in_(wanted)).group_by(m.c.status)
    ).all()
    found = {str(status): int(count) for status, count in rows}
    return QueueDepth(
        queued=found.get(Status.QUEUED.value, 0),
        sending=found.get(Status.SENDING.value, 0),
        awaiting_report=found.get(Status.SENT.value, 0),
    )


@dataclass(frozen=True, slots=True)
class ConnectionFigures:
    """One connection over a period: its circuit now, throughput and errors, failovers.

    `sent_per_min`: messages it got accepted per minute of the period. `error_rate`: the share
    of its attempts that failed for a reason of the connection (not taken or ambiguous; a
    provider's refusal of one message is not the connection's error), None without attempts.
    `failovers`: messages that left it for the next connection of their plan.
    """

    id: str
    name: str
    state: str
    attempts: int
    sent_per_min: float
    error_rate: float | None
    failovers: int


def connection_figures(conn: Connection, since: float, now: float) -> list[ConnectionFigures]:
    """Every stored connection (and any stand-in that sent) from `since` to `now`, by name."""
    stored = conn.execute(
        sa.select(connections.c.id, connections.c.name).order_by(connections.c.name)
    ).all()
    names = {row.id: row.name for row in stored}
    states = connection_health.states(conn)
    tallies = connection_health.stats_between(conn, since, now)
    minutes = max((now - since) / 60.0, 1.0)
    ids = list(names) + sorted(set(tallies) - set(names))
    figures = []
    for connection_id in ids:
        tally = tallies.get(connection_id, connection_health.Tally())
        errors = tally.not_taken + tally.ambiguous
        health = states.get(connection_id)
        figures.append(
            ConnectionFigures(
                id=connection_id,
                name=names.get(connection_id, connection_id),
                state=health.state if health is not None else "closed",
                attempts=tally.attempts,
                sent_per_min=tally.accepted / minutes,
                error_rate=errors / tally.attempts if tally.attempts else None,
                failovers=tally.failovers,
            )
        )
    return figures
