"""Spark reads the warehouse's files unchanged and sees what DuckDB sees."""

from __future__ import annotations

from typing import TYPE_CHECKING

import duckdb
import pytest

from perennial.config import Settings
from perennial.ingest.mapping import load_mapping
from perennial.ingest.pipeline import ingest_file
from perennial.store.warehouse import Warehouse
from tests.conftest import DATA, NOW
from tests.ingest.test_pipeline import EXAMPLES

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

pytestmark = [pytest.mark.spark, pytest.mark.integration, pytest.mark.slow]


def test_spark_reads_a_committed_snapshot_with_the_same_rows_types_and_totals(
    settings: Settings, spark: SparkSession
) -> None:
    ingest_file(
        DATA / "CDNOW_master.txt", settings, mapping=load_mapping(EXAMPLES / "cdnow.yaml"), now=NOW
    )
    snapshot = Warehouse(settings.warehouse).snapshot()
    paths = snapshot.paths("orders")

    frame = spark.read.option("basePath", str(settings.warehouse / "orders")).parquet(*paths)
    spark_totals = frame.selectExpr(
        "count(*)",
        "count(DISTINCT customer_id)",
        "CAST(sum(amount) AS STRING)",
        "CAST(min(placed_at) AS STRING)",
        "count(DISTINCT month)",
    ).collect()[0]
    duck_totals = duckdb.execute(
        "SELECT count(*), count(DISTINCT customer_id), CAST(sum(amount) AS VARCHAR), "
        "strftime(min(placed_at), '%Y-%m-%d %H:%M:%S') FROM read_parquet(?)",
        [paths],
    ).fetchall()[0]

    assert tuple(spark_totals)[:2] == duck_totals[:2] == (69_659, 23_570)
    assert float(spark_totals[2]) == pytest.approx(float(duck_totals[2]))
    assert spark_totals[3] == duck_totals[3] == "1997-01-01 05:00:00"
    assert spark_totals[4] == len({f.partition for f in snapshot.files("orders")})
    types = dict(frame.dtypes)
    assert (types["placed_at"], types["amount"]) == ("timestamp", "decimal(18,4)")
