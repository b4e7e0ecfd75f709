"""The value pyramid: tier sizes, customers without value, and ties at an edge."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence
from typing import Any

import ibis
import pytest

from perennial.lifecycle.tiers import VALUE_TIER_LABELS, ValueTier, assign_value_tiers


@pytest.fixture(scope="module")
def con() -> Any:
    return ibis.duckdb.connect()


def tiers(
    con: Any, values: Sequence[float | None], value_column: str = "monetary_total"
) -> dict[str, str]:
    """customer_id -> value_tier, customers named c0000, c0001, ... in the order given."""
    table = ibis.memtable(
        {"customer_id": [f"c{i:04d}" for i in range(len(values))], value_column: list(values)},
        schema={"customer_id": "string", value_column: "float64"},
    )
    rows = con.to_pyarrow(assign_value_tiers(table, value_column)).to_pylist()
    return {row["customer_id"]: row["value_tier"] for row in rows}


def test_a_thousand_customers_split_10_90_400_500_with_the_highest_values_on_top(
    con: Any,
) -> None:
    values = [float(v) for v in range(1, 1001)]
    random.Random(3).shuffle(values)  # noqa: S311

    result = tiers(con, values)

    assert Counter(result.values()) == {"top_1": 10, "top_10": 90, "top_50": 400, "rest": 500}
    top = sorted(result, key=lambda customer: values[int(customer[1:])], reverse=True)
    assert {result[customer] for customer in top[:10]} == {"top_1"}
    assert {result[customer] for customer in top[10:100]} == {"top_10"}
    assert {result[customer] for customer in top[500:]} == {"rest"}


def test_customers_without_a_positive_value_are_rest_and_not_part_of_the_percentages(
    con: Any,
) -> None:
    values: list[float | None] = [float(v) for v in range(1, 1001)]
    values += [0.0] * 30 + [None] * 30 + [-5.0] * 10

    result = tiers(con, values)

    assert Counter(result.values()) == {"top_1": 10, "top_10": 90, "top_50": 400, "rest": 570}
    assert {result[f"c{i:04d}"] for i in range(1000, 1070)} == {"rest"}


def test_a_tie_across_the_top_1_edge_puts_the_whole_tied_group_in_the_higher_tier(
    con: Any,
) -> None:
    # Ranked 1..1000 from the top; the 10th and 11th (values 991 and 990) now tie at 990.5.
    values = [float(v) for v in range(1, 1001)]
    values[989] = values[990] = 990.5

    result = tiers(con, values)

    assert result["c0989"] == result["c0990"] == "top_1"
    assert Counter(result.values()) == {"top_1": 11, "top_10": 89, "top_50": 400, "rest": 500}


def test_tiers_do_not_depend_on_the_order_of_the_rows(con: Any) -> None:
    values = [float(v // 7) for v in range(1000)]  # groups of seven equal values
    order = list(range(1000))
    random.Random(11).shuffle(order)  # noqa: S311

    as_given = tiers(con, values)
    shuffled = tiers(con, [values[i] for i in order])

    assert {f"c{i:04d}": shuffled[f"c{j:04d}"] for j, i in enumerate(order)} == as_given


def test_tiers_can_rank_any_numeric_value_column_such_as_predicted_clv(con: Any) -> None:
    result = tiers(con, [5.0, 1.0, 3.0], value_column="predicted_clv")

    assert result == {"c0000": "top_1", "c0001": "rest", "c0002": "top_50"}


def test_the_single_customer_with_value_is_top_1(con: Any) -> None:
    assert tiers(con, [12.5, 0.0, None]) == {"c0000": "top_1", "c0001": "rest", "c0002": "rest"}


def test_a_missing_or_non_numeric_value_column_is_refused() -> None:
    table = ibis.table({"customer_id": "string", "segment": "string"}, name="profiles")

    with pytest.raises(ValueError, match="no column 'monetary_total'"):
        assign_value_tiers(table)
    with pytest.raises(ValueError, match="'segment' is string, not a number"):
        assign_value_tiers(table, "segment")


def test_every_tier_has_an_english_and_a_chinese_label() -> None:
    assert list(VALUE_TIER_LABELS) == list(ValueTier)
    assert all(label.en and label.zh for label in VALUE_TIER_LABELS.values())
