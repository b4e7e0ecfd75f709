"""Reasons in words: each from the customer's own value and a reference, in both languages."""

from __future__ import annotations

import re
from datetime import datetime

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from perennial.models.churn_labels import labelled_rows
from perennial.models.churn_model import CHURN_FEATURES, ChurnModel
from perennial.models.churn_reasons import churn_reasons, reason_sentence
from perennial.store.backends import open_backend
from perennial.store.warehouse import Warehouse
from tests.models.demo_store import churn_demo, trained_demo_model

CHINESE = re.compile(r"[\u4e00-\u9fff]")


@pytest.mark.parametrize(
    ("feature", "values", "sentence"),
    [
        (
            "recency_days",
            {"recency_days": 45.2, "own_median_interval_days": 30.0},
            ("no order for 45 days, usually every 30", "45天未下单（平时每30天）"),
        ),
        (
            "recency_days",
            {"recency_days": 45.0, "category_median_interval_days": 20.0},
            (
                "no order for 45 days, their category's buyers every 20",
                "45天未下单（同品类通常每20天）",
            ),
        ),
        (
            "recency_over_rhythm",
            {"recency_over_rhythm": 3.0, "recency_days": 90.0, "own_median_interval_days": 30.0},
            (
                "no order for 90 days, 3.0x the usual gap (usually every 30)",
                "90天未下单，是平时间隔的3.0倍（平时每30天）",
            ),
        ),
        (
            "days_to_expected_order",
            {"days_to_expected_order": -15.4, "own_median_interval_days": 30.0},
            ("next order 15 days overdue (usually every 30)", "已超过预计下单日15天（平时每30天）"),
        ),
        (
            "days_since_last_login",
            {"days_since_last_login": 21.0, "logins_90d": 23.0},
            ("no login for 21 days, usually every 3", "21天未登录（平时每3天）"),
        ),
        ("days_since_last_login", {}, ("never logged in", "从未登录")),
        ("complaints_30d", {"complaints_30d": 2.0}, ("2 complaints in 30 days", "近30天投诉2次")),
        ("complaints_90d", {"complaints_90d": 1.0}, ("1 complaint in 90 days", "近90天投诉1次")),
        (
            "logins_trend_30d",
            {"logins_trend_30d": 0.25, "logins_30d": 2.0},
            ("logins down to 2 in 30 days from 8", "近30天登录2次（此前30天8次）"),
        ),
        (
            "frequency_orders",
            {"frequency_orders": 1.0},
            ("only 1 order so far (typical 3)", "仅累计下单1次（一般为3）"),
        ),
        ("coupon_share", {"coupon_share": 0.8}, ("80% of orders used a coupon", "80%的订单用券")),
        (
            "page_views_30d",
            {"page_views_30d": 12.0},
            ("Page views, last 30 d: 12 (typical 3)", "浏览次数（近30天）：12（一般为3）"),
        ),
        (
            "p_alive",
            {"p_alive": 0.25},
            ("p_alive: 0.25 (typical 0.8)", "p_alive：0.25（一般为0.8）"),
        ),
    ],
)
def test_a_sentence_quotes_the_customers_value_and_its_reference(
    feature: str, values: dict[str, float], sentence: tuple[str, str]
) -> None:
    references = {"frequency_orders": 3.0, "page_views_30d": 3.0, "p_alive": 0.8}

    assert reason_sentence(feature, values, references) == sentence


@pytest.mark.parametrize(
    ("feature", "values"),
    [
        ("complaints_90d", {"complaints_90d": 0.0}),
        ("help_searches_90d", {}),
        ("logins_trend_30d", {"logins_trend_30d": 1.5, "logins_30d": 3.0}),
        ("frequency_orders", {"frequency_orders": 3.0}),  # as many as is typical
        ("frequency_orders", {"frequency_orders": 7.0}),
    ],
)
def test_values_that_say_nothing_about_leaving_give_no_sentence(
    feature: str, values: dict[str, float]
) -> None:
    assert reason_sentence(feature, values, {"frequency_orders": 3.0}) is None


_VALUES = st.dictionaries(
    st.sampled_from([*CHURN_FEATURES, "logins_90d", "orders_30d", "p_alive"]),
    st.one_of(st.none(), st.floats(-1e6, 1e6, allow_nan=False)),
)


@given(feature=st.sampled_from([*CHURN_FEATURES, "p_alive", "complaints_7d"]), values=_VALUES)
def test_every_template_copes_with_any_value_or_none(
    feature: str, values: dict[str, float | None]
) -> None:
    sentence = reason_sentence(feature, values, {"monetary_mean": 120.0})

    if sentence is not None:
        english, chinese = sentence
        assert english and chinese
        assert "nan" not in english.lower() and "None" not in english


@pytest.fixture(scope="module")
def demo_model(tmp_path_factory: pytest.TempPathFactory) -> ChurnModel:
    return trained_demo_model(tmp_path_factory)


@pytest.fixture(scope="module")
def validation_rows(demo_model: ChurnModel, tmp_path_factory: pytest.TempPathFactory) -> object:
    demo = churn_demo(tmp_path_factory)
    cutoff = datetime.fromisoformat(demo_model.metadata["cutoffs"]["validation"])
    with open_backend(demo.settings) as backend:
        snapshot = Warehouse(demo.settings.warehouse).snapshot()
        return labelled_rows(backend, snapshot, cutoff, demo_model.config)


def test_contributions_add_up_to_each_customers_log_odds(
    demo_model: ChurnModel, validation_rows: object
) -> None:
    contributions = demo_model.contributions(validation_rows)
    raw = demo_model.raw_probability(validation_rows)

    assert contributions.shape == (len(raw), len(demo_model.features) + 1)
    np.testing.assert_allclose(contributions.sum(axis=1), np.log(raw / (1 - raw)), atol=1e-6)


def test_each_customer_gets_at_most_three_distinct_reasons_that_raise_the_risk(
    demo_model: ChurnModel, validation_rows: object
) -> None:
    reasons = churn_reasons(demo_model, validation_rows)
    contributions = demo_model.contributions(validation_rows)[:, :-1]
    recency = validation_rows["recency_days"].to_pylist()  # type: ignore[attr-defined]

    assert len(reasons) == validation_rows.num_rows  # type: ignore[attr-defined]
    assert max(len(r) for r in reasons) == 3
    for index, row in enumerate(reasons):
        strengths = [reason.contribution for reason in row]
        assert all(s > 0 for s in strengths) and strengths == sorted(strengths, reverse=True)
        assert len({reason.feature for reason in row}) == len(row)
        for reason in row:
            lead = demo_model.features.index(reason.feature)
            assert contributions[index, lead] > 0  # the sentence's feature itself pushed up
            assert reason.en and CHINESE.search(reason.zh)
            if reason.feature == "recency_days":
                assert f"no order for {round(recency[index])} days" in reason.en
