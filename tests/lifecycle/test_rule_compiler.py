"""Rules compiled to Ibis run on DuckDB with SQL's null semantics, pinned where engines differ."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import ibis
import pytest

from perennial.lifecycle.rule_ast import Comparison, Feature, Number
from perennial.lifecycle.rule_compiler import compile_rule, kinds_of_schema
from perennial.lifecycle.rule_errors import MissingFeatureError, ParseError
from perennial.lifecycle.rule_evaluator import evaluate_rule
from perennial.lifecycle.rule_types import ValueKind
from perennial.lifecycle.rules import Rule

SCHEMA = {
    "recency_days": "float64",
    "own_median_interval_days": "float64",
    "category_median_interval_days": "float64",
    "frequency_orders": "int64",
    "logins_30d": "int64",
    "acquisition_channel": "string",
    "first_order_at": "timestamp('UTC')",
    "last_order_at": "timestamp('UTC')",
}


@pytest.fixture(scope="module")
def duckdb() -> Iterator[Any]:
    connection = ibis.duckdb.connect()
    yield connection
    connection.disconnect()


def _rows(**columns: list[Any]) -> list[dict[str, Any]]:
    count = len(next(iter(columns.values())))
    return [
        {name: columns.get(name, [None] * count)[index] for name in SCHEMA}
        for index in range(count)
    ]


def _run(duckdb: Any, text: str, rows: list[dict[str, Any]]) -> list[bool | None]:
    """The rule on DuckDB, checked against the Python evaluator on the same rows."""
    table = ibis.memtable(
        {
            "row_id": list(range(len(rows))),
            **{name: [row[name] for row in rows] for name in SCHEMA},
        },
        schema={"row_id": "int64", **SCHEMA},
    )
    rule = Rule.parse(text)
    query = table.select("row_id", result=rule.compile(table)).order_by("row_id")
    on_duckdb: list[bool | None] = duckdb.to_pyarrow(query).column("result").to_pylist()
    assert on_duckdb == [rule.evaluate(row) for row in rows]
    return on_duckdb


def test_a_comparison_with_null_is_null_not_false(duckdb: Any) -> None:
    rows = _rows(recency_days=[50.0, 10.0, None])
    assert _run(duckdb, "recency_days > 45", rows) == [True, False, None]


def test_dormancy_relative_to_the_customers_own_rhythm_falls_back_to_the_category(
    duckdb: Any,
) -> None:
    rows = _rows(
        recency_days=[45.0, 44.9, 45.0, 45.0],
        own_median_interval_days=[30.0, 30.0, None, None],
        category_median_interval_days=[90.0, 90.0, 20.0, None],
    )
    rule = "recency_days >= 1.5 * coalesce(own_median_interval_days, category_median_interval_days)"
    assert _run(duckdb, rule, rows) == [True, False, True, None]


def test_division_by_zero_is_null_on_duckdb_as_in_python(duckdb: Any) -> None:
    rows = _rows(recency_days=[10.0, 10.0], own_median_interval_days=[0.0, 5.0])
    assert _run(duckdb, "recency_days / own_median_interval_days > 1", rows) == [None, True]


def test_max_and_greatest_skip_nulls_and_are_null_only_when_every_value_is(duckdb: Any) -> None:
    rows = _rows(
        own_median_interval_days=[10.0, None, None],
        category_median_interval_days=[30.0, 30.0, None],
    )
    rule = "max(own_median_interval_days, category_median_interval_days) == 30"
    assert _run(duckdb, rule, rows) == [True, True, None]
    assert _run(duckdb, "least(own_median_interval_days, 20) == 10", rows) == [True, False, False]


def test_float_literals_are_doubles_so_point_one_plus_point_two_is_not_point_three(
    duckdb: Any,
) -> None:
    assert _run(duckdb, "0.1 + 0.2 == 0.3", _rows(recency_days=[1.0])) == [False]


def test_integer_arithmetic_is_float_and_does_not_overflow(duckdb: Any) -> None:
    rows = _rows(frequency_orders=[4_000_000_000])
    rule = "frequency_orders * frequency_orders * frequency_orders > 1e28"
    assert _run(duckdb, rule, rows) == [True]


def test_and_or_not_use_three_valued_logic(duckdb: Any) -> None:
    rows = _rows(recency_days=[None], frequency_orders=[1])
    assert _run(duckdb, "recency_days > 1 or frequency_orders == 1", rows) == [True]
    assert _run(duckdb, "recency_days > 1 and frequency_orders == 2", rows) == [False]
    assert _run(duckdb, "recency_days > 1 and frequency_orders == 1", rows) == [None]
    assert _run(duckdb, "not recency_days > 1", rows) == [None]


def test_is_null_in_and_between_on_nulls_and_bounds(duckdb: Any) -> None:
    rows = _rows(
        acquisition_channel=["social", "email", None],
        frequency_orders=[1, 3, None],
        logins_30d=[None, 0, 2],
    )
    assert _run(duckdb, "acquisition_channel in ('paid_search', 'social')", rows) == [
        True,
        False,
        None,
    ]
    assert _run(duckdb, "acquisition_channel not in ('social')", rows) == [False, True, None]
    assert _run(duckdb, "frequency_orders between 1 and 3", rows) == [True, True, None]
    assert _run(duckdb, "not (frequency_orders between 2 and 3)", rows) == [True, False, None]
    assert _run(duckdb, "coalesce(logins_30d, 0) == 0", rows) == [True, True, False]
    assert _run(duckdb, "logins_30d is not null", rows) == [False, True, True]


def test_timestamps_compare_with_timestamps(duckdb: Any) -> None:
    early, late = datetime(2024, 1, 1, tzinfo=UTC), datetime(2024, 3, 1, tzinfo=UTC)
    rows = _rows(first_order_at=[early, late, None], last_order_at=[late, late, late])
    assert _run(duckdb, "first_order_at < last_order_at", rows) == [True, False, None]


def test_text_is_compared_as_written_including_quotes_and_case(duckdb: Any) -> None:
    rows = _rows(acquisition_channel=["it's", "Social", "social"])
    assert _run(duckdb, "acquisition_channel == 'it''s'", rows) == [True, False, False]
    assert _run(duckdb, "acquisition_channel == 'social'", rows) == [False, False, True]


def test_compiling_or_evaluating_a_rule_that_reads_an_absent_column_names_it() -> None:
    table = ibis.table({"recency_days": "float64"}, name="features")
    rule = Comparison(">", Feature("recency_dayz"), Number(1))
    with pytest.raises(MissingFeatureError, match="the feature table has no column 'recency_dayz'"):
        compile_rule(rule, table)
    with pytest.raises(MissingFeatureError):
        evaluate_rule(rule, {"recency_days": 1.0})


def test_a_rule_is_rechecked_against_the_tables_actual_column_types() -> None:
    table = ibis.table({"rfm_m": "string"}, name="features")
    with pytest.raises(ParseError, match="'>=' compares values of one kind") as caught:
        Rule.parse("rfm_m >= 4").compile(table)
    assert caught.value.column == 10


def test_otherwise_is_true_for_every_row_and_reads_no_feature() -> None:
    rule = Rule.parse(" Otherwise ", allow_otherwise=True)
    assert rule.is_otherwise and rule.features == ()
    assert rule.evaluate({}) is True
    with pytest.raises(ParseError, match="'otherwise' is not allowed here"):
        Rule.parse("otherwise")


def test_column_types_map_to_the_four_kinds_and_unusable_types_are_left_out() -> None:
    schema = ibis.schema(
        {
            "a": "int8",
            "b": "decimal(12, 2)",
            "c": "string",
            "d": "timestamp('UTC')",
            "e": "date",
            "f": "boolean",
            "g": "array<int64>",
        }
    )
    assert kinds_of_schema(schema) == {
        "a": ValueKind.NUMBER,
        "b": ValueKind.NUMBER,
        "c": ValueKind.TEXT,
        "d": ValueKind.TIMESTAMP,
        "e": ValueKind.TIMESTAMP,
        "f": ValueKind.CONDITION,
    }


def test_a_boolean_column_is_a_condition_by_itself(duckdb: Any) -> None:
    table = ibis.memtable({"consent_sms": [True, False, None]}, schema={"consent_sms": "boolean"})
    rule = Rule.parse("not consent_sms", kinds=kinds_of_schema(table.schema()))
    assert duckdb.to_pyarrow(table.select(r=rule.compile(table))).column("r").to_pylist() == [
        False,
        True,
        None,
    ]


def test_five_hundred_conditions_joined_by_or_compile_without_deep_recursion(duckdb: Any) -> None:
    rows = _rows(frequency_orders=[7, 501, None])
    rule = " or ".join(f"frequency_orders == {n}" for n in range(500))
    assert _run(duckdb, rule, rows) == [True, False, None]
