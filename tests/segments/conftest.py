"""A demo warehouse with predictions for the segment tests, and a fresh service per test.

Starts from the session's serving demo store (``tests/serving/demo_store.py``: 250
generated customers, profiles as of 2025-12-31), copied so it can be extended:
a predictions table is added whose churn probability and replenishment window
are simple functions of the profile (the segment tests check that segments read
predictions as fields, not the models). The clock is pinned to the first instant
after the demo period, 2026-01-01 00:00 in Asia/Shanghai.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from perennial.config import Settings
from perennial.lifecycle.profiles import PROFILES_TABLE
from perennial.models.predictions import PREDICTIONS_SCHEMA, store_predictions
from perennial.segments.service import SegmentService
from perennial.store.warehouse import Warehouse
from tests.serving.demo_store import DemoStore, demo_store

CLOCK = datetime(2026, 1, 1, tzinfo=UTC) - timedelta(hours=8)
"""2026-01-01 00:00 in Asia/Shanghai: the demo's profiles are as of this instant."""
TODAY = date(2026, 1, 1)
"""The local calendar day at CLOCK."""


@dataclass(frozen=True)
class SegmentStore:
    demo: DemoStore
    warehouse: Path
    ground_truth: Path

    def settings(self, home: Path, **overrides: object) -> Settings:
        values: dict[str, object] = {
            "home": home,
            "warehouse_path": self.warehouse,
            "serving_path": self.demo.settings.serving_database,
            "clock": CLOCK,
            "ingest_drain_seconds": 0,
            **overrides,
        }
        return Settings(**values)  # type: ignore[arg-type]


_built: list[SegmentStore] = []


@pytest.fixture(scope="session")
def segment_store(tmp_path_factory: pytest.TempPathFactory) -> SegmentStore:
    if not _built:
        demo = demo_store(tmp_path_factory)
        root = tmp_path_factory.mktemp("segments-demo")
        warehouse = root / "warehouse"
        source = demo.settings.warehouse
        shutil.copytree(source, warehouse, ignore=shutil.ignore_patterns("_*"))
        shutil.copytree(source / "_manifests", warehouse / "_manifests")
        _add_predictions(Warehouse(warehouse))
        truth = demo.settings.home.parent / "sources" / "ground_truth.parquet"
        _built.append(SegmentStore(demo, warehouse, truth))
    return _built[0]


def _add_predictions(warehouse: Warehouse) -> None:
    profiles = pq.read_table(warehouse.snapshot().paths(PROFILES_TABLE))
    rows = []
    for index, profile in enumerate(profiles.to_pylist()):
        recency = profile["recency_days"]
        rows.append(
            {
                "customer_id": profile["customer_id"],
                "as_of": profile["as_of"],
                "churn_probability": None if recency is None else min(1.0, recency / 120),
                "churn_risk_band": None if recency is None else "high",
                "churn_reasons_en": [],
                "churn_reasons_zh": [],
                "replenishment_category": "tea" if index % 3 == 0 else None,
                "replenishment_opens_on": TODAY + timedelta(days=index % 6 - 1)
                if index % 3 == 0
                else None,
            }
        )
    store_predictions(warehouse, pa.Table.from_pylist(rows, schema=PREDICTIONS_SCHEMA), "preds")


@pytest.fixture
def service(segment_store: SegmentStore, tmp_path: Path) -> Iterator[SegmentService]:
    yield SegmentService.migrated(segment_store.settings(tmp_path / "home"))
