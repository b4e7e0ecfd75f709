"""Ranking a narrow copy of a wide table and joining it back changes no score or tier."""

from __future__ import annotations

import ibis
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from perennial.lifecycle.narrow_join import WIDE_COLUMNS, is_wide, join_narrow
from perennial.lifecycle.rfm import score_rfm
from perennial.lifecycle.tiers import assign_value_tiers

_rows = st.lists(
    st.tuples(
        st.one_of(st.none(), st.floats(0, 400, allow_nan=False)),
        st.integers(0, 30),
        st.floats(0, 5000, allow_nan=False),
    ),
    min_size=1,
    max_size=60,
)


def _tables(rows: list[tuple[float | None, int, float]]) -> tuple[ibis.Table, ibis.Table]:
    """The same customers as a narrow table and with enough extra columns to be wide."""
    data = {
        "customer_id": [f"c{i:03d}" for i in range(len(rows))],
        "recency_days": [r for r, _, _ in rows],
        "frequency_orders": [f if r is not None else 0 for r, f, _ in rows],
        "monetary_total": [m for _, _, m in rows],
    }
    narrow = pa.table(data)
    extra = {f"extra_{i}": list(range(len(rows))) for i in range(WIDE_COLUMNS)}
    wide = pa.table({**data, **extra})
    return ibis.memtable(narrow), ibis.memtable(wide)


def _by_customer(table: ibis.Table, columns: list[str]) -> list[dict[str, object]]:
    rows = table.select("customer_id", *columns).to_pyarrow().to_pylist()
    return sorted(rows, key=lambda row: str(row["customer_id"]))


@settings(max_examples=40, deadline=None)
@given(_rows)
def test_wide_and_narrow_tables_get_the_same_scores_and_tiers(
    rows: list[tuple[float | None, int, float]],
) -> None:
    narrow, wide = _tables(rows)
    assert not is_wide(narrow) and is_wide(wide)
    columns = ["rfm_r", "rfm_f", "rfm_m", "rfm_code", "rfm_segment", "value_tier"]

    from_narrow = _by_customer(assign_value_tiers(score_rfm(narrow)), columns)
    from_wide = _by_customer(assign_value_tiers(score_rfm(wide)), columns)

    assert from_narrow == from_wide


def test_join_narrow_replaces_columns_in_place_and_appends_new_ones() -> None:
    table = ibis.memtable(pa.table({"customer_id": ["a", "b"], "x": [1, 2], "y": [3, 4]}))
    computed = ibis.memtable(pa.table({"key": ["b", "a"], "x": [20, 10], "z": [200, 100]}))

    joined = join_narrow(table, computed, "key", ("x", "z"))

    assert joined.columns == ("customer_id", "x", "y", "z")
    assert _by_customer(joined, ["x", "y", "z"]) == [
        {"customer_id": "a", "x": 10, "y": 3, "z": 100},
        {"customer_id": "b", "x": 20, "y": 4, "z": 200},
    ]
