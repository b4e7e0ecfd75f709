"""What moving the as-of by a day changes: the registry's windows, shifts, changed customers."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import ibis
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from perennial.config import Settings
from perennial.features.history import days_between
from perennial.features.snapshot import FEATURE_NAMES, FEATURES
from perennial.lifecycle.as_of_dependence import (
    AS_OF_SHIFTED,
    POPULATION_WIDE,
    WINDOW_EDGES,
    WINDOWED,
    changed_customers,
    shift_as_of,
)
from perennial.store.backends import Backend, open_backend
from perennial.store.warehouse import Warehouse
from tests.features.fixture_store import ingest_rows

# 10 May in Shanghai: from 2025-05-09 16:00 to 2025-05-10 16:00 UTC.
DAY = date(2025, 5, 10)


def test_window_edges_are_read_from_the_registry() -> None:
    assert WINDOW_EDGES == (1, 7, 30, 60, 90)
    assert {"orders_7d", "spend_prev_30d", "logins_trend_30d", "help_searches_90d"} <= set(WINDOWED)
    assert "frequency_orders" not in WINDOWED


def test_every_declared_feature_exists_and_no_feature_is_both_windowed_and_shifted() -> None:
    assert set(AS_OF_SHIFTED) | set(POPULATION_WIDE) <= set(FEATURE_NAMES)
    assert not set(WINDOWED) & (set(AS_OF_SHIFTED) | set(POPULATION_WIDE))
    shifted_units = {f.unit for f in FEATURES if f.name in AS_OF_SHIFTED}
    assert shifted_units == {"days"}


@pytest.fixture
def backend(settings: Settings) -> Iterator[Backend]:
    with open_backend(settings) as opened:
        yield opened


@settings(max_examples=25, deadline=None)
@given(
    distance=st.integers(min_value=0, max_value=3 * 365 * 86_400_000_000),
    step_hours=st.sampled_from([23, 24, 25]),
)
def test_a_shifted_day_count_is_bit_for_bit_the_fresh_one(
    tmp_path_factory: pytest.TempPathFactory, distance: int, step_hours: int
) -> None:
    """Any distance in microseconds; 23 and 25 hour steps cross a daylight saving change."""
    previous = datetime(2025, 3, 1, tzinfo=UTC)
    current = previous + timedelta(hours=step_hours)
    past = previous - timedelta(microseconds=distance)
    future = previous + timedelta(microseconds=distance)

    def day_counts(as_of: datetime) -> dict[str, ibis.Value]:
        at = ibis.literal(as_of)
        return {
            name: days_between(at, ibis.literal(past))
            if sign > 0
            else days_between(ibis.literal(future), at)
            for name, sign in AS_OF_SHIFTED.items()
        }

    one_row = ibis.memtable(pa.table({"customer_id": ["c"]}))
    with open_backend(Settings(home=tmp_path_factory.getbasetemp() / "shift")) as backend:
        before = backend.to_pyarrow(one_row.mutate(**day_counts(previous)))
        step = ibis.literal(step_hours * 3_600_000_000)
        moved = shift_as_of(ibis.memtable(before), ibis.literal(current), step)
        shifted = backend.to_pyarrow(moved)
        fresh = backend.to_pyarrow(one_row.mutate(**day_counts(current)))

    assert shifted.column("as_of")[0].as_py() == current
    for name in AS_OF_SHIFTED:
        assert shifted.column(name)[0].as_py() == fresh.column(name)[0].as_py()


def _changed(
    backend: Backend, settings: Settings, days: list[date]
) -> dict[tuple[str, str], tuple[bool, bool]]:
    snapshot = Warehouse(settings.warehouse).snapshot()
    rows = backend.to_pyarrow(changed_customers(backend, snapshot, days, "Asia/Shanghai"))
    return {
        (str(row["day"]), row["customer_id"]): (row["new_rows"], row["new_purchases"])
        for row in rows.to_pylist()
    }


def test_changed_customers_are_those_with_rows_arriving_or_leaving_a_window(
    backend: Backend, settings: Settings, tmp_path: Path
) -> None:
    ingest_rows(settings, tmp_path, "customers", [("signed_up", "2025-05-10T03:00:00Z", "ads")])
    ingest_rows(
        settings,
        tmp_path,
        "orders",
        [
            ("O1", "buyer", "2025-05-10T15:59:59Z", "10.00", "paid", ""),
            ("O2", "week_ago", "2025-05-03T12:00:00Z", "10.00", "paid", ""),  # leaves the 7 d
            ("O3", "quiet", "2025-05-05T12:00:00Z", "10.00", "paid", ""),  # in every window
            ("O4", "late", "2025-05-10T16:00:00Z", "10.00", "paid", ""),  # the next day
        ],
    )
    ingest_rows(
        settings,
        tmp_path,
        "events",
        [
            ("e1", "browser", "dev-1", "login", "2025-01-01T00:00:00Z", None),  # links dev-1
            ("e2", None, "dev-1", "page_view", "2025-03-11T00:00:00Z", None),  # leaves the 60 d
            ("e3", "visitor", None, "page_view", "2025-05-10T00:00:00Z", None),
        ],
    )

    assert _changed(backend, settings, [DAY]) == {
        ("2025-05-10", "signed_up"): (True, False),
        ("2025-05-10", "buyer"): (True, True),
        ("2025-05-10", "visitor"): (True, False),
        ("2025-05-10", "week_ago"): (False, False),
        ("2025-05-10", "browser"): (False, False),
    }


def test_a_range_of_days_finds_each_day_s_changes_in_one_query(
    backend: Backend, settings: Settings, tmp_path: Path
) -> None:
    ingest_rows(
        settings,
        tmp_path,
        "orders",
        [
            ("O1", "buyer", "2025-05-09T15:59:59Z", "10.00", "paid", ""),  # 9 May, Shanghai
            ("O2", "buyer", "2025-05-09T16:00:00Z", "10.00", "refunded", ""),  # 10 May
        ],
    )

    changed = _changed(backend, settings, [date(2025, 5, d) for d in (9, 10, 11, 16)])

    assert changed == {
        ("2025-05-09", "buyer"): (True, True),  # O1 arrives at 23:59:59 local
        ("2025-05-10", "buyer"): (True, True),  # O2 arrives at 00:00, O1 leaves the 1 d window
        ("2025-05-11", "buyer"): (False, False),  # O2 leaves the 1 d window
        ("2025-05-16", "buyer"): (False, False),  # O1 leaves the 7 d window (O2 on the 17th)
    }


def test_nothing_changes_in_an_empty_store(backend: Backend, settings: Settings) -> None:
    assert _changed(backend, settings, [DAY]) == {}


def test_shifting_an_empty_table_gives_an_empty_table(backend: Backend) -> None:
    empty = pa.table({"as_of": pa.array([], pa.timestamp("us", tz="UTC"))}).append_column(
        "customer_id", pa.array([], pa.string())
    )
    for name in AS_OF_SHIFTED:
        empty = empty.append_column(name, pa.array([], pa.float64()))

    moved = shift_as_of(ibis.memtable(empty), ibis.literal(datetime(2025, 5, 10, tzinfo=UTC)), 1)
    assert backend.to_pyarrow(moved).num_rows == 0
