"""What operators read for each feature column: a short label in English and in Chinese.

The registry's descriptions are for analysts and the documentation; a profile
card, a CLI view or a dashboard column needs a few words. Windowed features are
labelled from their family and window (``orders_30d``: "Orders, last 30 d" /
"订单数（近30天）"), so a window added to the registry needs no new entry, and a
test keeps every registered feature labelled in both languages.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

__all__ = ["FeatureLabel", "Language", "feature_label"]

Language = Literal["en", "zh"]


@dataclass(frozen=True, slots=True)
class FeatureLabel:
    en: str
    zh: str

    def text(self, lang: Language) -> str:
        return self.zh if lang == "zh" else self.en


_PLAIN: dict[str, FeatureLabel] = {
    "customer_id": FeatureLabel("Customer id", "客户编号"),
    "as_of": FeatureLabel("As of", "数据截至"),
    "acquisition_channel": FeatureLabel("Acquisition channel", "获客渠道"),
    "first_seen_at": FeatureLabel("First seen", "首次出现"),
    "tenure_days": FeatureLabel("Tenure (days)", "客龄（天）"),
    "first_order_at": FeatureLabel("First order", "首单时间"),
    "last_order_at": FeatureLabel("Last order", "最近下单"),
    "recency_days": FeatureLabel("Days since last order", "距上次下单（天）"),
    "frequency_orders": FeatureLabel("Orders", "订单数"),
    "frequency_days": FeatureLabel("Purchase days", "购买天数"),
    "refunded_orders": FeatureLabel("Refunded orders", "退款订单数"),
    "monetary_total": FeatureLabel("Total spend", "累计消费"),
    "monetary_mean": FeatureLabel("Average order value", "客单价"),
    "monetary_max": FeatureLabel("Largest order", "最大单笔"),
    "coupon_share": FeatureLabel("Orders with a coupon", "用券订单占比"),
    "spend_prev_30d": FeatureLabel("Spend, the 30 d before", "消费（前一个30天）"),
    "own_mean_interval_days": FeatureLabel("Own mean interval (days)", "个人平均购买间隔（天）"),
    "own_median_interval_days": FeatureLabel(
        "Own median interval (days)", "个人购买间隔中位数（天）"
    ),
    "favourite_category": FeatureLabel("Favourite category", "偏好品类"),
    "category_median_interval_days": FeatureLabel(
        "Category median interval (days)", "品类购买间隔中位数（天）"
    ),
    "population_median_interval_days": FeatureLabel(
        "Store median interval (days)", "全店购买间隔中位数（天）"
    ),
    "expected_next_order_at": FeatureLabel("Expected next order", "预计下次下单"),
    "days_to_expected_order": FeatureLabel("Days to expected order", "距预计下单（天）"),
    "days_since_last_login": FeatureLabel("Days since last login", "距上次登录（天）"),
    "browse_without_cart_ratio_30d": FeatureLabel(
        "Browsing without cart, last 30 d", "只逛不加购占比（近30天）"
    ),
    "help_searches_90d": FeatureLabel(
        "Cancel/refund searches, last 90 d", "退订/退款搜索（近90天）"
    ),
    "orders_trend_30d": FeatureLabel(
        "Orders trend (30 d vs 30 d before)", "订单趋势（近30天/前30天）"
    ),
    "spend_trend_30d": FeatureLabel(
        "Spend trend (30 d vs 30 d before)", "消费趋势（近30天/前30天）"
    ),
    "logins_trend_30d": FeatureLabel(
        "Logins trend (30 d vs 30 d before)", "登录趋势（近30天/前30天）"
    ),
}

_WINDOWED_FAMILIES: dict[str, FeatureLabel] = {
    "orders": FeatureLabel("Orders", "订单数"),
    "spend": FeatureLabel("Spend", "消费"),
    "logins": FeatureLabel("Logins", "登录次数"),
    "page_views": FeatureLabel("Page views", "浏览次数"),
    "add_to_carts": FeatureLabel("Add to cart", "加购次数"),
    "searches": FeatureLabel("Searches", "搜索次数"),
    "coupon_redemptions": FeatureLabel("Coupons redeemed", "核销优惠券"),
    "complaints": FeatureLabel("Complaints", "投诉次数"),
    "refund_requests": FeatureLabel("Refund requests", "退款申请"),
}

_WINDOWED = re.compile(r"^(?P<family>[a-z_]+)_(?P<days>\d+)d$")


def feature_label(name: str) -> FeatureLabel | None:
    """The label of feature column ``name``; None for a name this module does not know."""
    if name in _PLAIN:
        return _PLAIN[name]
    match = _WINDOWED.match(name)
    if match is None or match["family"] not in _WINDOWED_FAMILIES:
        return None
    family, days = _WINDOWED_FAMILIES[match["family"]], int(match["days"])
    return FeatureLabel(f"{family.en}, last {days} d", f"{family.zh}（近{days}天）")
