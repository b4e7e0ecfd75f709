"""One customer's profile as people read it: labelled, grouped and formatted, zh-CN or en.

The profile table holds machine values (UTC instants, stage keys, raw floats);
the CLI's ``perennial profile`` and later the customer 360 page show the same
row as sections of label / value pairs. Formatting follows the feature
registry's units, so a new feature is shown sensibly without touching this
module; instants are shown in the store's local time zone.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from perennial.features.labels import FeatureLabel, Language, feature_label
from perennial.features.registry import Feature
from perennial.features.snapshot import SECTIONS
from perennial.lifecycle.rfm_config import RfmConfig, default_rfm_config
from perennial.lifecycle.stage_model import StageModel
from perennial.lifecycle.tiers import VALUE_TIER_LABELS, ValueTier

__all__ = ["CardField", "CardSection", "ProfileCard", "profile_card"]


@dataclass(frozen=True, slots=True)
class CardField:
    name: str
    """The profile column."""
    label: str
    value: str
    """Formatted for reading; ``-`` when the value is null."""


@dataclass(frozen=True, slots=True)
class CardSection:
    title: str
    fields: tuple[CardField, ...]


@dataclass(frozen=True, slots=True)
class ProfileCard:
    customer_id: str
    stage: str
    """The stage's label in the card's language (``-`` without a stage)."""
    sections: tuple[CardSection, ...]


_SECTION_TITLES = {
    "Lifecycle": FeatureLabel("Lifecycle", "生命周期"),
    "Customer": FeatureLabel("Customer", "客户"),
    "Purchases": FeatureLabel("Purchases", "购买"),
    "Purchase rhythm": FeatureLabel("Purchase rhythm", "购买节奏"),
    "Activity": FeatureLabel("Activity", "行为"),
    "Trends": FeatureLabel("Trends", "趋势"),
}

_LIFECYCLE_LABELS = {
    "stage": FeatureLabel("Lifecycle stage", "生命周期阶段"),
    "rfm_segment": FeatureLabel("RFM segment", "RFM 分群"),
    "rfm_code": FeatureLabel("RFM code", "RFM 编码"),
    "rfm_r": FeatureLabel("R score", "R 分"),
    "rfm_f": FeatureLabel("F score", "F 分"),
    "rfm_m": FeatureLabel("M score", "M 分"),
    "value_tier": FeatureLabel("Value tier", "价值层级"),
}

_MISSING = "-"


def profile_card(
    row: Mapping[str, Any],
    model: StageModel,
    *,
    lang: Language = "zh",
    timezone: str = "Asia/Shanghai",
    rfm_config: RfmConfig | None = None,
) -> ProfileCard:
    """The card of one profile row (a row of build_profiles, as a dict).

    Columns the row lacks are left out, so a bare feature row gives a card too.
    """
    zone = ZoneInfo(timezone)
    stage = _stage_label(row.get("stage"), model, lang)
    lifecycle = _lifecycle_section(row, stage, rfm_config or default_rfm_config(), lang)
    sections = [lifecycle] if lifecycle.fields else []
    for section in SECTIONS:
        fields = tuple(
            CardField(f.name, _label(f.name, lang), _format(row[f.name], f, zone))
            for f in section.features
            if f.name in row and f.name != "customer_id"
        )
        if fields:
            sections.append(CardSection(_title(section.title, lang), fields))
    return ProfileCard(str(row.get("customer_id", _MISSING)), stage, tuple(sections))


def _lifecycle_section(
    row: Mapping[str, Any], stage: str, rfm: RfmConfig, lang: Language
) -> CardSection:
    shown = {
        "stage": stage,
        "rfm_segment": _segment_label(row.get("rfm_segment"), rfm, lang),
        "rfm_code": _text(row.get("rfm_code")),
        "rfm_r": _text(row.get("rfm_r")),
        "rfm_f": _text(row.get("rfm_f")),
        "rfm_m": _text(row.get("rfm_m")),
        "value_tier": _tier_label(row.get("value_tier"), lang),
    }
    fields = tuple(
        CardField(name, _LIFECYCLE_LABELS[name].text(lang), value)
        for name, value in shown.items()
        if name in row
    )
    return CardSection(_title("Lifecycle", lang), fields)


def _stage_label(key: object, model: StageModel, lang: Language) -> str:
    stage = next((s for s in model.stages if s.key == key), None)
    if stage is None:
        return _text(key)
    return stage.label_zh if lang == "zh" else stage.label_en


def _segment_label(key: object, rfm: RfmConfig, lang: Language) -> str:
    if key == rfm.no_orders.key:
        label = rfm.no_orders.label
    elif isinstance(key, str) and key in rfm.segments:
        label = rfm.segments[key].label
    else:
        return _text(key)
    return label.zh if lang == "zh" else label.en


def _tier_label(key: object, lang: Language) -> str:
    if key not in {tier.value for tier in ValueTier}:
        return _text(key)
    label = VALUE_TIER_LABELS[ValueTier(key)]
    return label.zh if lang == "zh" else label.en


def _title(title: str, lang: Language) -> str:
    known = _SECTION_TITLES.get(title)
    return known.text(lang) if known else title


def _label(name: str, lang: Language) -> str:
    label = feature_label(name)
    return label.text(lang) if label else name


def _format(value: object, feature: Feature, zone: ZoneInfo) -> str:
    """A value by the feature's unit: local time, money, share, days or a count."""
    if value is None:
        return _MISSING
    if isinstance(value, datetime):
        return value.astimezone(zone).strftime("%Y-%m-%d %H:%M")
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if feature.unit == "currency":
        return f"{value:,.2f}"
    if feature.unit == "ratio 0-1":
        return f"{value:.0%}"
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:,.2f}" if feature.unit == "ratio" else f"{value:,.1f}"


def _text(value: object) -> str:
    return _MISSING if value is None else str(value)
