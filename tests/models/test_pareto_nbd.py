"""Pareto/NBD: the published CDNOW estimates, the likelihood against direct integration on
both sides of alpha = beta, predictions that add up, and clear failures."""

from __future__ import annotations

import json
from math import lgamma, log

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.integrate import quad

from perennial.models.btyd_data import BtydSummary
from perennial.models.mle import ModelFitError
from perennial.models.pareto_nbd import ParetoNbdModel, fit_pareto_nbd

PUBLISHED = {"r": 0.553, "alpha": 10.578, "s": 0.606, "beta": 11.669}
"""Fader, Hardie & Lee (2005) / Fader & Hardie's MATLAB note, CDNOW; LL = -9595.0."""
MODEL = ParetoNbdModel(**PUBLISHED)


def _one(x: float, t_x: float, T: float) -> BtydSummary:
    return BtydSummary.from_arrays([x], [t_x], [T])


def test_cdnow_fit_reproduces_the_published_estimates_and_log_likelihood(
    cdnow_pareto_nbd: ParetoNbdModel,
) -> None:
    for name, published in PUBLISHED.items():
        assert round(cdnow_pareto_nbd.params[name], 3) == published, name
    assert cdnow_pareto_nbd.fit is not None
    assert round(cdnow_pareto_nbd.fit.log_likelihood, 1) == -9_595.0
    assert cdnow_pareto_nbd.fit.converged
    assert all(
        0 < e < cdnow_pareto_nbd.params[k] for k, e in cdnow_pareto_nbd.fit.standard_errors.items()
    )


@pytest.mark.parametrize(
    ("params", "x", "t_x", "T"),
    [
        ((0.55, 10.6, 0.61, 11.7), 2, 30.4, 38.9),  # alpha < beta (CDNOW)
        ((0.5, 30.0, 0.7, 1.0), 5, 20.0, 30.0),  # alpha > beta
        ((0.5, 7.0, 0.7, 7.0), 3, 10.0, 30.0),  # alpha = beta
        ((0.5, 3.0, 0.7, 10.0), 0, 0.0, 52.0),  # no repeat purchase
        ((0.08, 11.4, 4.27, 0.0165), 3_000, 0.0, 9_135.0),  # scipy's 2F1 gives NaN here
        ((2.0, 0.01, 0.3, 50.0), 4_000, 800.0, 1_000.0),  # thousands of purchases
        ((0.9, 5.0, 1.0, 5.0e5), 12, 3.0e6, 8.0e6),  # huge T
    ],
)
def test_log_likelihood_matches_direct_integration_of_the_lifetime(
    params: tuple[float, float, float, float], x: float, t_x: float, T: float
) -> None:
    model = ParetoNbdModel(*params)
    assert model.log_likelihood(_one(x, t_x, T))[0] == pytest.approx(
        _log_likelihood_by_integration(*params, x, t_x, T), abs=1e-8
    )


def test_p_alive_is_the_alive_share_of_the_likelihood() -> None:
    r, alpha, s, beta = PUBLISHED.values()
    x, t_x, T = 2.0, 30.0, 39.0
    alive = (alpha + T) ** -(r + x) * (beta + T) ** -s
    dropped = s * quad(lambda u: (alpha + u) ** -(r + x) * (beta + u) ** -(s + 1), t_x, T)[0]
    assert MODEL.p_alive(_one(x, t_x, T))[0] == pytest.approx(alive / (alive + dropped), rel=1e-9)
    assert MODEL.p_alive(_one(0, 0.0, 0.0))[0] == 1.0  # first bought on the last day
    assert MODEL.p_alive(_one(5, 39.0, 39.0))[0] == 1.0  # bought on the last day


def test_conditional_expectation_is_p_alive_times_the_expectation_while_alive() -> None:
    r, alpha, s, beta = PUBLISHED.values()
    summary = BtydSummary.from_arrays(
        [0, 1, 4, 12], [0.0, 20.0, 35.0, 38.0], [30.0, 39.0, 39.0, 39.0]
    )
    predicted = MODEL.conditional_expected_purchases(summary, 39.0)
    alive = MODEL.p_alive(summary)
    for i in range(4):
        x, T = summary.frequency[i], summary.T[i]
        while_alive = (
            (r + x)
            * (beta + T)
            / ((alpha + T) * (s - 1))
            * (1 - ((beta + T) / (beta + T + 39.0)) ** (s - 1))
        )
        assert predicted[i] == pytest.approx(alive[i] * while_alive, rel=1e-10)


def test_expected_purchases_is_the_closed_form_and_the_mean_of_the_distribution() -> None:
    r, alpha, s, beta = PUBLISHED.values()
    counts = np.arange(4_000)
    for t in (1.0, 39.0, 78.0):
        closed = r * beta / (alpha * (s - 1)) * (1 - (beta / (beta + t)) ** (s - 1))
        assert MODEL.expected_purchases(t)[0] == pytest.approx(closed, rel=1e-12)
        probabilities = MODEL.probability_of_purchases(counts, t)
        assert probabilities.sum() == pytest.approx(1.0, abs=1e-9)
        assert probabilities @ counts == pytest.approx(closed, rel=1e-7)


