"""The whole lifecycle pipeline gives the same profiles on DuckDB and on Spark."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from perennial.config import Settings
from perennial.demo import generate_demo
from perennial.ingest.pipeline import ingest_file
from perennial.lifecycle.profiles import build_profiles
from perennial.lifecycle.stage_model import load_stage_model
from perennial.store.backends import open_backend
from perennial.store.warehouse import Warehouse
from tests.features.comparison import assert_same_rows

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

pytestmark = [pytest.mark.spark, pytest.mark.integration, pytest.mark.slow]
EXAMPLES = Path(__file__).parents[2] / "examples" / "lifecycle"
AS_OF = datetime(2025, 10, 1, tzinfo=UTC)


@pytest.mark.parametrize("model", ["seed000.yaml", "seed002.yaml"])
def test_profiles_of_demo_customers_are_identical_on_duckdb_and_spark(
    tmp_path: Path, spark: SparkSession, model: str
) -> None:
    settings = Settings(home=tmp_path / "home")
    dataset = generate_demo(tmp_path / "demo", customers=400, seed=5, dirty_fraction=0)
    for demo_file in dataset.files:
        ingest_file(
            demo_file.path, settings, table=demo_file.table, now=datetime(2026, 6, 1, tzinfo=UTC)
        )
    stage_model = load_stage_model(EXAMPLES / model)
    snapshot = Warehouse(settings.warehouse).snapshot()

    results = []
    for engine in ("duckdb", "spark"):
        with open_backend(settings, engine, spark_session=spark) as backend:
            profiles = build_profiles(backend, snapshot, AS_OF, stage_model)
            results.append(backend.to_pyarrow(profiles))

    duck, sparked = results
    assert duck.num_rows > 300
    assert len(set(duck.column("stage").to_pylist())) >= 3
    assert_same_rows(duck, sparked, key="customer_id", tolerance=1e-9)
