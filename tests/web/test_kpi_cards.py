"""KPI cards: the API's values formatted per language, the change with its arrow and tone."""

from __future__ import annotations

from datetime import date
from functools import partial

import pytest

from perennial.api.routes.lifecycle import KpiCard, KpisView, StageKpiCard
from perennial.serving.board import StageInfo
from perennial.web.formatting import Formatter
from perennial.web.i18n import translate
from perennial.web.kpi_cards import CARD_KEYS, KpiCardView, kpi_cards
from perennial.web.stage_display import stage_styles

STAGES = [
    StageInfo("introduction", "Introduction", "引入期", "new"),
    StageInfo("churned", "Churned", "流失期", "churned"),
    StageInfo("dormant", "Dormant", "休眠期", "dormant"),
    StageInfo("mature", "Mature", "成熟期", "active"),
    StageInfo("growth", "Growth", "成长期", "active"),
]


def _card(value: float | None, previous: float | None) -> KpiCard:
    change = None if value is None or previous is None else value - previous
    ratio = None if change is None or not previous else change / previous
    return KpiCard(value=value, previous=previous, change=change, change_ratio=ratio)


def _stage(value: float | None, previous: float | None, *stages: str) -> StageKpiCard:
    return StageKpiCard(**_card(value, previous).model_dump(), stages=list(stages))


def _view(**cards: KpiCard) -> KpisView:
    defaults: dict[str, KpiCard] = {
        "customers": _card(123_456, 100_000),
        "active": _stage(60_000, 50_000, "mature", "growth"),
        "new": _stage(1_000, 1_000, "introduction"),
        "dormant": _stage(8_000, 10_000, "dormant"),
        "churned": _stage(5_000, 4_000, "churned"),
        "revenue": _card(1_234_567.5, 1_500_000),
        "repurchase_rate": _card(0.345, 0.3),
    }
    day = date(2025, 12, 31)
    return KpisView.model_validate(
        {
            "model": "seed000",
            "as_of": day,
            "period_days": 30,
            "period_start": day,
            "period_end": day,
            "previous_start": day,
            "previous_end": day,
            "currency": "CNY",
            **{key: card.model_dump() for key, card in {**defaults, **cards}.items()},
        }
    )


def _cards(view: KpisView, language: str = "zh-CN") -> dict[str, KpiCardView]:
    t = partial(translate, language)
    styles = stage_styles(STAGES, language, new_label="n", unmatched_label="u")
    cards = kpi_cards(view, Formatter(language, "Asia/Shanghai"), t, styles)
    assert [card.key for card in cards] == list(CARD_KEYS)
    return {card.key: card for card in cards}


def test_values_are_formatted_in_wan_and_yi_for_chinese_readers() -> None:
    cards = _cards(_view())
    assert cards["customers"].value == "12.35万"
    assert cards["revenue"].value == "¥123.46万"
    assert cards["repurchase_rate"].value == "34.5%"
    assert cards["new"].value == "1,000"


def test_english_readers_get_k_and_m() -> None:
    cards = _cards(_view(), "en")
    assert cards["customers"].value == "123.46K"
    assert cards["revenue"].value == "¥1.23M"
    assert cards["active"].label == "Active"
    assert cards["active"].stages == "Growth · Mature"


@pytest.mark.parametrize(
    ("key", "direction", "tone", "change"),
    [
        ("customers", "up", "good", "+23.5%"),
        ("active", "up", "good", "+20.0%"),
        ("new", "flat", "neutral", "0.0%"),
        ("dormant", "down", "good", "-20.0%"),
        ("churned", "up", "bad", "+25.0%"),
        ("revenue", "down", "bad", "-17.7%"),
        ("repurchase_rate", "up", "good", "+4.5 个百分点"),
    ],
)
def test_the_change_has_an_arrow_and_up_is_bad_only_for_dormant_and_churned(
    key: str, direction: str, tone: str, change: str
) -> None:
    card = _cards(_view())[key]
    assert (card.direction, card.tone, card.change) == (direction, tone, change)
    assert card.arrow == {"up": "▲", "down": "▼", "flat": "■"}[direction]


def test_the_absolute_change_is_formatted_like_the_value() -> None:
    cards = _cards(_view())
    assert cards["customers"].delta == "+2.35万"
    assert cards["dormant"].delta == "-2,000"
    assert cards["revenue"].delta == "-¥26.54万"
    assert cards["repurchase_rate"].delta is None
    assert cards["revenue"].previous == "¥150万"


def test_missing_values_and_previous_periods_say_so_instead_of_inventing_numbers() -> None:
    view = _view(
        churned=_stage(None, None),
        customers=_card(10, None),
        revenue=_card(500, 0),
    )
    cards = _cards(view)
    churned = cards["churned"]
    assert (churned.value, churned.direction, churned.change) == ("—", "none", None)
    assert churned.stages == "阶段模型中没有这类阶段"
    assert (cards["customers"].direction, cards["customers"].previous) == ("none", None)
    revenue = cards["revenue"]
    assert (revenue.change, revenue.delta, revenue.tone) == (None, "+¥500.00", "good")
