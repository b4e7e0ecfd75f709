"""The readable profile: labels and values in the chosen language, instants in local time."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from perennial.lifecycle.presets import resolve_model_path
from perennial.lifecycle.profile_card import ProfileCard, profile_card
from perennial.lifecycle.stage_model import load_stage_model

MODEL = load_stage_model(resolve_model_path("seed000"))

ROW: dict[str, Any] = {
    "customer_id": "C1",
    "last_order_at": datetime(2025, 4, 1, 16, 30, tzinfo=UTC),
    "recency_days": 45.25,
    "frequency_orders": 1234,
    "monetary_total": 12345.5,
    "coupon_share": 0.25,
    "own_median_interval_days": None,
    "orders_trend_30d": 1.5,
    "stage": "dormant",
    "rfm_segment": "cant_lose_them",
    "rfm_code": "155",
    "value_tier": "top_10",
}


def _values(card: ProfileCard) -> dict[str, tuple[str, str]]:
    return {f.name: (f.label, f.value) for s in card.sections for f in s.fields}


def test_chinese_card_uses_the_model_and_segment_labels_and_local_time() -> None:
    card = profile_card(ROW, MODEL, lang="zh", timezone="Asia/Shanghai")
    values = _values(card)

    assert card.stage == "休眠期"
    assert values["stage"] == ("生命周期阶段", "休眠期")
    assert values["rfm_segment"] == ("RFM 分群", "重要挽留客户")
    assert values["value_tier"] == ("价值层级", "高价值客户")
    assert values["last_order_at"] == ("最近下单", "2025-04-02 00:30")  # past midnight in Shanghai
    assert [s.title for s in card.sections][:2] == ["生命周期", "购买"]


def test_english_card_formats_by_unit() -> None:
    values = _values(profile_card(ROW, MODEL, lang="en", timezone="UTC"))

    assert values["last_order_at"][1] == "2025-04-01 16:30"
    assert values["monetary_total"] == ("Total spend", "12,345.50")
    assert values["coupon_share"][1] == "25%"
    assert values["frequency_orders"][1] == "1,234"
    assert values["recency_days"][1] == "45.2"
    assert values["orders_trend_30d"][1] == "1.50"
    assert values["own_median_interval_days"][1] == "-"
    assert values["rfm_segment"][1] == "Can't lose them"


def test_columns_the_row_lacks_are_left_out_and_unknown_keys_shown_raw() -> None:
    card = profile_card({"customer_id": "C2", "stage": "gone"}, MODEL, lang="en")

    assert card.stage == "gone"
    assert list(_values(card)) == ["stage"]


def test_the_example_file_is_the_preset() -> None:
    example = Path(__file__).parents[2] / "examples" / "lifecycle" / "seed000.yaml"
    assert load_stage_model(example) == MODEL
