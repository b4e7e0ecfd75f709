"""The churn definition as a document: presets, overrides, and whole-document rejection."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from perennial.errors import ConfigError
from perennial.models.churn_config import (
    CHURN_PRESETS,
    PAID_ORDER,
    ChurnConfig,
    RiskBands,
    load_churn_config,
    parse_churn_config,
    resolve_churn_config,
)


def test_an_empty_document_is_the_purchase_preset_no_paid_order_in_90_days() -> None:
    config = parse_churn_config(None)

    assert config == CHURN_PRESETS["purchase"] == ChurnConfig()
    assert config.label.activity == PAID_ORDER
    assert config.label.horizon_days == 90
    assert config.population.min_paid_orders == 1


def test_the_subscription_preset_asks_about_logins_in_30_days_of_recent_users() -> None:
    config = resolve_churn_config("subscription")

    assert (config.label.activity, config.label.horizon_days) == ("login", 30)
    assert config.population.min_paid_orders == 0
    assert config.population.active_within_days == 90


def test_a_yaml_file_overrides_only_what_it_names(tmp_path: Path) -> None:
    path = tmp_path / "churn.yaml"
    path.write_text(
        "name: weekly\nlabel:\n  horizon_days: 45\nrisk_bands: {medium: 0.2, high: 0.4, "
        "critical: 0.6}\nmodel:\n  features: [recency_days, logins_30d, recency_over_rhythm]\n",
        encoding="utf-8",
    )

    config = resolve_churn_config(str(path))

    assert config.name == "weekly"
    assert config.label.horizon_days == 45
    assert config.label.activity == PAID_ORDER  # untouched default
    assert config.model.features == ("recency_days", "logins_30d", "recency_over_rhythm")
    assert config.risk_bands.band(0.45) == "high"


@pytest.mark.parametrize(
    ("document", "key"),
    [
        ({"label": {"horizen_days": 30}}, "label.horizen_days"),
        ({"lable": {}}, "lable"),
        ({"label": {"horizon_days": -5}}, "label.horizon_days"),
        ({"label": {"horizon_days": 0}}, "label.horizon_days"),
        ({"label": {"activity": "Log In"}}, "label.activity"),
        ({"population": {"min_paid_orders": -1}}, "population.min_paid_orders"),
        ({"training": {"train_cutoffs": 0}}, "training.train_cutoffs"),
        ({"model": {"features": ["recency_days", "shoe_size"]}}, "model.features.1"),
        ({"model": {"features": ["recency_days", "favourite_category"]}}, "model.features.1"),
        ({"model": {"calibration": "magic"}}, "model.calibration"),
        ({"risk_bands": {"medium": 0.8, "high": 0.5}}, "risk_bands"),
    ],
)
def test_a_bad_document_is_rejected_whole_naming_the_key(document: object, key: str) -> None:
    with pytest.raises(ConfigError) as raised:
        parse_churn_config(document, source="churn.yaml")

    assert raised.value.key_path == key
    assert str(raised.value).startswith(f"churn.yaml: {key}: ")


@given(st.integers(max_value=0))
def test_no_horizon_of_zero_or_fewer_days_is_accepted(horizon: int) -> None:
    with pytest.raises(ConfigError) as raised:
        parse_churn_config({"label": {"horizon_days": horizon}})

    assert raised.value.key_path == "label.horizon_days"


def test_a_file_that_is_missing_not_yaml_or_not_a_mapping_says_so(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("label: [unclosed\n", encoding="utf-8")
    listed = tmp_path / "list.yaml"
    listed.write_text("- 1\n- 2\n", encoding="utf-8")

    with pytest.raises(ConfigError, match="not found"):
        load_churn_config(tmp_path / "missing.yaml")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_churn_config(broken)
    with pytest.raises(ConfigError, match="must be a YAML object"):
        load_churn_config(listed)


@pytest.mark.parametrize(
    ("probability", "band"),
    [(0.0, "low"), (0.2999, "low"), (0.3, "medium"), (0.5, "high"), (0.6999, "high"),
     (0.7, "critical"), (1.0, "critical")],
)  # fmt: skip
def test_default_risk_bands_start_at_their_documented_thresholds(
    probability: float, band: str
) -> None:
    assert RiskBands().band(probability) == band
