"""One implementation, two engines: DuckDB and Spark compute the same feature table."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa
import pytest

from perennial.config import Settings
from perennial.features import compute_features, summary_for_btyd
from perennial.features.buckets import bucketed_features
from perennial.store.backends import Engine, open_backend
from perennial.store.warehouse import Warehouse
from tests.features.comparison import assert_same_rows
from tests.features.fixture_store import AS_OF

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

pytestmark = [pytest.mark.spark, pytest.mark.integration, pytest.mark.slow]


def _run(settings: Settings, engine: Engine, spark: SparkSession, timezone: str) -> pa.Table:
    snapshot = Warehouse(settings.warehouse).snapshot()
    with open_backend(settings, engine, spark_session=spark) as backend:
        return backend.to_pyarrow(compute_features(backend, snapshot, AS_OF, timezone=timezone))


@pytest.mark.parametrize("timezone", ["Asia/Shanghai", "America/New_York"])
def test_duckdb_and_spark_compute_identical_features_for_the_fixture(
    fixture_settings: Settings, spark: SparkSession, timezone: str
) -> None:
    duckdb_table = _run(fixture_settings, "duckdb", spark, timezone)
    spark_table = _run(fixture_settings, "spark", spark, timezone)
    assert duckdb_table.num_rows == 11
    assert_same_rows(duckdb_table, spark_table, key="customer_id")


def test_duckdb_and_spark_compute_the_same_btyd_summary(
    fixture_settings: Settings, spark: SparkSession
) -> None:
    snapshot = Warehouse(fixture_settings.warehouse).snapshot()
    tables = []
    for engine in ("duckdb", "spark"):
        with open_backend(fixture_settings, engine, spark_session=spark) as backend:
            tables.append(backend.to_pyarrow(summary_for_btyd(backend, snapshot, AS_OF)))
    assert tables[0].num_rows == 6
    assert_same_rows(tables[0], tables[1], key="customer_id")


def test_spark_computes_the_same_features_in_buckets(
    fixture_settings: Settings, spark: SparkSession, tmp_path: Path
) -> None:
    """Spark's hash is signed: the buckets must still cover every customer once."""
    snapshot = Warehouse(fixture_settings.warehouse).snapshot()
    duckdb_table = _run(fixture_settings, "duckdb", spark, "Asia/Shanghai")
    with (
        open_backend(fixture_settings, "spark", spark_session=spark) as backend,
        bucketed_features(backend, snapshot, AS_OF, workdir=tmp_path, buckets=3) as table,
    ):
        spark_table = backend.to_pyarrow(table)
    assert_same_rows(duckdb_table, spark_table, key="customer_id")
