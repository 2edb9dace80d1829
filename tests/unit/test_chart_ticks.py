"""The dashboard charts' axis ticks: round values whose labels all differ and increase."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable

import pytest
from babel.numbers import format_decimal

from smsdesk.web.ui.charts import (
    Series,
    axis_ticks,
    compact_number,
    horizontal_bar_chart,
    stacked_bar_chart,
)

SVG = "{http://www.w3.org/2000/svg}"
MAXIMA = (0.0, 0.004, 0.01, 0.07, 0.2, 0.23, 0.5, 0.9, 1.7, 3, 7, 12.3, 99, 250, 1234, 123456)


def one_decimal(language: str) -> Callable[[float], str]:
    """The dashboard's format of seconds: one decimal, in the language's digits."""
    return lambda value: format_decimal(value, "#,##0.0", locale=language)


def as_number(label: str) -> float:
    """An English label read back: "1,234.5" is 1234.5."""
    return float(label.replace(",", ""))


def tick_labels(svg: str) -> list[str]:
    root = ET.fromstring(str(svg))
    return [t.text or "" for t in root.iter(f"{SVG}text") if t.get("class") == "chart-tick"]


@pytest.mark.parametrize("maximum", MAXIMA)
@pytest.mark.parametrize("integers", [True, False])
def test_tick_labels_are_unique_and_increasing(maximum: float, integers: bool) -> None:
    """With one decimal, every tick label is its own and each is larger than the one before,
    and the ticks reach the maximum."""
    fmt = one_decimal("en")
    ticks = axis_ticks(maximum, fmt, integers=integers)
    values = [as_number(fmt(t)) for t in ticks]
    assert values == sorted(set(values)), [fmt(t) for t in ticks]
    assert ticks[0] == 0 and ticks[-1] >= maximum


@pytest.mark.parametrize("language", ["en", "nl"])
@pytest.mark.parametrize("maximum", MAXIMA)
def test_labels_differ_in_every_language(language: str, maximum: float) -> None:
    """Compact counts and decimal seconds, in English and Dutch, never repeat a label."""
    for fmt, integers in ((compact_number(language), True), (one_decimal(language), False)):
        labels = [fmt(t) for t in axis_ticks(maximum, fmt, integers=integers)]
        assert len(labels) == len(set(labels)) >= 2, labels


def test_the_median_chart_of_a_fifth_of_a_second_has_no_repeated_tick() -> None:
    """A module delivering in 0.2 s gets the axis 0.0, 0.1, 0.2, not 0.0, 0.0, 0.1, 0.2, 0.2."""
    svg = horizontal_bar_chart("Median", ["Simulator"], [0.2], format_value=one_decimal("en"))
    assert tick_labels(svg) == ["0.0", "0.1", "0.2"]


def test_the_daily_chart_with_decimal_labels_has_no_repeated_tick() -> None:
    """Whatever the format, the bars' axis labels differ and increase."""
    fmt = one_decimal("en")
    svg = stacked_bar_chart("Per day", ["1 Dec", "2 Dec"], [Series("sent", "Sent", [1, 3])])
    labels = tick_labels(svg)
    assert labels == ["0", "1", "2", "3"]
    svg = stacked_bar_chart("Per day", ["1 Dec"], [Series("sent", "Sent", [0.3])], format_value=fmt)
    values = [as_number(label) for label in tick_labels(svg)]
    assert values == sorted(set(values)), values
