"""Labelled rows: the outcome window is exactly [T, T + horizon) and features never see past T."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from perennial.config import Settings
from perennial.demo import DemoDataset, DemoFile
from perennial.features.snapshot import FEATURE_NAMES, compute_features
from perennial.models.churn_config import ChurnConfig, parse_churn_config
from perennial.models.churn_labels import (
    ExtraFeaturesError,
    data_end_of,
    labelled_rows,
    population_at,
    split_cutoffs,
)
from perennial.store.backends import open_backend
from perennial.store.warehouse import Warehouse
from tests.features.fixture_store import ingest_rows
from tests.models.demo_store import churn_demo, ingest_dataset

T = datetime(2025, 6, 1, tzinfo=UTC)
HORIZON = 30
CONFIG = parse_churn_config({"label": {"horizon_days": HORIZON}})
EARLY = "2025-01-10T00:00:00Z"

# order_id, customer_id, placed_at, amount, status, coupon_code
ORDERS = [
    *[(f"X{c}", c, EARLY, "10.00", "paid", "") for c in "ABCDEG"],
    ("A2", "A", "2025-05-31T23:59:59Z", "10.00", "paid", ""),  # before T: a feature, no outcome
    ("B2", "B", "2025-06-01T00:00:00Z", "10.00", "paid", ""),  # exactly T: the outcome
    ("C2", "C", "2025-06-30T23:59:59Z", "10.00", "paid", ""),  # last second of the window
    ("D2", "D", "2025-07-01T00:00:00Z", "10.00", "paid", ""),  # T + horizon: outside
    ("E2", "E", "2025-06-10T00:00:00Z", "10.00", "refunded", ""),  # not a paid order
    ("F1", "F", "2025-06-10T00:00:00Z", "10.00", "paid", ""),  # no order before T
]
# event_id, customer_id, anonymous_id, event_type, ts, properties
EVENTS: list[tuple[object, ...]] = [
    ("l1", "A", None, "login", "2025-05-20T00:00:00Z", None),
    ("l2", "A", None, "login", "2025-06-05T00:00:00Z", None),
    ("l3", "B", None, "login", "2025-01-20T00:00:00Z", None),
    ("l4", "G", None, "login", "2025-05-30T00:00:00Z", None),
]


@pytest.fixture
def small_store(tmp_path: Path) -> Settings:
    settings = Settings(home=tmp_path / "home")
    ingest_rows(settings, tmp_path, "orders", ORDERS)
    ingest_rows(settings, tmp_path, "events", EVENTS)
    return settings


def _labels(settings: Settings, config: ChurnConfig, cutoff: datetime = T) -> dict[str, bool]:
    with open_backend(settings) as backend:
        rows = labelled_rows(backend, Warehouse(settings.warehouse).snapshot(), cutoff, config)
    return dict(zip(rows["customer_id"].to_pylist(), rows["churned"].to_pylist(), strict=True))


def test_the_outcome_window_starts_at_the_cutoff_and_ends_before_t_plus_horizon(
    small_store: Settings,
) -> None:
    labels = _labels(small_store, CONFIG)

    assert labels == {
        "A": True,  # its order a second before T counts as history, not as staying
        "B": False,  # an order exactly at T is the first instant of the window
        "C": False,
        "D": True,  # an order exactly at T + 30 d is after the window
        "E": True,  # a refunded order is not a purchase
        "G": True,
    }  # F had no paid order before T: not in the population


def test_an_event_type_can_define_staying_and_recent_activity_the_population(
    small_store: Settings,
) -> None:
    config = parse_churn_config(
        {
            "label": {"activity": "login", "horizon_days": HORIZON},
            "population": {"min_paid_orders": 0, "active_within_days": 60},
        }
    )

    labels = _labels(small_store, config)

    # A logged in 12 days before T and 4 days after; G only before; B's last login
    # is 132 days old, outside the 60-day population window; C, D, E never logged in.
    assert labels == {"A": False, "G": True}


def test_labelled_rows_carry_recency_of_the_activity_and_every_feature(
    small_store: Settings,
) -> None:
    with open_backend(small_store) as backend:
        rows = labelled_rows(backend, Warehouse(small_store.warehouse).snapshot(), T, CONFIG)

    assert rows.column_names[:3] == ["customer_id", "cutoff", "churned"]
    assert set(FEATURE_NAMES) <= set(rows.column_names)
    recency = dict(
        zip(rows["customer_id"].to_pylist(), rows["activity_recency_days"].to_pylist(), strict=True)
    )
    assert recency["A"] == pytest.approx(1 / 86_400)  # one second before T
    assert recency["B"] == pytest.approx((T - datetime(2025, 1, 10, tzinfo=UTC)).days)


def test_scoring_rows_read_nothing_from_the_cutoff_on(small_store: Settings) -> None:
    with open_backend(small_store) as backend:
        rows = population_at(backend, Warehouse(small_store.warehouse).snapshot(), T, CONFIG)

    assert rows["churned"].to_pylist() == [True] * rows.num_rows  # no outcome was read
    assert sorted(rows["customer_id"].to_pylist()) == ["A", "B", "C", "D", "E", "G"]


def test_the_data_end_is_the_latest_order_or_event_and_none_for_an_empty_store(
    small_store: Settings, tmp_path: Path
) -> None:
    empty = Settings(home=tmp_path / "empty")
    with open_backend(small_store) as backend:
        end = data_end_of(backend, Warehouse(small_store.warehouse).snapshot())
    with open_backend(empty) as backend:
        nothing = data_end_of(backend, Warehouse(empty.warehouse).snapshot())

    assert end == datetime(2025, 7, 1, tzinfo=UTC)
    assert nothing is None


def test_split_cutoffs_keep_every_outcome_window_before_the_next_split() -> None:
    end = datetime(2025, 12, 31, 17, 30, tzinfo=UTC)
    config = parse_churn_config({"training": {"train_cutoffs": 4, "step_days": 20}})

    cutoffs = split_cutoffs(end, config)

    horizon = timedelta(days=90)
    assert cutoffs.validation + horizon <= end
    assert cutoffs.validation == datetime(2025, 10, 2, tzinfo=UTC)
    assert cutoffs.calibration + horizon <= cutoffs.validation
    assert cutoffs.training[-1] + horizon <= cutoffs.calibration
    assert len(cutoffs.training) == 4
    assert {b - a for a, b in itertools.pairwise(cutoffs.training)} == {timedelta(20)}
    with pytest.raises(ValueError, match="time zone"):
        split_cutoffs(datetime(2025, 12, 31), config)


def test_extra_features_join_on_customer_id_from_a_callable_or_a_table_per_cutoff(
    small_store: Settings,
) -> None:
    def p_alive(cutoff: datetime) -> pa.Table:
        assert cutoff == T
        return pa.table({"customer_id": ["A", "B"], "p_alive": [0.2, 0.9]})

    table = pa.table(
        {
            "customer_id": ["A", "A"],
            "as_of": pa.array([T, T - timedelta(days=1)], pa.timestamp("us", tz="UTC")),
            "expected_purchases": [1.5, 9.0],
        }
    )
    with open_backend(small_store) as backend:
        snapshot = Warehouse(small_store.warehouse).snapshot()
        called = labelled_rows(backend, snapshot, T, CONFIG, extra_features=p_alive)
        tabled = labelled_rows(backend, snapshot, T, CONFIG, extra_features=table)

    assert called["p_alive"].to_pylist() == [0.2, 0.9, None, None, None, None]
    assert tabled["expected_purchases"].to_pylist()[0] == 1.5
    assert tabled["expected_purchases"].null_count == tabled.num_rows - 1


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (pa.table({"customer_id": ["A"], "p": [1.0]}), "needs an as_of column"),
        (
            pa.table({"customer_id": ["A"], "as_of": pa.array([datetime(2020, 1, 1, tzinfo=UTC)]),
                      "p": [1.0]}),
            "no rows as of",
        ),
        (lambda _t: pa.table({"id": ["A"], "p": [1.0]}), "customer_id"),
        (lambda _t: pa.table({"customer_id": ["A"], "p": ["high"]}), "not numeric"),
        (lambda _t: pa.table({"customer_id": ["A", "A"], "p": [1.0, 2.0]}), "more than one row"),
        (lambda _t: pa.table({"customer_id": ["A"], "recency_days": [1.0]}), "repeat existing"),
    ],
)  # fmt: skip
def test_bad_extra_features_are_refused_with_the_reason(
    small_store: Settings, extra: object, message: str
) -> None:
    with open_backend(small_store) as backend, pytest.raises(ExtraFeaturesError, match=message):
        labelled_rows(
            backend,
            Warehouse(small_store.warehouse).snapshot(),
            T,
            CONFIG,
            extra_features=extra,  # type: ignore[arg-type]
        )


def test_orders_and_events_after_the_cutoff_change_no_feature_of_its_rows(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """The demo store against the same demo cut at T: every feature of every row at T is
    equal, while the labels, which read [T, T + 90 d), are not."""
    demo = churn_demo(tmp_path_factory)
    cutoff = datetime(2025, 6, 1, tzinfo=UTC)
    truncated = Settings(home=tmp_path_factory.mktemp("churn-truncated") / "home")
    ingest_dataset(_before(demo.dataset, cutoff, truncated.home.parent / "sources"), truncated)
    config = ChurnConfig()

    def at_cutoff(settings: Settings) -> tuple[pa.Table, pa.Table]:
        with open_backend(settings) as backend:
            snapshot = Warehouse(settings.warehouse).snapshot()
            rows = labelled_rows(backend, snapshot, cutoff, config)
            everyone = backend.to_pyarrow(compute_features(backend, snapshot, cutoff))
        return rows, everyone.sort_by("customer_id")

    full_rows, full_features = at_cutoff(demo.settings)
    cut_rows, cut_features = at_cutoff(truncated)

    assert full_features.equals(cut_features)  # every customer, every feature
    assert full_rows.drop_columns(["churned"]).equals(cut_rows.drop_columns(["churned"]))
    assert full_rows.num_rows > 500
    assert pc.all(cut_rows["churned"]).as_py()  # nothing after T in the cut store
    assert 0 < pc.sum(full_rows["churned"]).as_py() < full_rows.num_rows


def _before(dataset: DemoDataset, cutoff: datetime, folder: Path) -> DemoDataset:
    """A copy of the demo's files without any order, order line or event at or after T."""
    folder.mkdir(parents=True)
    files = []
    for demo_file in dataset.files:
        target = folder / demo_file.path.name
        if demo_file.format == "parquet":
            table = pq.read_table(demo_file.path)
            time_column = "ts" if demo_file.table == "events" else "placed_at"
            instants = pc.cast(table[time_column], pa.timestamp("us", tz="UTC"))
            keep = pc.less(instants, pa.scalar(cutoff, pa.timestamp("us", tz="UTC")))
            pq.write_table(table.filter(pc.fill_null(keep, True)), target)
        elif demo_file.format == "jsonl":
            lines = demo_file.path.read_bytes().splitlines()
            kept = [line for line in lines if _before_cutoff(line, cutoff)]
            target.write_bytes(b"\n".join(kept) + b"\n")
        else:
            target.write_bytes(demo_file.path.read_bytes())
        files.append(DemoFile(target, demo_file.table, demo_file.format, demo_file.rows))
    return DemoDataset(tuple(files), dataset.ground_truth, dataset.customers, 0, 0, 0, dataset.end)


def _before_cutoff(line: bytes, cutoff: datetime) -> bool:
    """A JSON line dated before T; the demo's deliberately broken lines stay (quarantined
    alike in both stores)."""
    try:
        ts = orjson.loads(line)["ts"]
        return datetime.fromisoformat(ts.replace("Z", "+00:00")) < cutoff
    except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError, ValueError):
        return True
