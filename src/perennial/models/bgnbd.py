"""The BG/NBD model (Fader, Hardie & Lee 2005, "Counting Your Customers the Easy Way").

While alive a customer buys as a Poisson process with rate lambda ~ Gamma(r, alpha);
after every purchase they drop out with probability p ~ Beta(a, b). Equation numbers
below are the paper's. The likelihood (6) is evaluated in log space with a log-sum-exp
of its two branches (alive at T / dropped after the last purchase), with analytic
gradients, on distinct (x, t_x, T) rows: terms that depend on x only or on T only are
computed once per distinct value and summed with weights, so one evaluation costs a few
array passes over the customers who made a repeat purchase.

Predictions: P(alive) (Fader, Hardie & Lee 2008 note "Computing P(alive) Using the
BG/NBD Model"), E[X(t)] (7), P(X(t) = n) (8) and the conditional expectation (10). The
Gauss hypergeometric terms of (7) and (10) go through Euler's transformation
2F1(A, B; C; z) = (1 - z)^(C - A - B) 2F1(C - A, C - B; C; z), which turns the
huge (1 - z)^-(r + x) growth for large x into a factor (1 - z)^(a - 1).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt
from scipy.special import (
    betainc,
    betaincinv,
    betaln,
    digamma,
    expit,
    gammaln,
    hyp2f1,
    roots_legendre,
    xlogy,
)

from perennial.models.btyd_data import (
    CompressedSummary,
    FloatArray,
    IndexArray,
    SummaryLike,
    as_summary,
    distinct_rows,
    require_horizon,
)
from perennial.models.mle import (
    FitReport,
    dot,
    maximize_log_likelihood,
    model_document,
    read_model_document,
    require_fittable,
    require_positive_parameters,
)

__all__ = ["BgNbdModel", "fit_bgnbd"]

_A_NEAR_ONE = 1e-4
"""Within this of a = 1 the factor 1/(a - 1) of (7) and (10) is 0/0: interpolate across."""
_QUADRATURE_NODES = 16


@dataclass(frozen=True)
class BgNbdModel:
    """Fitted (or given) BG/NBD parameters; ``fit`` says how they were estimated, if they were."""

    r: float
    alpha: float
    a: float
    b: float
    fit: FitReport | None = None

    NAME: ClassVar[str] = "bgnbd"
    PARAMETERS: ClassVar[tuple[str, ...]] = ("r", "alpha", "a", "b")

    def __post_init__(self) -> None:
        require_positive_parameters(self.NAME, self.params)

    @property
    def params(self) -> dict[str, float]:
        return {"r": self.r, "alpha": self.alpha, "a": self.a, "b": self.b}

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready document for a model registry (see :meth:`from_dict`)."""
        return model_document(self.NAME, self.params, self.fit)

    @classmethod
    def from_dict(cls, document: dict[str, Any]) -> BgNbdModel:
        params, fit = read_model_document(document, cls.NAME, cls.PARAMETERS)
        return cls(**params, fit=fit)

    def log_likelihood(self, data: SummaryLike) -> FloatArray:
        """Each customer's log-likelihood, equation (6)."""
        rows = as_summary(data).compressed
        per_row = _row_log_likelihood(self, rows.frequency, rows.recency, rows.T)
        return np.asarray(per_row[rows.inverse], dtype=np.float64)

    def p_alive(self, data: SummaryLike) -> FloatArray:
        """P(alive at T | x, t_x, T): 1 for customers without a repeat purchase."""
        rows = as_summary(data).compressed
        return np.asarray(expit(-_log_dropped_to_alive(self, rows))[rows.inverse], dtype=np.float64)

    def conditional_expected_purchases(self, data: SummaryLike, t: float) -> FloatArray:
        """E[purchases in (T, T + t] | x, t_x, T], equation (10)."""
        require_horizon(t)
        summary = as_summary(data)
        rows = summary.compressed
        first, pair_of_row, _ = distinct_rows(rows.frequency, rows.T)
        x, age = rows.frequency[first], rows.T[first]
        while_alive = _expected_purchases(
            self.r + x, self.alpha + age, self.a, self.b + x, np.full(len(x), float(t))
        )
        alive = expit(-_log_dropped_to_alive(self, rows))
        return np.asarray((while_alive[pair_of_row] * alive)[rows.inverse], dtype=np.float64)

    def expected_purchases(self, t: npt.ArrayLike) -> FloatArray:
        """E[X(t)] for a customer who made a first purchase at time 0, equation (7)."""
        horizon = np.atleast_1d(np.asarray(t, dtype=np.float64))
        require_horizon(horizon)
        return _expected_purchases(self.r, self.alpha, self.a, self.b, horizon)

    def probability_of_purchases(self, n: npt.ArrayLike, t: npt.ArrayLike) -> FloatArray:
        """P(X(t) = n) repeat purchases in (0, t] after a first purchase at 0, equation (8)."""
        count, horizon = np.broadcast_arrays(
            np.asarray(n, dtype=np.float64), np.asarray(t, dtype=np.float64)
        )
        require_horizon(horizon)
        if np.any((count < 0) | (count != np.round(count))):
            raise ValueError("n must be whole numbers >= 0")
        return _probability_of_purchases(self, count, horizon)


