"""Why a customer is at risk, in words: the top three reasons in English and Chinese.

The reasons come from the model's own per-prediction contributions (LightGBM's
``pred_contrib=True``, TreeSHAP in log-odds), so they explain this score, not
the population. Features that say the same thing are grouped into one topic
(silence in orders: recency, recency over rhythm, the overdue expected order,
orders in 90 days; silence in logins: days since login, logins and their
trend), so three reasons are three different things. A topic counts when its
summed contribution pushes risk up; its sentence is built from the member
pushing hardest, from the customer's own value and a reference: their own
rhythm where the feature layer has it ("no order for 45 days, usually every
30"), else the training rows' median ("typical 3"). Features without a template
(extra features such as P(alive)) fall back to the label of
:mod:`perennial.features.labels` (or the column name), value and median.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from perennial.features.labels import Language, feature_label
from perennial.models.churn_model import ChurnModel, feature_matrix

__all__ = ["TOP_REASONS", "ChurnReason", "churn_reasons", "reason_sentence"]

TOP_REASONS = 3

_CONTEXT = (
    "recency_days",
    "own_median_interval_days",
    "category_median_interval_days",
    "population_median_interval_days",
    "logins_90d",
    "logins_30d",
    "orders_30d",
)
"""Columns the sentences read besides the model's features (the references they quote)."""

_TOPICS: dict[str, str] = {
    "recency_days": "order_silence",
    "recency_over_rhythm": "order_silence",
    "days_to_expected_order": "order_silence",
    "orders_90d": "order_silence",
    "days_since_last_login": "login_silence",
    "logins_30d": "login_silence",
    "logins_trend_30d": "login_silence",
}


@dataclass(frozen=True)
class ChurnReason:
    """One reason: the feature it rests on, how far it pushed (log-odds), the sentence."""

    feature: str
    contribution: float
    en: str
    zh: str

    def text(self, lang: Language) -> str:
        return self.zh if lang == "zh" else self.en


@dataclass(frozen=True)
class _Row:
    """One customer's values (None when missing) and the training medians."""

    values: Mapping[str, float | None]
    references: Mapping[str, float]

    def get(self, name: str) -> float | None:
        return self.values.get(name)

    def typical(self, name: str) -> float | None:
        return self.references.get(name)


_Sentence = tuple[str, str]


def churn_reasons(
    model: ChurnModel, rows: pa.Table, *, top: int = TOP_REASONS
) -> list[list[ChurnReason]]:
    """Up to ``top`` reasons per row of ``rows``, strongest first (none when nothing
    pushes the risk up)."""
    contributions = model.contributions(rows)[:, :-1]  # the last column is the expected value
    values = feature_matrix(rows, model.features)
    extra = [n for n in _CONTEXT if n not in model.features and n in rows.column_names]
    context = feature_matrix(rows, extra)
    reasons: list[list[ChurnReason]] = []
    for index in range(rows.num_rows):
        row_values = {name: _value(values[index, j]) for j, name in enumerate(model.features)}
        row_values.update({name: _value(context[index, j]) for j, name in enumerate(extra)})
        row = _Row(row_values, model.references)
        reasons.append(_top_reasons(model.features, contributions[index], row, top))
    return reasons


def reason_sentence(
    feature: str, values: Mapping[str, float | None], references: Mapping[str, float]
) -> tuple[str, str] | None:
    """The (English, Chinese) sentence for ``feature`` of a customer with ``values``;
    None when the value says nothing about leaving (zero complaints, say)."""
    row = _Row(values, references)
    template = _template(feature)
    return template(row) if template is not None else _generic(feature, row)


def _top_reasons(
    features: tuple[str, ...], contributions: npt.NDArray[np.float64], row: _Row, top: int
) -> list[ChurnReason]:
    topics: dict[str, list[int]] = {}
    for j, name in enumerate(features):
        topics.setdefault(_TOPICS.get(name, name), []).append(j)
    ranked: list[tuple[float, int]] = []
    for members in topics.values():
        total = float(contributions[members].sum())
        if total > 0:
            lead = max(members, key=lambda j: contributions[j])
            ranked.append((total, lead))
    ranked.sort(key=lambda item: -item[0])
    reasons: list[ChurnReason] = []
    for total, lead in ranked:
        sentence = reason_sentence(features[lead], row.values, row.references)
        if sentence is not None:
            reasons.append(ChurnReason(features[lead], total, *sentence))
        if len(reasons) == top:
            break
    return reasons


def _value(number: float) -> float | None:
    return None if math.isnan(number) else float(number)


def _number(value: float) -> str:
    if abs(value - round(value)) < 1e-9:
        return f"{round(value):,}"
    return f"{value:,.2f}".rstrip("0").rstrip(".")


