"""RFM scores, codes and segments on DuckDB, against hand-computed expectations."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import ibis
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from perennial.lifecycle.rfm import RFM_COLUMNS, score_rfm, segment_grid
from perennial.lifecycle.rfm_config import RfmConfig, parse_rfm_config
from perennial.lifecycle.rfm_segments import grid_cells

FEATURES_SCHEMA = {
    "customer_id": "string",
    "recency_days": "float64",
    "frequency_orders": "int64",
    "monetary_total": "float64",
}

Row = tuple[str, float | None, int, float | None]


@pytest.fixture(scope="module")
def con() -> Any:
    return ibis.duckdb.connect()


def features(rows: Sequence[Row]) -> Any:
    """A features table from (customer_id, recency_days, frequency_orders, monetary_total)."""
    columns = list(FEATURES_SCHEMA)
    return ibis.memtable(
        {name: [row[i] for row in rows] for i, name in enumerate(columns)}, schema=FEATURES_SCHEMA
    )


def scored(con: Any, rows: Sequence[Row], config: RfmConfig | None = None) -> dict[str, Any]:
    """customer_id -> its output row."""
    result = con.to_pyarrow(score_rfm(features(rows), config)).to_pylist()
    return {row["customer_id"]: row for row in result}


# Ten customers who ordered and two who never did. By hand, with the default
# config (R and M by percent rank over the 10, F cut at 1 | 2 | 3 | 4-5 | 6+):
# sorted positions 0..9 score 1,1,2,2,3,3,4,4,5,5; c02 and c03 tie on recency
# at positions 7 and 8, so both take position 7's score, 4.
TEN_CUSTOMERS: list[Row] = [
    ("c01", 2.0, 9, 900.0),
    ("c02", 5.0, 2, 450.0),
    ("c03", 5.0, 6, 300.0),
    ("c04", 10.0, 1, 40.0),
    ("c05", 25.0, 2, 120.0),
    ("c06", 40.0, 3, 200.0),
    ("c07", 60.0, 1, 15.0),
    ("c08", 120.0, 7, 600.0),
    ("c09", 200.0, 2, 60.0),
    ("c10", 400.0, 1, 25.0),
    ("c11", None, 0, 0.0),
    ("c12", None, 0, None),
]

EXPECTED = {
    "c01": (5, 5, 5, 5, "555", "champions"),
    "c02": (4, 2, 4, 3, "424", "potential_loyalist"),
    "c03": (4, 5, 4, 4, "454", "champions"),
    "c04": (4, 1, 2, 1, "412", "promising"),
    "c05": (3, 2, 3, 2, "323", "about_to_sleep"),
    "c06": (3, 3, 3, 3, "333", "need_attention"),
    "c07": (2, 1, 1, 1, "211", "hibernating"),
    "c08": (2, 5, 5, 5, "255", "cant_lose_them"),
    "c09": (1, 2, 2, 2, "122", "lost"),
    "c10": (1, 1, 1, 1, "111", "lost"),
    "c11": (None, None, None, None, None, "no_orders"),
    "c12": (None, None, None, None, None, "no_orders"),
}


def test_ten_customers_get_the_hand_computed_scores_codes_and_segments(con: Any) -> None:
    result = scored(con, TEN_CUSTOMERS)

    actual = {key: tuple(row[column] for column in RFM_COLUMNS) for key, row in result.items()}
    assert actual == EXPECTED


def test_scores_are_small_integers_and_the_input_columns_are_kept() -> None:
    schema = score_rfm(features(TEN_CUSTOMERS)).schema()

    assert all(schema[name].is_int8() for name in ("rfm_r", "rfm_f", "rfm_m", "rfm_fm"))
    assert list(schema)[:4] == list(FEATURES_SCHEMA)


def test_customers_without_orders_are_not_counted_in_the_quantiles(con: Any) -> None:
    many_without_orders = TEN_CUSTOMERS + [(f"x{i:02d}", None, 0, 0.0) for i in range(40)]

    result = scored(con, many_without_orders)

    assert {key: result[key]["rfm_code"] for key in EXPECTED} == {
        key: code for key, (*_, code, _) in EXPECTED.items()
    }
    assert {result[f"x{i:02d}"]["rfm_segment"] for i in range(40)} == {"no_orders"}


def test_a_recency_without_any_order_counts_as_no_orders(con: Any) -> None:
    result = scored(con, [*TEN_CUSTOMERS, ("odd", 3.0, 0, 0.0)])

    assert result["odd"]["rfm_segment"] == "no_orders"
    assert result["odd"]["rfm_r"] is None


def test_the_config_names_the_segment_of_customers_without_orders(con: Any) -> None:
    config = parse_rfm_config({"no_orders": {"key": "prospect", "label": {"en": "P", "zh": "潜"}}})

    assert scored(con, TEN_CUSTOMERS, config)["c11"]["rfm_segment"] == "prospect"


def test_equal_monetary_values_get_equal_m_scores_across_a_bucket_edge(con: Any) -> None:
    # Positions 0..9 would score 1,1,2,2,3,3,4,4,5,5; the four 100s sit at positions 2-5.
    rows: list[Row] = [
        (f"c{i}", 10.0, 1, amount)
        for i, amount in enumerate([10.0, 20.0, 100.0, 100.0, 100.0, 100.0, 300.0, 400.0, 500, 600])
    ]

    scores = [row["rfm_m"] for _, row in sorted(scored(con, rows).items())]

    assert scores == [1, 1, 2, 2, 2, 2, 4, 4, 5, 5]


def test_everyone_tied_scores_one_on_a_quantile_axis(con: Any) -> None:
    rows: list[Row] = [(f"c{i}", 30.0, 2, 50.0) for i in range(7)]

    result = scored(con, rows)

    assert {(row["rfm_r"], row["rfm_m"]) for row in result.values()} == {(1, 1)}


def test_a_lone_customer_who_ordered_scores_one_on_the_quantile_axes(con: Any) -> None:
    result = scored(con, [("only", 1.0, 1, 99.0), ("never", None, 0, 0.0)])

    assert (result["only"]["rfm_r"], result["only"]["rfm_m"]) == (1, 1)


def test_quantile_f_on_mostly_one_time_buyers_leaves_scores_two_and_three_empty(con: Any) -> None:
    """Why F is cut at fixed order counts by default: its quantiles are degenerate."""
    config = parse_rfm_config({"scores": {"f": "quantile"}})
    counts = [1] * 6 + [2, 2, 3, 8]
    rows: list[Row] = [(f"c{i}", 10.0 + i, n, 10.0 + i) for i, n in enumerate(counts)]

    result = scored(con, rows, config)

    assert [result[f"c{i}"]["rfm_f"] for i in range(10)] == [1] * 6 + [4, 4, 5, 5]


THRESHOLDS = {
    "scores": {"r": [7, 30, 90, 180], "f": [1, 2, 4, 8], "m": [50, 100, 500, 1000]},
}


@pytest.mark.parametrize(
    ("recency_days", "expected"),
    [(0.0, 5), (7.0, 5), (7.5, 4), (30.0, 4), (30.01, 3), (90.0, 3), (180.0, 2), (180.5, 1)],
)
def test_fixed_recency_cuts_are_inclusive_upper_edges(
    con: Any, recency_days: float, expected: int
) -> None:
    result = scored(con, [("c", recency_days, 1, 10.0)], parse_rfm_config(THRESHOLDS))

    assert result["c"]["rfm_r"] == expected


@pytest.mark.parametrize(
    ("frequency_orders", "expected"), [(1, 1), (2, 2), (3, 3), (4, 3), (5, 4), (8, 4), (9, 5)]
)
def test_fixed_frequency_cuts_are_inclusive_upper_edges(
    con: Any, frequency_orders: int, expected: int
) -> None:
    result = scored(con, [("c", 1.0, frequency_orders, 10.0)], parse_rfm_config(THRESHOLDS))

    assert result["c"]["rfm_f"] == expected


@pytest.mark.parametrize(
    ("monetary_total", "expected"),
    [(0.0, 1), (50.0, 1), (50.01, 2), (100.0, 2), (500.0, 3), (1000.0, 4), (1000.01, 5)],
)
def test_fixed_monetary_cuts_are_inclusive_upper_edges(
    con: Any, monetary_total: float, expected: int
) -> None:
    result = scored(con, [("c", 1.0, 1, monetary_total)], parse_rfm_config(THRESHOLDS))

    assert result["c"]["rfm_m"] == expected


def test_fixed_cuts_place_a_recent_one_time_buyer_in_new_and_a_mid_recency_regular_in_loyal(
    con: Any,
) -> None:
    rows: list[Row] = [("first", 3.0, 1, 20.0), ("regular", 60.0, 6, 800.0)]

    result = scored(con, rows, parse_rfm_config(THRESHOLDS))

    assert (result["first"]["rfm_code"], result["first"]["rfm_segment"]) == ("511", "new")
    assert (result["regular"]["rfm_code"], result["regular"]["rfm_segment"]) == ("344", "loyal")


def test_scoring_a_scored_table_again_replaces_its_rfm_columns(con: Any) -> None:
    once = score_rfm(features(TEN_CUSTOMERS))

    twice = con.to_pyarrow(score_rfm(once).order_by("customer_id")).to_pylist()

    assert len(twice[0]) == len(FEATURES_SCHEMA) + len(RFM_COLUMNS)
    assert [row["rfm_segment"] for row in twice] == [segment for *_, segment in EXPECTED.values()]


def test_a_table_without_the_feature_columns_is_refused_naming_the_missing_ones() -> None:
    table = ibis.table({"customer_id": "string", "recency_days": "float64"}, name="partial")

    with pytest.raises(ValueError, match="frequency_orders, monetary_total"):
        score_rfm(table)


def test_the_segment_grid_counts_customers_who_ordered_per_cell_best_cells_first(
    con: Any,
) -> None:
    grid = con.to_pyarrow(segment_grid(score_rfm(features(TEN_CUSTOMERS)))).to_pylist()

    assert [(c["rfm_r"], c["rfm_fm"], c["rfm_segment"], c["customers"]) for c in grid] == [
        (5, 5, "champions", 1),
        (4, 4, "champions", 1),
        (4, 3, "potential_loyalist", 1),
        (4, 1, "promising", 1),
        (3, 3, "need_attention", 1),
        (3, 2, "about_to_sleep", 1),
        (2, 5, "cant_lose_them", 1),
        (2, 1, "hibernating", 1),
        (1, 2, "lost", 1),
        (1, 1, "lost", 1),
    ]


def test_the_grid_layout_has_one_segment_in_each_of_the_25_default_cells() -> None:
    layout = grid_cells()

    assert [(r, fm) for r, fm, _ in layout] == [
        (r, fm) for r in range(5, 0, -1) for fm in range(5, 0, -1)
    ]
    assert layout[0] == (5, 5, "champions")
    assert layout[-1] == (1, 1, "lost")


def test_the_segment_grid_shows_each_segment_of_a_cell_a_config_splits_by_frequency(
    con: Any,
) -> None:
    config = parse_rfm_config(
        {
            "segments": {
                "one_timers": {"label": {"en": "One-timers", "zh": "一次客"}, "f": 1},
                "repeaters": {"label": {"en": "Repeaters", "zh": "复购客"}, "f": [2, 5]},
            }
        }
    )

    grid = con.to_pyarrow(segment_grid(score_rfm(features(TEN_CUSTOMERS), config))).to_pylist()

    assert {(r, fm) for r, fm, _ in grid_cells(config.segments)} == {
        (r, fm) for r in range(1, 6) for fm in range(1, 6)
    }
    assert {key for r, fm, key in grid_cells(config.segments) if (r, fm) == (2, 2)} == {
        "one_timers",
        "repeaters",
    }
    assert sum(cell["customers"] for cell in grid) == 10
    assert {cell["rfm_segment"] for cell in grid if cell["rfm_r"] == 1} == {
        "one_timers",
        "repeaters",
    }


# Integer recency and amounts from small ranges so that ties are frequent.
customer_rows = st.lists(
    st.tuples(
        st.integers(0, 60).map(float),
        st.integers(1, 12),
        st.integers(0, 40).map(lambda amount: amount * 2.5),
    ),
    min_size=1,
    max_size=30,
)


@pytest.mark.parametrize("config", [None, THRESHOLDS], ids=["default", "fixed cuts"])
@settings(max_examples=40, deadline=None)
@given(values=customer_rows)
def test_scores_never_fall_when_a_customer_is_more_recent_more_frequent_or_spends_more(
    con: Any, config: dict[str, Any] | None, values: list[tuple[float, int, float]]
) -> None:
    rows: list[Row] = [(f"c{i:02d}", r, f, m) for i, (r, f, m) in enumerate(values)]
    result = scored(con, rows, None if config is None else parse_rfm_config(config))

    out = [result[customer_id] for customer_id, *_ in rows]
    for a, (_, recency_a, frequency_a, monetary_a) in zip(out, rows, strict=True):
        for b, (_, recency_b, frequency_b, monetary_b) in zip(out, rows, strict=True):
            assert recency_a is not None and recency_b is not None
            if recency_a <= recency_b:
                assert a["rfm_r"] >= b["rfm_r"]
            if frequency_a >= frequency_b:
                assert a["rfm_f"] >= b["rfm_f"]
            assert monetary_a is not None and monetary_b is not None
            if monetary_a >= monetary_b:
                assert a["rfm_m"] >= b["rfm_m"]
    assert all(1 <= row[axis] <= 5 for row in out for axis in ("rfm_r", "rfm_f", "rfm_m"))


ALL_QUANTILES = parse_rfm_config({"scores": {"r": "quantile", "f": "quantile", "m": "quantile"}})


def reference_quantile_score(value: float, population: list[float], *, higher: bool) -> int:
    """The documented rule, by definition: ``1 + floor(5 * position / max(n - 1, 1))``
    capped at 5, where ``position`` counts the customers strictly worse."""
    worse = sum(1 for other in population if (other < value if higher else other > value))
    return min(5, 1 + (5 * worse) // max(len(population) - 1, 1))


@settings(max_examples=80, deadline=None)
@given(
    values=st.lists(
        st.tuples(
            st.one_of(st.none(), st.integers(0, 30).map(float)),
            st.integers(0, 6),
            st.integers(0, 12).map(lambda amount: amount * 2.5),
        ),
        min_size=1,
        max_size=40,
    )
)
def test_quantile_scores_equal_the_percent_rank_definition_ties_included(
    con: Any, values: list[tuple[float | None, int, float]]
) -> None:
    """Few distinct values, so ties across bucket edges are the common case."""
    rows: list[Row] = [(f"c{i:02d}", r, f, m) for i, (r, f, m) in enumerate(values)]
    result = scored(con, rows, ALL_QUANTILES)

    ordered = [row for row in rows if row[1] is not None and row[2] > 0]
    for customer_id, recency, frequency, monetary in rows:
        scores = result[customer_id]
        if recency is None or frequency == 0:
            assert (scores["rfm_r"], scores["rfm_f"], scores["rfm_m"]) == (None, None, None)
            continue
        assert monetary is not None
        assert scores["rfm_r"] == reference_quantile_score(
            recency,
            [row[1] for row in ordered],
            higher=False,  # type: ignore[misc]
        )
        assert scores["rfm_f"] == reference_quantile_score(
            frequency, [row[2] for row in ordered], higher=True
        )
        assert scores["rfm_m"] == reference_quantile_score(
            monetary,
            [row[3] for row in ordered],
            higher=True,  # type: ignore[misc]
        )


@pytest.mark.parametrize("customers", range(1, 14))
def test_quantile_scores_of_n_distinct_customers_follow_the_definition(
    con: Any, customers: int
) -> None:
    """Every population size up to 13: each bucket edge lands on an exact position once."""
    rows: list[Row] = [(f"c{i:02d}", float(i), i + 1, 10.0 * i) for i in range(customers)]
    result = scored(con, rows, ALL_QUANTILES)

    for customer_id, recency, frequency, monetary in rows:
        assert recency is not None and monetary is not None
        assert result[customer_id]["rfm_r"] == reference_quantile_score(
            recency, [float(i) for i in range(customers)], higher=False
        )
        assert result[customer_id]["rfm_f"] == reference_quantile_score(
            frequency, [i + 1 for i in range(customers)], higher=True
        )
        assert result[customer_id]["rfm_m"] == reference_quantile_score(
            monetary, [10.0 * i for i in range(customers)], higher=True
        )
