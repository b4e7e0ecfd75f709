"""The serving demo store with known predictions: a copy of its warehouse, a predictions
table made up from the customer ids (so tests know every value), and its own serving file."""

from __future__ import annotations

import hashlib
import shutil
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from perennial.config import Settings
from perennial.lifecycle.profiles import PROFILES_TABLE
from perennial.models.predictions import PREDICTIONS_SCHEMA, store_predictions
from perennial.serving import refresh_serving
from perennial.store.warehouse import Warehouse
from tests.serving.demo_store import demo_store

BANDS = ((0.7, "critical"), (0.5, "high"), (0.3, "medium"), (0.0, "low"))


@dataclass(frozen=True)
class PredictedStore:
    settings: Settings
    predictions: list[dict[str, Any]]
    """The stored rows (every fourth profiled customer has none)."""

    def by_id(self) -> dict[str, dict[str, Any]]:
        return {row["customer_id"]: row for row in self.predictions}


_built: list[PredictedStore] = []


def predicted_store(factory: pytest.TempPathFactory) -> PredictedStore:
    if not _built:
        _built.append(_build(factory))
    return _built[0]


def _unit(customer_id: str, salt: str) -> float:
    digest = hashlib.sha256(f"{salt}:{customer_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def _band(probability: float) -> str:
    return next(name for floor, name in BANDS if probability >= floor)


def prediction_row(customer_id: str, as_of: datetime) -> dict[str, Any]:
    probability = round(0.02 + 0.96 * _unit(customer_id, "churn"), 6)
    clv = None if _unit(customer_id, "no-clv") < 0.1 else round(5000 * _unit(customer_id, "clv"), 2)
    p_alive = round(_unit(customer_id, "alive"), 6)
    expected = date(2026, 1, 1) + timedelta(days=int(60 * _unit(customer_id, "next")))
    return {
        "customer_id": customer_id,
        "as_of": as_of,
        "p_alive": p_alive,
        "expected_purchases_90d": 0.5,
        "expected_purchases_12m": 2.0,
        "expected_average_spend": 100.0,
        "clv_12m": clv,
        "churn_probability": probability,
        "churn_risk_band": _band(probability),
        "churn_percentile": round(100 * probability, 1),
        "churn_reasons_en": ["=SUM(A1:A2)", f"reason two of {customer_id}"],
        "churn_reasons_zh": [f"{customer_id} 的原因一", "第二个原因"],
        "churn_model_version": "churn-0042",
        "next_order_expected_at": expected,
        "next_order_earliest": expected - timedelta(days=5),
        "next_order_latest": expected + timedelta(days=20),
        "next_order_probability_30d": round(0.5 * p_alive, 6),
        "replenishment_category": "coffee" if p_alive > 0.5 else None,
        "replenishment_opens_on": expected + timedelta(days=3) if p_alive > 0.5 else None,
    }


def _build(factory: pytest.TempPathFactory) -> PredictedStore:
    demo = demo_store(factory)
    root = factory.mktemp("predicted")
    shutil.copytree(demo.settings.warehouse, root / "warehouse")
    settings = demo.settings.model_copy(
        update={
            "home": root / "home",
            "warehouse_path": root / "warehouse",
            "serving_path": root / "serving.db",
        }
    )
    warehouse = Warehouse(settings.warehouse)
    profiles = pa.concat_tables(
        pq.read_table(path) for path in warehouse.snapshot().paths(PROFILES_TABLE)
    )
    as_of = max(profiles.column("as_of").to_pylist()).astimezone(UTC)
    ids = sorted(profiles.column("customer_id").to_pylist())
    rows = [prediction_row(customer_id, as_of) for i, customer_id in enumerate(ids) if i % 4]
    store_predictions(warehouse, pa.Table.from_pylist(rows, PREDICTIONS_SCHEMA), "predictions")
    refresh_serving(settings, demo.model)
    return PredictedStore(settings, rows)
