"""The dashboard's charts as inline SVG drawn here: no JavaScript, nothing from a CDN.

Every function is pure: the same figures give the same markup. Labels arrive translated and
formatted by the caller and are escaped here. Colours come from the stylesheet through CSS
classes (`series-<key>`, `chart-axis`, `chart-grid`, ...); sizes are in the `viewBox`, so a
chart scales to its container.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from babel.numbers import format_compact_decimal
from markupsafe import Markup, escape

_KEY = re.compile(r"[a-z][a-z0-9-]*\Z")
_FONT = 11  # px in viewBox units
_CHAR = 6.5  # an average character's width at that size


@dataclass(frozen=True, slots=True)
class Series:
    """One stacked part of every bar: `key` names its CSS class (`series-<key>`)."""

    key: str
    label: str
    values: Sequence[float]

    def __post_init__(self) -> None:
        _check_key(self.key)


def _check_key(key: str) -> None:
    if not _KEY.match(key):
        raise ValueError(f"a series key is lowercase letters, digits and '-': {key!r}")


def _num(value: float) -> str:
    """A coordinate with at most two decimals and no trailing zeros (deterministic)."""
    text = f"{value:.2f}".rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def plain_number(value: float) -> str:
    """The default tick and value format: 12, 2.5, 1500."""
    return f"{value:.0f}" if value == int(value) else f"{value:g}"


def compact_number(language: str) -> Callable[[float], str]:
    """Tick and value labels in the language's digits, large ones shortened: 2.5K, 1,5 mln."""

    def formatted(value: float) -> str:
        return format_compact_decimal(value, locale=language, fraction_digits=1)

    return formatted


def nice_ticks(maximum: float, *, count: int = 5, integers: bool = True) -> list[float]:
    """Round tick values from 0 to just above `maximum` (1, 2 or 5 times a power of ten).

    Zero, negative or non-finite maxima give the ticks 0 and 1, so an empty chart still has
    an axis and nothing divides by zero.
    """
    if not math.isfinite(maximum) or maximum <= 0:
        return [0.0, 1.0]
    raw = maximum / max(count, 1)
    power = 10.0 ** math.floor(math.log10(raw))
    step = next(f * power for f in (1, 2, 5, 10) if f * power >= raw)
    if integers:
        step = max(1.0, float(math.ceil(step)))
    steps = math.ceil(maximum / step - 1e-9)
    return [round(i * step, 10) for i in range(steps + 1)]


def axis_ticks(
    maximum: float, format_value: Callable[[float], str], *, integers: bool = True
) -> list[float]:
    """Nice ticks (see `nice_ticks`) whose labels, as `format_value` writes them, all differ.

    A format with fewer decimals than the steps would write 0.05 and 0.15 as "0.1" and "0.2"
    next to 0.1 and 0.2; fewer, wider steps are taken until every label is its own (at the
    end one step from 0 to a round value the format tells from 0).
    """
    ticks = nice_ticks(maximum, integers=integers)
    for count in range(5, 0, -1):
        ticks = nice_ticks(maximum, count=count, integers=integers)
        labels = [format_value(t) for t in ticks]
        if len(set(labels)) == len(labels):
            return ticks
    top = ticks[-1]
    for _ in range(40):
        if format_value(top) != format_value(0.0):
            break
        top = nice_ticks(top * 1.5, count=1, integers=integers)[-1]
    return [0.0, top]


def _svg_open(width: float, height: float, title: str, css: str) -> str:
    label = escape(title)
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart {css}" '
        f'viewBox="0 0 {_num(width)} {_num(height)}" role="img" aria-label="{label}" '
        f'font-size="{_FONT}"><title>{label}</title>'
    )


def _text(x: float, y: float, text: str, css: str, anchor: str = "middle") -> str:
    return (
        f'<text class="{css}" x="{_num(x)}" y="{_num(y)}" text-anchor="{anchor}">'
        f"{escape(text)}</text>"
    )


def _rect(x: float, y: float, width: float, height: float, css: str, tooltip: str) -> str:
    return (
        f'<rect class="{css}" x="{_num(x)}" y="{_num(y)}" width="{_num(width)}" '
        f'height="{_num(height)}"><title>{escape(tooltip)}</title></rect>'
    )


def _clean(value: float) -> float:
    """Non-finite or negative values are drawn as nothing."""
    return value if math.isfinite(value) and value > 0 else 0.0


