"""RFM alone gives the scores the full profile gives every customer who ordered."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pyarrow.compute as pc
import pytest

from perennial.config import Settings
from perennial.demo import generate_demo
from perennial.ingest.pipeline import ingest_file
from perennial.lifecycle.presets import resolve_model_path
from perennial.lifecycle.profiles import build_profiles, build_rfm
from perennial.lifecycle.rfm import RFM_COLUMNS
from perennial.lifecycle.stage_model import load_stage_model
from perennial.store.backends import open_backend
from perennial.store.warehouse import Warehouse
from tests.features.comparison import assert_same_rows

AS_OF = datetime(2025, 7, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def demo_store(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    folder: Path = tmp_path_factory.mktemp("rfm")
    settings = Settings(home=folder / "home")
    dataset = generate_demo(folder / "demo", customers=400, seed=11, dirty_fraction=0)
    for demo_file in dataset.files:
        ingest_file(demo_file.path, settings, table=demo_file.table, now=AS_OF)
    return settings


def test_build_rfm_equals_the_profile_columns_of_customers_who_ordered(
    demo_store: Settings,
) -> None:
    model = load_stage_model(resolve_model_path("seed000"))
    columns = [
        "customer_id",
        "first_order_at",
        "last_order_at",
        "recency_days",
        "frequency_orders",
        "monetary_total",
        *RFM_COLUMNS,
    ]
    with open_backend(demo_store) as backend:
        snapshot = Warehouse(demo_store.warehouse).snapshot()
        alone = backend.to_pyarrow(build_rfm(backend, snapshot, AS_OF)).select(columns)
        profiles = backend.to_pyarrow(build_profiles(backend, snapshot, AS_OF, model))

    ordered = profiles.filter(pc.greater(profiles.column("frequency_orders"), 0))
    assert 100 < alone.num_rows == ordered.num_rows < profiles.num_rows
    assert_same_rows(
        alone.cast(ordered.select(columns).schema), ordered.select(columns), key="customer_id"
    )
