"""Properties of the rule language on random rules: text round-trips, and DuckDB agrees with Python.

The Python evaluator is the reference: for any well-kinded rule and any rows
(nulls included), the Ibis-compiled rule run on DuckDB gives the same true,
false or null for every row.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import ibis
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from perennial.lifecycle.rule_ast import (
    And,
    Arithmetic,
    Between,
    Call,
    Comparison,
    Expression,
    Feature,
    InList,
    IsNull,
    Negate,
    Not,
    Number,
    Or,
    Text,
    format_rule,
)
from perennial.lifecycle.rule_compiler import compile_rule
from perennial.lifecycle.rule_evaluator import evaluate_rule
from perennial.lifecycle.rule_parser import parse_rule
from perennial.lifecycle.rule_types import check_condition
from perennial.lifecycle.rules import FEATURE_KINDS

COLUMNS = {
    "frequency_orders": pa.int64(),
    "orders_30d": pa.int64(),
    "recency_days": pa.float64(),
    "monetary_total": pa.float64(),
    "acquisition_channel": pa.string(),
    "favourite_category": pa.string(),
    "first_order_at": pa.timestamp("us", tz="UTC"),
    "last_order_at": pa.timestamp("us", tz="UTC"),
}
_START = datetime(2024, 1, 1, tzinfo=UTC)

# Small values, zero often (division by zero, ties at comparison boundaries); eighths are exact.
_INTEGERS = st.one_of(st.sampled_from([0, 1, -1]), st.integers(-50, 50))
_FLOATS = st.one_of(
    st.sampled_from([0.0, 0.5, -1.5]), st.integers(-4000, 4000).map(lambda eighths: eighths / 8)
)
_WORDS = st.sampled_from(["", "a", "b", "ab", "B", "paid_search", "李", "it's"])
_TIMES = st.integers(0, 4 * 24).map(lambda hours: _START + timedelta(hours=hours * 6))
_VALUES: dict[pa.DataType, st.SearchStrategy[Any]] = {
    pa.int64(): _INTEGERS,
    pa.float64(): _FLOATS,
    pa.string(): _WORDS,
    pa.timestamp("us", tz="UTC"): _TIMES,
}
_VARIADIC = st.sampled_from(["coalesce", "greatest", "least", "max", "min"])
_COMPARISONS = st.sampled_from(["<", "<=", ">", ">=", "==", "!="])


def _features(arrow_type: pa.DataType) -> st.SearchStrategy[Expression]:
    return st.sampled_from([Feature(name) for name, kind in COLUMNS.items() if kind == arrow_type])


def _variadic(inner: st.SearchStrategy[Expression]) -> st.SearchStrategy[Expression]:
    arguments = st.lists(inner, min_size=2, max_size=3).map(tuple)
    return st.builds(Call, _VARIADIC, arguments)


_NUMBER_LITERALS = st.builds(Number, st.one_of(_INTEGERS, _FLOATS))
_TEXT_LITERALS = st.builds(Text, _WORDS)
NUMBERS = st.recursive(
    st.one_of(_NUMBER_LITERALS, _features(pa.int64()), _features(pa.float64())),
    lambda inner: st.one_of(
        st.builds(Negate, inner),
        st.builds(Arithmetic, st.sampled_from(["+", "-", "*", "/"]), inner, inner),
        st.builds(Call, st.just("abs"), st.tuples(inner)),
        _variadic(inner),
    ),
    max_leaves=6,
)
TEXTS = st.recursive(st.one_of(_TEXT_LITERALS, _features(pa.string())), _variadic, max_leaves=3)
TIMESTAMPS = st.recursive(_features(pa.timestamp("us", tz="UTC")), _variadic, max_leaves=3)
_PREDICATES = st.one_of(
    st.builds(Comparison, _COMPARISONS, NUMBERS, NUMBERS),
    st.builds(Comparison, _COMPARISONS, TEXTS, TEXTS),
    st.builds(Comparison, _COMPARISONS, TIMESTAMPS, TIMESTAMPS),
    st.builds(IsNull, st.one_of(NUMBERS, TEXTS, TIMESTAMPS), st.booleans()),
    st.builds(
        InList,
        NUMBERS,
        st.lists(_NUMBER_LITERALS, min_size=1, max_size=3).map(tuple),
        st.booleans(),
    ),
    st.builds(
        InList, TEXTS, st.lists(_TEXT_LITERALS, min_size=1, max_size=3).map(tuple), st.booleans()
    ),
    st.builds(Between, NUMBERS, NUMBERS, NUMBERS, st.booleans()),
)
CONDITIONS = st.recursive(
    _PREDICATES,
    lambda inner: st.one_of(
        st.builds(Not, inner),
        st.builds(And, st.lists(inner, min_size=2, max_size=3).map(tuple)),
        st.builds(Or, st.lists(inner, min_size=2, max_size=3).map(tuple)),
    ),
    max_leaves=5,
)
ROWS = st.lists(
    st.fixed_dictionaries(
        {name: st.one_of(st.none(), _VALUES[kind]) for name, kind in COLUMNS.items()}
    ),
    min_size=1,
    max_size=8,
)
_SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(scope="module")
def duckdb() -> Iterator[Any]:
    connection = ibis.duckdb.connect()
    yield connection
    connection.disconnect()


@_SETTINGS
@given(rule=CONDITIONS)
def test_a_formatted_rule_parses_back_to_the_same_tree_and_passes_the_kind_check(
    rule: Expression,
) -> None:
    text = format_rule(rule)
    assert parse_rule(text, known_features=FEATURE_KINDS.keys()) == rule
    check_condition(rule, FEATURE_KINDS, text)


@_SETTINGS
@given(rule=CONDITIONS, rows=ROWS)
def test_the_rule_compiled_for_duckdb_gives_what_the_python_evaluator_gives_on_every_row(
    duckdb: Any, rule: Expression, rows: list[dict[str, Any]]
) -> None:
    arrays = {
        name: pa.array([row[name] for row in rows], type=kind) for name, kind in COLUMNS.items()
    }
    arrays["row_id"] = pa.array(range(len(rows)), type=pa.int64())
    table = ibis.memtable(pa.table(arrays))
    query = table.select("row_id", result=compile_rule(rule, table)).order_by("row_id")
    on_duckdb = duckdb.to_pyarrow(query).column("result").to_pylist()
    in_python = [evaluate_rule(rule, row) for row in rows]
    assert on_duckdb == in_python, format_rule(rule)
