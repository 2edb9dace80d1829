"""A group's opening hours: when it is open, and which closed stretch an instant falls in.

Hours are given per weekday as intervals of the local clock in the group's time zone
("09:00-12:00, 13:00-17:30"); an interval ends at most at 24:00 and never crosses midnight
(one from 22:00 to 06:00 is written as 22:00-24:00 on one day and 00:00-06:00 on the next, which
join into one open stretch). A holiday is closed all day. No hours on any day means open around
the clock (holidays still close it).

Local times become instants as the clock on the wall shows them: a time that occurs twice when
the clocks go back is its first occurrence, a time skipped when they go forward is the moment
they jumped. So an instant is either open or closed, and each closed stretch has one key: the
moment it began (the end of the last opening before it), written as a local time with its offset.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, available_timezones

from smsdesk.domain.encoding import analyse
from smsdesk.domain.errors import DomainError
from smsdesk.domain.text import forbidden_control, shows_nothing

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DAY_MINUTES = 24 * 60
MAX_HOLIDAYS = 500
MAX_INTERVALS = 12
_TIME = re.compile(r"^(\d{1,2})(?:[:.](\d{2}))?$")
_DASHES = re.compile(r"\s*(?:-|\u2013|\u2014|to|tot)\s*")  # hyphen, en and em dash


class HoursProblem(DomainError):
    """Opening hours that cannot be saved; `msgid` and `params` make the message."""

    def __init__(self, msgid: str, *, field: str, **params: Any) -> None:
        super().__init__(msgid.format(**params), field=field)
        self.msgid = msgid
        self.params = {key: str(value) for key, value in params.items()}


@dataclass(frozen=True, slots=True, order=True)
class Interval:
    """Open from `start` to `end`, in minutes after local midnight (0 <= start < end <= 1440)."""

    start: int
    end: int

    def __str__(self) -> str:
        return f"{_clock(self.start)}-{_clock(self.end)}"


def _clock(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


@dataclass(frozen=True, slots=True)
class OpeningHours:
    """Intervals per weekday (Monday first) in a time zone, and holidays."""

    time_zone: str = "UTC"
    week: tuple[tuple[Interval, ...], ...] = ((),) * 7
    holidays: frozenset[date] = field(default_factory=frozenset)

    @property
    def around_the_clock(self) -> bool:
        """No hours on any day: open except on holidays."""
        return not any(self.week)

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)

    def day(self, which: date) -> tuple[Interval, ...]:
        """The intervals open on a local date."""
        if which in self.holidays:
            return ()
        if self.around_the_clock:
            return (Interval(0, DAY_MINUTES),)
        return self.week[which.weekday()]

    def _spans(self, which: date) -> list[tuple[float, float]]:
        zone = self.zone
        return [
            (instant(zone, which, i.start), instant(zone, which, i.end)) for i in self.day(which)
        ]

    def is_open(self, at: float) -> bool:
        """Whether the group is open at the instant `at` (Unix seconds)."""
        today = datetime.fromtimestamp(at, self.zone).date()
        for offset in (-1, 0, 1):
            for start, end in self._spans(today + timedelta(days=offset)):
                if start <= at < end:
                    return True
        return False

    def period(self, at: float) -> str | None:
        """The key of the closed stretch `at` falls in (None when open): the local time, with
        its offset, at which the last opening before it ended; "closed" if there never was one."""
        if self.is_open(at):
            return None
        zone = self.zone
        today = datetime.fromtimestamp(at, zone).date()
        for back in range(-1, len(self.holidays) + 9):
            ends = [end for _, end in self._spans(today - timedelta(days=back)) if end <= at]
            if ends:
                return datetime.fromtimestamp(max(ends), zone).isoformat(timespec="minutes")
        return "closed"

    # -- stored form -----------------------------------------------------------------------

    def hours_json(self) -> str:
        return json.dumps(
            {
                name: [[_clock(i.start), _clock(i.end)] for i in intervals]
                for name, intervals in zip(WEEKDAYS, self.week, strict=True)
                if intervals
            }
        )

    def holidays_json(self) -> str:
        return json.dumps([d.isoformat() for d in sorted(self.holidays)])

    def day_text(self, weekday: int) -> str:
        """A weekday's intervals as typed: "09:00-12:00, 13:00-17:30"."""
        return ", ".join(str(i) for i in self.week[weekday])

    def holidays_text(self) -> str:
        return " ".join(d.isoformat() for d in sorted(self.holidays))


def stored_hours(time_zone: str, hours: str, holidays: str) -> OpeningHours:
    """Opening hours from a group's columns (as `hours_json` and `holidays_json` wrote them)."""
    by_day: Mapping[str, Sequence[Sequence[str]]] = json.loads(hours or "{}")
    week = tuple(
        tuple(Interval(_minutes(a), _minutes(b)) for a, b in by_day.get(name, ()))
        for name in WEEKDAYS
    )
    days = frozenset(date.fromisoformat(d) for d in json.loads(holidays or "[]"))
    zone = time_zone if time_zone in known_time_zones() else "UTC"
    return OpeningHours(zone, week, days)


def _minutes(text: str) -> int:
    hours, _, minutes = text.partition(":")
    return int(hours) * 60 + int(minutes or 0)


