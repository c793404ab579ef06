"""The SVG charts of otomat.lib.charts, checked on their parsed structure (no database)."""

from __future__ import annotations

import itertools
import re
import xml.etree.ElementTree as ET
from decimal import Decimal

import pytest

from otomat.lib.charts import (
    Series,
    bar_chart,
    horizontal_bar_chart,
    line_chart,
    nice_ticks,
    table_fallback,
)

NS = "{http://www.w3.org/2000/svg}"
MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun"]
NASTY = '<script>&"'


def parse(svg: str) -> ET.Element:
    """The chart as an element tree; fails the test unless it is well-formed XML."""
    root = ET.fromstring(svg)
    assert root.tag == f"{NS}svg"
    return root


def by_class(root: ET.Element, cls: str) -> list[ET.Element]:
    return [el for el in root.iter() if cls in (el.get("class") or "").split()]


def num(el: ET.Element, attr: str) -> Decimal:
    return Decimal(el.get(attr))


def texts(root: ET.Element, cls: str) -> list[str]:
    """The visible text of the labels of ``cls`` (a clipped label's tooltip comes first)."""
    return [
        (el.find(f"{NS}title").tail if el.find(f"{NS}title") is not None else el.text) or ""
        for el in by_class(root, cls)
    ]


def y_ticks(root: ET.Element) -> list[Decimal]:
    return [Decimal(t) for t in texts(root, "chart-y-label")]


def assert_clean_numbers(svg: str) -> None:
    """No nan/inf, and every coordinate has at most one decimal place."""
    assert not re.search(r"nan|inf|e[+-]\d", svg, re.IGNORECASE)
    root = parse(svg)
    for el in root.iter():
        for attr in ("x", "y", "x1", "x2", "y1", "y2", "cx", "cy", "width", "height"):
            if (value := el.get(attr)) is not None and value != "100%":
                assert re.fullmatch(r"-?\d+(\.\d)?", value), (attr, value)
        for pair in (el.get("points") or "").split():
            assert re.fullmatch(r"-?\d+(\.\d)?,-?\d+(\.\d)?", pair), pair


def test_line_chart_has_a_point_and_tooltip_per_value_and_accessible_root():
    svg = line_chart(MONTHS, [Series("MRR", [10, 20, 15, 30, 25, 40])], title="MRR")
    root = parse(svg)
    assert root.get("role") == "img"
    assert root.get("width") == "100%"
    assert root.get("viewBox") == "0 0 640 240"
    title_id, desc_id = root.get("aria-labelledby"), root.get("aria-describedby")
    assert root.find(f"{NS}title").get("id") == title_id
    assert root.find(f"{NS}title").text == "MRR"
    desc = root.find(f"{NS}desc")
    assert desc.get("id") == desc_id and "latest 40 (Jun)" in desc.text
    assert len(by_class(root, "chart-line")) == 1
    points = by_class(root, "chart-point")
    assert len(points) == 6
    assert [p.find(f"{NS}title").text for p in points][:2] == ["Jan: 10", "Feb: 20"]
    assert len(by_class(root, "chart-line")[0].get("points").split()) == 6
    # A bigger value sits higher (smaller y); x grows from left to right.
    assert num(points[5], "cy") < num(points[0], "cy")
    assert [num(p, "cx") for p in points] == sorted(num(p, "cx") for p in points)
    assert_clean_numbers(svg)


def test_grouped_bars_count_and_taller_value_gives_taller_bar():
    root = parse(bar_chart(["a", "b", "c"], [Series("s", [10, 30, 20])], title="t"))
    bars = by_class(root, "chart-bar")
    assert len(bars) == 3
    heights = [num(b, "height") for b in bars]
    assert heights[1] > heights[2] > heights[0] > 0
    # All bars stand on the same baseline: the zero axis.
    axis = by_class(root, "chart-axis")[0]
    assert {num(b, "y") + num(b, "height") for b in bars} == {num(axis, "y1")}

    series = [Series(n, [1, 2, 3, 4]) for n in ("USD", "EUR", "IDR")]
    root = parse(bar_chart(["q1", "q2", "q3", "q4"], series, title="t"))
    bars = by_class(root, "chart-bar")
    assert len(bars) == 12
    assert len({b.get("fill") for b in bars}) == 3
    assert bars[0].find(f"{NS}title").text == "q1 — USD: 1"