def stacked_bar_chart(
    title: str,
    labels: Sequence[str],
    series: Sequence[Series],
    *,
    width: float = 640,
    height: float = 260,
    format_value: Callable[[float], str] = plain_number,
) -> Markup:
    """One bar per label (a day), its series stacked bottom to top, with a legend above.

    `labels` are shown under the bars (thinned out when they would overlap); each segment has
    a tooltip "label - series: value" (with an en dash).
    """
    if any(len(s.values) != len(labels) for s in series):
        raise ValueError("every series needs one value per label")
    right, top, bottom = 8.0, 28.0, 24.0
    totals = [sum(_clean(s.values[i]) for s in series) for i in range(len(labels))]
    ticks = axis_ticks(max(totals, default=0.0), format_value)
    # The axis is as wide as its longest tick label: 100,000 and more never clip.
    left = max(44.0, max(len(format_value(t)) for t in ticks) * _CHAR + 12)
    plot_w, plot_h = width - left - right, height - top - bottom
    scale = plot_h / ticks[-1]
    slot = plot_w / max(len(labels), 1)
    parts = [_svg_open(width, height, title, "chart-bars")]
    parts += _legend(series, left, top - 12)
    parts += _y_axis(ticks, left, top, plot_w, scale, format_value)
    every = max(1, math.ceil(len(labels) * _CHAR * 6 / plot_w))
    for i, label in enumerate(labels):
        x = left + i * slot + slot * 0.15
        y = top + plot_h
        for s in series:
            value = _clean(s.values[i])
            if value:
                size = value * scale
                y -= size
                tip = f"{label} \N{EN DASH} {s.label}: {format_value(value)}"
                parts.append(_rect(x, y, slot * 0.7, size, f"series-{s.key}", tip))
        if i % every == 0:
            parts.append(_text(x + slot * 0.35, top + plot_h + 16, label, "chart-label"))
    parts.append("</svg>")
    return Markup("".join(parts))


def _legend(series: Sequence[Series], x: float, y: float) -> list[str]:
    parts = []
    for s in series:
        parts.append(
            f'<rect class="series-{s.key}" x="{_num(x)}" y="{_num(y - 9)}" width="10" height="10"/>'
        )
        parts.append(_text(x + 14, y, s.label, "chart-legend", "start"))
        x += 14 + len(s.label) * _CHAR + 16
    return parts


def _y_axis(
    ticks: Sequence[float],
    left: float,
    top: float,
    plot_w: float,
    scale: float,
    format_value: Callable[[float], str],
) -> list[str]:
    parts = []
    for tick in ticks:
        y = top + (ticks[-1] - tick) * scale
        css = "chart-axis" if tick == 0 else "chart-grid"
        parts.append(
            f'<line class="{css}" x1="{_num(left)}" y1="{_num(y)}" '
            f'x2="{_num(left + plot_w)}" y2="{_num(y)}"/>'
        )
        parts.append(_text(left - 6, y + 4, format_value(tick), "chart-tick", "end"))
    return parts


def horizontal_bar_chart(
    title: str,
    labels: Sequence[str],
    values: Sequence[float | None],
    *,
    key: str = "median",
    no_data: str = "\N{EN DASH}",
    width: float = 640,
    label_width: float = 140,
    format_value: Callable[[float], str] = plain_number,
) -> Markup:
    """One horizontal bar per label (a module), e.g. its median delivery time.

    A value of None is shown as the `no_data` text without a bar; ticks along the bottom use
    `format_value` too (for seconds, the caller may pass "1 min 30 s" formatting).
    """
    if len(values) != len(labels):
        raise ValueError("one value per label")
    _check_key(key)
    row, top, bottom, right = 24.0, 8.0, 24.0, 72.0
    height = top + row * max(len(labels), 1) + bottom
    plot_w = width - label_width - right
    clean = [None if v is None else _clean(v) for v in values]
    highest = max((v for v in clean if v is not None), default=0.0)
    ticks = axis_ticks(highest, format_value, integers=False)
    scale = plot_w / ticks[-1]
    parts = [_svg_open(width, height, title, "chart-hbars")]
    parts += _x_axis(ticks, label_width, top, height - bottom, scale, format_value)
    for i, (label, value) in enumerate(zip(labels, clean, strict=True)):
        y = top + i * row
        shown = _shorten(label, int((label_width - 8) / _CHAR))
        parts.append(_text(label_width - 8, y + row / 2 + 4, shown, "chart-label", "end"))
        text = no_data if value is None else format_value(value)
        end = label_width
        if value:
            end += value * scale
            parts.append(
                _rect(
                    label_width, y + 4, value * scale, row - 8, f"series-{key}", f"{label}: {text}"
                )
            )
        parts.append(_text(end + 4, y + row / 2 + 4, text, "chart-value", "start"))
    parts.append("</svg>")
    return Markup("".join(parts))


def _x_axis(
    ticks: Sequence[float],
    left: float,
    top: float,
    bottom: float,
    scale: float,
    format_value: Callable[[float], str],
) -> list[str]:
    parts = []
    for tick in ticks:
        x = left + tick * scale
        css = "chart-axis" if tick == 0 else "chart-grid"
        parts.append(
            f'<line class="{css}" x1="{_num(x)}" y1="{_num(top)}" '
            f'x2="{_num(x)}" y2="{_num(bottom)}"/>'
        )
        parts.append(_text(x, bottom + 14, format_value(tick), "chart-tick"))
    return parts


def _shorten(text: str, limit: int) -> str:
    """`text` cut to `limit` characters with an ellipsis (the bar's tooltip keeps it whole)."""
    return text if len(text) <= limit else text[: max(limit - 1, 1)] + "…"
