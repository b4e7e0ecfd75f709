"""The BTYD summary: read from summary_for_btyd, validated with errors that name the customer,
compressed into distinct rows without losing anyone."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from perennial.models.btyd_data import (
    BtydInputError,
    BtydSummary,
    as_summary,
    compress_summary,
    distinct_rows,
)


def _table(**overrides: list[object]) -> pa.Table:
    columns: dict[str, list[object]] = {
        "customer_id": ["a", "b", "c"],
        "frequency": [0, 2, 5],
        "recency": [0.0, 3.0, 10.0],
        "T": [4.0, 5.0, 10.0],
        "monetary_value": [0.0, 20.0, 35.5],
    }
    columns.update(overrides)
    return pa.table(columns)


def test_the_cdnow_summary_reads_as_2357_customers_with_their_ids_and_spend(
    cdnow_calibration_table: pa.Table,
) -> None:
    summary = BtydSummary.from_arrow(cdnow_calibration_table)
    assert len(summary) == 2_357
    assert summary.customer_id[0] == "0001"
    assert summary.frequency.sum() == 2_457
    assert summary.monetary_value is not None
    assert np.sum(summary.monetary_value > 0) == 946


def test_compressing_cdnow_keeps_every_customer_in_fewer_rows(
    cdnow_calibration: BtydSummary,
) -> None:
    rows = cdnow_calibration.compressed
    assert len(rows) < len(cdnow_calibration) / 2
    assert rows.weight.sum() == len(cdnow_calibration)
    for column in ("frequency", "recency", "T"):
        assert np.array_equal(
            getattr(rows, column)[rows.inverse], getattr(cdnow_calibration, column)
        )


def test_identical_rows_compress_to_one_row_weighted_by_their_count() -> None:
    rows = compress_summary(np.full(5, 2.0), np.full(5, 3.0), np.full(5, 4.0))
    assert (len(rows), rows.weight.tolist(), rows.inverse.tolist()) == (1, [5.0], [0] * 5)


def test_an_empty_summary_compresses_to_nothing() -> None:
    rows = BtydSummary.from_arrays([], [], []).compressed
    assert len(rows) == 0 and rows.weight.sum() == 0


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 3), st.integers(0, 3), st.sampled_from([0.5, 1.0, 1e6])),
        min_size=1,
        max_size=40,
    )
)
def test_distinct_rows_finds_each_combination_once_and_maps_every_row_to_it(
    rows: list[tuple[int, int, float]],
) -> None:
    columns = [np.array(column, dtype=np.float64) for column in zip(*rows, strict=True)]
    representative, inverse, counts = distinct_rows(*columns)
    table = np.column_stack(columns)
    assert len({tuple(row) for row in table[representative]}) == len(representative)
    assert len(representative) == len(set(rows))
    assert np.array_equal(table[representative][inverse], table)
    assert np.array_equal(np.bincount(inverse), counts)


def test_distinct_rows_with_a_huge_key_space_sorts_instead_of_counting() -> None:
    rng = np.random.default_rng(3)
    columns = [rng.integers(0, 20_000, 3_000).astype(np.float64) for _ in range(5)]
    columns = [np.concatenate([c, c[:100]]) for c in columns]  # 100 repeated rows
    representative, inverse, counts = distinct_rows(*columns)
    table = np.column_stack(columns)
    assert len(representative) == len({tuple(row) for row in table})
    assert np.array_equal(table[representative][inverse], table)
    assert counts.sum() == 3_100


def test_the_summary_goes_back_to_a_table_with_the_same_columns() -> None:
    summary = BtydSummary.from_arrow(_table())
    table = summary.to_arrow()
    assert table.column_names == ["customer_id", "frequency", "recency", "T", "monetary_value"]
    assert table.column("frequency").to_pylist() == [0, 2, 5]
    assert BtydSummary.from_arrow(table).T.tolist() == [4.0, 5.0, 10.0]


def test_a_customer_who_first_bought_on_the_last_day_has_t_0_and_is_kept() -> None:
    summary = BtydSummary.from_arrays([0, 1], [0.0, 2.0], [0.0, 3.0])
    assert summary.T.tolist() == [0.0, 3.0]


def test_arrays_without_ids_name_customers_by_row_number() -> None:
    with pytest.raises(BtydInputError) as caught:
        BtydSummary.from_arrays([0, 1, -1], [0.0, 1.0, 0.0], [1.0, 2.0, 3.0])
    assert caught.value.customer_id == "2"


@pytest.mark.parametrize(
    ("column", "values", "reason"),
    [
        ("frequency", [0, -1, 5], "is negative"),
        ("frequency", [0, 1.5, 5], "is not whole"),
        ("recency", [0.0, 6.0, 10.0], "is later than T"),
        ("recency", [0.0, -1.0, 10.0], "is negative"),
        ("T", [4.0, -5.0, 10.0], "is negative"),
        ("recency", [0.0, float("nan"), 10.0], "not a finite number"),
        ("T", [4.0, float("inf"), 10.0], "not a finite number"),
        ("monetary_value", [0.0, float("inf"), 35.5], "not a finite number"),
    ],
)
def test_a_bad_value_is_reported_with_the_customer_and_the_column(
    column: str, values: list[float], reason: str
) -> None:
    with pytest.raises(BtydInputError, match=reason) as caught:
        BtydSummary.from_arrow(_table(**{column: values}))
    assert (caught.value.customer_id, caught.value.column) == ("b", column)
    assert "customer 'b'" in str(caught.value)


def test_recency_without_a_repeat_purchase_is_refused() -> None:
    with pytest.raises(BtydInputError, match="frequency is 0") as caught:
        BtydSummary.from_arrow(_table(recency=[1.0, 3.0, 10.0]))
    assert caught.value.customer_id == "a"


def test_every_bad_customer_is_counted_not_only_the_first() -> None:
    with pytest.raises(BtydInputError, match=r"and 1 more customers"):
        BtydSummary.from_arrow(_table(T=[4.0, -1.0, -2.0]))


def test_nulls_in_a_count_column_are_refused_naming_the_customers() -> None:
    with pytest.raises(BtydInputError, match="null") as caught:
        BtydSummary.from_arrow(_table(recency=[0.0, None, None]))
    assert (caught.value.customer_id, caught.value.column) == ("b", "recency")
    assert "'c'" in str(caught.value)


def test_missing_spend_is_kept_as_nan_for_gamma_gamma_to_leave_out() -> None:
    summary = BtydSummary.from_arrow(_table(monetary_value=[0.0, None, 35.5]))
    assert summary.monetary_value is not None
    assert np.isnan(summary.monetary_value[1])


def test_a_summary_without_spend_has_no_monetary_value() -> None:
    summary = BtydSummary.from_arrow(_table().drop_columns(["monetary_value"]))
    assert summary.monetary_value is None


def test_a_table_without_a_required_column_is_refused() -> None:
    with pytest.raises(BtydInputError, match="no column"):
        BtydSummary.from_arrow(_table().drop_columns(["T"]))


def test_columns_of_different_lengths_are_refused() -> None:
    with pytest.raises(BtydInputError, match="3 values") as caught:
        BtydSummary.from_arrays([0, 1, 2], [0.0, 1.0, 2.0], [1.0, 2.0])
    assert caught.value.column == "T"


def test_a_single_number_is_not_a_column() -> None:
    with pytest.raises(BtydInputError, match="1-d column") as caught:
        BtydSummary.from_arrays(3, 1.0, 2.0)
    assert caught.value.column == "frequency"


def test_text_where_numbers_belong_is_refused() -> None:
    with pytest.raises(BtydInputError, match="not numbers") as caught:
        BtydSummary.from_arrays(["one"], [0.0], [1.0])
    assert caught.value.column == "frequency"


def test_as_summary_accepts_tables_and_summaries_only() -> None:
    summary = as_summary(_table())
    assert as_summary(summary) is summary
    with pytest.raises(TypeError, match="BtydSummary or a pyarrow Table"):
        as_summary({"frequency": [1]})  # type: ignore[arg-type]