def test_stacked_bars_stack_and_negative_segments_go_down():
    series = [Series("paid", [5, 6]), Series("overdue", [1, 2]), Series("refunds", [-1, 0])]
    root = parse(bar_chart(["a", "b"], series, title="t", stacked=True))
    bars = by_class(root, "chart-bar")
    assert len(bars) == 6
    axis_y = num(by_class(root, "chart-axis")[0], "y1")
    paid, overdue, refund = bars[0], bars[1], bars[2]
    assert num(paid, "y") + num(paid, "height") == axis_y
    assert num(overdue, "y") + num(overdue, "height") == num(paid, "y")  # on top of paid
    assert num(refund, "y") == axis_y and num(refund, "height") > 0  # below zero
    assert paid.get("x") == overdue.get("x") == refund.get("x")
    assert max(y_ticks(root)) >= 8 and min(y_ticks(root)) <= -1


@pytest.mark.parametrize(
    ("lo", "hi", "integers"),
    [
        (0, 1, False),
        (0, 9, True),
        (0, 11, True),
        (0, 820, False),
        (Decimal("-50"), Decimal("100"), False),
        (Decimal("0.013"), Decimal("0.047"), False),
        (-7, -2, True),
        (0, 10**15, True),
        (Decimal("-300"), Decimal(10**15), False),
        (0, 0, True),
        (0, 0, False),
        (5, 5, True),
    ],
)
def test_nice_ticks_cover_the_range_with_nice_steps(lo, hi, integers):
    ticks = nice_ticks(Decimal(lo), Decimal(hi), integers=integers)
    assert 4 <= len(ticks) <= 6
    assert ticks[0] <= lo and ticks[-1] >= hi
    steps = {b - a for a, b in itertools.pairwise(ticks)}
    assert len(steps) == 1
    step = steps.pop()
    mantissa = step.scaleb(-step.adjusted()).normalize()
    assert mantissa in {1, 2, Decimal("2.5"), 5}
    if integers:
        assert all(t == int(t) for t in ticks)
    assert all("E" not in str(t) for t in ticks)


