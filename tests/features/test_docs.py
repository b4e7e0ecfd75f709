"""The feature document: generated from the registry, and naming exactly the features computed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from perennial.features.docs import render_features
from perennial.features.registry import FeatureKind
from perennial.features.snapshot import FEATURE_NAMES, FEATURES, SECTIONS

FEATURES_DOC = Path(__file__).resolve().parents[2] / "docs" / "features.md"
REGENERATE = "python -m perennial.features.docs > docs/features.md"

CONTRACT = (
    "customer_id as_of acquisition_channel first_seen_at tenure_days first_order_at "
    "last_order_at recency_days frequency_orders frequency_days refunded_orders "
    "monetary_total monetary_mean monetary_max own_mean_interval_days "
    "own_median_interval_days favourite_category category_median_interval_days "
    "population_median_interval_days expected_next_order_at days_to_expected_order "
    "orders_1d orders_7d orders_30d orders_90d spend_30d spend_prev_30d "
    "days_since_last_login browse_without_cart_ratio_30d help_searches_90d "
    "orders_trend_30d spend_trend_30d logins_trend_30d coupon_share"
).split()
EVENT_PLURALS = (
    "logins page_views add_to_carts searches coupon_redemptions complaints refund_requests"
).split()


def test_the_committed_feature_document_is_the_generated_one() -> None:
    committed = FEATURES_DOC.read_text(encoding="utf-8")
    assert committed == render_features(), (
        f"docs/features.md is out of date with the feature registry; run `{REGENERATE}`"
    )


def test_the_module_writes_the_document_to_standard_output() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "perennial.features.docs"], capture_output=True, check=True
    )
    assert result.stdout.decode("utf-8") == render_features()


def test_the_registry_holds_exactly_the_feature_names_other_code_relies_on() -> None:
    windows = [f"{plural}_{days}d" for plural in EVENT_PLURALS for days in (1, 7, 30, 90)]
    assert sorted(FEATURE_NAMES) == sorted(CONTRACT + windows)
    assert len(set(FEATURE_NAMES)) == len(FEATURE_NAMES)


def test_every_feature_is_documented_with_its_type_unit_and_window() -> None:
    document = render_features()
    for feature in FEATURES:
        row = next(
            line for line in document.splitlines() if line.startswith(f"| `{feature.name}` |")
        )
        assert feature.kind.readable in row
        assert feature.unit in row
        assert feature.description.split(";")[0] in row


def test_every_section_is_a_heading_and_every_kind_reads_as_a_plain_type() -> None:
    document = render_features()
    for section in SECTIONS:
        assert f"\n## {section.title}\n" in document
    assert all("DataType" not in kind.readable for kind in FeatureKind)


def test_counts_and_sums_default_to_zero_and_nothing_else_does() -> None:
    for feature in FEATURES:
        if feature.default is not None:
            assert feature.kind in (FeatureKind.COUNT, FeatureKind.NUMBER), feature.name
            assert feature.default == 0, feature.name
