"""The dashboard's SVG charts: well-formed, proportional, escaped, and safe with no data."""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET

import pytest

from smsdesk.web.ui.charts import Series, horizontal_bar_chart, nice_ticks, stacked_bar_chart

SVG = "{http://www.w3.org/2000/svg}"
DAYS = ["Mon 16", "Tue 17", "Wed 18"]


def parse(markup: str) -> ET.Element:
    return ET.fromstring(str(markup))


def bars(root: ET.Element, css: str) -> list[ET.Element]:
    """The bars of a series (legend swatches have no tooltip, bars do)."""
    return [r for r in root.iter(f"{SVG}rect") if r.get("class") == css and len(r)]


def numbers(root: ET.Element) -> list[float]:
    """Every numeric attribute of the chart."""
    found = []
    for element in root.iter():
        for name, value in element.attrib.items():
            if name in {"x", "y", "width", "height", "x1", "x2", "y1", "y2"}:
                found.append(float(value))
        if element.get("viewBox"):
            found += [float(v) for v in element.get("viewBox", "").split()]
    return found


def daily(delivered: list[float], pending: list[float], failed: list[float]) -> list[Series]:
    return [
        Series("delivered", "Delivered", delivered),
        Series("pending", "Sent", pending),
        Series("failed", "Failed", failed),
    ]


def test_the_bar_chart_is_accessible_scalable_svg() -> None:
    """role=img, a title and an aria-label, a viewBox and no fixed width or height."""
    root = parse(stacked_bar_chart("Messages per day", DAYS, daily([1, 2, 3], [0] * 3, [0] * 3)))
    assert root.tag == f"{SVG}svg"
    assert root.get("role") == "img"
    assert root.get("aria-label") == "Messages per day"
    assert root.findtext(f"{SVG}title") == "Messages per day"
    assert root.get("viewBox") == "0 0 640 260"
    assert root.get("width") is None and root.get("height") is None


def test_bar_heights_are_proportional_to_the_values() -> None:
    """Each segment's height is its value times one scale, stacked from the axis up."""
    root = parse(stacked_bar_chart("t", DAYS, daily([10, 20, 5], [0, 4, 0], [2, 0, 1])))
    delivered = [float(b.get("height", "")) for b in bars(root, "series-delivered")]
    pending = [float(b.get("height", "")) for b in bars(root, "series-pending")]
    failed = [float(b.get("height", "")) for b in bars(root, "series-failed")]
    scale = delivered[0] / 10
    assert delivered == pytest.approx([10 * scale, 20 * scale, 5 * scale], abs=0.01)
    assert pending == pytest.approx([4 * scale], abs=0.01)
    assert failed == pytest.approx([2 * scale, 1 * scale], abs=0.01)
    first_delivered, first_failed = (
        bars(root, "series-delivered")[0],
        bars(root, "series-failed")[0],
    )
    top_of_delivered = float(first_delivered.get("y", ""))
    assert float(first_failed.get("y", "")) + failed[0] == pytest.approx(top_of_delivered, abs=0.01)


def test_the_y_axis_has_round_ticks_above_the_highest_bar() -> None:
    """Ticks are 0, 5, 10, ... up to the first round value at or above the tallest bar."""
    root = parse(stacked_bar_chart("t", DAYS, daily([10, 20, 5], [0, 4, 0], [2, 0, 1])))
    ticks = [t.text for t in root.iter(f"{SVG}text") if t.get("class") == "chart-tick"]
    assert ticks == ["0", "5", "10", "15", "20", "25"]


def test_labels_and_titles_are_escaped() -> None:
    """A label with markup comes out as text, never as an element."""
    evil = "<script>alert(1)</script>"
    markup = stacked_bar_chart(evil, [evil], [Series("delivered", evil, [1])])
    assert "<script>" not in markup
    root = parse(markup)
    assert root.findtext(f"{SVG}title") == evil
    assert not list(root.iter("script")) and not list(root.iter(f"{SVG}script"))
    labels = [t.text for t in root.iter(f"{SVG}text") if t.get("class") == "chart-label"]
    assert labels == [evil]