def test_nice_ticks_sweep_stays_within_four_to_six_gridlines():
    for hi in range(1, 400):
        for lo in (0, -3, -hi // 2):
            for integers in (True, False):
                ticks = nice_ticks(Decimal(lo), Decimal(hi), integers=integers)
                assert 4 <= len(ticks) <= 6, (lo, hi, integers, ticks)
                assert ticks[0] <= lo and ticks[-1] >= hi


def test_y_axis_labels_are_nice_and_cover_the_data():
    svg = line_chart(
        MONTHS,
        [Series("m", [Decimal(v) for v in ("120.5", "180", "240", "310", "415", "820")])],
        title="t",
        value_format=lambda v: f"${v}",
    )
    root = parse(svg)
    assert texts(root, "chart-y-label") == ["$0", "$200", "$400", "$600", "$800", "$1000"]
    assert len(by_class(root, "chart-grid")) == 6


def test_labels_and_names_are_escaped():
    svg = line_chart(
        [NASTY, "b"],
        [Series(NASTY, [1, 2]), Series("x", [2, 1], color='red"/>')],
        title=NASTY,
        value_format=lambda v: f"{v}{NASTY}",
    )
    assert "<script>" not in svg
    root = parse(svg)
    assert root.find(f"{NS}title").text == NASTY
    assert NASTY in texts(root, "chart-x-label")
    assert NASTY in texts(root, "chart-legend-label")
    assert (
        by_class(root, "chart-point")[0].find(f"{NS}title").text == f"{NASTY} — {NASTY}: 1{NASTY}"
    )
    assert by_class(root, "chart-line")[1].get("stroke") == 'red"/>'

    svg = horizontal_bar_chart([(NASTY, 5)], title=NASTY, value_format=lambda v: f"{v}&")
    assert "<script>" not in svg
    root = parse(svg)
    assert texts(root, "chart-category") == [NASTY]
    assert texts(root, "chart-value") == ["5&"]
    assert "\x00" not in line_chart(["a\x00b"], [Series("s", [1])], title="t")


def test_empty_state_renders_a_frame_and_the_given_text():
    for svg in (
        line_chart([], [], title="t"),
        line_chart(["a", "b"], [], title="t"),
        bar_chart([], [Series("s", [])], title="t"),
        horizontal_bar_chart([], title="t"),
    ):
        root = parse(svg)
        assert texts(root, "chart-empty") == ["No data yet"]
        assert by_class(root, "chart-axis") and not by_class(root, "chart-bar")
    root = parse(bar_chart([], [], title="t", empty_text="Noch keine Daten"))
    assert texts(root, "chart-empty") == ["Noch keine Daten"]
    assert root.find(f"{NS}desc").text == "Noch keine Daten"


def test_desc_can_be_given_by_the_caller():
    svg = bar_chart(["a"], [Series("s", [1])], title="Umsatz", desc="Umsatz: zuletzt 1 <€>")
    assert parse(svg).find(f"{NS}desc").text == "Umsatz: zuletzt 1 <€>"


def test_negative_values():
    root = parse(line_chart(["a", "b", "c"], [Series("s", [-50, 20, 100])], title="t"))
    ticks = y_ticks(root)
    assert ticks[0] <= -50 < 100 <= ticks[-1] and 0 in ticks
    axis_y = num(by_class(root, "chart-axis")[0], "y1")
    low, zero_ish, high = by_class(root, "chart-point")
    assert num(low, "cy") > axis_y > num(zero_ish, "cy") > num(high, "cy")

    root = parse(line_chart(["a", "b"], [Series("s", [-7, -2])], title="t", y_min_zero=False))
    ticks = y_ticks(root)
    assert ticks[0] <= -7 and -2 <= ticks[-1] < 0

    root = parse(bar_chart(["a", "b"], [Series("s", [-300, 500])], title="t"))
    axis_y = num(by_class(root, "chart-axis")[0], "y1")
    down, up = by_class(root, "chart-bar")
    assert num(down, "y") == axis_y and num(down, "height") > 0
    assert num(up, "y") + num(up, "height") == axis_y

    root = parse(horizontal_bar_chart([("a", 10), ("b", -5)], title="t"))
    axis_x = num(by_class(root, "chart-axis")[0], "x1")
    pos, neg = by_class(root, "chart-bar")
    assert num(pos, "x") == axis_x and num(neg, "x") + num(neg, "width") == axis_x


def test_output_is_deterministic_and_ids_differ_between_charts():
    def make(values):
        return bar_chart(MONTHS[:2], [Series("a", values), Series("b", [3, 4])], title="t")

    assert make([1, 2]) == make([1, 2])
    first, second = parse(make([1, 2])), parse(make([1, 5]))
    assert first.get("aria-labelledby") != second.get("aria-labelledby")
    assert re.fullmatch(r"chart-[0-9a-f]{12}-title", first.get("aria-labelledby"))


def test_mismatched_series_length_is_an_error():
    with pytest.raises(ValueError, match="series 'EUR' has 2 values but there are 3 labels"):
        line_chart(["a", "b", "c"], [Series("USD", [1, 2, 3]), Series("EUR", [1, 2])], title="t")
    with pytest.raises(ValueError, match="has 1 values but there are 0 labels"):
        bar_chart([], [Series("s", [1])], title="t")
    with pytest.raises(ValueError, match="has 1 values"):
        table_fallback(["a", "b"], [Series("s", [1])])


def test_legend_only_with_more_than_one_series():
    one = parse(line_chart(MONTHS, [Series("a", [1] * 6)], title="t"))
    assert not by_class(one, "chart-legend")
    two = parse(line_chart(MONTHS, [Series("a", [1] * 6), Series("b", [2] * 6)], title="t"))
    assert texts(two, "chart-legend-label") == ["a", "b"]
    swatches = by_class(two, "chart-swatch")
    assert [s.get("fill") for s in swatches] == [
        line.get("stroke") for line in by_class(two, "chart-line")
    ]


def test_many_labels_are_thinned():
    labels = [f"2025-{i:03d}" for i in range(100)]
    root = parse(line_chart(labels, [Series("s", list(range(100)))], title="t"))
    shown = by_class(root, "chart-x-label")
    assert 2 <= len(shown) <= 12
    assert shown[0].text == "2025-000"
    xs = [num(el, "x") for el in shown]
    assert min(b - a for a, b in itertools.pairwise(xs)) > 8 * Decimal("6.6")
    assert len(by_class(root, "chart-point")) == 100  # every value still has its tooltip
    root = parse(bar_chart(labels[:5], [Series("s", [1] * 5)], title="t"))
    assert len(by_class(root, "chart-x-label")) == 5


def test_decimal_and_int_inputs_give_the_same_geometry():
    ints = line_chart(MONTHS, [Series("s", [100, 250, 0, 75, 300, 120])], title="t")
    decimals = line_chart(
        MONTHS, [Series("s", [Decimal(v) for v in (100, 250, 0, 75, 300, 120)])], title="t"
    )
    assert [p.get("cy") for p in by_class(parse(ints), "chart-point")] == [
        p.get("cy") for p in by_class(parse(decimals), "chart-point")
    ]
    seen: list[object] = []
    bar_chart(
        ["a", "b"], [Series("s", [1234, 5])], title="t", value_format=lambda v: seen.append(v) or ""
    )
    assert all(type(v) is int for v in seen)  # int data: ticks reach value_format as ints
    seen.clear()
    bar_chart(
        ["a"],
        [Series("s", [Decimal("12.34")])],
        title="t",
        value_format=lambda v: seen.append(v) or "",
    )
    assert all(isinstance(v, Decimal) for v in seen) and Decimal("12.34") in seen


def test_edge_cases_render_clean_numbers():
    charts = [
        line_chart(["only"], [Series("s", [42])], title="t"),
        line_chart(["a", "b"], [Series("s", [0, 0])], title="t"),
        line_chart(
            ["a", "b"], [Series("s", [Decimal(5), Decimal(5)])], title="t", y_min_zero=False
        ),
        bar_chart(["a", "b"], [Series("s", [0, 0])], title="t", stacked=True),
        bar_chart(["a", "b"], [Series("s", [10**15, -(10**15)])], title="t"),
        line_chart(["a", "b"], [Series("s", [Decimal("0.001"), Decimal("0.003")])], title="t"),
        horizontal_bar_chart([("a", 0), ("b", 0)], title="t"),
        horizontal_bar_chart([("a", 10**15), ("b", Decimal("0.5"))], title="t"),
    ]
    for svg in charts:
        assert_clean_numbers(svg)
    single = parse(charts[0])
    (point,) = by_class(single, "chart-point")
    assert num(point, "cx") > 100  # a lone point sits in the middle, not on the edge
    huge = parse(charts[4])
    assert y_ticks(huge)[-1] >= 10**15 and y_ticks(huge)[0] <= -(10**15)
    with pytest.raises(ValueError, match="finite"):
        line_chart(["a"], [Series("s", [Decimal("NaN")])], title="t")
    with pytest.raises(ValueError, match="finite"):
        bar_chart(["a"], [Series("s", [float("inf")])], title="t")


def test_horizontal_bar_chart_grows_with_items_and_clips_long_labels():
    long_name = "A product with an extraordinarily long name that goes on and on"
    items = [("Shop bot", Decimal("1234.50")), ("Support bot", Decimal(820)), (long_name, 35)]
    root = parse(horizontal_bar_chart(items, title="Revenue"))
    bars = by_class(root, "chart-bar")
    assert [num(b, "width") for b in bars] == sorted((num(b, "width") for b in bars), reverse=True)
    assert bars[2].find(f"{NS}title").text == f"{long_name}: 35"
    clipped = by_class(root, "chart-category")[2]
    assert clipped.find(f"{NS}title").text == long_name and clipped.find(
        f"{NS}title"
    ).tail.endswith("…")
    heights = [
        Decimal(parse(horizontal_bar_chart(items[:n], title="t")).get("viewBox").split()[3])
        for n in (1, 2, 3)
    ]
    assert heights[0] < heights[1] < heights[2]
    assert "Largest: Shop bot 1234.50" in root.find(f"{NS}desc").text


def test_table_fallback_rows():
    rows = table_fallback(
        ["Jan", "Feb"], [Series("USD", [1, 2]), Series("EUR", [3, 4])], lambda v: f"{v}.00"
    )
    assert rows == [["", "USD", "EUR"], ["Jan", "1.00", "3.00"], ["Feb", "2.00", "4.00"]]


def test_sparkline_is_a_small_fixed_line_with_the_last_value_marked():
    from otomat.lib.charts import sparkline

    svg = sparkline([3, 4, 4, 1], title="Running <14 days>", color="#009E73")
    root = parse(svg)
    assert root.get("width") == "120" and root.get("height") == "32"
    assert "Running &lt;14 days&gt;" in svg
    [line] = [el for el in root.iter() if el.tag.endswith("polyline")]
    points = [tuple(map(float, p.split(","))) for p in line.get("points").split()]
    assert len(points) == 4
    ys = [y for _x, y in points]
    assert ys[1] == ys[2] == min(ys) and ys[3] == max(ys)  # higher value = higher on screen
    [dot] = [el for el in root.iter() if el.tag.endswith("circle")]
    assert float(dot.get("cx")) == points[-1][0]
    # No data or one value: a flat line, never a division by zero.
    for values in ([], [5], [2, 2, 2]):
        flat = parse(sparkline(values, title="t"))
        [line] = [el for el in flat.iter() if el.tag.endswith("polyline")]
        assert len({p.split(",")[1] for p in line.get("points").split()}) == 1
    with pytest.raises(ValueError):
        sparkline([1, float("nan")], title="t")


def test_day_bars_colour_each_day_by_its_percent_and_grey_without_data():
    from otomat.lib.charts import day_bars

    svg = day_bars(
        [
            ("d1", Decimal(100), "100 %"),
            ("d2", Decimal("99.5"), "99.5 %"),
            ("d3", Decimal(50), "50 %"),
            ("d4", None, "no <data>"),
        ],
        title="Uptime",
    )
    root = parse(svg)
    rects = [el for el in root.iter() if el.tag.endswith("rect")]
    assert [r.get("fill") for r in rects] == ["#009E73", "#E69F00", "#D55E00", "#c8c8c8"]
    assert "d4: no &lt;data&gt;" in svg
    assert len({r.get("width") for r in rects}) == 1
    with pytest.raises(TypeError):
        day_bars([("d", "100", "x")], title="t")


@pytest.mark.parametrize(
    ("lang", "words"),
    [("en", "6 values from Jan to Jun"), ("id", "6 nilai dari Jan"), ("pl", "6 wartości od Jan")],
)
def test_the_charts_description_is_in_the_readers_language(lang, words):
    from django.utils import translation

    with translation.override(lang):
        svg = line_chart(MONTHS, [Series("MRR", [10, 20, 15, 30, 25, 40])], title="MRR")
    desc = parse(svg).find(f"{NS}desc").text
    assert words in desc
    if lang != "en":
        assert "latest" not in desc and "highest" not in desc
