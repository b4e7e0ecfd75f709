"""One evaluator, two engines: the presets select the same customers on Spark as on DuckDB.

The presets cover profile fields, predictions, event counts and windows, property
filters, segment references, anniversaries and dates; Spark runs the very queries
DuckDB runs (the engine-specific JSON and date functions are the backend's).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from pyspark.sql import SparkSession

from perennial.segments.documents import PRESETS_FILE, load_segment_document
from perennial.segments.evaluation import open_evaluation
from perennial.segments.parser import parse_expression
from perennial.store.operational import create_engine_for, migrate
from tests.segments.conftest import SegmentStore

pytestmark = pytest.mark.spark

EXTRA = [
    "did page_view where page starts with '/p/' at least 2 times in last 60 days",
    "did course_purchased not followed by lesson_completed within 7 days",
    "did login since course_purchased",
    "first_order_at <= date('2025-06-30') and days_since(last_order_at) > 30",
    "did search between '2025-12-01' and '2025-12-15'",
]


def test_presets_and_event_forms_agree_on_spark_and_duckdb(
    segment_store: SegmentStore, tmp_path: Path, spark: SparkSession
) -> None:
    settings = segment_store.settings(tmp_path / "home")
    migrate(settings)
    operational = create_engine_for(settings)
    specs = load_segment_document(PRESETS_FILE).segments
    saved = {spec.name: parse_expression(spec.expression) for spec in specs}
    expressions = [*saved.values(), *(parse_expression(text) for text in EXTRA)]
    members = {}
    for engine in ("duckdb", "spark"):
        with open_evaluation(
            settings, operational, engine=engine, spark_session=spark
        ) as evaluation:
            evaluation.saved = saved
            members[engine] = [evaluation.members(expression) for expression in expressions]
    assert members["spark"] == members["duckdb"]
    assert sum(1 for found in members["duckdb"] if found) >= len(expressions) - 2
