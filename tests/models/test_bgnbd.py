"""BG/NBD: the published CDNOW estimates, the paper's equations, and clear failures."""

from __future__ import annotations

import json
from math import exp, lgamma, log

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.integrate import quad
from scipy.special import betaln, expit, hyp2f1

from perennial.models.bgnbd import BgNbdModel, _Prepared, fit_bgnbd
from perennial.models.btyd_data import BtydSummary
from perennial.models.mle import ConvergenceError, ModelFitError

PUBLISHED = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
"""Fader, Hardie & Lee (2005), CDNOW sample, 39-week calibration; LL = -9582.4."""
MODEL = BgNbdModel(**PUBLISHED)


def _summary(x: list[float], t_x: list[float], T: list[float]) -> BtydSummary:
    return BtydSummary.from_arrays(x, t_x, T)


def test_cdnow_fit_reproduces_the_published_estimates_and_log_likelihood(
    cdnow_bgnbd: BgNbdModel,
) -> None:
    for name, published in PUBLISHED.items():
        assert round(cdnow_bgnbd.params[name], 3) == published, name
    assert cdnow_bgnbd.fit is not None
    assert round(cdnow_bgnbd.fit.log_likelihood, 1) == -9_582.4
    assert (cdnow_bgnbd.fit.n_customers, cdnow_bgnbd.fit.converged) == (2_357, True)


def test_cdnow_standard_errors_are_positive_and_smaller_than_the_estimates(
    cdnow_bgnbd: BgNbdModel,
) -> None:
    assert cdnow_bgnbd.fit is not None
    errors = cdnow_bgnbd.fit.standard_errors
    assert set(errors) == set(PUBLISHED)
    for name, error in errors.items():
        assert 0 < error < cdnow_bgnbd.params[name], name
    # r is the best determined parameter: the NBD part sees every purchase
    assert errors["r"] / cdnow_bgnbd.r < errors["b"] / cdnow_bgnbd.b


def test_log_likelihood_is_equation_6_per_customer(cdnow_calibration: BtydSummary) -> None:
    per_customer = MODEL.log_likelihood(cdnow_calibration)
    for i in (0, 1, 2, 100, 2_356):
        x, t_x, T = (float(getattr(cdnow_calibration, c)[i]) for c in ("frequency", "recency", "T"))
        assert per_customer[i] == pytest.approx(_equation_6(x, t_x, T), rel=1e-12)


def test_the_fitting_objective_and_its_gradient_match_the_per_customer_likelihood(
    cdnow_calibration: BtydSummary,
) -> None:
    prepared = _Prepared.of(cdnow_calibration.compressed, time_scale=1.0)
    point = np.log([0.3, 5.0, 0.7, 2.0])
    value, gradient = prepared.objective(point)
    model = BgNbdModel(*np.exp(point))
    assert value == pytest.approx(model.log_likelihood(cdnow_calibration).sum(), rel=1e-12)
    step = 1e-6
    numeric = [
        (prepared.objective(point + h)[0] - prepared.objective(point - h)[0]) / (2 * step)
        for h in step * np.eye(4)
    ]
    assert gradient == pytest.approx(numeric, rel=1e-6, abs=1e-4)


def test_p_alive_is_one_without_repeat_purchases_and_the_paper_formula_otherwise() -> None:
    summary = _summary([0, 2, 2], [0.0, 30.0, 5.0], [39.0, 39.0, 39.0])
    alive = MODEL.p_alive(summary)
    assert alive[0] == 1.0
    r, alpha, a, b = PUBLISHED.values()
    expected = 1 / (1 + a / (b + 2 - 1) * ((alpha + 39) / (alpha + 30)) ** (r + 2))
    assert alive[1] == pytest.approx(expected, rel=1e-12)
    assert alive[2] < alive[1]  # a long silence since the last purchase means likely gone


def test_conditional_expectation_is_equation_10() -> None:
    summary = _summary([0, 1, 4, 12], [0.0, 20.0, 35.0, 38.0], [30.0, 39.0, 39.0, 39.0])
    predicted = MODEL.conditional_expected_purchases(summary, 39.0)
    for i in range(4):
        x, t_x, T = summary.frequency[i], summary.recency[i], summary.T[i]
        assert predicted[i] == pytest.approx(_equation_10(x, t_x, T, 39.0), rel=1e-9)


def test_conditional_expectation_over_no_time_is_zero(cdnow_calibration: BtydSummary) -> None:
    assert np.all(MODEL.conditional_expected_purchases(cdnow_calibration, 0.0) == 0.0)


