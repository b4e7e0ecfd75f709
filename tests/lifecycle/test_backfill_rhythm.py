"""The store-wide purchase rhythm kept as gap histograms matches the features' medians."""

from __future__ import annotations

import statistics
from collections import Counter
from datetime import UTC, date, datetime, timedelta

import ibis
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from perennial.config import Settings
from perennial.features.history import load_history
from perennial.features.rhythm_population import (
    RhythmPopulation,
    gap_counts,
    with_population_rhythm,
)
from perennial.features.snapshot import compute_features, features_from_history
from perennial.lifecycle.purchase_days import PurchaseDays, purchase_days
from perennial.store.backends import Backend
from perennial.store.warehouse import Snapshot, Warehouse
from tests.features.comparison import assert_same_rows
from tests.features.fixture_store import AS_OF

EARLIER = datetime(2025, 5, 10, 12, tzinfo=UTC)


@pytest.fixture
def backend(fixture_backend: Backend) -> Backend:
    return fixture_backend


@pytest.fixture
def snapshot(fixture_settings: Settings) -> Snapshot:
    return Warehouse(fixture_settings.warehouse).snapshot()


def _counts(rows: list[tuple[str | None, float, int]]) -> pa.Table:
    category, gap_days, gaps = zip(*rows, strict=True) if rows else ((), (), ())
    return pa.table(
        {
            "category": pa.array(category, pa.string()),
            "gap_days": pa.array(gap_days, pa.float64()),
            "gaps": pa.array(gaps, pa.int64()),
        }
    )


@settings(deadline=None)  # the first call pays for pyarrow's lazy set-up
@given(st.lists(st.integers(min_value=1, max_value=400), min_size=1, max_size=60))
def test_the_histogram_median_is_the_middle_gap_or_the_mean_of_the_two_middle_ones(
    days: list[int],
) -> None:
    gaps = [float(day) for day in days]
    rhythm = RhythmPopulation.from_counts(
        _counts([(None, gap, count) for gap, count in Counter(gaps).items()])
    )

    assert rhythm.population_median() == statistics.median(gaps)


def test_removing_gaps_updates_the_medians_and_empties_a_category() -> None:
    rhythm = RhythmPopulation.from_counts(_counts([(None, 5.0, 3), ("tea", 7.0, 1)]))
    rhythm.add(_counts([(None, 5.0, -1), (None, 30.0, 2), ("tea", 7.0, -1)]))

    assert rhythm.population_median() == (5.0 + 30.0) / 2
    assert rhythm.category_medians() == {}


def test_an_empty_rhythm_has_no_medians() -> None:
    rhythm = RhythmPopulation.from_counts(_counts([]))

    assert rhythm.population_median() is None
    assert rhythm.category_medians() == {}


def test_removing_more_gaps_than_held_is_an_error() -> None:
    rhythm = RhythmPopulation.from_counts(_counts([(None, 5.0, 1)]))

    with pytest.raises(ValueError, match="more gaps removed"):
        rhythm.add(_counts([(None, 5.0, -2)]))


def test_medians_from_gap_counts_equal_the_feature_table_s(
    backend: Backend, snapshot: Snapshot
) -> None:
    history = load_history(backend, snapshot, AS_OF, timezone="Asia/Shanghai")
    rhythm = RhythmPopulation.from_counts(backend.to_pyarrow(gap_counts(history)))
    features = backend.to_pyarrow(features_from_history(history)).to_pylist()

    population = {row["population_median_interval_days"] for row in features}
    assert population == {rhythm.population_median()}
    for row in features:
        if row["favourite_category"] is not None:
            medians = rhythm.category_medians()
            expected = row["category_median_interval_days"]
            assert medians.get(row["favourite_category"]) == expected


def test_gap_changes_from_purchase_days_move_the_earlier_histogram_to_the_later_one(
    backend: Backend, snapshot: Snapshot
) -> None:
    """Purchase days read once (as of a later day) give the gaps as of any earlier instant."""
    before = load_history(backend, snapshot, EARLIER, timezone="Asia/Shanghai")
    after = load_history(backend, snapshot, AS_OF, timezone="Asia/Shanghai")
    latest = load_history(backend, snapshot, AS_OF + timedelta(days=3), timezone="Asia/Shanghai")
    everyone = latest.orders.select("customer_id").distinct()
    items = backend.table("order_items", snapshot)
    days = PurchaseDays(backend.to_pyarrow(purchase_days(latest, items, everyone)))
    customers = backend.to_pyarrow(everyone).column("customer_id").to_pylist()
    rhythm = RhythmPopulation.from_counts(backend.to_pyarrow(gap_counts(before)))

    rhythm.add(days.gap_changes(customers, EARLIER, AS_OF))

    assert rhythm == RhythmPopulation.from_counts(backend.to_pyarrow(gap_counts(after)))


def test_a_line_counts_from_the_later_of_its_own_and_its_order_s_time() -> None:
    """A day becomes visible when its row does: C's 3rd day (a line) only after 12:00."""
    noon = datetime(2025, 5, 10, 12, tzinfo=UTC)
    rows = pa.table(
        {
            "customer_id": ["C", "C", "C"],
            "category": ["tea", "tea", "tea"],
            "local_day": pa.array([date(2025, 5, 1), date(2025, 5, 5), date(2025, 5, 10)]),
            "visible_from": pa.array(
                [datetime(2025, 5, 1, tzinfo=UTC), datetime(2025, 5, 5, tzinfo=UTC), noon],
                pa.timestamp("us", tz="UTC"),
            ),
        }
    )

    changes = PurchaseDays(rows).gap_changes(["C", "unknown"], noon, noon + timedelta(hours=1))

    assert changes.to_pylist() == [{"category": "tea", "gap_days": 5.0, "gaps": 1}]
    assert PurchaseDays(rows).gap_changes(["C"], noon, noon).num_rows == 0


def test_rewriting_the_population_columns_reproduces_the_features(
    backend: Backend, snapshot: Snapshot
) -> None:
    history = load_history(backend, snapshot, AS_OF, timezone="Asia/Shanghai")
    features = backend.to_pyarrow(features_from_history(history))
    rhythm = RhythmPopulation.from_counts(backend.to_pyarrow(gap_counts(history)))
    blanked = features.drop_columns(["population_median_interval_days"]).append_column(
        "population_median_interval_days", pa.nulls(features.num_rows, pa.float64())
    )
    day = pa.table(
        {
            "median": pa.array([rhythm.population_median()], pa.float64()),
            "day_as_of": pa.array([AS_OF], pa.timestamp("us", tz="UTC")),
        }
    )
    with_day = ibis.memtable(blanked).cross_join(ibis.memtable(day))

    rewritten = with_population_rhythm(
        with_day,
        ibis.memtable(rhythm.medians_table()),
        population_median="median",
        as_of="day_as_of",
        reference=history,
    )

    expected = backend.to_pyarrow(compute_features(backend, snapshot, AS_OF))
    result = backend.to_pyarrow(rewritten.select(*expected.column_names))
    assert_same_rows(result, expected, key="customer_id", tolerance=0.0)
