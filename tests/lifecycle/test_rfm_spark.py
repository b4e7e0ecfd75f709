"""RFM scores, segments, the grid and value tiers are the same on Spark as on DuckDB."""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, Any

import ibis
import pyarrow as pa
import pytest

from perennial.lifecycle.rfm import score_rfm, segment_grid
from perennial.lifecycle.rfm_config import parse_rfm_config
from perennial.lifecycle.tiers import assign_value_tiers

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

pytestmark = [pytest.mark.spark, pytest.mark.integration, pytest.mark.slow]


def generated_features(customers: int, seed: int) -> pa.Table:
    """Customers with integer recency and rounded spend (many ties), a fifth without orders."""
    rng = random.Random(seed)  # noqa: S311 (test data, not secrets)
    rows = []
    for i in range(customers):
        if rng.random() < 0.2:
            rows.append((f"c{i:05d}", None, 0, 0.0))
        else:
            orders = 1 if rng.random() < 0.6 else rng.randint(2, 15)
            spend = round(rng.lognormvariate(4, 1) * orders / 5) * 5.0
            rows.append((f"c{i:05d}", float(rng.randint(0, 365)), orders, spend))
    names = ["customer_id", "recency_days", "frequency_orders", "monetary_total"]
    types = [pa.string(), pa.float64(), pa.int64(), pa.float64()]
    return pa.table(
        {
            name: pa.array([row[i] for row in rows], kind)
            for i, (name, kind) in enumerate(zip(names, types, strict=True))
        }
    )


def run(con: Any, expr: Any) -> list[dict[str, Any]]:
    """Rows of ``expr``; on Spark through Arrow (Ibis's own path goes through pandas)."""
    if con.name == "pyspark":
        return list(con.raw_sql(con.compile(expr)).toArrow().to_pylist())
    return list(con.to_pyarrow(expr).to_pylist())


def results(con: Any, features: Any) -> dict[str, list[dict[str, Any]]]:
    fixed = parse_rfm_config({"scores": {"r": [7, 30, 90, 180], "m": [50, 100, 250, 500]}})
    default = assign_value_tiers(score_rfm(features))
    return {
        "default": run(con, default.order_by("customer_id")),
        "fixed": run(con, score_rfm(features, fixed).order_by("customer_id")),
        "grid": run(con, segment_grid(score_rfm(features))),
    }


def test_duckdb_and_spark_give_identical_scores_segments_grid_and_tiers(
    spark: SparkSession,
) -> None:
    data = generated_features(2_000, seed=5)
    duckdb = ibis.duckdb.connect()
    spark.createDataFrame(data).createOrReplaceTempView("rfm_test_features")
    pyspark = ibis.pyspark.connect(spark)

    on_duckdb = results(duckdb, ibis.memtable(data))
    on_spark = results(pyspark, pyspark.table("rfm_test_features"))

    assert on_spark == on_duckdb
    assert len({row["rfm_segment"] for row in on_duckdb["default"]}) == 12
    assert {row["value_tier"] for row in on_duckdb["default"]} == {
        "top_1",
        "top_10",
        "top_50",
        "rest",
    }
    assert sum(cell["customers"] for cell in on_duckdb["grid"]) == sum(
        row["rfm_r"] is not None for row in on_duckdb["default"]
    )
