"""Point in time (DESIGN.md rule 1): rows dated at or after ``as_of`` never change a feature.

Each example copies the fixture store, ingests random late rows into every table
(orders of any status, lines of old and new orders, events of every counted type,
logins that link a known device to a customer, new customer records) and
recomputes the features, which must equal those of the fixture alone.
"""

from __future__ import annotations

import shutil
import tempfile
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from perennial.config import Settings
from perennial.features import compute_features, summary_for_btyd
from perennial.features.activity import COUNTED_EVENTS
from perennial.store.backends import open_backend
from perennial.store.warehouse import Warehouse
from tests.features.fixture_store import AS_OF, ORDERS, ingest_rows

KNOWN_CUSTOMERS = ["one", "sameday", "windows", "trend", "browser", "prospect", "future"]
CUSTOMER_IDS = st.sampled_from([*KNOWN_CUSTOMERS, "late-1", "late-2"])
ANONYMOUS_IDS = st.sampled_from(["dev-1", "dev-2", "dev-9"])
LATE_SECONDS = st.one_of(st.just(0), st.integers(0, 3), st.integers(0, 180 * 86_400))
"""Seconds after ``as_of``: exactly at it, just after it, or up to half a year later."""
QUERIES = st.sampled_from(["cancel", "注销 account", "EXPORT", "shoes"])


def _late(seconds: int) -> str:
    return (AS_OF + timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")


@st.composite
def late_rows(draw: st.DrawFn) -> dict[str, list[tuple[object, ...]]]:
    orders = [
        (
            f"late-o{i}",
            draw(CUSTOMER_IDS),
            _late(draw(LATE_SECONDS)),
            f"{draw(st.integers(0, 500))}.25",
            draw(st.sampled_from(["paid", "refunded", "cancelled"])),
            draw(st.sampled_from(["", "LATE5"])),
        )
        for i in range(draw(st.integers(0, 4)))
    ]
    order_ids = [row[0] for row in orders] + [row[0] for row in ORDERS]
    items = [
        (f"late-i{i}", draw(st.sampled_from(order_ids)), _late(draw(LATE_SECONDS)), "tea", 5)
        for i in range(draw(st.integers(0, 3)))
    ]
    events = []
    for i in range(draw(st.integers(0, 6))):
        event_type = draw(st.sampled_from(sorted(COUNTED_EVENTS)))
        customer = draw(st.one_of(st.none(), CUSTOMER_IDS))
        anonymous = draw(ANONYMOUS_IDS) if customer is None else draw(st.none() | ANONYMOUS_IDS)
        query = {"query": draw(QUERIES)} if event_type == "search" else None
        events.append(
            (f"late-e{i}", customer, anonymous, event_type, _late(draw(LATE_SECONDS)), query)
        )
    customers = [
        (f"late-{i}", _late(draw(LATE_SECONDS)), "late") for i in range(draw(st.integers(0, 2)))
    ]
    return {"orders": orders, "order_items": items, "events": events, "customers": customers}


Rows = tuple[list[dict[str, Any]], list[dict[str, Any]]]


@pytest.fixture(scope="module")
def baseline(fixture_settings: Settings) -> Rows:
    return _features(fixture_settings)


def _features(settings_: Settings) -> Rows:
    snapshot = Warehouse(settings_.warehouse).snapshot()
    with open_backend(settings_) as backend:
        features = compute_features(backend, snapshot, AS_OF).order_by("customer_id")
        summary = summary_for_btyd(backend, snapshot, AS_OF).order_by("customer_id")
        return backend.to_pyarrow(features).to_pylist(), backend.to_pyarrow(summary).to_pylist()


@pytest.mark.slow
@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(rows=late_rows())
def test_rows_at_or_after_as_of_never_change_any_feature_or_the_btyd_summary(
    fixture_settings: Settings, baseline: Rows, rows: dict[str, list[tuple[object, ...]]]
) -> None:
    with tempfile.TemporaryDirectory() as folder:
        home = Path(folder) / "home"
        shutil.copytree(fixture_settings.warehouse, home / "warehouse")
        copy = Settings(home=home)
        for table, table_rows in rows.items():
            if table_rows:
                ingest_rows(copy, Path(folder), table, table_rows, name=f"late_{table}")
        assert Warehouse(copy.warehouse).snapshot().version > 0
        after = _features(copy)
    assert after == baseline
