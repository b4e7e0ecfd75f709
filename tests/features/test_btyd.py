"""The buy-till-you-die summary, pinned to the published CDNOW figures and to hand-made cases."""

from __future__ import annotations

from datetime import UTC, datetime
from math import exp, lgamma, log
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from perennial.config import Settings
from perennial.features import compute_features, summary_for_btyd
from perennial.features.btyd import BTYD_COLUMNS, last_observed_day
from perennial.ingest.mapping import load_mapping
from perennial.ingest.pipeline import ingest_file
from perennial.store.backends import open_backend
from perennial.store.warehouse import Warehouse
from tests.conftest import DATA, NOW
from tests.features.fixture_store import AS_OF

EXAMPLES = Path(__file__).parents[2] / "examples" / "mappings"
NEW_YORK = ZoneInfo("America/New_York")
CALIBRATION_END = datetime(1997, 10, 1, tzinfo=NEW_YORK)
"""Calibration covers 1997-01-01 .. 1997-09-30 (New York days), 39 weeks."""
HOLDOUT_END = datetime(1998, 7, 1, tzinfo=NEW_YORK)
PUBLISHED_BGNBD = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}


@pytest.fixture(scope="module")
def cdnow(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    settings = Settings(home=tmp_path_factory.mktemp("cdnow") / "home")
    mapping = load_mapping(EXAMPLES / "cdnow_sample.yaml")
    report = ingest_file(DATA / "CDNOW_sample.txt", settings, mapping=mapping, now=NOW)
    assert (report.accepted, report.quarantined) == (6_919, 0)
    return settings


def _summary(settings: Settings, end: datetime, **options: Any) -> list[dict[str, Any]]:
    snapshot = Warehouse(settings.warehouse).snapshot()
    with open_backend(settings) as backend:
        expr = summary_for_btyd(backend, snapshot, end, **options)
        return backend.to_pyarrow(expr.order_by("customer_id")).to_pylist()


def test_cdnow_sample_in_weeks_has_the_published_2357_customers_and_2457_repeat_purchases(
    cdnow: Settings,
) -> None:
    rows = _summary(cdnow, CALIBRATION_END, timezone="America/New_York")
    assert len(rows) == 2_357
    assert sum(row["frequency"] for row in rows) == 2_457
    assert list(rows[0]) == list(BTYD_COLUMNS)
    first = rows[0]  # bought 1997-01-01, 01-18, 08-02 (and 12-12, after calibration)
    assert (first["customer_id"], first["frequency"]) == ("0001", 2)
    assert first["recency"] == pytest.approx(213 / 7)
    assert first["T"] == pytest.approx(272 / 7)
    assert min(row["T"] for row in rows) == pytest.approx(27.0)  # first bought 1997-03-31


def test_cdnow_summary_reaches_the_published_bgnbd_log_likelihood(cdnow: Settings) -> None:
    rows = _summary(cdnow, CALIBRATION_END, timezone="America/New_York")
    total = sum(_bgnbd_log_likelihood(r["frequency"], r["recency"], r["T"]) for r in rows)
    assert total == pytest.approx(-9_582.4, abs=0.05)


def test_cdnow_holdout_weeks_40_to_78_hold_the_published_1882_repeat_purchases(
    cdnow: Settings,
) -> None:
    calibration = _summary(cdnow, CALIBRATION_END, timezone="America/New_York")
    whole = _summary(cdnow, HOLDOUT_END, timezone="America/New_York")
    holdout = sum(r["frequency"] for r in whole) - sum(r["frequency"] for r in calibration)
    assert holdout == 1_882


def test_cdnow_feature_purchase_days_are_first_purchases_plus_repeat_purchases(
    cdnow: Settings,
) -> None:
    snapshot = Warehouse(cdnow.warehouse).snapshot()
    with open_backend(cdnow) as backend:
        expr = compute_features(backend, snapshot, CALIBRATION_END, timezone="America/New_York")
        table = backend.to_pyarrow(expr.aggregate(days=expr.frequency_days.sum(), n=expr.count()))
    assert table.to_pylist() == [{"days": 2_357 + 2_457, "n": 2_357}]


def test_same_day_orders_count_once_and_units_scale_recency_and_t(
    fixture_settings: Settings,
) -> None:
    rows = {r["customer_id"]: r for r in _summary(fixture_settings, AS_OF, unit_days=1)}
    # sameday: Shanghai days 05-10 (10.00) and 05-20 (30.00 + 20.00); AS_OF is 06-01 08:00
    # in Shanghai, so the last observed day is 06-01
    sameday = rows["sameday"]
    assert (sameday["frequency"], sameday["recency"], sameday["T"]) == (1, 10.0, 22.0)
    assert sameday["monetary_value"] == 50.0
    one = rows["one"]
    assert (one["frequency"], one["recency"], one["T"], one["monetary_value"]) == (0, 0, 30, 0)
    assert "refunds" not in rows and "prospect" not in rows
    weekly = {r["customer_id"]: r for r in _summary(fixture_settings, AS_OF)}
    assert weekly["sameday"]["T"] == pytest.approx(22 / 7)


def test_the_last_observed_day_is_the_local_day_before_an_exclusive_end() -> None:
    assert str(last_observed_day(CALIBRATION_END, "America/New_York")) == "1997-09-30"
    assert str(last_observed_day(datetime(2025, 6, 1, 1, tzinfo=UTC), "UTC")) == "2025-06-01"
    with pytest.raises(ValueError, match="time zone"):
        last_observed_day(datetime(2025, 6, 1), "UTC")


def test_unit_days_must_be_positive(fixture_settings: Settings) -> None:
    with pytest.raises(ValueError, match="unit_days"):
        _summary(fixture_settings, AS_OF, unit_days=0)


def _bgnbd_log_likelihood(x: int, t_x: float, t: float) -> float:
    """One customer's BG/NBD log-likelihood (Fader, Hardie & Lee 2005, equation 6)."""
    r, alpha, a, b = (PUBLISHED_BGNBD[k] for k in ("r", "alpha", "a", "b"))

    def log_beta(p: float, q: float) -> float:
        return lgamma(p) + lgamma(q) - lgamma(p + q)

    common = lgamma(r + x) - lgamma(r) + r * log(alpha)
    alive = log_beta(a, b + x) - log_beta(a, b) - (r + x) * log(alpha + t)
    if x == 0:
        return common + alive
    dropped = log_beta(a + 1, b + x - 1) - log_beta(a, b) - (r + x) * log(alpha + t_x)
    return common + log(exp(alive) + exp(dropped))