def fit_bgnbd(data: SummaryLike, *, require_convergence: bool = True) -> BgNbdModel:
    """Maximum-likelihood BG/NBD on a summary (time in the summary's units).

    Raises :class:`ModelFitError` when the data cannot identify the model (no
    customer, nobody with a repeat purchase, fewer distinct rows than parameters)
    and :class:`ConvergenceError` when the optimiser does not reach a maximum.
    """
    summary = as_summary(data)
    require_fittable(summary, model="BG/NBD", parameters=4, dropout="a and b")
    time_scale = float(np.mean(summary.T)) or 1.0
    prepared = _Prepared.of(summary.compressed, time_scale)
    start = _starting_point(prepared)
    outcome = maximize_log_likelihood(
        prepared.objective,
        start,
        model="BG/NBD",
        n_customers=len(summary),
        has_gradient=True,
        require_convergence=require_convergence,
    )
    estimates = dict(outcome.estimates)
    estimates["alpha"] *= time_scale
    errors = dict(outcome.standard_errors)
    if "alpha" in errors:
        errors["alpha"] *= time_scale
    model = BgNbdModel(estimates["r"], estimates["alpha"], estimates["a"], estimates["b"])
    rows = summary.compressed
    report = FitReport(
        log_likelihood=dot(
            rows.weight, _row_log_likelihood(model, rows.frequency, rows.recency, rows.T)
        ),
        standard_errors=errors,
        n_customers=len(summary),
        converged=outcome.converged,
        iterations=outcome.iterations,
        message=outcome.message,
    )
    return replace(model, fit=report)


@dataclass(frozen=True)
class _Prepared:
    """Distinct rows factorised by x, t_x and T, with the weighted sums the gradient needs."""

    x_values: FloatArray
    weight_by_x: FloatArray
    T_values: FloatArray
    weight_by_T: FloatArray
    weighted_x_by_T: FloatArray
    total_weight: float
    # rows with a repeat purchase only: the second branch of (6) is empty otherwise
    weight: FloatArray
    x: FloatArray
    x_index: IndexArray
    T_index: IndexArray
    recency_values: FloatArray
    recency_index: IndexArray

    @classmethod
    def of(cls, rows: CompressedSummary, time_scale: float) -> _Prepared:
        x_values, x_index = np.unique(rows.frequency, return_inverse=True)
        T_values, T_index = np.unique(rows.T / time_scale, return_inverse=True)
        repeat = rows.frequency > 0
        recency_values, recency_index = np.unique(
            rows.recency[repeat] / time_scale, return_inverse=True
        )
        n_T = len(T_values)
        return cls(
            x_values=x_values,
            weight_by_x=_weighted_counts(x_index, rows.weight, len(x_values)),
            T_values=T_values,
            weight_by_T=_weighted_counts(T_index, rows.weight, n_T),
            weighted_x_by_T=_weighted_counts(T_index, rows.weight * rows.frequency, n_T),
            total_weight=float(rows.weight.sum()),
            weight=rows.weight[repeat],
            x=rows.frequency[repeat],
            x_index=x_index[repeat],
            T_index=T_index[repeat],
            recency_values=recency_values,
            recency_index=recency_index,
        )

    def objective(self, log_parameters: FloatArray) -> tuple[float, FloatArray]:
        """Total log-likelihood (6) and its gradient with respect to log-parameters."""
        r, alpha, a, b = np.exp(log_parameters)
        x = self.x_values
        log_alpha_T = np.log(alpha + self.T_values)
        inverse_alpha_T = 1.0 / (alpha + self.T_values)
        w_x = self.weight_by_x
        # Branch "alive at T": -(r + x) log(alpha + T), summed per distinct T.
        value = (
            dot(w_x, gammaln(r + x) - gammaln(r) + betaln(a, b + x) - betaln(a, b))
            + self.total_weight * r * np.log(alpha)
            - dot(r * self.weight_by_T + self.weighted_x_by_T, log_alpha_T)
        )
        psi_ab = digamma(a + b)
        gradient = np.array(
            [
                dot(w_x, digamma(r + x) - digamma(r))
                + self.total_weight * np.log(alpha)
                - dot(self.weight_by_T, log_alpha_T),
                self.total_weight * r / alpha
                - dot(r * self.weight_by_T + self.weighted_x_by_T, inverse_alpha_T),
                dot(w_x, psi_ab - digamma(a + b + x)),
                dot(w_x, psi_ab + digamma(b + x) - digamma(b) - digamma(a + b + x)),
            ]
        )
        # Branch "dropped after the last purchase", relative to the first: log1p(e^d).
        value_repeat, gradient_repeat = self._dropout_branch(r, alpha, a, b, log_alpha_T)
        gradient = (gradient + gradient_repeat) * np.array([r, alpha, a, b])
        return float(value + value_repeat), gradient

    def _dropout_branch(
        self, r: float, alpha: float, a: float, b: float, log_alpha_T: FloatArray
    ) -> tuple[float, FloatArray]:
        if len(self.x) == 0:
            return 0.0, np.zeros(4)
        log_alpha_recency = np.log(alpha + self.recency_values)
        gap = np.take(log_alpha_T, self.T_index) - np.take(log_alpha_recency, self.recency_index)
        r_x = r + self.x
        # b + x - 1 per distinct x; x = 0 (never indexed by repeat rows) kept harmless at b.
        b_x_1 = b + np.maximum(self.x_values, 1.0) - 1.0
        log_a_over_bx1 = np.log(a) - np.log(b_x_1)
        d = np.take(log_a_over_bx1, self.x_index) + r_x * gap
        # softplus(d) and sigmoid(d) from one exp; log(1 + e) is exact to 1e-16 absolute.
        small = np.exp(-np.abs(d))
        one_plus = 1.0 + small
        softplus = np.maximum(d, 0.0) + np.log(one_plus)
        share = self.weight * np.where(d >= 0, 1.0, small) / one_plus  # w x P(dropped branch)
        share_r_x = share * r_x
        gradient = np.array(
            [
                dot(share, gap),
                dot(
                    _weighted_counts(self.T_index, share_r_x, len(self.T_values)),
                    1.0 / (alpha + self.T_values),
                )
                - dot(
                    _weighted_counts(self.recency_index, share_r_x, len(self.recency_values)),
                    1.0 / (alpha + self.recency_values),
                ),
                share.sum() / a,
                -dot(_weighted_counts(self.x_index, share, len(self.x_values)), 1.0 / b_x_1),
            ]
        )
        return dot(self.weight, softplus), gradient


