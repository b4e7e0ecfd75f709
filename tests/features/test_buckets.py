"""Bucketed features equal the single plan's, bucket files leave no trace, the plan is sane."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import ibis  # type: ignore[import-untyped]
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from perennial.config import Settings
from perennial.features import compute_features
from perennial.features.buckets import (
    ROWS_PER_GIB,
    bucket_of,
    bucketed_features,
    feature_table,
    planned_buckets,
)
from perennial.store.backends import Backend, open_backend
from perennial.store.warehouse import Snapshot, Warehouse
from tests.features.comparison import assert_same_rows
from tests.features.fixture_store import AS_OF
from tests.models.demo_store import churn_demo

DEMO_AS_OF = datetime(2025, 10, 1, tzinfo=UTC)


@pytest.fixture
def fixture_backend(fixture_settings: Settings) -> Iterator[tuple[Backend, Snapshot]]:
    with open_backend(fixture_settings) as backend:
        yield backend, Warehouse(fixture_settings.warehouse).snapshot()


def _bucketed(
    backend: Backend,
    snapshot: Snapshot,
    as_of: datetime,
    workdir: Path,
    buckets: int,
    timezone: str = "Asia/Shanghai",
) -> pa.Table:
    with bucketed_features(
        backend, snapshot, as_of, workdir=workdir, buckets=buckets, timezone=timezone
    ) as table:
        return backend.to_pyarrow(table)


@pytest.mark.parametrize("buckets", [2, 5, 40])
@pytest.mark.parametrize("timezone", ["Asia/Shanghai", "America/New_York"])
def test_bucketed_features_of_the_edge_case_fixture_equal_the_single_plan(
    fixture_backend: tuple[Backend, Snapshot], tmp_path: Path, buckets: int, timezone: str
) -> None:
    """40 buckets for 11 customers: most buckets are empty and must still work."""
    backend, snapshot = fixture_backend
    single = backend.to_pyarrow(compute_features(backend, snapshot, AS_OF, timezone=timezone))

    bucketed = _bucketed(backend, snapshot, AS_OF, tmp_path, buckets, timezone)

    assert single.num_rows == 11
    assert_same_rows(single, bucketed, key="customer_id")


def test_bucketed_features_of_a_demo_shop_equal_the_single_plan(
    tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
) -> None:
    """The demo has anonymous browsing linked by later logins, help searches, categories:
    everything the shuffle must carry (attribution, search properties, order lines)."""
    demo = churn_demo(tmp_path_factory)
    snapshot = Warehouse(demo.settings.warehouse).snapshot()
    with open_backend(demo.settings) as backend:
        single = backend.to_pyarrow(compute_features(backend, snapshot, DEMO_AS_OF))
        bucketed = _bucketed(backend, snapshot, DEMO_AS_OF, tmp_path, 3)

    assert single.num_rows > 500
    assert sum(single.column("help_searches_90d").to_pylist()) > 0
    assert len(set(single.column("category_median_interval_days").to_pylist())) > 2
    assert_same_rows(single, bucketed, key="customer_id")


def test_bucket_files_are_removed_after_the_block_and_after_an_error(
    fixture_backend: tuple[Backend, Snapshot], tmp_path: Path
) -> None:
    backend, snapshot = fixture_backend
    with bucketed_features(backend, snapshot, AS_OF, workdir=tmp_path, buckets=3) as table:
        assert list(tmp_path.iterdir())  # the shuffled sources and bucket results
        backend.to_pyarrow(table)
    assert list(tmp_path.iterdir()) == []

    with (
        pytest.raises(RuntimeError, match="caller failed"),
        bucketed_features(backend, snapshot, AS_OF, workdir=tmp_path, buckets=3),
    ):
        raise RuntimeError("caller failed")
    assert list(tmp_path.iterdir()) == []


def test_one_bucket_is_the_lazy_single_plan_and_writes_nothing(
    fixture_backend: tuple[Backend, Snapshot], tmp_path: Path
) -> None:
    backend, snapshot = fixture_backend
    with feature_table(backend, snapshot, AS_OF, workdir=tmp_path, buckets=1) as table:
        rows = backend.to_pyarrow(table)
        assert not tmp_path.exists() or list(tmp_path.iterdir()) == []
    with feature_table(backend, snapshot, AS_OF, workdir=tmp_path, buckets=4) as table:
        assert_same_rows(rows, backend.to_pyarrow(table), key="customer_id")


def test_planned_buckets_follow_the_memory_limit_unless_a_count_is_requested(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    demo = churn_demo(tmp_path_factory)
    snapshot = Warehouse(demo.settings.warehouse).snapshot()
    rows = sum(snapshot.rows(t) for t in ("orders", "order_items", "events"))
    roomy = demo.settings.model_copy(update={"duckdb_memory_limit": "8GB"})
    tight = demo.settings.model_copy(update={"duckdb_memory_limit": "1MB"})

    with open_backend(roomy) as backend:
        assert planned_buckets(backend, snapshot) == 1
        assert planned_buckets(backend, snapshot, 6) == 6
        with pytest.raises(ValueError, match="at least 1"):
            planned_buckets(backend, snapshot, 0)
    with open_backend(tight) as backend:
        per_bucket = backend.memory_limit_bytes() / 2**30 * ROWS_PER_GIB  # type: ignore[operator]
        assert rows > 3 * per_bucket  # the demo is far too big for 1 MB
        assert planned_buckets(backend, snapshot) == -(-rows // int(per_bucket))


@settings(max_examples=60, deadline=None)
@given(
    ids=st.lists(st.text(min_size=0, max_size=12), min_size=1, max_size=30, unique=True),
    buckets=st.integers(min_value=1, max_value=17),
)
def test_every_customer_lands_in_exactly_one_bucket_in_range(ids: list[str], buckets: int) -> None:
    backend = ibis.duckdb.connect()
    table = ibis.memtable(pa.table({"customer_id": pa.array(ids, pa.string())}))
    result = backend.to_pyarrow(table.mutate(bucket=bucket_of(table.customer_id, buckets)))
    again = backend.to_pyarrow(table.mutate(bucket=bucket_of(table.customer_id, buckets)))

    assert result.equals(again)
    assert all(0 <= b < buckets for b in result.column("bucket").to_pylist())
