"""Discounted CLV: month by month, discounted, combining a count model with Gamma-Gamma."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from perennial.models.bgnbd import BgNbdModel
from perennial.models.btyd_data import BtydSummary
from perennial.models.clv import (
    DAYS_PER_MONTH,
    clv_table,
    customer_lifetime_value,
    expected_discounted_purchases,
)
from perennial.models.gamma_gamma import GammaGammaModel
from perennial.models.pareto_nbd import ParetoNbdModel

BGNBD = BgNbdModel(r=0.243, alpha=4.414, a=0.793, b=2.426)
SPEND = GammaGammaModel(p=6.25, q=3.74, gamma=15.44)
SUMMARY = BtydSummary.from_arrays(
    [0, 1, 4, 12],
    [0.0, 20.0, 35.0, 38.0],
    [30.0, 39.0, 39.0, 39.0],
    [0.0, 20.0, 35.5, 12.0],
    customer_id=["new", "once", "regular", "loyal"],
)


def test_clv_is_each_months_purchases_discounted_times_the_expected_spend() -> None:
    month = DAYS_PER_MONTH / 7
    expected = np.zeros(4)
    previous = np.zeros(4)
    for k in range(1, 13):
        cumulative = BGNBD.conditional_expected_purchases(SUMMARY, k * month)
        expected += (cumulative - previous) / 1.15 ** (k / 12)
        previous = cumulative
    expected *= SPEND.conditional_expected_spend(SUMMARY)
    assert customer_lifetime_value(BGNBD, SPEND, SUMMARY) == pytest.approx(expected, rel=1e-12)


def test_without_discount_the_purchases_are_the_conditional_expectation_over_the_horizon() -> None:
    undiscounted = expected_discounted_purchases(BGNBD, SUMMARY, annual_discount_rate=0.0)
    year = 12 * DAYS_PER_MONTH / 7
    assert undiscounted == pytest.approx(BGNBD.conditional_expected_purchases(SUMMARY, year))


def test_a_higher_discount_rate_or_a_shorter_horizon_lowers_the_value() -> None:
    base = customer_lifetime_value(BGNBD, SPEND, SUMMARY)
    assert np.all(customer_lifetime_value(BGNBD, SPEND, SUMMARY, annual_discount_rate=0.5) < base)
    assert np.all(customer_lifetime_value(BGNBD, SPEND, SUMMARY, horizon_months=6) < base)
    assert np.all(customer_lifetime_value(BGNBD, SPEND, SUMMARY, horizon_months=36) > base)


def test_the_margin_turns_revenue_into_profit() -> None:
    revenue = customer_lifetime_value(BGNBD, SPEND, SUMMARY)
    assert customer_lifetime_value(BGNBD, SPEND, SUMMARY, margin=0.3) == pytest.approx(
        0.3 * revenue
    )


def test_summaries_in_days_give_the_same_value_as_in_weeks() -> None:
    in_days = BtydSummary.from_arrays(
        SUMMARY.frequency, SUMMARY.recency * 7, SUMMARY.T * 7, SUMMARY.monetary_value
    )
    daily_model = BgNbdModel(BGNBD.r, BGNBD.alpha * 7, BGNBD.a, BGNBD.b)
    assert customer_lifetime_value(daily_model, SPEND, in_days, unit_days=1) == pytest.approx(
        customer_lifetime_value(BGNBD, SPEND, SUMMARY), rel=1e-10
    )


def test_the_clv_table_keys_every_output_by_customer(
    cdnow_calibration: BtydSummary, cdnow_bgnbd: BgNbdModel, cdnow_gamma_gamma: GammaGammaModel
) -> None:
    table = clv_table(cdnow_bgnbd, cdnow_gamma_gamma, cdnow_calibration)
    assert table.column_names == [
        "customer_id",
        "p_alive",
        "expected_purchases",
        "expected_average_spend",
        "clv",
    ]
    assert table.num_rows == 2_357
    assert table.column("customer_id")[0].as_py() == "0001"
    for name in table.column_names[1:]:
        values = table.column(name).to_numpy()
        assert np.all(np.isfinite(values) & (values >= 0)), name
    # the best customers by value are the frequent, recent ones
    top = table.sort_by([("clv", "descending")]).slice(0, 20)
    ids = set(top.column("customer_id").to_pylist())
    frequency = dict(zip(cdnow_calibration.customer_id, cdnow_calibration.frequency, strict=True))
    assert np.mean([frequency[i] for i in ids]) > 5 * cdnow_calibration.frequency.mean()


def test_pareto_nbd_combines_with_gamma_gamma_as_well() -> None:
    pareto = ParetoNbdModel(r=0.553, alpha=10.578, s=0.606, beta=11.669)
    table = clv_table(pareto, SPEND, SUMMARY)
    assert isinstance(table, pa.Table)
    assert table.column("customer_id").to_pylist() == ["new", "once", "regular", "loyal"]
    assert np.all(np.diff(table.column("clv").to_numpy()[1:]) > 0)  # more purchases, more value


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"horizon_months": 0}, "at least 1"),
        ({"horizon_months": 1.5}, "whole number"),
        ({"annual_discount_rate": -0.1}, "annual_discount_rate"),
        ({"annual_discount_rate": float("nan")}, "annual_discount_rate"),
        ({"unit_days": 0}, "unit_days"),
        ({"margin": 0.0}, "margin"),
    ],
)
def test_nonsense_settings_are_refused(options: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        customer_lifetime_value(BGNBD, SPEND, SUMMARY, **options)  # type: ignore[arg-type]


@st.composite
def _summaries(draw: st.DrawFn) -> BtydSummary:
    n = draw(st.integers(1, 25))
    T = np.array(draw(st.lists(st.floats(0.0, 5e3), min_size=n, max_size=n)))
    x = np.array(draw(st.lists(st.integers(0, 3_000), min_size=n, max_size=n)), dtype=float)
    share = np.array(draw(st.lists(st.floats(0.0, 1.0), min_size=n, max_size=n)))
    spend = draw(
        st.lists(st.one_of(st.floats(0.01, 1e5), st.just(float("nan"))), min_size=n, max_size=n)
    )
    return BtydSummary.from_arrays(x, np.where(x > 0, T * share, 0.0), T, spend)


_positive = st.floats(0.01, 100.0)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_summaries(), _positive, _positive, _positive, _positive, st.floats(1.01, 50.0))
def test_clv_is_finite_and_non_negative_for_any_valid_summary(
    summary: BtydSummary, r: float, alpha: float, a: float, b: float, q: float
) -> None:
    spend = GammaGammaModel(p=2.0, q=q, gamma=10.0)
    for count_model in (BgNbdModel(r, alpha, a, b), ParetoNbdModel(r, alpha, a, b)):
        table = clv_table(count_model, spend, summary)
        for name in table.column_names[1:]:
            values = table.column(name).to_numpy()
            assert np.all(np.isfinite(values) & (values >= 0)), name
