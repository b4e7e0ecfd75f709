"""The incremental stage history is the same on Spark as on DuckDB.

The day's inputs reach Spark as Arrow tables (``Backend.register_arrow``), not through
Ibis memtables, whose pandas round trip turns a null float into NaN, which
Spark's ANSI mode refuses to cast to BIGINT when shifting a day count.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from perennial.config import Settings
from perennial.demo import generate_demo
from perennial.ingest.pipeline import ingest_file
from perennial.lifecycle.backfill import daily_profiles
from perennial.lifecycle.stage_model import load_stage_model
from perennial.store.backends import open_backend
from perennial.store.warehouse import Warehouse
from tests.features.comparison import assert_same_rows

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

pytestmark = [pytest.mark.spark, pytest.mark.integration, pytest.mark.slow]
EXAMPLES = Path(__file__).parents[2] / "examples" / "lifecycle"


def test_three_days_of_history_are_identical_on_duckdb_and_spark(
    tmp_path: Path, spark: SparkSession
) -> None:
    settings = Settings(home=tmp_path / "home")
    dataset = generate_demo(tmp_path / "demo", customers=150, seed=11, dirty_fraction=0)
    for demo_file in dataset.files:
        ingest_file(
            demo_file.path, settings, table=demo_file.table, now=datetime(2026, 6, 1, tzinfo=UTC)
        )
    model = load_stage_model(EXAMPLES / "seed000.yaml")
    snapshot = Warehouse(settings.warehouse).snapshot()

    days = {}
    for engine in ("duckdb", "spark"):
        with open_backend(settings, engine, spark_session=spark) as backend:
            history = daily_profiles(backend, snapshot, model, date(2025, 6, 1), date(2025, 6, 3))
            days[engine] = [(day.profiles, day.transitions) for day in history]

    assert len(days["spark"]) == 3
    for (duck, duck_moves), (sparked, spark_moves) in zip(
        days["duckdb"], days["spark"], strict=True
    ):
        assert duck.num_rows > 50
        assert_same_rows(duck, sparked, key="customer_id", tolerance=1e-9)
        assert duck_moves.sort_by("customer_id").equals(spark_moves.sort_by("customer_id"))
