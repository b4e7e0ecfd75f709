"""Gamma-Gamma: the published CDNOW spend estimates, the note's equations, and who is left out."""

from __future__ import annotations

import json
from math import lgamma, log

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from perennial.models.btyd_data import BtydSummary
from perennial.models.gamma_gamma import (
    GammaGammaModel,
    _Prepared,
    fit_gamma_gamma,
    spend_sample,
)
from perennial.models.mle import ModelFitError

PUBLISHED = {"p": 6.25, "q": 3.74, "gamma": 15.44}
"""Fader & Hardie (2013), "The Gamma-Gamma Model of Monetary Value", CDNOW, 946 customers."""


def _summary(x: list[float], spend: list[float]) -> BtydSummary:
    n = len(x)
    return BtydSummary.from_arrays(x, [1.0 if f > 0 else 0.0 for f in x], [2.0] * n, spend)


def test_cdnow_fit_on_the_946_repeat_buyers_reproduces_the_published_estimates(
    cdnow_gamma_gamma: GammaGammaModel,
) -> None:
    # monetary_value is the mean of the calibration repeat purchases (same-day orders
    # summed, the first purchase left out): the spend the note uses.
    for name, published in PUBLISHED.items():
        assert round(cdnow_gamma_gamma.params[name], 2) == published, name
    report = cdnow_gamma_gamma.fit
    assert report is not None
    assert (report.n_customers, report.extra["excluded_customers"]) == (946, 1_411)
    assert report.converged
    assert all(0 < e < cdnow_gamma_gamma.params[k] for k, e in report.standard_errors.items())


def test_cdnow_mean_spend_and_population_mean_agree(
    cdnow_calibration: BtydSummary, cdnow_gamma_gamma: GammaGammaModel
) -> None:
    _, spend = spend_sample(cdnow_calibration)
    assert spend.mean() == pytest.approx(35.08, abs=0.01)  # the note's $35.08
    assert cdnow_gamma_gamma.population_mean_spend == pytest.approx(spend.mean(), rel=0.01)


def test_log_likelihood_is_the_density_of_the_mean_spend() -> None:
    model = GammaGammaModel(**PUBLISHED)
    p, q, gamma = PUBLISHED.values()
    summary = _summary([1, 3, 0, 10], [20.0, 35.5, 0.0, 12.0])
    values = model.log_likelihood(summary)
    assert len(values) == 3  # the customer without repeat purchases carries no spend
    for value, (x, m) in zip(values, [(1, 20.0), (3, 35.5), (10, 12.0)], strict=True):
        expected = (
            lgamma(p * x + q)
            - lgamma(p * x)
            - lgamma(q)
            + q * log(gamma)
            + (p * x - 1) * log(m)
            + p * x * log(x)
            - (p * x + q) * log(gamma + m * x)
        )
        assert value == pytest.approx(expected, rel=1e-12)


def test_the_fitting_objective_and_its_gradient_match_the_density(
    cdnow_calibration: BtydSummary,
) -> None:
    x, spend = spend_sample(cdnow_calibration)
    prepared = _Prepared.of(x, spend)
    point = np.log([3.0, 2.5, 20.0])
    value, gradient = prepared.objective(point)
    model = GammaGammaModel(*np.exp(point))
    assert value == pytest.approx(model.log_likelihood(cdnow_calibration).sum(), rel=1e-12)
    step = 1e-6
    numeric = [
        (prepared.objective(point + h)[0] - prepared.objective(point - h)[0]) / (2 * step)
        for h in step * np.eye(3)
    ]
    assert gradient == pytest.approx(numeric, rel=1e-6, abs=1e-4)


def test_expected_spend_weighs_the_population_mean_against_the_customers_own() -> None:
    model = GammaGammaModel(**PUBLISHED)
    p, q, gamma = PUBLISHED.values()
    summary = _summary([0, 1, 20], [0.0, 100.0, 100.0])
    expected = model.conditional_expected_spend(summary)
    population = p * gamma / (q - 1)
    assert expected[0] == pytest.approx(population)
    for i, x in ((1, 1.0), (2, 20.0)):
        weight = p * x / (p * x + q - 1)
        assert expected[i] == pytest.approx((1 - weight) * population + weight * 100.0, rel=1e-12)
    assert population < expected[1] < expected[2] < 100.0  # more purchases, more own weight


