"""Profiles end to end: ingest, features, RFM, tier and stage; the seeds' 45-day alarm."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from perennial.config import Settings
from perennial.ingest.pipeline import ingest_file
from perennial.lifecycle.profiles import (
    as_of_instant,
    build_profiles,
    stage_distribution,
    store_profile_rows,
    store_profiles,
    stored_stage_counts,
)
from perennial.lifecycle.stage_model import load_stage_model
from perennial.store.backends import open_backend
from perennial.store.warehouse import Warehouse
from tests.conftest import NOW
from tests.ingest.factories import orders_csv

EXAMPLES = Path(__file__).parents[2] / "examples" / "lifecycle"


@pytest.fixture
def rhythm_store(settings: Settings, tmp_path: Path) -> Settings:
    """C1 buys every 30 days (last on 1 April); C2 spends big every 5 days (last 15 April)."""
    rows = [
        f"A{i},C1,2025-{month:02d}-0{day}T02:00:00Z,100,CNY,paid"
        for i, (month, day) in enumerate([(1, 1), (1, 31), (3, 2), (4, 1)])
    ]
    rows[1] = "A1,C1,2025-01-31T02:00:00Z,100,CNY,paid"
    days = ["03-21", "03-26", "03-31", "04-05", "04-10", "04-15"]  # every 5 days
    rows += [f"B{i},C2,2025-{day}T02:00:00Z,900,CNY,paid" for i, day in enumerate(days)]
    ingest_file(orders_csv(tmp_path / "orders.csv", *rows), settings, table="orders", now=NOW)
    return settings


def _stages(settings: Settings, as_of: datetime, model: str = "seed000.yaml") -> dict[str, str]:
    stage_model = load_stage_model(EXAMPLES / model)
    with open_backend(settings) as backend:
        snapshot = Warehouse(settings.warehouse).snapshot()
        profiles = backend.to_pyarrow(build_profiles(backend, snapshot, as_of, stage_model))
    return dict(
        zip(profiles["customer_id"].to_pylist(), profiles["stage"].to_pylist(), strict=True)
    )


@pytest.mark.parametrize(
    ("as_of", "stage"),
    [
        (datetime(2025, 5, 10, 2, tzinfo=UTC), "growth"),  # 39 days silent, norm 30
        (datetime(2025, 5, 16, 2, tzinfo=UTC), "dormant"),  # 45 days: the seed's alarm
        (datetime(2025, 6, 30, 2, tzinfo=UTC), "churned"),  # 90 days: three intervals
    ],
)
def test_a_customer_silent_45_days_when_the_norm_is_30_is_dormant(
    rhythm_store: Settings, as_of: datetime, stage: str
) -> None:
    assert _stages(rhythm_store, as_of)["C1"] == stage


def test_a_frequent_high_spender_is_mature_and_loyal(rhythm_store: Settings) -> None:
    as_of = datetime(2025, 4, 20, tzinfo=UTC)
    assert _stages(rhythm_store, as_of)["C2"] == "mature"
    assert _stages(rhythm_store, as_of, "seed002.yaml")["C2"] == "loyal"


def test_profiles_are_stored_whole_and_counted_per_stage(rhythm_store: Settings) -> None:
    stage_model = load_stage_model(EXAMPLES / "seed000.yaml")
    with open_backend(rhythm_store) as backend:
        snapshot = Warehouse(rhythm_store.warehouse).snapshot()
        profiles = backend.to_pyarrow(
            build_profiles(backend, snapshot, datetime(2025, 5, 16, 2, tzinfo=UTC), stage_model)
        )
    warehouse = Warehouse(rhythm_store.warehouse)
    store_profiles(warehouse, profiles, "profiles")
    store_profiles(warehouse, profiles, "profiles")

    assert warehouse.snapshot().rows("profiles") == 2
    counts = {c.key: c.customers for c in stage_distribution(profiles, stage_model)}
    assert counts == {"introduction": 0, "churned": 1, "dormant": 1, "mature": 0, "growth": 0}
    assert {"rfm_segment", "value_tier", "stage", "recency_days"} <= set(profiles.column_names)


def test_an_as_of_date_means_the_end_of_that_local_day() -> None:
    assert as_of_instant("2025-12-31", "Asia/Shanghai").isoformat() == ("2026-01-01T00:00:00+08:00")
    assert as_of_instant("2025-12-31T08:00", "UTC").isoformat() == "2025-12-31T08:00:00+00:00"


def test_profile_rows_streamed_by_the_engine_equal_the_collected_table(
    rhythm_store: Settings, tmp_path: Path
) -> None:
    stage_model = load_stage_model(EXAMPLES / "seed000.yaml")
    settings = rhythm_store.model_copy(update={"warehouse_path": tmp_path / "copy"})
    shutil.copytree(rhythm_store.warehouse, settings.warehouse)
    warehouse = Warehouse(settings.warehouse)
    as_of = datetime(2025, 5, 16, 2, tzinfo=UTC)
    with open_backend(settings) as backend:
        expression = build_profiles(backend, warehouse.snapshot(), as_of, stage_model)
        collected = backend.to_pyarrow(expression)
        stored = store_profile_rows(warehouse, backend, expression, "profiles")
        stored_again = store_profile_rows(warehouse, backend, expression, "profiles")
        counts = stored_stage_counts(backend, warehouse.snapshot(), stage_model)

    on_disk = pq.read_table(warehouse.snapshot().paths("profiles"))
    assert stored == stored_again == collected.num_rows == warehouse.snapshot().rows("profiles")
    assert [(f.name, f.type) for f in on_disk.schema] == [
        (f.name, f.type) for f in collected.schema
    ]
    assert (
        on_disk.sort_by("customer_id").to_pylist() == collected.sort_by("customer_id").to_pylist()
    )
    assert counts == stage_distribution(collected, stage_model)
    assert list(settings.warehouse.glob("**/scratch/**/*.parquet")) == []