def _plural(count: int, word: str, words: str | None = None) -> str:
    return f"{count} {word if count == 1 else (words or word + 's')}"


def _usual_gap(row: _Row) -> tuple[int, str, str] | None:
    """The interval recency is compared with, and whose it is (en, zh)."""
    sources = (
        ("own_median_interval_days", "usually every {d}", "平时每{d}天"),
        ("category_median_interval_days", "their category's buyers every {d}", "同品类通常每{d}天"),
        ("population_median_interval_days", "customers usually every {d}", "顾客通常每{d}天"),
    )
    for name, en, zh in sources:
        interval = row.get(name)
        if interval is not None:
            days = max(1, round(interval))
            return days, en.format(d=days), zh.format(d=days)
    return None


def _order_silence(row: _Row) -> _Sentence:
    recency = row.get("recency_days")
    if recency is None:
        return ("no paid order yet", "尚未下单")
    days, usual = round(recency), _usual_gap(row)
    if usual is None:
        return (f"no order for {days} days", f"{days}天未下单")
    return (f"no order for {days} days, {usual[1]}", f"{days}天未下单（{usual[2]}）")


def _rhythm_ratio(row: _Row) -> _Sentence:
    ratio, recency, usual = row.get("recency_over_rhythm"), row.get("recency_days"), _usual_gap(row)
    if ratio is None or recency is None or usual is None or ratio < 1.5:
        return _order_silence(row)
    days = round(recency)
    return (
        f"no order for {days} days, {ratio:.1f}x the usual gap ({usual[1]})",
        f"{days}天未下单，是平时间隔的{ratio:.1f}倍（{usual[2]}）",
    )


def _overdue(row: _Row) -> _Sentence:
    days_to = row.get("days_to_expected_order")
    usual = _usual_gap(row)
    if days_to is None or days_to >= 0 or usual is None:
        return _order_silence(row)
    late = round(-days_to)
    return (
        f"next order {late} days overdue ({usual[1]})",
        f"已超过预计下单日{late}天（{usual[2]}）",
    )


def _orders_90d(row: _Row) -> _Sentence:
    count = int(row.get("orders_90d") or 0)
    if count == 0:
        return ("no order in the last 90 days", "近90天未下单")
    return _with_typical(
        row, "orders_90d", f"only {_plural(count, 'order')} in 90 days", f"近90天仅下单{count}次"
    )


def _frequency(row: _Row) -> _Sentence | None:
    count = int(row.get("frequency_orders") or 0)
    if count == 0:
        return ("no paid order yet", "尚未下单")
    typical = row.typical("frequency_orders")
    if typical is not None and count >= typical:
        return None  # as many orders as is typical says nothing about leaving, in words
    only = typical is not None
    en = ("only " if only else "") + f"{_plural(count, 'order')} so far"
    return _with_typical(row, "frequency_orders", en, ("仅" if only else "") + f"累计下单{count}次")


def _login_silence(row: _Row) -> _Sentence:
    days_since = row.get("days_since_last_login")
    if days_since is None:
        return ("never logged in", "从未登录")
    days, logins = round(days_since), row.get("logins_90d") or 0.0
    if logins >= 2 and days_since < 90:  # the pace while still logging in, within 90 days
        every = max(1, round((90 - days_since) / logins))
        return (
            f"no login for {days} days, usually every {every}",
            f"{days}天未登录（平时每{every}天）",
        )
    return (f"no login for {days} days", f"{days}天未登录")


def _logins_30d(row: _Row) -> _Sentence:
    count = int(row.get("logins_30d") or 0)
    if count == 0:
        return ("no login in the last 30 days", "近30天未登录")
    return _with_typical(
        row, "logins_30d", f"only {_plural(count, 'login')} in 30 days", f"近30天仅登录{count}次"
    )


def _trend(noun: str, noun_zh: str, count_feature: str, trend_feature: str) -> _Template:
    """Slowing down: the last 30 days against the 30 before (silent unless it fell)."""

    def sentence(row: _Row) -> _Sentence | None:
        trend, recent = row.get(trend_feature), row.get(count_feature)
        if trend is None or trend >= 1:
            return None
        if trend == 0 or recent is None:
            return (
                f"no {noun}s in the last 30 days, after some in the 30 days before",
                f"近30天无{noun_zh}（此前30天有）",
            )
        before = recent / trend
        if not math.isfinite(before) or before > 1e9:  # a trend too close to 0 to quote
            return None
        earlier = round(before)
        return (
            f"{noun}s down to {_number(recent)} in 30 days from {earlier}",
            f"近30天{noun_zh}{_number(recent)}次（此前30天{earlier}次）",
        )

    return sentence