def instant(zone: ZoneInfo, which: date, minutes: int) -> float:
    """The instant the local clock in `zone` shows `minutes` after midnight of `which`: the
    first time if it shows it twice, the moment the clocks jumped if it skips it."""
    if minutes >= DAY_MINUTES:
        which, minutes = which + timedelta(days=minutes // DAY_MINUTES), minutes % DAY_MINUTES
    wall = datetime.combine(which, time(minutes // 60, minutes % 60), zone)
    later = wall.timestamp()  # fold=0: the offset before a change
    if datetime.fromtimestamp(later, zone).replace(tzinfo=None) == wall.replace(tzinfo=None):
        return later
    # Skipped: the jump lies between the two readings of this time.
    low, high = int(wall.replace(fold=1).timestamp()), int(later)
    before = datetime.fromtimestamp(low, zone).utcoffset()
    while high - low > 1:
        middle = (low + high) // 2
        if datetime.fromtimestamp(middle, zone).utcoffset() == before:
            low = middle
        else:
            high = middle
    return float(high)


# -- checking what people type ---------------------------------------------------------------


@lru_cache(maxsize=1)
def known_time_zones() -> frozenset[str]:
    return frozenset(available_timezones() | {"UTC"})


def check_time_zone(name: str) -> str:
    cleaned = name.strip()
    if cleaned not in known_time_zones():
        raise HoursProblem(
            "'{name}' is not a time zone; use a name such as Europe/Amsterdam or UTC.",
            field="time_zone",
            name=cleaned,
        )
    return cleaned


def _time_of(text: str, weekday: str) -> int:
    found = _TIME.match(text.strip())
    minutes = int(found.group(1)) * 60 + int(found.group(2) or 0) if found else -1
    if found is None or int(found.group(2) or 0) > 59 or not 0 <= minutes <= DAY_MINUTES:
        raise HoursProblem(
            "'{time}' is not a time of day; write it as 09:00 (24:00 for midnight at the end).",
            field=f"hours.{weekday}",
            time=text.strip(),
        )
    return minutes


def parse_day(text: str, weekday: str) -> tuple[Interval, ...]:
    """A weekday's intervals from "09:00-12:00, 13:00-17:30" ("" for closed all day);
    overlapping or touching intervals are joined."""
    parts = [part.strip() for part in re.split(r"[,;]", text) if part.strip()]
    intervals: list[Interval] = []
    for part in parts:
        pieces = _DASHES.split(part)
        if len(pieces) != 2:
            raise HoursProblem(
                "'{interval}' is not an interval; write it as 09:00-17:00.",
                field=f"hours.{weekday}",
                interval=part,
            )
        start, end = (_time_of(piece, weekday) for piece in pieces)
        if end <= start:
            raise HoursProblem(
                "'{interval}' ends before it starts or crosses midnight; end it at 24:00 and "
                "go on from 00:00 the next day.",
                field=f"hours.{weekday}",
                interval=part,
            )
        intervals.append(Interval(start, end))
    if len(intervals) > MAX_INTERVALS:
        raise HoursProblem(
            "A day has at most {limit} intervals.", field=f"hours.{weekday}", limit=MAX_INTERVALS
        )
    joined: list[Interval] = []
    for interval in sorted(intervals):
        if joined and interval.start <= joined[-1].end:
            last = joined.pop()
            interval = Interval(last.start, max(last.end, interval.end))
        joined.append(interval)
    return tuple(joined)


def parse_holidays(items: Iterable[str]) -> frozenset[date]:
    """Dates written 2026-12-25 (separated by commas, spaces or lines)."""
    days: set[date] = set()
    for item in items:
        for word in re.split(r"[\s,;]+", item):
            if not word:
                continue
            try:
                days.add(date.fromisoformat(word))
            except ValueError:
                raise HoursProblem(
                    "'{date}' is not a date; write it as 2026-12-25.", field="holidays", date=word
                ) from None
    if len(days) > MAX_HOLIDAYS:
        raise HoursProblem(
            "At most {limit} holidays can be kept; remove past ones.",
            field="holidays",
            limit=MAX_HOLIDAYS,
        )
    return frozenset(days)


def check_reply(text: str, max_segments: int) -> str:
    """The out-of-hours answer, checked as every SMS text is ("" for no answer)."""
    if not text.strip():
        return ""
    found = forbidden_control(text)
    if found is not None:
        raise HoursProblem(
            "The out-of-hours answer contains a control character at position {position}; "
            "remove it.",
            field="out_of_hours_reply",
            position=found[0],
        )
    if shows_nothing(text):
        raise HoursProblem(
            "The out-of-hours answer shows nothing; write a text, or leave it empty to send none.",
            field="out_of_hours_reply",
        )
    segments = analyse(text).segments
    if segments > max_segments:
        raise HoursProblem(
            "The out-of-hours answer needs {segments} SMS parts; at most {limit} are allowed. "
            "Shorten it.",
            field="out_of_hours_reply",
            segments=segments,
            limit=max_segments,
        )
    return text.strip()


def parse_week(days: Mapping[str, str | Sequence[str]]) -> tuple[tuple[Interval, ...], ...]:
    """Intervals for each weekday named mon..sun (text, or a list of "09:00-17:00")."""
    unknown = [name for name in days if name not in WEEKDAYS]
    if unknown:
        raise HoursProblem(
            "'{day}' is not a weekday; use mon, tue, wed, thu, fri, sat or sun.",
            field="hours",
            day=unknown[0],
        )

    def text(value: str | Sequence[str]) -> str:
        return value if isinstance(value, str) else ", ".join(value)

    return tuple(parse_day(text(days.get(name, "")), name) for name in WEEKDAYS)