def test_expected_purchases_is_equation_7_and_the_mean_of_equation_8() -> None:
    r, alpha, a, b = PUBLISHED.values()
    for t in (1.0, 39.0, 78.0):
        z = t / (alpha + t)
        equation_7 = (
            (a + b - 1) / (a - 1) * (1 - (alpha / (alpha + t)) ** r * hyp2f1(r, b, a + b - 1, z))
        )
        assert MODEL.expected_purchases(t)[0] == pytest.approx(equation_7, rel=1e-10)
        counts = np.arange(5_000)
        probabilities = MODEL.probability_of_purchases(counts, t)
        assert probabilities.sum() == pytest.approx(1.0, abs=1e-9)
        assert probabilities @ counts == pytest.approx(equation_7, rel=1e-8)


def test_probability_of_purchases_is_equation_8() -> None:
    r, alpha, a, b = PUBLISHED.values()
    t = 39.0
    for n in range(6):
        nbd = [
            exp(lgamma(r + j) - lgamma(r) - lgamma(j + 1))
            * (alpha / (alpha + t)) ** r
            * (t / (alpha + t)) ** j
            for j in range(n + 1)
        ]
        expected = exp(betaln(a, b + n) - betaln(a, b)) * nbd[n]
        if n > 0:
            expected += exp(betaln(a + 1, b + n - 1) - betaln(a, b)) * (1 - sum(nbd[:n]))
        assert MODEL.probability_of_purchases(n, t) == pytest.approx(expected, rel=1e-10)
    assert MODEL.probability_of_purchases(0, 0.0) == 1.0
    assert MODEL.probability_of_purchases(3, 0.0) == 0.0


@pytest.mark.parametrize("a", [1.0, 1.0 + 5e-5, 1.0 - 5e-5])
def test_expected_purchases_is_continuous_through_a_equal_1(a: float) -> None:
    near = BgNbdModel(0.5, 4.0, a, 2.0).expected_purchases([10.0, 100.0])
    reference = [_expectation_by_integration(0.5, 4.0, a, 2.0, t) for t in (10.0, 100.0)]
    assert near == pytest.approx(reference, rel=1e-7)


@pytest.mark.parametrize(("a", "b"), [(0.4, 0.6), (0.3, 0.2), (0.02, 0.5)])
def test_expected_purchases_holds_where_the_hypergeometric_has_c_at_or_below_0(
    a: float, b: float
) -> None:
    model = BgNbdModel(2.0, 3.0, a, b)
    for t in (0.5, 20.0, 500.0):
        assert model.expected_purchases(t)[0] == pytest.approx(
            _expectation_by_integration(2.0, 3.0, a, b, t), rel=1e-6
        )


def test_a_customer_first_seen_on_the_last_day_is_a_new_customer_and_changes_no_estimate(
    cdnow_calibration: BtydSummary, cdnow_bgnbd: BgNbdModel
) -> None:
    newcomer = _summary([0], [0.0], [0.0])
    assert MODEL.log_likelihood(newcomer)[0] == 0.0  # T = 0 carries no information
    assert MODEL.p_alive(newcomer)[0] == 1.0
    assert MODEL.conditional_expected_purchases(newcomer, 39.0)[0] == pytest.approx(
        MODEL.expected_purchases(39.0)[0], rel=1e-12
    )
    with_newcomers = BtydSummary.from_arrays(
        np.append(cdnow_calibration.frequency, [0.0] * 50),
        np.append(cdnow_calibration.recency, [0.0] * 50),
        np.append(cdnow_calibration.T, [0.0] * 50),
    )
    refit = fit_bgnbd(with_newcomers)
    assert refit.fit is not None and cdnow_bgnbd.fit is not None
    assert refit.params == pytest.approx(cdnow_bgnbd.params, rel=1e-5)
    assert refit.fit.log_likelihood == pytest.approx(cdnow_bgnbd.fit.log_likelihood, abs=1e-6)
    assert refit.fit.n_customers == 2_407


def test_fit_in_days_instead_of_weeks_scales_alpha_only(cdnow_calibration: BtydSummary) -> None:
    in_days = BtydSummary.from_arrays(
        cdnow_calibration.frequency, cdnow_calibration.recency * 7, cdnow_calibration.T * 7
    )
    weekly, daily = fit_bgnbd(cdnow_calibration), fit_bgnbd(in_days)
    assert daily.alpha == pytest.approx(weekly.alpha * 7, rel=1e-5)
    for name in ("r", "a", "b"):
        assert daily.params[name] == pytest.approx(weekly.params[name], rel=1e-5)
    assert weekly.fit is not None and daily.fit is not None
    shift = cdnow_calibration.frequency.sum() * log(7)  # the density of t_x, T in days
    assert daily.fit.log_likelihood == pytest.approx(weekly.fit.log_likelihood - shift, abs=1e-4)


