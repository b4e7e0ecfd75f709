"""Durations as journey files write them."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from perennial.journeys.durations import MAX_DURATION, format_duration, parse_duration


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30m", timedelta(minutes=30)),
        ("24h", timedelta(hours=24)),
        ("7d", timedelta(days=7)),
        ("1d12h", timedelta(hours=36)),
        ("2w", timedelta(days=14)),
        (" 1D 2H ", timedelta(hours=26)),
        ("90s", timedelta(seconds=90)),
    ],
)
def test_reads_units_largest_first(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "7", "d", "7x", "12h1d", "1d1d", "-1d", "1.5d", "0d", "0s"])
def test_rejects_what_is_not_a_positive_duration(text: str) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


def test_rejects_absurd_lengths() -> None:
    with pytest.raises(ValueError, match="longer than 3660 days"):
        parse_duration("3661d")
    assert parse_duration("3660d") == MAX_DURATION


@given(st.integers(min_value=1, max_value=int(MAX_DURATION.total_seconds())))
def test_format_reads_back(seconds: int) -> None:
    duration = timedelta(seconds=seconds)
    assert parse_duration(format_duration(duration)) == duration