def _weighted_counts(index: IndexArray, weights: FloatArray, size: int) -> FloatArray:
    """Sum of ``weights`` per value of ``index`` (0..size-1)."""
    return np.bincount(index, weights, minlength=size).astype(np.float64, copy=False)


def _row_log_likelihood(
    model: BgNbdModel,
    x: FloatArray,
    recency: FloatArray,
    T: FloatArray,
) -> FloatArray:
    """Equation (6) per row, written directly (the fit's factorised form is tested against it)."""
    r, alpha, a, b = model.r, model.alpha, model.a, model.b
    alive_branch = (
        gammaln(r + x)
        - gammaln(r)
        + r * np.log(alpha)
        + betaln(a, b + x)
        - betaln(a, b)
        - (r + x) * np.log(alpha + T)
    )
    rows = CompressedSummary(x, recency, T, np.ones(len(x)), np.arange(len(x)))
    return np.asarray(
        alive_branch + np.logaddexp(0.0, _log_dropped_to_alive(model, rows)), dtype=np.float64
    )


def _log_dropped_to_alive(model: BgNbdModel, rows: CompressedSummary) -> FloatArray:
    """log of (a / (b + x - 1)) ((alpha + T) / (alpha + t_x))^(r + x); -inf when x = 0."""
    x = rows.frequency
    repeat = x > 0
    d = np.full(len(x), -np.inf)
    xr = x[repeat]
    d[repeat] = (
        np.log(model.a)
        - np.log(model.b + xr - 1)
        + (model.r + xr)
        * (np.log(model.alpha + rows.T[repeat]) - np.log(model.alpha + rows.recency[repeat]))
    )
    return d


def _expected_purchases(
    r: FloatArray | float,
    alpha: FloatArray | float,
    a: float,
    b: FloatArray | float,
    t: FloatArray,
) -> FloatArray:
    """Equation (7) for a customer alive at 0 with parameters (r, alpha, a, b), vectorised.

    With (r + x, alpha + T, a, b + x) it is the numerator of (10). Near a = 1 the value is
    interpolated between a = 1 -/+ 1e-4 (the bracket and a - 1 both vanish there).
    """
    r_, alpha_, b_, t_ = np.broadcast_arrays(
        np.asarray(r, dtype=np.float64),
        np.asarray(alpha, dtype=np.float64),
        np.asarray(b, dtype=np.float64),
        t,
    )
    if abs(a - 1.0) >= _A_NEAR_ONE:
        values = _expected_purchases_closed_form(r_, alpha_, a, b_, t_)
    else:
        below = _expected_purchases_closed_form(r_, alpha_, 1.0 - _A_NEAR_ONE, b_, t_)
        above = _expected_purchases_closed_form(r_, alpha_, 1.0 + _A_NEAR_ONE, b_, t_)
        values = below + (above - below) * (a - 1.0 + _A_NEAR_ONE) / (2 * _A_NEAR_ONE)
    broken = ~np.isfinite(values) | (values < 0)
    if broken.any():
        values[broken] = _expected_purchases_by_quadrature(
            r_[broken], alpha_[broken], a, b_[broken], t_[broken]
        )
    return values