def test_thousands_of_purchases_and_huge_ages_fit_back_the_true_parameters() -> None:
    truth = BgNbdModel(r=2.0, alpha=1_000.0, a=0.8, b=40.0)
    summary = simulate_bgnbd(truth, T=np.random.default_rng(1).uniform(1e6, 3e6, 3_000), seed=2)
    assert summary.frequency.max() > 1_000
    model = fit_bgnbd(summary)
    assert model.fit is not None and model.fit.converged
    for name, value in truth.params.items():
        error = model.fit.standard_errors[name]
        assert abs(model.params[name] - value) < 4 * error, name
    for values in (
        model.p_alive(summary),
        model.conditional_expected_purchases(summary, 1e6),
        model.log_likelihood(summary),
        model.probability_of_purchases(summary.frequency, summary.T),
    ):
        assert np.all(np.isfinite(values))


def test_customers_who_never_seem_to_leave_fail_with_a_clear_error() -> None:
    rng = np.random.default_rng(7)
    T = rng.uniform(1e6, 5e6, 400)
    x = rng.integers(0, 5_000, 400).astype(float)
    summary = BtydSummary.from_arrays(x, np.where(x > 0, T * rng.uniform(0.2, 1.0, 400), 0), T)
    with pytest.raises(ConvergenceError, match="BG/NBD did not converge"):
        fit_bgnbd(summary)


def test_customers_without_any_repeat_purchase_cannot_identify_a_and_b() -> None:
    summary = _summary([0, 0, 0, 0, 0], [0.0] * 5, [1.0, 2.0, 3.0, 4.0, 5.0])
    with pytest.raises(ModelFitError, match=r"a and b.*none of the 5 customers"):
        fit_bgnbd(summary)


def test_one_customer_is_not_enough_to_fit() -> None:
    with pytest.raises(ModelFitError, match="only 1 distinct"):
        fit_bgnbd(_summary([3], [10.0], [20.0]))


def test_identical_customers_are_not_enough_to_fit() -> None:
    with pytest.raises(ModelFitError, match="100 customers have only 1 distinct"):
        fit_bgnbd(_summary([2] * 100, [5.0] * 100, [9.0] * 100))


def test_an_empty_summary_is_not_enough_to_fit() -> None:
    with pytest.raises(ModelFitError, match="empty"):
        fit_bgnbd(_summary([], [], []))


def _never_dropping_out() -> BtydSummary:
    """Everybody bought every week up to the last: nothing says anyone ever leaves."""
    ages = np.arange(5.0, 45.0)
    return BtydSummary.from_arrays(ages, ages, ages)


def test_data_without_dropout_do_not_converge_and_say_why() -> None:
    with pytest.raises(ConvergenceError, match="BG/NBD did not converge"):
        fit_bgnbd(_never_dropping_out())


def test_a_non_converged_fit_can_be_kept_when_asked_and_says_so() -> None:
    model = fit_bgnbd(_never_dropping_out(), require_convergence=False)
    assert model.fit is not None
    assert model.fit.converged is False
    assert model.fit.message != "converged"


def test_the_model_survives_a_json_round_trip(cdnow_bgnbd: BgNbdModel) -> None:
    document = json.loads(json.dumps(cdnow_bgnbd.to_dict()))
    assert document["model"] == "bgnbd"
    assert BgNbdModel.from_dict(document) == cdnow_bgnbd


def test_documents_for_another_model_or_with_bad_parameters_are_refused() -> None:
    with pytest.raises(ModelFitError, match="expected a bgnbd document"):
        BgNbdModel.from_dict({"model": "pareto_nbd", "params": PUBLISHED})
    with pytest.raises(ModelFitError, match="lacks parameter"):
        BgNbdModel.from_dict({"model": "bgnbd", "params": {"r": 1.0}})
    with pytest.raises(ModelFitError, match="must be positive"):
        BgNbdModel.from_dict({"model": "bgnbd", "params": {**PUBLISHED, "a": -1.0}})
    with pytest.raises(ModelFitError, match="non-numeric"):
        BgNbdModel.from_dict({"model": "bgnbd", "params": {**PUBLISHED, "a": "many"}})
    with pytest.raises(ModelFitError, match="malformed fit report"):
        BgNbdModel.from_dict({"model": "bgnbd", "params": PUBLISHED, "fit": {"converged": True}})


def test_negative_or_infinite_horizons_are_refused() -> None:
    with pytest.raises(ValueError, match="horizon"):
        MODEL.expected_purchases(-1.0)
    with pytest.raises(ValueError, match="horizon"):
        MODEL.conditional_expected_purchases(_summary([1], [1.0], [2.0]), float("inf"))
    with pytest.raises(ValueError, match="whole numbers"):
        MODEL.probability_of_purchases(1.5, 2.0)


