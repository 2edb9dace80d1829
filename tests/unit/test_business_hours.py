"""Opening hours: open or closed at an instant, and the key of each closed stretch, also when
the clocks change (Europe/Amsterdam, spring and autumn)."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smsdesk.domain.business_hours import (
    HoursProblem,
    Interval,
    OpeningHours,
    check_reply,
    check_time_zone,
    parse_day,
    parse_holidays,
    parse_week,
    stored_hours,
)

AMS = "Europe/Amsterdam"
OFFICE = parse_week({d: "09:00-17:00" for d in ("mon", "tue", "wed", "thu", "fri")})


def utc(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


def test_an_office_is_open_by_the_local_clock_in_winter_and_in_summer() -> None:
    """09:00 in Amsterdam is 08:00 UTC in winter and 07:00 UTC in summer."""
    hours = OpeningHours(AMS, OFFICE)
    assert hours.is_open(utc("2026-12-07T08:00"))
    assert not hours.is_open(utc("2026-12-07T07:59"))
    assert hours.is_open(utc("2026-07-06T07:00"))
    assert not hours.is_open(utc("2026-07-06T15:00"))  # 17:00 local


def test_the_weekend_is_one_closed_stretch_from_friday_evening_to_monday_morning() -> None:
    """Friday 20:00, Saturday and Sunday night share the key of Friday 17:00."""
    hours = OpeningHours(AMS, OFFICE)
    friday = hours.period(utc("2026-12-04T19:00"))
    assert friday == "2026-12-04T17:00+01:00"
    assert hours.period(utc("2026-12-05T12:00")) == friday
    assert hours.period(utc("2026-12-07T07:30")) == friday
    assert hours.period(utc("2026-12-07T09:00")) is None
    assert hours.period(utc("2026-12-07T19:00")) == "2026-12-07T17:00+01:00"


def test_a_holiday_is_closed_all_day_and_joins_the_night_before_it() -> None:
    """Christmas on a Friday: Thursday evening to Monday morning is one stretch."""
    hours = OpeningHours(AMS, OFFICE, parse_holidays(["2026-12-25"]))
    assert not hours.is_open(utc("2026-12-25T10:00"))
    assert hours.period(utc("2026-12-25T10:00")) == "2026-12-24T17:00+01:00"
    assert hours.period(utc("2026-12-26T10:00")) == "2026-12-24T17:00+01:00"


def test_no_hours_means_open_around_the_clock_except_holidays() -> None:
    """A group without hours never sends the answer, except on its holidays."""
    hours = OpeningHours(AMS, holidays=frozenset({date(2026, 12, 25)}))
    assert hours.is_open(utc("2026-12-06T03:00"))
    assert hours.period(utc("2026-12-25T12:00")) == "2026-12-25T00:00+01:00"


def test_intervals_are_read_as_typed_and_joined_when_they_overlap() -> None:
    """Dashes of any kind, spaces and overlaps are accepted; 24:00 ends a day."""
    typed = "13:00\u201317:30, 9:00 - 12:00"
    assert parse_day(typed, "mon") == (Interval(540, 720), Interval(780, 1050))
    assert parse_day("09:00-12:00,11:00-13:00", "mon") == (Interval(540, 780),)
    assert parse_day("22:00-24:00", "mon") == (Interval(1320, 1440),)
    assert parse_day("", "mon") == ()


@pytest.mark.parametrize(
    ("typed", "words"),
    [
        ("22:00-06:00", "crosses midnight"),
        ("17:00-09:00", "ends before it starts"),
        ("25:00-26:00", "not a time of day"),
        ("09:60-10:00", "not a time of day"),
        ("nine to five", "not a time of day"),
        ("09:00", "not an interval"),
    ],
)
def test_impossible_intervals_are_refused_with_the_day_named(typed: str, words: str) -> None:
    """An interval crossing midnight is refused with the way to write it."""
    with pytest.raises(HoursProblem) as caught:
        parse_day(typed, "tue")
    assert words in caught.value.message
    assert caught.value.field == "hours.tue"


def test_time_zones_holidays_and_weekdays_are_checked() -> None:
    """Unknown zones, dates and weekdays are refused by name."""
    assert check_time_zone(" Europe/Amsterdam ") == AMS
    for wrong in ("Europe/Atlantis", "", "../etc/passwd"):
        with pytest.raises(HoursProblem, match="not a time zone"):
            check_time_zone(wrong)
    with pytest.raises(HoursProblem, match="'2026-02-30' is not a date"):
        parse_holidays(["2026-12-25, 2026-02-30"])
    with pytest.raises(HoursProblem, match="'monday' is not a weekday"):
        parse_week({"monday": "09:00-17:00"})


def test_the_answer_is_checked_like_an_sms() -> None:
    """Too many parts and control characters are refused; empty means no answer."""
    assert check_reply("  ", 3) == ""
    assert check_reply(" We are closed. ", 3) == "We are closed."
    with pytest.raises(HoursProblem, match="needs 2 SMS parts; at most 1"):
        check_reply("x" * 200, 1)
    with pytest.raises(HoursProblem, match="control character at position 3"):
        check_reply("We\x07re closed", 3)


def test_the_stored_form_reads_back_the_same() -> None:
    """What is written to a group's columns gives the same hours back."""
    hours = OpeningHours(AMS, parse_week({"mon": "09:00-12:00, 13:00-24:00"}), frozenset())
    again = stored_hours(AMS, hours.hours_json(), hours.holidays_json())
    assert again == hours
    assert again.day_text(0) == "09:00-12:00, 13:00-24:00"