def test_probability_of_purchases_matches_direct_integration() -> None:
    r, alpha, s, beta = PUBLISHED.values()
    t = 39.0
    for n in (0, 1, 2, 7):

        def nbd(tau: float, n: int = n) -> float:
            if tau == 0:
                return 1.0 if n == 0 else 0.0
            log_p = (
                lgamma(r + n)
                - lgamma(r)
                - lgamma(n + 1)
                + r * log(alpha / (alpha + tau))
                + n * log(tau / (alpha + tau))
            )
            return float(np.exp(log_p))

        survived = nbd(t) * (beta / (beta + t)) ** s
        ended = quad(
            lambda tau: nbd(tau) * s * beta**s / (beta + tau) ** (s + 1),
            0,
            t,
            epsabs=0,
            epsrel=1e-12,
        )[0]
        assert MODEL.probability_of_purchases(n, t) == pytest.approx(survived + ended, rel=1e-9)


def test_s_equal_1_takes_the_logarithmic_limit() -> None:
    model = ParetoNbdModel(0.5, 10.0, 1.0, 12.0)
    assert model.expected_purchases(39.0)[0] == pytest.approx(
        0.5 / 10 * 12 * log(1 + 39 / 12), rel=1e-12
    )
    near = ParetoNbdModel(0.5, 10.0, 1.0 + 1e-9, 12.0).expected_purchases(39.0)[0]
    assert near == pytest.approx(model.expected_purchases(39.0)[0], rel=1e-8)


def test_fit_in_days_instead_of_weeks_scales_alpha_and_beta_only(
    cdnow_calibration: BtydSummary, cdnow_pareto_nbd: ParetoNbdModel
) -> None:
    in_days = BtydSummary.from_arrays(
        cdnow_calibration.frequency, cdnow_calibration.recency * 7, cdnow_calibration.T * 7
    )
    daily = fit_pareto_nbd(in_days)
    for name in ("alpha", "beta"):
        assert daily.params[name] == pytest.approx(cdnow_pareto_nbd.params[name] * 7, rel=1e-4)
    for name in ("r", "s"):
        assert daily.params[name] == pytest.approx(cdnow_pareto_nbd.params[name], rel=1e-4)


def test_customers_without_any_repeat_purchase_cannot_identify_the_dropout() -> None:
    summary = BtydSummary.from_arrays([0] * 6, [0.0] * 6, [1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    with pytest.raises(ModelFitError, match=r"s and beta.*none of the 6 customers"):
        fit_pareto_nbd(summary)


def test_one_customer_or_identical_customers_are_not_enough_to_fit() -> None:
    with pytest.raises(ModelFitError, match="only 1 distinct"):
        fit_pareto_nbd(_one(3, 10.0, 20.0))
    same = BtydSummary.from_arrays([2] * 50, [5.0] * 50, [9.0] * 50)
    with pytest.raises(ModelFitError, match="50 customers have only 1 distinct"):
        fit_pareto_nbd(same)


def test_the_model_survives_a_json_round_trip(cdnow_pareto_nbd: ParetoNbdModel) -> None:
    document = json.loads(json.dumps(cdnow_pareto_nbd.to_dict()))
    assert document["model"] == "pareto_nbd"
    assert ParetoNbdModel.from_dict(document) == cdnow_pareto_nbd
    with pytest.raises(ModelFitError, match="expected a pareto_nbd document"):
        ParetoNbdModel.from_dict({**document, "model": "bgnbd"})


@st.composite
def _summaries(draw: st.DrawFn) -> BtydSummary:
    n = draw(st.integers(1, 25))
    T = np.array(draw(st.lists(st.floats(0.0, 1e5), min_size=n, max_size=n)))
    x = np.array(draw(st.lists(st.integers(0, 5_000), min_size=n, max_size=n)), dtype=float)
    share = np.array(draw(st.lists(st.floats(0.0, 1.0), min_size=n, max_size=n)))
    return BtydSummary.from_arrays(x, np.where(x > 0, T * share, 0.0), T)


_parameter = st.floats(0.01, 100.0)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_summaries(), _parameter, _parameter, _parameter, _parameter)
def test_every_output_is_finite_for_any_valid_summary(
    summary: BtydSummary, r: float, alpha: float, s: float, beta: float
) -> None:
    model = ParetoNbdModel(r, alpha, s, beta)
    alive = model.p_alive(summary)
    expected = model.conditional_expected_purchases(summary, 52.0)
    assert np.all((alive >= 0) & (alive <= 1))
    assert np.all(np.isfinite(expected) & (expected >= 0))
    assert np.all(np.isfinite(model.log_likelihood(summary)))
    assert np.all(np.isfinite(model.probability_of_purchases(summary.frequency, summary.T)))


def _log_likelihood_by_integration(
    r: float, alpha: float, s: float, beta: float, x: float, t_x: float, T: float
) -> float:
    """log of Gamma(r+x) alpha^r beta^s / Gamma(r) [G(T) + s int_tx^T (alpha+u)^-(r+x)
    (beta+u)^-(s+1) du], the integral taken in log(min(alpha, beta) + u) around its peak."""
    m = min(alpha, beta)

    def log_integrand(v: float) -> float:
        u = np.exp(v) - m
        return float(v - (r + x) * np.log(alpha + u) - (s + 1) * np.log(beta + u))

    log_alive = -(r + x) * log(alpha + T) - s * log(beta + T)
    low, high = log(m + t_x), log(m + T)
    peak = max(log_integrand(low), log_integrand(high))
    integral = 0.0
    if high > low:
        integral = quad(
            lambda v: np.exp(log_integrand(v) - peak), low, high, epsabs=0, epsrel=1e-12, limit=500
        )[0]
    top = max(log_alive, peak)
    bracket = top + log(np.exp(log_alive - top) + s * integral * np.exp(peak - top))
    return lgamma(r + x) - lgamma(r) + r * log(alpha) + s * log(beta) + bracket
