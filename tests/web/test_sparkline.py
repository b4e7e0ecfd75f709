"""The segment list's 30-day trend line: highest size at the top, evenly spaced days."""

from __future__ import annotations

from perennial.web.segments_page import sparkline


def test_fewer_than_two_days_draw_nothing() -> None:
    assert sparkline([]) == "" and sparkline([5]) == ""


def test_the_largest_size_is_at_the_top_and_days_span_the_width() -> None:
    points = [tuple(map(float, p.split(","))) for p in sparkline([10, 30, 20]).split()]
    assert [x for x, _ in points] == [0.0, 60.0, 120.0]
    assert points[1][1] < points[2][1] < points[0][1]


def test_a_flat_trend_is_a_flat_line() -> None:
    assert len({y for _, y in (p.split(",") for p in sparkline([7, 7, 7]).split())}) == 1
