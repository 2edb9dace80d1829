"""When a mailing may reach a recipient: its send window in the recipient's own time zone.

The zone comes from the number: libphonenumber's zones for the number itself (a US area code
has one), else those of its country; a country with several zones (Russia, Australia, the US
without a known area code) gets the first of libphonenumber's list, which is alphabetical, so
a window there is an approximation of an hour or more. A number without any zone gets the
fallback the caller names (the installation's zone).

`next_window_opening` works on UTC offsets rather than wall clock arithmetic: between two
changes of a zone's offset, local time is UTC time plus a constant, so the first instant inside
the window is found exactly, over spring gaps and autumn repeats alike.
"""

from __future__ import annotations

import math
from datetime import datetime, time
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from phonenumbers import COUNTRY_CODE_TO_REGION_CODE, NumberParseException, PhoneNumber
from phonenumbers import timezone as phone_zones

from smsdesk.domain.mailings import SendWindow

DAY = 86_400
UNKNOWN_ZONE = "Etc/Unknown"
_HORIZON = 9 * DAY  # a window with one day a week opens within 7 days and an offset change
_STEP = 3600  # offsets change at most once an hour in every zone there is


@lru_cache(maxsize=4096)
def _country_zones(country_code: int) -> tuple[str, ...]:
    return tuple(
        phone_zones.time_zones_for_geographical_number(
            PhoneNumber(country_code=country_code, national_number=0)
        )
    )


def _usable(zone: str) -> bool:
    if zone == UNKNOWN_ZONE:
        return False
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


@lru_cache(maxsize=4096)
def _usable_country_zones(country_code: int) -> tuple[str, ...]:
    return tuple(z for z in _country_zones(country_code) if _usable(z))


def _country_code(e164: str) -> int | None:
    """The calling code an E.164 number starts with (calling codes are prefix-free)."""
    for length in (1, 2, 3):
        digits = e164[1 : 1 + length]
        if digits.isdigit() and int(digits) in COUNTRY_CODE_TO_REGION_CODE:
            return int(digits)
    return None


@lru_cache(maxsize=65_536)
def recipient_time_zone(e164: str, fallback: str = "UTC") -> str:
    """The IANA zone of an E.164 number (the first of several; see the module docstring).

    A country with one zone is answered from the calling code alone: parsing the number is
    what costs, and most countries have one zone.
    """
    code = _country_code(e164)
    if code is None:
        return fallback
    country = _usable_country_zones(code)
    if len(country) == 1:
        return country[0]
    try:
        number = phonenumbers.parse(e164, None)
    except NumberParseException:
        return fallback
    own = [z for z in phone_zones.time_zones_for_number(number) if _usable(z)]
    return (own or list(country) or [fallback])[0]


def _offset(at: float, zone: ZoneInfo) -> int:
    offset = datetime.fromtimestamp(at, zone).utcoffset()
    return int(offset.total_seconds()) if offset is not None else 0


def is_open(at: float, window: SendWindow, tz: str) -> bool:
    """Whether the local wall time at `at` in zone `tz` is inside the window."""
    local = datetime.fromtimestamp(at, ZoneInfo(tz))
    return local.weekday() in window.days and window.start <= local.time() < window.end


def _segments(start: float, end: float, zone: ZoneInfo) -> list[tuple[float, float, int]]:
    """[from, to) spans of constant UTC offset covering [start, end), with their offset."""
    spans: list[tuple[float, float, int]] = []
    at, offset = start, _offset(start, zone)
    probe = start
    while probe < end:
        following = probe + _STEP
        if _offset(following, zone) != offset:
            low, high = math.floor(probe), math.ceil(following)  # offsets change on a second
            while high - low > 1:
                middle = (low + high) // 2
                low, high = (middle, high) if _offset(middle, zone) == offset else (low, middle)
            spans.append((at, float(high), offset))
            at, offset = float(high), _offset(high, zone)
        probe = following
    spans.append((at, max(end, at), offset))
    return spans


def _seconds(t: time) -> int:
    return t.hour * 3600 + t.minute * 60 + t.second


def _first_inside(start: float, end: float, offset: int, window: SendWindow) -> float | None:
    """The first instant in [start, end) inside the window, local time being UTC + offset."""
    opens, closes = _seconds(window.start), _seconds(window.end)
    day = math.floor((start + offset) / DAY)
    while day * DAY + opens - offset < end:
        weekday = (day + 3) % 7  # 1970-01-01 was a Thursday
        if weekday in window.days:
            lower = max(start, day * DAY + opens - offset)
            upper = min(end, day * DAY + closes - offset)
            if lower < upper:
                return lower
        day += 1
    return None


def next_window_opening(now: float, window: SendWindow, tz: str) -> float:
    """`now` if the window is open in zone `tz`, else the first instant after it that is."""
    zone = ZoneInfo(tz)
    for start, end, offset in _segments(now, now + _HORIZON, zone):
        found = _first_inside(start, end, offset, window)
        if found is not None:
            return found
    raise ValueError(f"The send window {window.as_dict()} never opens.")  # pragma: no cover
