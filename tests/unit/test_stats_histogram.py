"""Delivery-time histograms: medians merged across days within a bucket's width, exact when
the middle values are alone in their buckets; the day cache stays bounded."""

from __future__ import annotations

import random
import statistics
from datetime import date, timedelta

import pytest

from smsdesk.store.stats import Counts
from smsdesk.store.stats_days import (
    ABOVE,
    BELOW,
    HIGHEST,
    LOWEST,
    RATIO,
    DayCache,
    DayFigures,
    Histogram,
    Tally,
    bucket_of,
    median_of,
)


def histogram_of(values: list[float]) -> Histogram:
    tally = Tally()
    for value in values:
        tally.add(value)
    return tally.freeze()


def test_buckets_are_log_spaced_two_percent_wide() -> None:
    """Each bucket spans a factor RATIO; times below 0.1 s and from two days on have their own."""
    assert bucket_of(0.0) == bucket_of(0.099) == BELOW
    assert bucket_of(LOWEST) == 0
    assert bucket_of(LOWEST * RATIO * 1.0001) == 1
    assert bucket_of(HIGHEST) == bucket_of(10 * HIGHEST) == ABOVE
    assert bucket_of(HIGHEST * 0.9999) == ABOVE - 1
    assert 700 < ABOVE < 760


def test_sparse_times_give_the_exact_median() -> None:
    """Middle values alone in their buckets are returned as they are, mean for an even count."""
    assert median_of([histogram_of([7.0, 100.0, 5.0, 9.0])]) == 8.0
    assert median_of([histogram_of([60.0, 10.0]), histogram_of([20.0])]) == 20.0
    assert median_of([histogram_of([0.0])]) == 0.0
    assert median_of([Tally().freeze()]) is None
    assert median_of([]) is None


@pytest.mark.parametrize("seed", range(5))
def test_a_median_merged_from_days_is_within_a_bucket(seed: int) -> None:
    """Histograms of several days merged give the median of all their times to within 2 %."""
    rng = random.Random(seed)
    days = [[rng.lognormvariate(3, 2) for _ in range(rng.randint(1, 400))] for _ in range(12)]
    merged = median_of([histogram_of(values) for values in days])
    exact = statistics.median([value for values in days for value in values])
    assert merged == pytest.approx(exact, rel=RATIO - 1)


def test_the_day_cache_forgets_the_least_recently_used_and_the_old() -> None:
    """Past MAX_DAYS the least recently used day goes; a day older than MAX_AGE is not given."""
    cache = DayCache()
    figures = DayFigures({}, Counts(), Counts(), {})
    first = date(2026, 1, 1)
    for offset in range(DayCache.MAX_DAYS + 5):
        cache.put(("UTC", first + timedelta(days=offset)), 0.0, figures)
    assert cache.get(("UTC", first), 1.0) is None
    newest = ("UTC", first + timedelta(days=DayCache.MAX_DAYS + 4))
    assert cache.get(newest, 1.0) is figures
    assert cache.get(("Europe/Amsterdam", newest[1]), 1.0) is None
    assert cache.get(newest, DayCache.MAX_AGE) is None