def test_missing_or_non_positive_spend_is_left_out_and_counted() -> None:
    summary = _summary([1, 2, 3, 4, 5, 6], [10.0, float("nan"), -5.0, 0.0, 30.0, 22.0])
    x, spend = spend_sample(summary)
    assert (x.tolist(), spend.tolist()) == ([1.0, 5.0, 6.0], [10.0, 30.0, 22.0])
    model = GammaGammaModel(**PUBLISHED)
    expected = model.conditional_expected_spend(summary)
    assert np.all(np.isfinite(expected))
    assert expected[1] == expected[2] == expected[3] == pytest.approx(model.population_mean_spend)


def test_nobody_with_usable_spend_is_an_error_naming_the_count() -> None:
    summary = _summary([0, 2, 0], [0.0, float("nan"), 0.0])
    with pytest.raises(ModelFitError, match="none of the 3 customers"):
        fit_gamma_gamma(summary)


def test_a_summary_without_spend_is_an_error() -> None:
    with pytest.raises(ModelFitError, match="monetary_value"):
        fit_gamma_gamma(BtydSummary.from_arrays([1, 2], [1.0, 1.0], [2.0, 2.0]))


def test_one_spend_shared_by_everybody_cannot_be_fitted() -> None:
    with pytest.raises(ModelFitError, match="spend must vary"):
        fit_gamma_gamma(_summary([1, 2, 3], [10.0, 10.0, 10.0]))


def test_an_infinite_population_mean_is_an_error_not_an_infinite_spend() -> None:
    model = GammaGammaModel(p=2.0, q=0.8, gamma=10.0)
    with pytest.raises(ModelFitError, match=r"q = 0.8 <= 1"):
        model.conditional_expected_spend(_summary([0, 1], [0.0, 10.0]))
    assert np.all(np.isfinite(model.conditional_expected_spend(_summary([1, 4], [5.0, 10.0]))))
    tiny_p = GammaGammaModel(p=0.1, q=0.5, gamma=10.0)
    with pytest.raises(ModelFitError, match="customer '0' is infinite"):
        tiny_p.conditional_expected_spend(_summary([1, 40], [5.0, 10.0]))


def test_fit_in_cents_instead_of_dollars_scales_gamma_only(
    cdnow_calibration: BtydSummary, cdnow_gamma_gamma: GammaGammaModel
) -> None:
    assert cdnow_calibration.monetary_value is not None
    cents = BtydSummary.from_arrays(
        cdnow_calibration.frequency,
        cdnow_calibration.recency,
        cdnow_calibration.T,
        cdnow_calibration.monetary_value * 100,
    )
    model = fit_gamma_gamma(cents)
    assert model.gamma == pytest.approx(cdnow_gamma_gamma.gamma * 100, rel=1e-5)
    assert (model.p, model.q) == pytest.approx((cdnow_gamma_gamma.p, cdnow_gamma_gamma.q), rel=1e-5)


def test_the_model_survives_a_json_round_trip(cdnow_gamma_gamma: GammaGammaModel) -> None:
    document = json.loads(json.dumps(cdnow_gamma_gamma.to_dict()))
    assert document["model"] == "gamma_gamma"
    assert GammaGammaModel.from_dict(document) == cdnow_gamma_gamma
    with pytest.raises(ModelFitError, match="must be positive"):
        GammaGammaModel.from_dict({**document, "params": {**PUBLISHED, "q": 0.0}})


@st.composite
def _spends(draw: st.DrawFn) -> BtydSummary:
    n = draw(st.integers(1, 30))
    x = draw(st.lists(st.integers(0, 5_000), min_size=n, max_size=n))
    spend = draw(
        st.lists(
            st.one_of(st.floats(1e-3, 1e6), st.just(float("nan")), st.floats(-100, 0)),
            min_size=n,
            max_size=n,
        )
    )
    return _summary([float(v) for v in x], spend)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_spends(), st.floats(0.05, 50.0), st.floats(1.01, 50.0), st.floats(0.01, 1e4))
def test_expected_spend_is_finite_and_positive_for_any_valid_summary(
    summary: BtydSummary, p: float, q: float, gamma: float
) -> None:
    model = GammaGammaModel(p, q, gamma)
    expected = model.conditional_expected_spend(summary)
    assert np.all(np.isfinite(expected) & (expected > 0))
    assert np.all(np.isfinite(model.log_likelihood(summary)))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_spends())
def test_fitting_any_summary_gives_finite_estimates_or_a_clear_error(summary: BtydSummary) -> None:
    try:
        model = fit_gamma_gamma(summary)
    except ModelFitError as error:
        assert "Gamma-Gamma" in str(error)
        return
    assert model.fit is not None
    assert all(np.isfinite(v) and v > 0 for v in model.params.values())
    assert np.isfinite(model.fit.log_likelihood)