def _browsing(row: _Row) -> _Sentence:
    share = row.get("browse_without_cart_ratio_30d")
    if share is None:
        return ("no browsing in the last 30 days", "近30天未浏览")
    percent = round(100 * share)
    return (
        f"{percent}% of browsing in 30 days added nothing to the cart",
        f"近30天{percent}%的浏览未加购",
    )


def _coupons(row: _Row) -> _Sentence | None:
    share = row.get("coupon_share")
    if share is None:
        return None
    if share == 0:
        return ("never used a coupon", "从未用券")
    percent = round(100 * share)
    return (f"{percent}% of orders used a coupon", f"{percent}%的订单用券")


def _count(noun: str, nouns: str, zh: str, feature: str) -> _Template:
    """``2 complaints in 90 days`` / ``近90天投诉2次``, the window from the feature name;
    nothing to say about none."""
    window = re.search(r"_(\d+)d$", feature)

    def sentence(row: _Row) -> _Sentence | None:
        count = int(row.get(feature) or 0)
        if count == 0:
            return None
        if window is None:
            return (_plural(count, noun, nouns), zh.format(count=count))
        days = window.group(1)
        return (
            f"{_plural(count, noun, nouns)} in {days} days",
            f"近{days}天{zh.format(count=count)}",
        )

    return sentence


def _compared(
    en: str, zh: str, feature: str, *, days: bool = False, only_below: bool = True
) -> _Template:
    """The value with the training median beside it (``only`` when below it, if
    ``only_below``: fewer orders are "only 2", a shorter interval is not "only")."""

    def sentence(row: _Row) -> _Sentence | None:
        value = row.get(feature)
        if value is None:
            return None
        shown = str(round(value)) if days else _number(value)
        typical = row.typical(feature)
        only = only_below and typical is not None and value < typical
        return _with_typical(
            row,
            feature,
            ("only " if only else "") + en.format(value=shown),
            ("仅" if only else "") + zh.format(value=shown),
            days=days,
        )

    return sentence


def _with_typical(row: _Row, feature: str, en: str, zh: str, *, days: bool = False) -> _Sentence:
    typical = row.typical(feature)
    if typical is None:
        return (en, zh)
    shown = str(round(typical)) if days else _number(typical)
    return (f"{en} (typical {shown})", f"{zh}（一般为{shown}）")


def _generic(feature: str, row: _Row) -> _Sentence:
    label = feature_label(feature)
    en_label, zh_label = (label.en, label.zh) if label is not None else (feature, feature)
    value = row.get(feature)
    if value is None:
        return (f"{en_label}: no record", f"{zh_label}：无记录")
    return _with_typical(
        row, feature, f"{en_label}: {_number(value)}", f"{zh_label}：{_number(value)}"
    )


_Template = Callable[[_Row], _Sentence | None]

_TEMPLATES: dict[str, _Template] = {
    "recency_days": _order_silence,
    "recency_over_rhythm": _rhythm_ratio,
    "days_to_expected_order": _overdue,
    "orders_90d": _orders_90d,
    "days_since_last_login": _login_silence,
    "logins_30d": _logins_30d,
    "logins_trend_30d": _trend("login", "登录", "logins_30d", "logins_trend_30d"),
    "orders_trend_30d": _trend("order", "下单", "orders_30d", "orders_trend_30d"),
    "own_median_interval_days": _compared(
        "buys every {value} days",
        "每{value}天购买一次",
        "own_median_interval_days",
        days=True,
        only_below=False,
    ),
    "frequency_orders": _frequency,
    "monetary_mean": _compared("average order {value}", "客单价{value}", "monetary_mean"),
    "tenure_days": _compared(
        "a customer for {value} days", "成为客户{value}天", "tenure_days", days=True
    ),
    "coupon_share": _coupons,
    "browse_without_cart_ratio_30d": _browsing,
    "refunded_orders": _count(
        "refunded order", "refunded orders", "{count}笔订单已退款", "refunded_orders"
    ),
}

_COUNTED: dict[str, tuple[str, str, str]] = {
    "complaints": ("complaint", "complaints", "投诉{count}次"),
    "refund_requests": ("refund request", "refund requests", "申请退款{count}次"),
    "help_searches": (
        "search for cancelling or a refund",
        "searches for cancelling or a refund",
        "搜索注销/退订{count}次",
    ),
}


def _template(feature: str) -> _Template | None:
    if feature in _TEMPLATES:
        return _TEMPLATES[feature]
    family = re.match(r"^(complaints|refund_requests|help_searches)_\d+d$", feature)
    if family is None:
        return None
    noun, nouns, zh = _COUNTED[family.group(1)]
    return _count(noun, nouns, zh, feature)
