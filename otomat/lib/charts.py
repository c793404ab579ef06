"""Small, dependency-free, accessible server-side SVG charts for the owner's billing dashboard.

Contract of every public chart function:

- It returns one well-formed ``<svg>`` element as a string, to embed inline with ``|safe``. Every
  piece of text in it (title, labels, series names, formatted values, colours) is XML-escaped here.
- Values are ``int`` or ``Decimal`` (money in minor units or major-unit Decimals). Positions are
  computed with Decimal and printed with at most one decimal place: no float, ``nan`` or ``inf``
  ever reaches the output; a non-finite value raises ValueError.
- ``value_format`` turns a value (the caller's own value, or a y tick: an ``int`` when all the data
  are ints, else a ``Decimal``) into display text. ``empty_text`` and ``desc`` are the only other
  prose; pass them translated (the default ``desc`` is an English summary of the data).
- Output is deterministic: the ids behind ``aria-labelledby`` come from a hash of the content.
- The ``<svg>`` has ``role="img"``, a ``<title>`` and a ``<desc>``; each point or bar carries a
  ``<title>`` (a native tooltip); a legend is drawn when there is more than one series. Screen-reader
  users get the numbers from :func:`table_fallback`, rendered by the template as a data table.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from html import escape
from typing import Any

from django.utils.translation import gettext

Number = Decimal | int
Formatter = Callable[[Any], str]

# Okabe–Ito, ordered so the colours most charts use first contrast at least 3:1 with white; its
# yellow is left out because it is unreadable on white.
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000")
GRID_COLOR, AXIS_COLOR, TEXT_COLOR = "#e5e5e5", "#8c8c8c", "#555555"
FONT_SIZE = 11
EMPTY_TEXT = "No data yet"
_CHAR_W = Decimal("6.6")  # generous average advance of one character at FONT_SIZE
_MAX_X_LABELS = 12
_X_LABEL_CHARS = 16
_NICE_STEPS = (Decimal(1), Decimal(2), Decimal("2.5"), Decimal(5))
_TENTH = Decimal("0.1")
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f]")


@dataclass
class Series:
    """A named row of values, one per label; ``color`` defaults to the palette by position."""

    name: str
    values: list[Number]
    color: str | None = None


def _num(value: Any) -> Decimal:
    """``value`` as a finite Decimal (floats are tolerated through their repr)."""
    if isinstance(value, bool) or not isinstance(value, int | Decimal | float):
        raise TypeError(f"chart values must be int or Decimal, got {value!r}")
    number = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    if not number.is_finite():
        raise ValueError(f"chart values must be finite, got {value!r}")
    return number


def _r(value: Decimal | int) -> Decimal:
    """A coordinate rounded to one decimal place."""
    return Decimal(value).quantize(_TENTH)


def _c(value: Decimal | int) -> str:
    """A coordinate as SVG text: one decimal place, without a useless ``.0`` or ``-0``."""
    text = f"{_r(value):f}".removesuffix(".0")
    return "0" if text == "-0" else text


def _e(text: object) -> str:
    """``text`` escaped for XML text and attributes, without the control characters XML forbids."""
    return escape(_CONTROL.sub("", str(text)), quote=True)


def _text_w(text: str) -> Decimal:
    return len(text) * _CHAR_W


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _text(
    x: Decimal | int, y: Decimal | int, text: str, cls: str, anchor: str = "start", limit: int = 0
) -> str:
    """A label; clipped to ``limit`` characters if given, with the full text as its tooltip."""
    shown = _clip(text, limit) if limit else text
    tip = f"<title>{_e(text)}</title>" if shown != text else ""
    return (
        f'<text class="chart-label {cls}" x="{_c(x)}" y="{_c(y)}" text-anchor="{anchor}" '
        f'fill="{TEXT_COLOR}">{tip}{_e(shown)}</text>'
    )


def _color(series: Series, index: int) -> str:
    return _e(series.color or PALETTE[index % len(PALETTE)])


def _line(
    cls: str, x1: Decimal | int, y1: Decimal | int, x2: Decimal | int, y2: Decimal | int, color: str
) -> str:
    return (
        f'<line class="{cls}" x1="{_c(x1)}" y1="{_c(y1)}" x2="{_c(x2)}" y2="{_c(y2)}" '
        f'stroke="{color}" stroke-width="1"/>'
    )


def nice_ticks(lo: Decimal, hi: Decimal, *, integers: bool = False) -> list[Decimal]:
    """Evenly spaced ticks covering ``[lo, hi]`` with a step of 1, 2, 2.5 or 5 × 10^k, in 3 to 5
    intervals (4–6 gridlines). A zero-width range is widened to include 0 (or to 0..1). With
    ``integers`` the step is a whole number, so the ticks of integer data are integers too."""
    lo, hi = Decimal(lo), Decimal(hi)
    if lo == hi:
        lo, hi = min(lo, Decimal(0)), max(hi, Decimal(0))
        hi = hi if hi != lo else lo + 1
    if integers and hi - lo < 3:  # whole steps need some room for 4 gridlines
        lo, hi = (lo, lo + 3) if hi > 0 or lo == 0 else (hi - 3, hi)
    exponent = ((hi - lo) / 5).adjusted()  # the smallest candidate gives at least 5 intervals
    while True:
        for mantissa in _NICE_STEPS:
            step = mantissa.scaleb(exponent)
            if integers and step != step.to_integral_value():
                continue
            first = (lo / step).to_integral_value(ROUND_FLOOR)
            last = (hi / step).to_integral_value(ROUND_CEILING)
            if last - first <= 5:
                return [_tidy((first + i) * step, step) for i in range(int(last - first) + 1)]
        exponent += 1


def _tidy(tick: Decimal, step: Decimal) -> Decimal:
    """A tick printed plainly: ``500`` rather than ``5E+2``, ``0.25`` rather than ``0.2500``."""
    if tick == tick.to_integral_value():
        return Decimal(int(tick))
    exponent = step.normalize().as_tuple().exponent
    return tick.quantize(Decimal(1).scaleb(int(exponent)))


def _validate(labels: Sequence[str], series: Sequence[Series]) -> list[list[Decimal]]:
    rows = []
    for s in series:
        if len(s.values) != len(labels):
            raise ValueError(
                f"series {s.name!r} has {len(s.values)} values but there are {len(labels)} labels"
            )
        rows.append([_num(v) for v in s.values])
    return rows


def _tip(label: str, series: Sequence[Series], s: Series, value: str) -> str:
    """Tooltip text: ``label: value``, with the series name when there are several."""
    return f"{label}: {value}" if len(series) < 2 else f"{label} — {s.name}: {value}"


def _summary(title: str, labels: Sequence[str], series: Sequence[Series], fmt: Formatter) -> str:
    """The default ``<desc>``: the extent of the data and each series' latest and highest value,
    in the active language."""
    n = len(labels)
    span = (
        gettext("%(count)s values from %(first)s to %(last)s")  # n > 1
        % {"count": n, "first": labels[0], "last": labels[-1]}
        if n > 1
        else gettext("1 value, %(label)s") % {"label": labels[0]}
    )
    parts = [f"{title}: {span}."]
    for s in series:
        top = max(range(n), key=lambda i: _num(s.values[i]))
        name = f"{s.name}: " if len(series) > 1 else ""
        figures = gettext("latest %(latest)s (%(when)s), highest %(highest)s (%(top)s)") % {
            "latest": fmt(s.values[-1]),
            "when": labels[-1],
            "highest": fmt(s.values[top]),
            "top": labels[top],
        }
        parts.append(f"{name}{figures}.")
    return " ".join(parts)


def _svg(kind: str, title: str, desc: str, width: int, height: int, body: str) -> str:
    """Wrap ``body`` into the accessible, responsive root element; ids hash the whole content."""
    digest = hashlib.sha256(f"{kind}|{width}|{height}|{title}|{desc}|{body}".encode()).hexdigest()
    uid = f"chart-{digest[:12]}"
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart chart-{kind}-chart" role="img" '
        f'aria-labelledby="{uid}-title" aria-describedby="{uid}-desc" '
        f'viewBox="0 0 {width} {height}" width="100%" font-family="inherit" '
        f'font-size="{FONT_SIZE}"><title id="{uid}-title">{_e(title)}</title>'
        f'<desc id="{uid}-desc">{_e(desc)}</desc>{body}</svg>'
    )


def _empty(kind: str, title: str, text: str, width: int, height: int) -> str:
    """The frame of a chart without data: a baseline and ``text`` in the middle."""
    body = _line("chart-axis", 8, height - 24, width - 8, height - 24, AXIS_COLOR) + _text(
        Decimal(width) / 2, Decimal(height) / 2, text, "chart-empty", "middle"
    )
    return _svg(kind, title, text, width, height, body)


def _legend(series: Sequence[Series], width: int) -> tuple[str, int]:
    """A wrapping row of colour swatches and names, and its height (none for a single series)."""
    if len(series) < 2:
        return "", 0
    parts, x, y = [], Decimal(8), 4
    for i, s in enumerate(series):
        advance = 14 + _text_w(_clip(s.name, 24)) + 16
        if x > 8 and x + advance > width:
            x, y = Decimal(8), y + 16
        parts.append(
            f'<rect class="chart-swatch" x="{_c(x)}" y="{y}" width="10" height="10" '
            f'fill="{_color(s, i)}"/>'
            + _text(x + 14, y + 9, s.name, "chart-legend-label", limit=24)
        )
        x += advance
    return f'<g class="chart-legend">{"".join(parts)}</g>', y + 16


class _Plot:
    """Geometry and chrome (legend, gridlines, y tick labels, x labels) of a line or bar chart.
    ``banded`` centres each label in its own band (bars); otherwise the first and last label sit
    on the plot's edges (lines)."""

    def __init__(
        self,
        labels: Sequence[str],
        series: Sequence[Series],
        lo: Decimal,
        hi: Decimal,
        value_format: Formatter,
        width: int,
        height: int,
        *,
        banded: bool,
    ) -> None:
        integers = all(isinstance(v, int) for s in series for v in s.values)
        legend, legend_h = _legend(series, width)
        ticks = nice_ticks(lo, hi, integers=integers)
        self.lo, self.hi = ticks[0], ticks[-1]
        tick_texts = [str(value_format(int(t) if integers else t)) for t in ticks]
        label_w = max(_text_w(_clip(label, _X_LABEL_CHARS)) for label in labels)
        edge = Decimal(12) if banded else max(Decimal(12), label_w / 2 + 4)
        self.left = min(max(max(_text_w(t) for t in tick_texts) + 10, edge), Decimal(width) / 3)
        self.top = Decimal(legend_h + 10)
        self.bottom = Decimal(max(height - 24, legend_h + 40))
        self.width = max(Decimal(width) - self.left - edge, Decimal(20))
        n = len(labels)
        if banded:
            self.band = self.width / n
            self.x = [self.left + self.band * i + self.band / 2 for i in range(n)]
        else:
            self.band = self.width / max(n - 1, 1)
            self.x = [self.left + self.band * i for i in range(n)]
            if n == 1:
                self.x = [self.left + self.width / 2]
        right = self.left + self.width
        parts = [legend, '<g class="chart-grid-lines">']
        for tick, text in zip(ticks, tick_texts, strict=True):
            y = self.y(tick)
            parts.append(_line("chart-grid", self.left, y, right, y, GRID_COLOR))
            parts.append(_text(self.left - 6, y + 4, text, "chart-y-label", "end"))
        base = self.y(Decimal(0) if self.lo <= 0 <= self.hi else self.lo)
        parts.append("</g>" + _line("chart-axis", self.left, base, right, base, AXIS_COLOR))
        # Thin the x labels so they never overlap: at most _MAX_X_LABELS, evenly spaced.
        fits = int(self.width / (label_w + 8)) + (0 if banded else 1)
        every = -(-n // max(1, min(_MAX_X_LABELS, fits, n)))
        parts.append('<g class="chart-x-labels">')
        for i in range(0, n, every):
            x, y = self.x[i], self.bottom + 16
            parts.append(_text(x, y, labels[i], "chart-x-label", "middle", _X_LABEL_CHARS))
        parts.append("</g>")
        self.chrome = "".join(parts)

    def y(self, value: Decimal) -> Decimal:
        """The vertical position of ``value``."""
        return self.top + (self.hi - value) * (self.bottom - self.top) / (self.hi - self.lo)


def line_chart(
    labels: list[str],
    series: list[Series],
    *,
    title: str,
    value_format: Formatter = str,
    width: int = 640,
    height: int = 240,
    y_min_zero: bool = True,
    empty_text: str = EMPTY_TEXT,
    desc: str | None = None,
) -> str:
    """One line per series over ``labels`` (e.g. months), a dot with a tooltip per value. The y
    axis starts at zero unless ``y_min_zero`` is false; it always spans negative values."""
    rows = _validate(labels, series)
    if not labels or not rows:
        return _empty("line", title, empty_text, width, height)
    values = [v for row in rows for v in row]
    lo, hi = min(values), max(values)
    if y_min_zero:
        lo, hi = min(lo, Decimal(0)), max(hi, Decimal(0))
    plot = _Plot(labels, series, lo, hi, value_format, width, height, banded=False)
    radius = 3 if len(labels) <= 60 else 2
    parts = [plot.chrome]
    for index, (s, row) in enumerate(zip(series, rows, strict=True)):
        color = _color(s, index)
        points = [(plot.x[i], plot.y(v)) for i, v in enumerate(row)]
        path = " ".join(f"{_c(x)},{_c(y)}" for x, y in points)
        parts.append(
            f'<g class="chart-series"><polyline class="chart-line" points="{path}" fill="none" '
            f'stroke="{color}" stroke-width="2" stroke-linejoin="round" stroke-linecap="round"/>'
        )
        for (x, y), label, value in zip(points, labels, s.values, strict=True):
            tip = _tip(label, series, s, value_format(value))
            parts.append(
                f'<circle class="chart-point" cx="{_c(x)}" cy="{_c(y)}" r="{radius}" '
                f'fill="{color}" stroke="#ffffff" stroke-width="1"><title>{_e(tip)}</title></circle>'
            )
        parts.append("</g>")
    summary = desc or _summary(title, labels, series, value_format)
    return _svg("line", title, summary, width, height, "".join(parts))


def bar_chart(
    labels: list[str],
    series: list[Series],
    *,
    title: str,
    value_format: Formatter = str,
    stacked: bool = False,
    width: int = 640,
    height: int = 240,
    empty_text: str = EMPTY_TEXT,
    desc: str | None = None,
) -> str:
    """Vertical bars per label, one per series side by side, or one stack with ``stacked``. Bars
    grow from zero: up for positive values, down for negative ones (stacked apart, too)."""
    rows = _validate(labels, series)
    if not labels or not rows:
        return _empty("bar", title, empty_text, width, height)
    columns = list(zip(*rows, strict=True))
    if stacked:
        lo = min(sum((v for v in col if v < 0), Decimal(0)) for col in columns)
        hi = max(sum((v for v in col if v > 0), Decimal(0)) for col in columns)
    else:
        lo = min(Decimal(0), *(v for row in rows for v in row))
        hi = max(Decimal(0), *(v for row in rows for v in row))
    plot = _Plot(labels, series, lo, hi, value_format, width, height, banded=True)
    group = plot.band * Decimal("0.7")  # 30% of each band is the gap between groups
    bar_w = group if stacked else group / len(series)
    parts = [plot.chrome, '<g class="chart-bars">']
    for i, (label, col) in enumerate(zip(labels, columns, strict=True)):
        left = plot.x[i] - group / 2
        ups, downs = Decimal(0), Decimal(0)
        for index, (s, value) in enumerate(zip(series, col, strict=True)):
            if stacked:  # positive values stack up from zero, negative ones down
                base, x = (ups if value >= 0 else downs), left
                ups, downs = (ups + value, downs) if value >= 0 else (ups, downs + value)
            else:
                base, x = Decimal(0), left + bar_w * index
            y_top, y_bottom = sorted((_r(plot.y(base)), _r(plot.y(base + value))))
            tip = _tip(label, series, s, value_format(s.values[i]))
            parts.append(
                f'<rect class="chart-bar" x="{_c(x)}" y="{_c(y_top)}" width="{_c(bar_w)}" '
                f'height="{_c(y_bottom - y_top)}" fill="{_color(s, index)}">'
                f"<title>{_e(tip)}</title></rect>"
            )
    parts.append("</g>")
    summary = desc or _summary(title, labels, series, value_format)
    return _svg("bar", title, summary, width, height, "".join(parts))


def horizontal_bar_chart(
    items: list[tuple[str, Number]],
    *,
    title: str,
    value_format: Formatter = str,
    width: int = 640,
    color: str | None = None,
    empty_text: str = EMPTY_TEXT,
    desc: str | None = None,
) -> str:
    """One labelled horizontal bar per ``(label, value)`` with its formatted value at its end, for
    rankings such as revenue by product. The height grows with the number of items."""
    if not items:
        return _empty("hbar", title, empty_text, width, 80)
    row_h, bar_h, pad = 24, 14, 6
    height = pad * 2 + row_h * len(items)
    values = [_num(v) for _, v in items]
    texts = [str(value_format(v)) for _, v in items]
    max_chars = max(4, int(width * Decimal("0.35") / _CHAR_W))
    label_col = max(_text_w(_clip(label, max_chars)) for label, _ in items) + 16
    value_w = max(_text_w(t) for t in texts) + 8
    lo, hi = min(Decimal(0), *values), max(Decimal(0), *values)
    hi = hi if hi != lo else lo + 1
    start = label_col + (value_w if lo < 0 else 0)
    end = max(Decimal(width) - 8 - (value_w if hi > 0 else 0), start + 20)

    def x(value: Decimal) -> Decimal:
        return start + (value - lo) * (end - start) / (hi - lo)

    fill = _e(color or PALETTE[0])
    x0 = _r(x(Decimal(0)))
    parts = [_line("chart-axis", x0, pad - 2, x0, height - pad + 2, AXIS_COLOR)]
    for i, ((label, _), value, text) in enumerate(zip(items, values, texts, strict=True)):
        middle = pad + row_h * i + Decimal(row_h) / 2
        x1, x2 = sorted((x0, _r(x(value))))
        parts.append(
            _text(label_col - 8, middle + 4, label, "chart-category", "end", max_chars)
            + f'<rect class="chart-bar" x="{_c(x1)}" y="{_c(middle - bar_h // 2)}" '
            f'width="{_c(x2 - x1)}" height="{bar_h}" fill="{fill}">'
            f"<title>{_e(f'{label}: {text}')}</title></rect>"
        )
        # The value sits past the bar's end: right of a positive bar, left of a negative one.
        value_x, anchor = (x2 + 4, "start") if value >= 0 else (x1 - 4, "end")
        parts.append(_text(value_x, middle + 4, text, "chart-value", anchor))
    if desc is None:
        ranked = sorted(range(len(items)), key=lambda i: values[i], reverse=True)[:3]
        top = "; ".join(f"{items[i][0]} {texts[i]}" for i in ranked)
        desc = f"{title}: {len(items)} items. Largest: {top}."
    return _svg("hbar", title, desc, width, height, "".join(parts))


def table_fallback(
    labels: list[str], series: list[Series], value_format: Formatter = str
) -> list[list[str]]:
    """The chart's data as text rows for an accessible (visually hidden or ``<details>``) table:
    first a header row ``["", series names...]``, then ``[label, formatted values...]`` per label.
    The template escapes the cells as usual; translate the empty corner cell there if wanted."""
    _validate(labels, series)
    rows = [["", *(s.name for s in series)]]
    for i, label in enumerate(labels):
        rows.append([label, *(str(value_format(s.values[i])) for s in series)])
    return rows


def sparkline(
    values: Sequence[Number],
    *,
    title: str,
    color: str = PALETTE[0],
    width: int = 120,
    height: int = 32,
    desc: str | None = None,
) -> str:
    """A small line without axes (a trend beside a number), fixed in size; the last value is
    marked with a dot. An empty or one-value row draws a flat line."""
    rows = [_num(v) for v in values]
    pad = Decimal(3)
    if len(rows) < 2:
        rows = (rows or [Decimal(0)]) * 2
    lo, hi = min(rows), max(rows)
    span = hi - lo
    step = (Decimal(width) - 2 * pad) / (len(rows) - 1)
    inner = Decimal(height) - 2 * pad

    def y(v: Decimal) -> Decimal:
        return pad + inner / 2 if not span else pad + (hi - v) * inner / span

    points = [(pad + step * i, y(v)) for i, v in enumerate(rows)]
    path = " ".join(f"{_c(px)},{_c(py)}" for px, py in points)
    last_x, last_y = points[-1]
    body = (
        f'<polyline class="chart-line" points="{path}" fill="none" stroke="{_e(color)}" '
        f'stroke-width="1.5" stroke-linejoin="round" stroke-linecap="round"/>'
        f'<circle cx="{_c(last_x)}" cy="{_c(last_y)}" r="2" fill="{_e(color)}"/>'
    )
    summary = desc or f"{title}: {', '.join(_e(v) for v in values)}"
    svg = _svg("spark", title, summary, width, height, body)
    return svg.replace('width="100%"', f'width="{width}" height="{height}"', 1)


def day_bars(
    days: Sequence[tuple[str, Decimal | None, str]],
    *,
    title: str,
    width: int = 600,
    height: int = 34,
    desc: str | None = None,
) -> str:
    """One thin bar per day (an uptime history): ``(label, percent or None, tooltip)``; a full
    bar is green at 100 %, amber from 95 % and red below; ``None`` (no data) is grey. Responsive
    (it fills its container's width)."""
    n = max(len(days), 1)
    gap = Decimal(2) if n <= 40 else Decimal(1)
    band = Decimal(width) / n
    bar_w = max(band - gap, Decimal(1))
    parts = []
    for i, (label, percent, tip) in enumerate(days):
        if percent is None:
            fill = "#c8c8c8"
        else:
            p = _num(percent)
            fill = "#009E73" if p >= 100 else "#E69F00" if p >= 95 else "#D55E00"
        parts.append(
            f'<rect class="chart-bar" x="{_c(band * i)}" y="0" width="{_c(bar_w)}" '
            f'height="{height}" rx="1" fill="{fill}"><title>{_e(f"{label}: {tip}")}</title></rect>'
        )
    summary = desc or title
    return _svg("days", title, summary, width, height, "".join(parts))
