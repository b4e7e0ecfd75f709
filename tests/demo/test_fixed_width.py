"""Fixed-width text columns: the same text Python's own formatting would give."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import numpy as np
import pyarrow as pa
from hypothesis import given
from hypothesis import strategies as st

from perennial.demo.fixed_width import (
    decimal_column,
    iso_dates,
    iso_utc,
    mix_bits,
    prefixed_ids,
    scramble,
)

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@given(st.lists(st.integers(-2_208_988_800, 4_102_444_799), min_size=1, max_size=50))
def test_iso_utc_matches_strftime_from_1900_to_2099(seconds: list[int]) -> None:
    expected = [(EPOCH + timedelta(seconds=s)).strftime("%Y-%m-%dT%H:%M:%SZ") for s in seconds]

    assert iso_utc(np.array(seconds)).to_pylist() == expected


@given(st.lists(st.integers(-25_567, 47_481), min_size=1, max_size=50))
def test_iso_dates_matches_isoformat(days: list[int]) -> None:
    expected = [(EPOCH + timedelta(days=d)).date().isoformat() for d in days]

    assert iso_dates(np.array(days)).to_pylist() == expected


def test_prefixed_ids_are_zero_padded_to_the_width() -> None:
    ids = prefixed_ids("C", np.array([1, 42, 9_999_999]), 7)

    assert ids.to_pylist() == ["C0000001", "C0000042", "C9999999"]
    assert ids.type == pa.string()


def test_decimal_column_holds_cents_exactly_including_negatives() -> None:
    column = decimal_column(np.array([1, -1, 12_345, 0, -987_654_321]), pa.decimal128(18, 4))

    assert column.to_pylist() == [
        Decimal("0.01"), Decimal("-0.01"), Decimal("123.45"), Decimal(0), Decimal("-9876543.21"),
    ]  # fmt: skip


def test_scramble_and_mix_bits_are_bijections() -> None:
    numbers = np.arange(1 << 16)

    assert np.unique(scramble(numbers, 1 << 16, 40_503, 7)).shape[0] == 1 << 16
    mixed = mix_bits(numbers, 16, 0xBEEF)
    assert np.unique(mixed).shape[0] == 1 << 16
    assert mixed.min() >= 0 and mixed.max() < 1 << 16


def test_mix_bits_spreads_consecutive_numbers_over_the_whole_range() -> None:
    mixed = mix_bits(np.arange(1, 1_001), 40, 0x1F2E3D4C5B)

    assert (mixed >> 36).min() == 0 and (mixed >> 36).max() == 15  # every leading hex digit
