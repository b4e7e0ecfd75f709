"""Stored stage history on a hand-checked store: transitions on the right days, re-runs.

C1 buys every 30 days (last on 1 April, 10:00 Shanghai) and is the seeds' 45-day
alarm: the end of local day 15 May is 44.6 days after the last order (growth),
16 May is 45.6 (dormant), and 30 June is 90.6, three intervals (churned). C2
went silent on 15 April and is churned by May. C3's first and only order is on
15 May: first seen that day (from null), churned on 14 June, the first day more
than 30 days after it (past three population-median intervals of 5 days).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest

from perennial.config import Settings
from perennial.ingest.pipeline import ingest_file
from perennial.lifecycle.backfill import backfill
from perennial.lifecycle.history import (
    HISTORY_SCHEMAS,
    STAGE_HISTORY_TABLE,
    STAGE_TRANSITIONS_TABLE,
)
from perennial.lifecycle.stage_model import StageModel, load_stage_model
from perennial.store.backends import Backend, open_backend
from perennial.store.warehouse import Warehouse
from tests.conftest import NOW
from tests.ingest.factories import orders_csv

EXAMPLES = Path(__file__).parents[2] / "examples" / "lifecycle"
SEED000 = load_stage_model(EXAMPLES / "seed000.yaml")
SEED002 = load_stage_model(EXAMPLES / "seed002.yaml")


@pytest.fixture
def rhythm_store(settings: Settings, tmp_path: Path) -> Settings:
    days = ["01-01", "01-31", "03-02", "04-01"]  # every 30 days
    rows = [f"A{i},C1,2025-{day}T02:00:00Z,100,CNY,paid" for i, day in enumerate(days)]
    days = ["03-21", "03-26", "03-31", "04-05", "04-10", "04-15"]  # every 5 days
    rows += [f"B{i},C2,2025-{day}T02:00:00Z,900,CNY,paid" for i, day in enumerate(days)]
    rows.append("N1,C3,2025-05-15T02:00:00Z,50,CNY,paid")
    ingest_file(orders_csv(tmp_path / "orders.csv", *rows), settings, table="orders", now=NOW)
    return settings


@pytest.fixture
def backend(rhythm_store: Settings) -> Iterator[Backend]:
    with open_backend(rhythm_store) as opened:
        yield opened


def _backfill(
    backend: Backend, settings: Settings, start: str, end: str, model: StageModel = SEED000
) -> None:
    snapshot = Warehouse(settings.warehouse).snapshot()
    backfill(backend, snapshot, model, date.fromisoformat(start), date.fromisoformat(end))


def _stored(backend: Backend, settings: Settings, table: str) -> list[dict[str, object]]:
    snapshot = Warehouse(settings.warehouse).snapshot()
    rows = backend.to_pyarrow(backend.table(table, snapshot, schema=HISTORY_SCHEMAS[table]))
    order = [(name, "ascending") for name in ("model", "day", "customer_id")]
    return rows.sort_by(order).to_pylist()


def _moves(backend: Backend, settings: Settings) -> list[tuple[str, str | None, str, str]]:
    return [
        (str(row["day"]), row["from_stage"], row["to_stage"], str(row["customer_id"]))
        for row in _stored(backend, settings, STAGE_TRANSITIONS_TABLE)
    ]


def test_the_45_day_alarm_customer_turns_dormant_on_16_may_and_a_new_one_is_first_seen(
    backend: Backend, rhythm_store: Settings
) -> None:
    _backfill(backend, rhythm_store, "2025-05-14", "2025-05-17")

    assert _moves(backend, rhythm_store) == [
        ("2025-05-15", None, "introduction", "C3"),
        ("2025-05-16", "growth", "dormant", "C1"),
    ]
    stages = {
        (str(row["day"]), row["customer_id"]): row["stage"]
        for row in _stored(backend, rhythm_store, STAGE_HISTORY_TABLE)
    }
    assert stages[("2025-05-14", "C1")] == "growth"
    assert stages[("2025-05-15", "C1")] == "growth"
    assert stages[("2025-05-17", "C2")] == "churned"
    assert ("2025-05-14", "C3") not in stages  # not known yet


def test_the_alarm_customer_churns_on_30_june_and_the_one_time_buyer_on_14_june(
    backend: Backend, rhythm_store: Settings
) -> None:
    _backfill(backend, rhythm_store, "2025-06-13", "2025-06-14")
    _backfill(backend, rhythm_store, "2025-06-29", "2025-06-30")

    assert _moves(backend, rhythm_store) == [
        ("2025-06-14", "introduction", "churned", "C3"),
        ("2025-06-30", "dormant", "churned", "C1"),
    ]


def test_re_running_a_range_replaces_it_and_never_duplicates(
    backend: Backend, rhythm_store: Settings
) -> None:
    _backfill(backend, rhythm_store, "2025-05-14", "2025-05-17")
    first = _stored(backend, rhythm_store, STAGE_HISTORY_TABLE)
    _backfill(backend, rhythm_store, "2025-05-14", "2025-05-17")
    _backfill(backend, rhythm_store, "2025-05-16", "2025-05-18")  # overlaps the end

    history = _stored(backend, rhythm_store, STAGE_HISTORY_TABLE)
    assert len(first) == 2 + 3 + 3 + 3
    assert history[: len(first)] == first
    assert len(history) == len(first) + 3  # 18 May added, nothing twice
    assert len(_moves(backend, rhythm_store)) == 2


def test_a_model_s_re_run_leaves_other_models_history_alone(
    backend: Backend, rhythm_store: Settings
) -> None:
    _backfill(backend, rhythm_store, "2025-05-14", "2025-05-15", SEED002)
    _backfill(backend, rhythm_store, "2025-05-14", "2025-05-15")
    _backfill(backend, rhythm_store, "2025-05-14", "2025-05-15")

    models = [row["model"] for row in _stored(backend, rhythm_store, STAGE_HISTORY_TABLE)]
    assert models.count("seed000") == models.count("seed002") == 2 + 3


def test_a_failed_backfill_stores_nothing_and_leaves_no_files(
    backend: Backend, rhythm_store: Settings
) -> None:
    snapshot = Warehouse(rhythm_store.warehouse).snapshot()

    def fail(_: object) -> None:
        raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError, match="interrupted"):
        backfill(backend, snapshot, SEED000, date(2025, 5, 14), date(2025, 5, 15), on_day=fail)

    assert Warehouse(rhythm_store.warehouse).snapshot().version == snapshot.version
    leftovers = [p for p in rhythm_store.warehouse.rglob("*.parquet") if "stage" in str(p)]
    assert leftovers == []
