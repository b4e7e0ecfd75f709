"""Features of the edge-case fixture, each expectation computed by hand from its rows.

``AS_OF`` is 2025-06-01 00:00 UTC; local days are Asia/Shanghai (UTC+8) unless a
test says otherwise. The rows are in ``fixture_store``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pyarrow as pa
import pytest

from perennial.config import Settings
from perennial.features import FEATURE_NAMES, FEATURES, compute_features
from perennial.store.backends import open_backend
from perennial.store.warehouse import Warehouse
from tests.features.fixture_store import AS_OF

Features = dict[str, dict[str, Any]]
SECOND = 1 / 86_400


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def test_every_customer_known_by_as_of_has_one_row_and_a_record_created_at_as_of_has_none(
    fixture_features: Features,
) -> None:
    assert sorted(fixture_features) == [
        "browser",
        "carts",
        "exact",
        "midnight",
        "one",
        "prospect",
        "refunds",
        "sameday",
        "trend",
        "undated",
        "windows",
    ]


def test_the_table_has_the_registered_columns_and_types(fixture_settings: Settings) -> None:
    snapshot = Warehouse(fixture_settings.warehouse).snapshot()
    with open_backend(fixture_settings) as backend:
        table = backend.to_pyarrow(compute_features(backend, snapshot, AS_OF))
    assert tuple(table.column_names) == FEATURE_NAMES
    expected = {
        "string": pa.string(),
        "timestamp": pa.timestamp("us", tz="UTC"),
        "count": pa.int64(),
        "number": pa.float64(),
    }
    assert [table.schema.field(f.name).type for f in FEATURES] == [
        expected[f.kind.value] for f in FEATURES
    ]
    assert set(table.column("as_of").to_pylist()) == {AS_OF}


def test_a_customer_with_one_order_has_recency_and_money_but_no_own_interval(
    fixture_features: Features,
) -> None:
    one = fixture_features["one"]
    assert one["first_order_at"] == one["last_order_at"] == _at("2025-05-02T00:00:00")
    assert one["recency_days"] == 30.0
    assert (one["frequency_orders"], one["frequency_days"]) == (1, 1)
    assert (one["monetary_total"], one["monetary_mean"], one["monetary_max"]) == (100.0,) * 3
    assert one["own_mean_interval_days"] is None
    assert one["own_median_interval_days"] is None
    assert one["coupon_share"] == 1.0
    assert one["coupon_redemptions_30d"] == 1
    assert (one["acquisition_channel"], one["tenure_days"]) == ("ads", 151.0)


def test_a_single_order_expects_the_next_at_its_favourite_categorys_median_interval(
    fixture_features: Features,
) -> None:
    one = fixture_features["one"]
    # coffee purchase days: sameday 05-10 and 05-20 -> one interval of 10 days
    assert (one["favourite_category"], one["category_median_interval_days"]) == ("coffee", 10.0)
    assert one["expected_next_order_at"] == _at("2025-05-12T00:00:00")
    assert one["days_to_expected_order"] == -20.0


def test_refunds_only_count_as_refunds_and_never_as_purchases(fixture_features: Features) -> None:
    refunds = fixture_features["refunds"]
    assert refunds["refunded_orders"] == 2  # R3 is cancelled, not refunded
    assert (refunds["frequency_orders"], refunds["frequency_days"]) == (0, 0)
    assert refunds["monetary_total"] == 0.0
    for name in ("monetary_mean", "monetary_max", "first_order_at", "last_order_at"):
        assert refunds[name] is None, name
    for name in ("recency_days", "coupon_share", "expected_next_order_at"):
        assert refunds[name] is None, name
    # the refunded order's nine coffees are not a favourite
    assert refunds["favourite_category"] is None
    assert refunds["first_seen_at"] == _at("2025-02-01T00:00:00")
    assert (refunds["complaints_1d"], refunds["refund_requests_30d"]) == (1, 0)
    assert refunds["refund_requests_90d"] == 1


def test_two_purchases_on_one_local_day_are_two_orders_but_one_purchase_day(
    fixture_features: Features,
) -> None:
    sameday = fixture_features["sameday"]
    assert (sameday["frequency_orders"], sameday["frequency_days"]) == (3, 2)
    assert sameday["own_mean_interval_days"] == sameday["own_median_interval_days"] == 10.0
    assert (sameday["monetary_total"], sameday["monetary_mean"]) == (60.0, 20.0)
    assert sameday["monetary_max"] == 30.0
    assert sameday["coupon_share"] == pytest.approx(1 / 3)
    assert sameday["favourite_category"] == "coffee"  # two coffees, one tea
    assert sameday["recency_days"] == pytest.approx(11 + 14 / 24)
    assert sameday["expected_next_order_at"] == _at("2025-05-30T10:00:00")
    assert sameday["days_to_expected_order"] == pytest.approx(-(1 + 14 / 24))


def test_an_undated_record_is_known_and_first_seen_at_its_first_order(
    fixture_features: Features,
) -> None:
    sameday = fixture_features["sameday"]
    assert sameday["acquisition_channel"] == "organic"
    assert sameday["first_seen_at"] == _at("2025-05-10T02:00:00")
    assert sameday["tenure_days"] == pytest.approx(21 + 22 / 24)
    undated = fixture_features["undated"]
    assert (undated["first_seen_at"], undated["tenure_days"]) == (None, None)
    assert undated["frequency_orders"] == 0


def test_an_order_and_a_login_exactly_at_as_of_are_not_counted(fixture_features: Features) -> None:
    exact = fixture_features["exact"]
    assert (exact["frequency_orders"], exact["monetary_total"]) == (1, 5.0)
    assert exact["last_order_at"] == _at("2025-05-31T23:59:59")
    assert exact["recency_days"] == pytest.approx(SECOND)
    assert exact["orders_1d"] == 1
    assert exact["days_since_last_login"] is None
    assert exact["logins_1d"] == 0


def test_a_customer_without_interval_or_category_falls_back_to_the_population_median(
    fixture_features: Features,
) -> None:
    # all intervals: sameday 10, midnight 5 and 1, windows 30, 53 and 6 -> median 8
    assert {row["population_median_interval_days"] for row in fixture_features.values()} == {8.0}
    exact = fixture_features["exact"]
    assert exact["expected_next_order_at"] == _at("2025-06-08T23:59:59")
    assert exact["days_to_expected_order"] == pytest.approx(8 - SECOND)


def test_2330_and_0030_in_shanghai_are_two_local_days_within_one_utc_day(
    fixture_features: Features,
) -> None:
    midnight = fixture_features["midnight"]
    # M3 05-04 23:30Z and M4 05-05 00:30Z are both 05-05 in Shanghai (one local day);
    # M1 05-10 15:30Z and M2 16:30Z are 05-10 23:30 and 05-11 00:30 (two local days).
    assert (midnight["frequency_orders"], midnight["frequency_days"]) == (4, 3)
    assert midnight["own_mean_interval_days"] == midnight["own_median_interval_days"] == 3.0
    assert (midnight["favourite_category"], midnight["category_median_interval_days"]) == (
        "tea",
        1.0,
    )
    assert midnight["acquisition_channel"] is None
    assert midnight["expected_next_order_at"] == _at("2025-05-13T16:30:00")


def test_the_time_zone_argument_decides_the_local_day(fixture_settings: Settings) -> None:
    snapshot = Warehouse(fixture_settings.warehouse).snapshot()
    with open_backend(fixture_settings) as backend:
        expr = compute_features(backend, snapshot, AS_OF, timezone="America/Los_Angeles")
        rows = {r["customer_id"]: r for r in backend.to_pyarrow(expr).to_pylist()}
    # S1 05-20 02:00Z is 05-19 19:00 in Los Angeles, S2 05-20 10:00Z is 05-20 03:00,
    # S3 05-10 02:00Z is 05-09 19:00: days 05-09, 05-19, 05-20, intervals 10 and 1.
    assert rows["sameday"]["frequency_days"] == 3
    assert rows["sameday"]["own_median_interval_days"] == 5.5


def test_windows_include_their_start_and_exclude_a_second_earlier(
    fixture_features: Features,
) -> None:
    windows = fixture_features["windows"]
    counts = [windows[f"orders_{days}d"] for days in (1, 7, 30, 90)]
    assert counts == [1, 2, 3, 5]
    assert windows["frequency_orders"] == 6
    assert (windows["spend_30d"], windows["spend_prev_30d"]) == (7.0, 32.0)
    assert windows["first_order_at"] == _at("2025-03-02T23:59:59")
    # local days 03-03 (W4, W5), 04-02, 05-25 (W2, W3), 05-31
    assert windows["frequency_days"] == 4
    assert windows["own_mean_interval_days"] == pytest.approx(89 / 3)
    assert windows["own_median_interval_days"] == 30.0
    assert windows["favourite_category"] == "coffee"  # tied with tea: first by name


def test_an_order_exactly_30_days_before_as_of_is_in_the_30_day_window_not_the_7(
    fixture_features: Features,
) -> None:
    one = fixture_features["one"]
    assert (one["orders_7d"], one["orders_30d"], one["spend_30d"]) == (0, 1, 100.0)


def test_trends_divide_the_last_30_days_by_the_30_before(fixture_features: Features) -> None:
    windows = fixture_features["windows"]
    assert windows["orders_trend_30d"] == 3.0
    assert windows["spend_trend_30d"] == 7 / 32
    assert windows["logins_trend_30d"] == 0.5
    assert (windows["logins_30d"], windows["logins_90d"]) == (1, 3)
    assert windows["days_since_last_login"] == 22.0


def test_trends_are_null_when_the_earlier_window_is_empty(fixture_features: Features) -> None:
    trend = fixture_features["trend"]
    assert (trend["orders_30d"], trend["logins_30d"]) == (1, 2)
    for name in ("orders_trend_30d", "spend_trend_30d", "logins_trend_30d"):
        assert trend[name] is None, name
    assert trend["days_since_last_login"] == 7.0
    assert trend["expected_next_order_at"] == _at("2025-05-23T00:00:00")


def test_anonymous_browsing_counts_for_the_customer_who_logged_in_on_that_device_before_as_of(
    fixture_features: Features,
) -> None:
    browser = fixture_features["browser"]
    # dev-1 (linked 05-22): two page views and a cart; dev-2 is linked only after as_of
    assert (browser["page_views_30d"], browser["add_to_carts_30d"]) == (2, 1)
    assert browser["browse_without_cart_ratio_30d"] == 0.5
    assert (browser["logins_30d"], browser["days_since_last_login"]) == (1, 10.0)
    assert browser["first_seen_at"] == _at("2025-02-01T00:00:00")
    assert browser["acquisition_channel"] is None


def test_help_searches_match_cancel_and_注销_in_any_case_within_90_days(
    fixture_features: Features,
) -> None:
    browser = fixture_features["browser"]
    assert (browser["searches_30d"], browser["searches_90d"]) == (3, 3)
    assert browser["help_searches_90d"] == 2  # 'export my data' is 120 days old


def test_more_carts_than_page_views_clip_the_browse_ratio_to_zero(
    fixture_features: Features,
) -> None:
    carts = fixture_features["carts"]
    assert carts["browse_without_cart_ratio_30d"] == 0.0
    assert fixture_features["one"]["browse_without_cart_ratio_30d"] is None


def test_a_prospect_without_activity_has_zero_counts_and_null_times(
    fixture_features: Features,
) -> None:
    prospect = fixture_features["prospect"]
    assert (prospect["acquisition_channel"], prospect["tenure_days"]) == ("wechat", 12.0)
    for feature in FEATURES:
        if feature.default is not None:
            assert prospect[feature.name] == feature.default, feature.name
    assert prospect["recency_days"] is None
    assert prospect["expected_next_order_at"] is None


def test_an_empty_store_gives_an_empty_table(settings: Settings) -> None:
    snapshot = Warehouse(settings.warehouse).snapshot()
    with open_backend(settings) as backend:
        table = backend.to_pyarrow(compute_features(backend, snapshot, AS_OF))
    assert table.num_rows == 0
    assert tuple(table.column_names) == FEATURE_NAMES


def test_as_of_must_carry_a_time_zone_and_the_zone_must_exist(settings: Settings) -> None:
    snapshot = Warehouse(settings.warehouse).snapshot()
    with open_backend(settings) as backend:
        with pytest.raises(ValueError, match="time zone"):
            compute_features(backend, snapshot, datetime(2025, 6, 1))
        with pytest.raises(ValueError, match="Mars/Olympus"):
            compute_features(backend, snapshot, AS_OF, timezone="Mars/Olympus")


def test_an_as_of_in_another_zone_is_the_same_instant(fixture_settings: Settings) -> None:
    snapshot = Warehouse(fixture_settings.warehouse).snapshot()
    shanghai = AS_OF.astimezone(ZoneInfo("Asia/Shanghai"))
    with open_backend(fixture_settings) as backend:
        utc = backend.to_pyarrow(compute_features(backend, snapshot, AS_OF))
        other = backend.to_pyarrow(compute_features(backend, snapshot, shanghai))
    assert utc.sort_by("customer_id").equals(other.sort_by("customer_id"))
