"""The 360's profile: every feature labelled in the viewer's language and formatted by its unit."""

from __future__ import annotations

from datetime import UTC, date, datetime
from functools import partial

import pytest

from perennial.api.customer_views import Consent, CustomerDetails, FeatureValue
from perennial.features.snapshot import FEATURE_NAMES
from perennial.web.customer_card import (
    KEY_FEATURES,
    SECTION_KEYS,
    detail_facts,
    feature_sections,
    format_feature,
    key_facts,
)
from perennial.web.formatting import Formatter
from perennial.web.i18n import CATALOGUE, translate

ZH = Formatter("zh-CN", "Asia/Shanghai")
EN = Formatter("en", "Asia/Shanghai")
YES_NO = ("是", "否")
FEATURES = {
    "customer_id": "C1",
    "monetary_total": 123_456.78,
    "frequency_orders": 62,
    "recency_days": 12.636,
    "last_order_at": "2025-12-19T00:44:01Z",
    "coupon_share": 0.1613,
    "favourite_category": "<b>fruit</b>",
    "orders_trend_30d": 0.6667,
    "churn_probability": 0.25,
    "expected_next_order_at": None,
}


@pytest.mark.parametrize(
    ("name", "value", "chinese", "english"),
    [
        ("monetary_total", 123_456.78, "¥123,456.78", "¥123,456.78"),
        ("frequency_orders", 12_345, "12,345", "12,345"),
        ("recency_days", 12.636, "12.6", "12.6"),
        ("last_order_at", "2025-12-19T00:44:01Z", "2025年12月19日 08:44", "19 Dec 2025 08:44"),
        ("coupon_share", 0.1613, "16.1%", "16.1%"),
        ("orders_trend_30d", 0.66667, "0.67", "0.67"),
        ("favourite_category", "fruit", "fruit", "fruit"),
        ("expected_next_order_at", None, "—", "—"),
        ("churn_probability", 0.25, "0.25", "0.25"),  # not in the registry: a plain number
        ("last_order_at", "not a time", "not a time", "not a time"),
    ],
)
def test_a_feature_is_formatted_by_its_registry_unit(
    name: str, value: FeatureValue, chinese: str, english: str
) -> None:
    assert format_feature(name, value, ZH, "CNY", YES_NO) == chinese
    assert format_feature(name, value, EN, "CNY", YES_NO) == english


def test_key_facts_come_first_in_a_fixed_order_with_feature_labels() -> None:
    facts = key_facts(FEATURES, ZH, "CNY", YES_NO)
    assert [f.name for f in facts] == [n for n in KEY_FEATURES if n in FEATURES]
    assert facts[0].label == "累计消费" and facts[0].value == "¥123,456.78"
    english = key_facts(FEATURES, EN, "CNY", YES_NO)
    assert english[2].label == "Days since last order"


def test_every_feature_is_shown_once_grouped_and_unknown_ones_under_other() -> None:
    sections = feature_sections(FEATURES, ZH, "CNY", YES_NO)
    shown = [fact.name for section in sections for fact in section.facts]
    assert sorted(shown) == sorted(set(FEATURES) - {"customer_id"})
    assert sections[-1].key == "section.other"
    assert [f.name for f in sections[-1].facts] == ["churn_probability"]
    assert sections[-1].facts[0].label == "churn_probability"
    assert all(section.key in CATALOGUE["en"] for section in sections)


def test_every_registered_feature_section_has_a_label() -> None:
    assert set(SECTION_KEYS.values()) | {"section.other"} <= set(CATALOGUE["zh-CN"])
    assert set(KEY_FEATURES) <= set(FEATURE_NAMES)


def test_the_customer_record_reads_as_sentences_with_consent_per_channel() -> None:
    details = CustomerDetails(
        created_at=datetime(2024, 2, 16, 8, 37, tzinfo=UTC),
        birthday=date(1975, 8, 3),
        gender=None,
        region="广东",
        acquisition_channel="paid_search",
        timezone="Asia/Shanghai",
        consent=Consent(email=True, sms=False, push=None, wechat=True),
    )
    facts = {f.name: f for f in detail_facts(details, ZH, partial(translate, "zh-CN"))}
    assert facts["created_at"].value == "2024年2月16日 16:37"
    assert facts["birthday"].value == "1975年8月3日"
    assert facts["gender"].value == "—"
    assert facts["consent"].value == "短信: 不同意, 邮件: 同意, 推送: —, 微信: 同意"
    assert facts["region"].label == "地区"
