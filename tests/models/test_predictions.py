"""Every model's answer per customer in one table: complete, finite, and null when a model
cannot run (never NaN), stored atomically."""

from __future__ import annotations

import math
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from perennial.config import Settings
from perennial.features import summary_for_btyd
from perennial.models.predictions import (
    PREDICTIONS_SCHEMA,
    PREDICTIONS_TABLE,
    PredictionRun,
    compute_predictions,
    store_predictions,
)
from perennial.models.registry import ModelRegistry, save_churn_model
from perennial.store.backends import open_backend
from perennial.store.warehouse import Warehouse
from tests.models.demo_store import churn_demo, trained_demo_model

AS_OF = datetime(2025, 12, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """A private copy of the churn demo (these tests write predictions into it)."""
    demo = churn_demo(tmp_path_factory)
    root = tmp_path_factory.mktemp("predictions")
    shutil.copytree(demo.settings.warehouse, root / "warehouse")
    return Settings(home=root / "home", warehouse_path=root / "warehouse")


@pytest.fixture(scope="module")
def with_model(store: Settings, tmp_path_factory: pytest.TempPathFactory) -> ModelRegistry:
    registry = ModelRegistry(tmp_path_factory.mktemp("registry"))
    stored = save_churn_model(registry, trained_demo_model(tmp_path_factory))
    registry.promote(stored.version)
    return registry


def _predict(settings: Settings, registry: ModelRegistry, as_of: datetime = AS_OF) -> PredictionRun:
    with open_backend(settings) as backend:
        snapshot = Warehouse(settings.warehouse).snapshot()
        return compute_predictions(backend, snapshot, as_of, registry, timezone="Asia/Shanghai")


def _buyers_before(settings: Settings, as_of: datetime) -> set[str]:
    """Customers with a paid order before ``as_of`` (the BTYD summary's rows)."""
    with open_backend(settings) as backend:
        snapshot = Warehouse(settings.warehouse).snapshot()
        table = backend.to_pyarrow(summary_for_btyd(backend, snapshot, as_of))
    return set(table.column("customer_id").to_pylist())


def test_every_buyer_gets_finite_predictions_from_every_model(
    store: Settings, with_model: ModelRegistry
) -> None:
    run = _predict(store, with_model)
    table = run.table
    assert table.schema == PREDICTIONS_SCHEMA
    assert run.notes == []
    assert run.churn_model_version is not None
    assert {"bgnbd_r", "bgnbd_alpha", "gamma_gamma_p"} <= set(run.btyd)
    ids = table.column("customer_id").to_pylist()
    assert ids == sorted(ids) and len(ids) == len(set(ids))
    assert len(ids) >= 0.9 * len(_buyers_before(store, AS_OF))
    for column in ("p_alive", "clv_12m", "expected_purchases_90d", "churn_probability"):
        values = [v for v in table.column(column).to_pylist() if v is not None]
        assert values, column
        assert all(math.isfinite(v) and v >= 0 for v in values), column
    assert pc.max(table.column("p_alive")).as_py() <= 1.0
    assert pc.min(table.column("churn_probability")).as_py() > 0.0
    assert pc.max(table.column("churn_probability")).as_py() < 1.0
    nines = pc.less_equal(table.column("expected_purchases_90d"), table["expected_purchases_12m"])
    assert pc.all(nines).as_py()


def test_next_order_dates_are_after_the_as_of_and_ordered(
    store: Settings, with_model: ModelRegistry
) -> None:
    rows = [r for r in _predict(store, with_model).table.to_pylist() if r["next_order_expected_at"]]
    assert rows
    as_of_day = AS_OF.date()
    for row in rows:
        assert row["next_order_earliest"] <= row["next_order_expected_at"]
        assert row["next_order_expected_at"] <= row["next_order_latest"]
        assert row["next_order_earliest"] >= as_of_day
    # the 30-day chance is unconditional: never above the chance of being alive at all
    assert all(r["next_order_probability_30d"] <= r["p_alive"] + 1e-12 for r in rows)
    due = [r for r in rows if r["replenishment_opens_on"] is not None]
    assert due and all(r["replenishment_opens_on"] >= as_of_day for r in due)
    assert all(r["replenishment_category"] for r in due)


def test_reasons_come_in_both_languages_for_every_scored_customer(
    store: Settings, with_model: ModelRegistry
) -> None:
    table = _predict(store, with_model).table
    scored = table.filter(pc.is_valid(table.column("churn_probability"))).to_pylist()
    assert scored
    for row in scored:
        assert row["churn_risk_band"] in {"low", "medium", "high", "critical"}
        assert len(row["churn_reasons_en"]) == len(row["churn_reasons_zh"]) <= 3
        assert 0 < row["churn_percentile"] <= 100


def test_without_a_promoted_churn_model_churn_columns_are_null_and_the_run_says_why(
    store: Settings, tmp_path: Path
) -> None:
    run = _predict(store, ModelRegistry(tmp_path / "empty"))
    assert run.churn_model_version is None
    assert any("no promoted churn model" in note for note in run.notes)
    assert run.table.num_rows > 0
    assert run.table.column("churn_probability").null_count == run.table.num_rows
    assert run.table.column("clv_12m").null_count < run.table.num_rows


def test_before_any_order_there_is_nothing_to_predict_and_no_error(
    store: Settings, tmp_path: Path
) -> None:
    run = _predict(store, ModelRegistry(tmp_path / "empty"), datetime(2000, 1, 1, tzinfo=UTC))
    assert run.table.num_rows == 0
    assert run.table.schema == PREDICTIONS_SCHEMA
    assert any("BG/NBD" in note for note in run.notes)


def test_a_naive_as_of_is_refused(store: Settings, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        _predict(store, ModelRegistry(tmp_path), datetime(2025, 12, 1))


def test_stored_predictions_replace_the_previous_ones_whole(
    store: Settings, with_model: ModelRegistry
) -> None:
    warehouse = Warehouse(store.warehouse)
    table = _predict(store, with_model).table
    assert store_predictions(warehouse, table, "first") == table.num_rows
    assert store_predictions(warehouse, table.slice(0, 5), "second") == 5
    paths = warehouse.snapshot().paths(PREDICTIONS_TABLE)
    stored = pa.concat_tables([pq.read_table(p) for p in paths])
    assert stored.num_rows == 5
    with pytest.raises(ValueError, match="PREDICTIONS_SCHEMA"):
        store_predictions(warehouse, table.drop_columns(["clv_12m"]), "third")
    assert sum(pq.read_metadata(p).num_rows for p in paths) == 5
