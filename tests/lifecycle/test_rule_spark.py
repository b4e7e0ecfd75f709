"""Rules and stage models give the same answers on Spark as on DuckDB and in Python."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import ibis
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from perennial.lifecycle.rule_ast import Expression
from perennial.lifecycle.rule_compiler import compile_rule
from perennial.lifecycle.rule_evaluator import evaluate_rule
from perennial.lifecycle.stage_model import STAGE_COLUMNS, assign_stage, load_stage_model
from tests.lifecycle.test_rule_properties import COLUMNS, CONDITIONS, ROWS
from tests.lifecycle.test_stage_model import PRESETS, SCHEMA, buyer, prospect

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

pytestmark = [pytest.mark.spark, pytest.mark.integration, pytest.mark.slow]


def _on_spark(spark: SparkSession, data: pa.Table, build: Any) -> list[dict[str, Any]]:
    """Rows of ``build(table)`` run on Spark over ``data``, through Arrow."""
    spark.createDataFrame(data).createOrReplaceTempView("rule_spark_rows")
    backend = ibis.pyspark.connect(spark)
    expression = build(backend.table("rule_spark_rows"))
    return list(backend.raw_sql(backend.compile(expression)).toArrow().to_pylist())


@settings(max_examples=4, deadline=None, suppress_health_check=list(HealthCheck))
@given(rules=st.lists(CONDITIONS, min_size=25, max_size=25), rows=ROWS)
def test_random_rules_on_spark_give_what_the_python_evaluator_gives(
    spark: SparkSession, rules: list[Expression], rows: list[dict[str, Any]]
) -> None:
    arrays = {name: pa.array([row[name] for row in rows], kind) for name, kind in COLUMNS.items()}
    arrays["row_id"] = pa.array(range(len(rows)), pa.int64())

    def select_rules(table: Any) -> Any:
        results = {f"r{i}": compile_rule(rule, table) for i, rule in enumerate(rules)}
        return table.select("row_id", **results).order_by("row_id")

    on_spark = _on_spark(spark, pa.table(arrays), select_rules)
    for index, rule in enumerate(rules):
        assert [row[f"r{index}"] for row in on_spark] == [evaluate_rule(rule, r) for r in rows]


@pytest.mark.parametrize("preset", ["seed000.yaml", "seed002.yaml"])
def test_a_preset_assigns_the_same_stages_on_spark_as_on_duckdb(
    spark: SparkSession, preset: str
) -> None:
    model = load_stage_model(PRESETS / preset)
    customers = [
        prospect("p1"),
        buyer("b1", frequency_orders=1, recency_days=3.0),
        buyer("b2", recency_days=45.0, own_median_interval_days=30.0),
        buyer("b3", recency_days=400.0),
        buyer("b4", frequency_orders=9, rfm_m=5),
        buyer("b5", spend_30d=10.0, spend_prev_30d=100.0, complaints_30d=1),
        buyer("b6", own_median_interval_days=None, category_median_interval_days=None),
    ]
    data = ibis.memtable(
        {name: [customer[name] for customer in customers] for name in SCHEMA}, schema=SCHEMA
    ).to_pyarrow()

    def staged(table: Any) -> Any:
        return (
            assign_stage(model, table).select("customer_id", *STAGE_COLUMNS).order_by("customer_id")
        )

    on_duckdb = ibis.duckdb.connect().to_pyarrow(staged(ibis.memtable(data))).to_pylist()
    assert _on_spark(spark, data, staged) == on_duckdb
    assert len({row["stage"] for row in on_duckdb}) >= 4