def test_all_zero_data_gives_a_valid_chart() -> None:
    """No bars, an axis from 0 to 1, and no NaN or infinity anywhere."""
    markup = stacked_bar_chart("t", DAYS, daily([0] * 3, [0] * 3, [0] * 3))
    root = parse(markup)
    assert not bars(root, "series-delivered")
    assert all(math.isfinite(n) for n in numbers(root))
    assert "nan" not in markup.lower() and "inf" not in markup.lower()


def test_a_single_day() -> None:
    """One day draws one bar inside the plot."""
    root = parse(stacked_bar_chart("t", ["Fri 20"], daily([3], [1], [0])))
    (bar,) = bars(root, "series-delivered")
    assert 0 < float(bar.get("x", "")) < 640
    assert all(math.isfinite(n) for n in numbers(root))


def test_no_days_at_all() -> None:
    """An empty period still gives well-formed markup."""
    root = parse(stacked_bar_chart("t", [], daily([], [], [])))
    assert all(math.isfinite(n) for n in numbers(root))


def test_the_output_is_deterministic() -> None:
    """The same figures give the same markup."""
    first = stacked_bar_chart("t", DAYS, daily([1, 2, 3], [3, 2, 1], [0, 1, 0]))
    assert first == stacked_bar_chart("t", DAYS, daily([1, 2, 3], [3, 2, 1], [0, 1, 0]))


def test_a_series_key_must_be_a_plain_class_name() -> None:
    """Keys become CSS classes, so only lowercase letters, digits and dashes are allowed."""
    with pytest.raises(ValueError):
        Series('x" onload="alert(1)', "x", [1])


def test_the_horizontal_chart_draws_one_bar_per_module() -> None:
    """Bar lengths are proportional; a module without data shows the no-data text."""
    root = parse(
        horizontal_bar_chart(
            "Median delivery time", ["cm", "twilio", "<b>x</b>"], [12.0, 3.0, None], no_data="n/a"
        )
    )
    assert root.get("role") == "img"
    assert root.get("aria-label") == "Median delivery time"
    lengths = [float(b.get("width", "")) for b in bars(root, "series-median")]
    assert lengths[0] == pytest.approx(4 * lengths[1], abs=0.01)
    values = [t.text for t in root.iter(f"{SVG}text") if t.get("class") == "chart-value"]
    assert values == ["12", "3", "n/a"]
    labels = [t.text for t in root.iter(f"{SVG}text") if t.get("class") == "chart-label"]
    assert labels == ["cm", "twilio", "<b>x</b>"]


def test_the_horizontal_chart_with_no_data() -> None:
    """Only missing or zero values still give finite coordinates."""
    for values in ([None, None], [0.0, 0.0], []):
        labels = [f"m{i}" for i in range(len(values))]
        root = parse(horizontal_bar_chart("t", labels, values))
        assert all(math.isfinite(n) for n in numbers(root))


@pytest.mark.parametrize(
    ("maximum", "integers", "expected"),
    [
        (0, True, [0, 1]),
        (float("nan"), True, [0, 1]),
        (1, True, [0, 1]),
        (7, True, [0, 2, 4, 6, 8]),
        (100, True, [0, 20, 40, 60, 80, 100]),
        (0.3, False, [0, 0.1, 0.2, 0.3]),
    ],
)
def test_nice_ticks(maximum: float, integers: bool, expected: list[float]) -> None:
    """Ticks are round steps from zero to at least the maximum."""
    assert nice_ticks(maximum, integers=integers) == pytest.approx(expected)


def test_large_ticks_are_shortened_and_never_clip() -> None:
    """At 250,000 messages a day the axis reads 250K (Dutch: 2,5 mln. for millions) and the
    plot starts right of the longest tick label."""
    from smsdesk.web.ui.charts import compact_number

    assert compact_number("en")(250_000) == "250K"
    assert compact_number("nl")(2_500_000) == "2,5\N{NO-BREAK SPACE}mln."
    wide = stacked_bar_chart(
        "t", ["a"], [Series("sent", "Sent", [1_234_567])], format_value=lambda v: f"{v:,.0f}"
    )
    found = re.search(r'<line class="chart-axis" x1="([0-9.]+)"', str(wide))
    assert found
    left = float(found.group(1))
    assert left >= len("1,400,000") * 6.5
