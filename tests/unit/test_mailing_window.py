"""A mailing's send window in the recipient's time zone: when a held recipient may be sent."""

from __future__ import annotations

import zoneinfo
from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from smsdesk.domain.mailing_window import is_open, next_window_opening, recipient_time_zone
from smsdesk.domain.mailings import SendWindow, check_window

# Zones with DST, half-hour offsets, midnight transitions and the date line among them.
ZONES = sorted(
    {
        "UTC",
        "Europe/Amsterdam",
        "Europe/London",
        "America/New_York",
        "America/Santiago",
        "America/Havana",
        "Asia/Kolkata",
        "Asia/Kathmandu",
        "Australia/Lord_Howe",
        "Pacific/Apia",
        "Pacific/Chatham",
        "Asia/Beirut",
        "America/St_Johns",
    }
    & zoneinfo.available_timezones()
)
# 2024 to 2027 (several DST changes in every zone above), to the millisecond as clocks give.
instants = st.builds(
    lambda s, ms: s + ms / 1000, st.integers(1_704_067_200, 1_830_297_600), st.integers(0, 999)
)
clock = st.integers(0, 23).flatmap(
    lambda h: st.tuples(st.just(h), st.sampled_from([0, 15, 30, 45]))
)
windows = st.builds(
    lambda days, a, b: check_window(
        sorted(days), f"{min(a, b)[0]:02d}:{min(a, b)[1]:02d}", _after(max(a, b), a == b)
    ),
    st.sets(st.integers(0, 6), min_size=1),
    clock,
    clock,
)


def _after(end: tuple[int, int], same: bool) -> str:
    hours, minutes = end
    if same:  # an empty span: close a quarter later (or at 23:59 at the end of the day)
        hours, minutes = (hours, minutes + 15) if minutes < 45 else (hours + 1, 0)
        if hours == 24:
            return "23:59"
    return f"{hours:02d}:{minutes:02d}"


@settings(max_examples=300, deadline=None)
@given(now=instants, window=windows, tz=st.sampled_from(ZONES))
def test_the_opening_is_inside_and_nothing_before_it_is(
    now: float, window: SendWindow, tz: str
) -> None:
    """The answer is never early (inside the window, not before now) and never late: no minute
    between now and it is inside the window, and a second earlier is not either."""
    opening = next_window_opening(now, window, tz)
    assert opening >= now
    assert is_open(opening, window, tz)
    if opening > now:
        assert not is_open(opening - 1, window, tz) or opening - 1 < now
        probe = now
        while probe < opening:
            assert not is_open(probe, window, tz), datetime.fromtimestamp(probe, UTC)
            probe += 60
    assert opening - now <= 8 * 86_400


@settings(max_examples=100, deadline=None)
@given(now=instants, window=windows, tz=st.sampled_from(ZONES))
def test_a_recipient_inside_the_window_is_sent_now(now: float, window: SendWindow, tz: str) -> None:
    """When the window is open, the opening is now itself."""
    if is_open(now, window, tz):
        assert next_window_opening(now, window, tz) == now


def _utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> float:
    return datetime(year, month, day, hour, minute, tzinfo=UTC).timestamp()


def test_a_window_opening_in_the_spring_gap_opens_when_the_clocks_jump() -> None:
    """Sunday 02:30 does not exist in Amsterdam on 29 March 2026: the window opens at 03:00
    local (01:00 UTC), the first moment local time is past 02:30."""
    window = check_window(["sun"], "02:30", "04:00")
    assert next_window_opening(_utc(2026, 3, 28, 12), window, "Europe/Amsterdam") == _utc(
        2026, 3, 29, 1
    )


def test_the_repeated_autumn_hour_opens_the_window_twice() -> None:
    """Amsterdam's 02:00-03:00 happens twice on 25 October 2026: a window from 02:30 opens at
    its first 02:30 (00:30 UTC), and someone held in the repeated 02:10 waits for 02:30 again."""
    window = check_window(["sun"], "02:30", "05:00")
    zone = "Europe/Amsterdam"
    assert next_window_opening(_utc(2026, 10, 24, 12), window, zone) == _utc(2026, 10, 25, 0, 30)
    assert next_window_opening(_utc(2026, 10, 25, 1, 10), window, zone) == _utc(2026, 10, 25, 1, 30)


def test_weekdays_nine_to_eight_hold_a_saturday_evening_until_monday_morning() -> None:
    """Saturday 21:00 in New York waits for Monday 09:00 there (13:00 UTC in summer)."""
    window = check_window(["mon", "tue", "wed", "thu", "fri"], "09:00", "20:00")
    saturday = _utc(2026, 6, 13, 1)  # Friday 21:00 New York
    assert next_window_opening(saturday, window, "America/New_York") == _utc(2026, 6, 15, 13)


def test_each_number_gets_its_countrys_zone() -> None:
    """A number's zone is its own (a US area code), else its country's first zone."""
    assert recipient_time_zone("+31612345678") == "Europe/Amsterdam"
    assert recipient_time_zone("+14155550123") == "America/Los_Angeles"
    assert recipient_time_zone("+61412345678") == "Australia/Adelaide"  # first of several
    assert recipient_time_zone("+447700900123").startswith("Europe/")
    assert recipient_time_zone("+80012345678", fallback="Europe/Oslo") == "Europe/Oslo"