# -- across the changes of the clocks ----------------------------------------------------------

minutes = st.integers(0, 48).map(lambda q: q * 30)
intervals = st.tuples(minutes, minutes).filter(lambda p: p[0] < p[1]).map(lambda p: Interval(*p))
days = st.lists(intervals, max_size=2).map(lambda found: tuple(sorted(set(found))))
weeks = st.tuples(*[days] * 7)
# Instants around the changes of 2026 (29 March and 25 October) and one quiet week.
around = st.sampled_from(["2026-03-27T00:00", "2026-10-23T00:00", "2026-06-10T00:00"]).map(utc)


@settings(max_examples=60, deadline=None)
@given(week=weeks, start=around, first=st.integers(0, 4 * 86400), gap=st.integers(0, 86400))
def test_two_closed_instants_share_a_key_exactly_when_no_opening_lies_between(
    week: tuple[tuple[Interval, ...], ...], start: float, first: int, gap: int
) -> None:
    """Checked minute by minute: the same key means closed all along; open means no key."""
    hours = OpeningHours(AMS, week)
    one, two = start + first, start + first + gap
    assert (hours.period(one) is None) == hours.is_open(one)
    if hours.is_open(one) or hours.is_open(two):
        return
    minute = (int(one) // 60 + 1) * 60
    opened = any(hours.is_open(t) for t in range(minute, int(two) + 1, 60))
    assert (hours.period(one) == hours.period(two)) == (not opened)


def test_a_night_across_the_autumn_change_is_one_stretch() -> None:
    """Saturday 17:00 to Monday 09:00 spans the extra hour of 25 October 2026."""
    hours = OpeningHours(AMS, parse_week({"sat": "09:00-17:00", "mon": "09:00-17:00"}))
    key = hours.period(utc("2026-10-24T20:00"))
    assert key == "2026-10-24T17:00+02:00"
    assert hours.period(utc("2026-10-25T01:30")) == key  # 02:30 the second time
    assert hours.period(utc("2026-10-26T07:59")) == key
    assert hours.is_open(utc("2026-10-26T08:00"))  # 09:00 winter time


def test_an_interval_ending_in_the_skipped_spring_hour_ends_when_the_clocks_jump() -> None:
    """On 29 March 2026 02:00 becomes 03:00; hours until 02:30 end at that jump (01:00 UTC)."""
    hours = OpeningHours(AMS, parse_week({"sun": "00:00-02:30"}))
    assert hours.is_open(utc("2026-03-29T00:59"))
    assert not hours.is_open(utc("2026-03-29T01:00"))
    assert hours.period(utc("2026-03-29T05:00")) == "2026-03-29T03:00+02:00"