def _expected_purchases_closed_form(
    r: FloatArray, alpha: FloatArray, a: float, b: FloatArray, t: FloatArray
) -> FloatArray:
    c = a + b - 1.0
    with np.errstate(all="ignore"):
        power = (a - 1.0) * (np.log(alpha) - np.log(alpha + t))  # (a - 1) log(1 - z)
        hypergeometric = hyp2f1(c - r, a - 1.0, c, t / (alpha + t))
        # -expm1 keeps precision when the bracket is small; 2F1 < 0 (possible for c < 0)
        # needs the plain difference.
        bracket = np.where(
            hypergeometric > 0,
            -np.expm1(power + np.log(hypergeometric)),
            1.0 - np.exp(power) * hypergeometric,
        )
        values = np.asarray(c / (a - 1.0) * bracket, dtype=np.float64)
    values[t == 0] = 0.0
    return values


def _expected_purchases_by_quadrature(
    r: FloatArray, alpha: FloatArray, a: float, b: FloatArray, t: FloatArray
) -> FloatArray:
    """E over p ~ Beta(a, b) of (1 - (1 + p t / alpha)^-r) / p, by quadrature.

    Given lambda and p, E[X(t)] = (1 - exp(-lambda p t)) / p; averaging over lambda gives
    the integrand, bounded by r t / alpha. Integrating over the Beta quantile v (p =
    I^-1_v(a, b)) makes the weight uniform; panels shrinking geometrically towards both
    ends follow p's steep change there. A fallback for where 2F1 has a pole (a + b = 1)
    or overflows.
    """
    nodes, weights = roots_legendre(_QUADRATURE_NODES)
    edges = np.concatenate(([0.0], np.logspace(-16, -1, 16), [0.5], 1.0 - np.logspace(-1, -16, 16)))
    edges = np.append(edges, 1.0)
    low, high = edges[:-1, None], edges[1:, None]
    quantile = ((low + high) / 2 + (high - low) / 2 * nodes[None, :]).ravel()
    panel_weights = ((high - low) / 2 * weights[None, :]).ravel()
    p = betaincinv(a, b[:, None], quantile[None, :])
    ratio = p * (t / alpha)[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        integrand = -np.expm1(-r[:, None] * np.log1p(ratio)) / p
    integrand = np.where(p > 0, integrand, (r * t / alpha)[:, None])
    return np.asarray(np.einsum("ij,j->i", integrand, panel_weights), dtype=np.float64)


def _probability_of_purchases(model: BgNbdModel, n: FloatArray, t: FloatArray) -> FloatArray:
    """Equation (8): P(X(t) = n), in logs; the NBD tail is a regularised incomplete beta."""
    r, alpha, a, b = model.r, model.alpha, model.a, model.b
    log_nbd = (
        gammaln(r + n)
        - gammaln(r)
        - gammaln(n + 1)
        + r * (np.log(alpha) - np.log(alpha + t))
        + xlogy(n, t / (alpha + t))  # 0 when n = 0, also at t = 0
    )
    alive = betaln(a, b + n) - betaln(a, b) + log_nbd
    repeat = n > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        # P(NBD count >= n) = I_{t / (alpha + t)}(n, r)
        tail = np.log(betainc(np.where(repeat, n, 1.0), r, t / (alpha + t)))
        dropped = betaln(a + 1, b + n - 1) - betaln(a, b) + tail
    dropped = np.where(repeat, dropped, -np.inf)
    return np.asarray(np.exp(np.logaddexp(alive, dropped)), dtype=np.float64)


def _starting_point(prepared: _Prepared) -> dict[str, float]:
    """r = 1 and alpha matching the mean purchase rate; a = 1, b = 3 (a slow dropout)."""
    exposure = dot(prepared.weight_by_T, prepared.T_values)
    purchases = dot(prepared.weight_by_x, prepared.x_values)
    rate = purchases / exposure if exposure > 0 else 1.0
    return {"r": 1.0, "alpha": 1.0 / max(rate, 1e-6), "a": 1.0, "b": 3.0}