@st.composite
def _summaries(draw: st.DrawFn) -> BtydSummary:
    n = draw(st.integers(1, 30))
    T = np.array(draw(st.lists(st.floats(0.0, 1e4), min_size=n, max_size=n)))
    x = np.array(draw(st.lists(st.integers(0, 3_000), min_size=n, max_size=n)), dtype=float)
    share = np.array(draw(st.lists(st.floats(0.0, 1.0), min_size=n, max_size=n)))
    return BtydSummary.from_arrays(x, np.where(x > 0, T * share, 0.0), T)


_parameter = st.floats(0.01, 100.0)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_summaries(), _parameter, _parameter, _parameter, _parameter)
def test_every_output_is_finite_for_any_valid_summary(
    summary: BtydSummary, r: float, alpha: float, a: float, b: float
) -> None:
    model = BgNbdModel(r, alpha, a, b)
    alive = model.p_alive(summary)
    expected = model.conditional_expected_purchases(summary, 52.0)
    assert np.all((alive >= 0) & (alive <= 1))
    assert np.all(np.isfinite(expected) & (expected >= 0))
    assert np.all(np.isfinite(model.log_likelihood(summary)))
    assert np.all(np.isfinite(model.expected_purchases(summary.T)))
    assert np.all(np.isfinite(model.probability_of_purchases(summary.frequency, summary.T)))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_summaries())
def test_fitting_any_valid_summary_gives_finite_estimates_or_a_clear_error(
    summary: BtydSummary,
) -> None:
    try:
        model = fit_bgnbd(summary)
    except ModelFitError as error:
        assert "BG/NBD" in str(error)
        return
    assert model.fit is not None
    assert all(np.isfinite(v) and v > 0 for v in model.params.values())
    assert np.isfinite(model.fit.log_likelihood)
    assert all(np.isfinite(v) for v in model.fit.standard_errors.values())


def simulate_bgnbd(model: BgNbdModel, T: np.ndarray, seed: int) -> BtydSummary:
    """Customers drawn from the model: x = min(Poisson purchases, purchases before dropout)."""
    rng = np.random.default_rng(seed)
    rate = rng.gamma(model.r, 1.0 / model.alpha, len(T))
    dropout = rng.beta(model.a, model.b, len(T))
    poisson = rng.poisson(rate * T)  # purchases in (0, T] had nobody dropped out
    x = np.minimum(poisson, rng.geometric(dropout)).astype(float)
    # the x-th of N uniform purchase times on (0, T] is T * Beta(x, N - x + 1)
    last = np.where(x > 0, T * rng.beta(np.maximum(x, 1), poisson - x + 1), 0.0)
    return BtydSummary.from_arrays(x, last, T)


def _equation_6(x: float, t_x: float, T: float) -> float:
    r, alpha, a, b = PUBLISHED.values()
    common = lgamma(r + x) - lgamma(r) + r * log(alpha)
    alive = betaln(a, b + x) - betaln(a, b) - (r + x) * log(alpha + T)
    if x == 0:
        return float(common + alive)
    dropped = betaln(a + 1, b + x - 1) - betaln(a, b) - (r + x) * log(alpha + t_x)
    return float(common + np.logaddexp(alive, dropped))


def _equation_10(x: float, t_x: float, T: float, t: float) -> float:
    """The paper's form, without the Euler transformation the model uses."""
    r, alpha, a, b = PUBLISHED.values()
    z = t / (alpha + T + t)
    numerator = (
        (a + b + x - 1)
        / (a - 1)
        * (1 - ((alpha + T) / (alpha + T + t)) ** (r + x) * hyp2f1(r + x, b + x, a + b + x - 1, z))
    )
    denominator = 1 + (x > 0) * a / (b + x - 1) * ((alpha + T) / (alpha + t_x)) ** (r + x)
    return float(numerator / denominator)


def _expectation_by_integration(r: float, alpha: float, a: float, b: float, t: float) -> float:
    """E[X(t)] = E_p[(1 - (1 + p t / alpha)^-r) / p], p ~ Beta(a, b), integrated in logit p."""

    def integrand(u: float) -> float:
        p = float(expit(u))
        given_p = -np.expm1(-r * np.log1p(p * t / alpha)) / p if p > 0 else r * t / alpha
        log_density = -a * np.logaddexp(0, -u) - b * np.logaddexp(0, u) - betaln(a, b)
        return float(given_p * np.exp(log_density))

    left, _ = quad(integrand, -np.inf, 0.0, epsabs=0, epsrel=1e-11, limit=500)
    right, _ = quad(integrand, 0.0, np.inf, epsabs=0, epsrel=1e-11, limit=500)
    return left + right
