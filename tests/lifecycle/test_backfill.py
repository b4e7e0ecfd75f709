"""The incremental stage history equals a full recompute on every day of a range.

The demo generator's store (300 customers, every source table, anonymous
browsing linked by logins, refunds) is backfilled day by day; each day's
profiles (features, RFM, tier, stage) must be what ``build_profiles`` gives
from scratch at that day's as-of: stages identical, floats within 1e-9.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from perennial.config import Settings
from perennial.demo import generate_demo
from perennial.ingest.pipeline import ingest_file
from perennial.lifecycle.backfill import daily_profiles
from perennial.lifecycle.profiles import as_of_instant, build_profiles
from perennial.lifecycle.stage_model import StageModel, load_stage_model
from perennial.store.backends import Backend, open_backend
from perennial.store.warehouse import Snapshot, Warehouse
from tests.features.comparison import assert_same_rows

EXAMPLES = Path(__file__).parents[2] / "examples" / "lifecycle"


@pytest.fixture(scope="module")
def demo_store(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """300 demo customers over 2024-2025, ingested through the real pipeline."""
    folder = tmp_path_factory.mktemp("backfill")
    settings = Settings(home=folder / "home")
    dataset = generate_demo(folder / "demo", customers=300, seed=3, dirty_fraction=0)
    for demo_file in dataset.files:
        ingest_file(
            demo_file.path, settings, table=demo_file.table, now=datetime(2026, 6, 1, tzinfo=UTC)
        )
    return settings


@pytest.fixture
def backend(demo_store: Settings) -> Iterator[Backend]:
    with open_backend(demo_store) as opened:
        yield opened


@pytest.fixture
def snapshot(demo_store: Settings) -> Snapshot:
    return Warehouse(demo_store.warehouse).snapshot()


def _assert_every_day_matches_a_full_recompute(
    backend: Backend,
    snapshot: Snapshot,
    model: StageModel,
    start: date,
    end: date,
    timezone: str,
) -> list[int]:
    """Compare each day; returns the number of freshly computed customers per day."""
    recomputed = []
    days = daily_profiles(backend, snapshot, model, start, end, timezone=timezone)
    for expected_day, stage_day in zip(_days(start, end), days, strict=True):
        assert stage_day.day == expected_day
        assert stage_day.as_of == as_of_instant(expected_day.isoformat(), timezone)
        full = backend.to_pyarrow(
            build_profiles(backend, snapshot, stage_day.as_of, model, timezone=timezone)
        )
        assert_same_rows(stage_day.profiles, full, key="customer_id", tolerance=1e-9)
        recomputed.append(stage_day.recomputed)
    return recomputed


@pytest.mark.slow
def test_sixty_incremental_days_equal_a_full_recompute_of_each_day(
    backend: Backend, snapshot: Snapshot
) -> None:
    model = load_stage_model(EXAMPLES / "seed000.yaml")

    recomputed = _assert_every_day_matches_a_full_recompute(
        backend, snapshot, model, date(2025, 2, 1), date(2025, 4, 1), "Asia/Shanghai"
    )

    assert len(recomputed) == 60
    assert max(recomputed) < 300  # most customers are carried over, not recomputed


@pytest.mark.slow
def test_days_across_a_daylight_saving_change_equal_a_full_recompute(
    backend: Backend, snapshot: Snapshot
) -> None:
    """Berlin's 2025-03-30 has 23 hours: the step between as-ofs is not 24 h."""
    model = load_stage_model(EXAMPLES / "seed002.yaml")

    _assert_every_day_matches_a_full_recompute(
        backend, snapshot, model, date(2025, 3, 29), date(2025, 3, 31), "Europe/Berlin"
    )


def test_a_range_that_ends_before_it_starts_is_refused(
    backend: Backend, snapshot: Snapshot
) -> None:
    model = load_stage_model(EXAMPLES / "seed000.yaml")

    with pytest.raises(ValueError, match="ends"):
        next(daily_profiles(backend, snapshot, model, date(2025, 3, 2), date(2025, 3, 1)))


def _days(start: date, end: date) -> Iterator[date]:
    day = start
    while day <= end:
        yield day
        day += timedelta(days=1)
