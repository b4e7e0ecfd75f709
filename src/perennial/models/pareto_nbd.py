"""The Pareto/NBD model (Schmittlein, Morrison & Colombo 1987).

While alive a customer buys as a Poisson process with rate lambda ~ Gamma(r, alpha);
the lifetime is exponential with rate mu ~ Gamma(s, beta), independent of lambda. The
likelihood (Fader & Hardie 2005, "A Note on Deriving the Pareto/NBD Model and Related
Expressions"; their 2008 note on implementing it in MATLAB) is

    L = Gamma(r + x) alpha^r beta^s / Gamma(r)
        * [ G(T) + s (F(t_x) - F(T)) ],   G(tau) = (alpha + tau)^-(r+x) (beta + tau)^-s,

where F(tau) = integral from tau to infinity of (alpha + u)^-(r+x) (beta + u)^-(s+1) du
is the part of the lifetime that ended after the last purchase. The note writes F with
2F1(r+s+x, s+1; r+s+x+1; (alpha-beta)/(alpha+tau)) when alpha >= beta and with
2F1(r+s+x, r+x; r+s+x+1; (beta-alpha)/(beta+tau)) when alpha < beta, so the argument
stays in [0, 1). Both grow without bound as the argument nears 1 (c - a - b < 0), which
is what breaks naive implementations for large x. Euler's transformation removes that
growth: with m, p_m the smaller of (alpha, beta) and its exponent ((beta, s+1) or
(alpha, r+x)) and M, p_M the larger,

    F(tau) = (m + tau)^(1 - p_m) (M + tau)^-p_M 2F1(1, p_M; r+s+x+1; (M-m)/(M+tau))
             / (r + s + x),

a 2F1 with positive terms bounded by (M + tau)/(m + tau). Everything is summed in logs
(log-sum-exp, log1p(-exp)), so no term overflows for x in the thousands or T huge.
Where scipy's hyp2f1 still fails (NaN for some p_M in the hundreds with the argument
near 1), Euler's integral is evaluated by quadrature instead (``_log_euler_integral``).
The optimiser uses central-difference gradients (no closed form for d2F1/db).

P(X(t) = n) integrates the NBD count over the lifetime distribution numerically
(Gauss-Legendre in log(min(alpha, beta) + tau)); the closed form of Fader & Hardie's
note "Deriving an Expression for P(X(t) = x) under the Pareto/NBD Model" subtracts
nearly equal sums and loses all precision for large n, the integral does not.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt
from scipy.special import exprel, gammaln, hyp2f1, logsumexp, roots_legendre

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

__all__ = ["ParetoNbdModel", "fit_pareto_nbd"]

_LEGENDRE_NODES = 64
_PANELS = 64
"""Panels on each side of the mode, doubling in width: they reach 2^64 widths away."""


@dataclass(frozen=True)
class ParetoNbdModel:
    """Fitted (or given) Pareto/NBD parameters; ``fit`` says how they were estimated."""

    r: float
    alpha: float
    s: float
    beta: float
    fit: FitReport | None = None

    NAME: ClassVar[str] = "pareto_nbd"
    PARAMETERS: ClassVar[tuple[str, ...]] = ("r", "alpha", "s", "beta")

    def __post_init__(self) -> None:
        require_positive_parameters(self.NAME, self.params)

    @property
    def params(self) -> dict[str, float]:
        return {"r": self.r, "alpha": self.alpha, "s": self.s, "beta": self.beta}

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready document for a model registry (see :meth:`from_dict`)."""
        return model_document(self.NAME, self.params, self.fit)

    @classmethod
    def from_dict(cls, document: dict[str, Any]) -> ParetoNbdModel:
        params, fit = read_model_document(document, cls.NAME, cls.PARAMETERS)
        return cls(**params, fit=fit)

    def log_likelihood(self, data: SummaryLike) -> FloatArray:
        """Each customer's log-likelihood."""
        rows = as_summary(data).compressed
        terms = _Terms.of(self, rows)
        per_row = (
            gammaln(self.r + rows.frequency)
            - gammaln(self.r)
            + self.r * np.log(self.alpha)
            + self.s * np.log(self.beta)
            + terms.log_bracket
        )
        return np.asarray(per_row[rows.inverse], dtype=np.float64)

    def p_alive(self, data: SummaryLike) -> FloatArray:
        """P(alive at T | x, t_x, T) = G(T) / [G(T) + s (F(t_x) - F(T))]."""
        rows = as_summary(data).compressed
        terms = _Terms.of(self, rows)
        return np.asarray(np.exp(terms.log_alive - terms.log_bracket)[rows.inverse])

    def conditional_expected_purchases(self, data: SummaryLike, t: float) -> FloatArray:
        """E[purchases in (T, T + t] | x, t_x, T]: P(alive) times E[X(t)] with the posterior
        parameters (r + x, alpha + T, s, beta + T) (Fader & Hardie's 2005 note)."""
        require_horizon(t)
        rows = as_summary(data).compressed
        while_alive = _expected_purchases(
            self.r + rows.frequency, self.alpha + rows.T, self.s, self.beta + rows.T, float(t)
        )
        terms = _Terms.of(self, rows)
        alive = np.exp(terms.log_alive - terms.log_bracket)
        return np.asarray((while_alive * alive)[rows.inverse], dtype=np.float64)

    def expected_purchases(self, t: npt.ArrayLike) -> FloatArray:
        """E[X(t)] = r beta / (alpha (s - 1)) [1 - (beta / (beta + t))^(s - 1)]."""
        horizon = np.atleast_1d(np.asarray(t, dtype=np.float64))
        require_horizon(horizon)
        return _expected_purchases(self.r, self.alpha, self.s, self.beta, horizon)

    def probability_of_purchases(self, n: npt.ArrayLike, t: npt.ArrayLike) -> FloatArray:
        """P(X(t) = n) repeat purchases in (0, t] after a first purchase at time 0."""
        count, horizon = np.broadcast_arrays(
            np.asarray(n, dtype=np.float64), np.asarray(t, dtype=np.float64)
        )
        require_horizon(horizon)
        if np.any((count < 0) | (count != np.round(count))):
            raise ValueError("n must be whole numbers >= 0")
        return _probability_of_purchases(self, count.ravel(), horizon.ravel()).reshape(count.shape)


def fit_pareto_nbd(data: SummaryLike, *, require_convergence: bool = True) -> ParetoNbdModel:
    """Maximum-likelihood Pareto/NBD on a summary (time in the summary's units).

    Raises :class:`ModelFitError` when the data cannot identify the model and
    :class:`ConvergenceError` when the optimiser does not reach a maximum.
    """
    summary = as_summary(data)
    require_fittable(summary, model="Pareto/NBD", parameters=4, dropout="s and beta")
    time_scale = float(np.mean(summary.T)) or 1.0
    rows = summary.compressed
    scaled = CompressedSummary(
        rows.frequency, rows.recency / time_scale, rows.T / time_scale, rows.weight, rows.inverse
    )
    prepared = _Prepared.of(scaled)
    outcome = maximize_log_likelihood(
        prepared.log_likelihood,
        _starting_point(scaled),
        model="Pareto/NBD",
        n_customers=len(summary),
        has_gradient=False,
        require_convergence=require_convergence,
    )
    estimates = dict(outcome.estimates)
    errors = dict(outcome.standard_errors)
    for name in ("alpha", "beta"):
        estimates[name] *= time_scale
        if name in errors:
            errors[name] *= time_scale
    model = ParetoNbdModel(estimates["r"], estimates["alpha"], estimates["s"], estimates["beta"])
    report = FitReport(
        log_likelihood=float(np.sum(model.log_likelihood(summary))),
        standard_errors=errors,
        n_customers=len(summary),
        converged=outcome.converged,
        iterations=outcome.iterations,
        message=outcome.message,
    )
    return replace(model, fit=report)


@dataclass(frozen=True)
class _Terms:
    """log G(T) and log[G(T) + s (F(t_x) - F(T))] per distinct row."""

    log_alive: FloatArray
    log_bracket: FloatArray

    @classmethod
    def of(
        cls,
        model: ParetoNbdModel,
        rows: CompressedSummary,
        log_f_recency: FloatArray | None = None,
        log_f_T: FloatArray | None = None,
    ) -> _Terms:
        r, alpha, s, beta = model.r, model.alpha, model.s, model.beta
        x = rows.frequency
        if log_f_recency is None:
            log_f_recency = _log_f(r, alpha, s, beta, x, rows.recency)
        if log_f_T is None:
            log_f_T = _log_f(r, alpha, s, beta, x, rows.T)
        log_alive = -(r + x) * np.log(alpha + rows.T) - s * np.log(beta + rows.T)
        # F(t_x) - F(T) >= 0; rounding may make it a hair negative when t_x ~ T: clip to 0.
        gap = np.minimum(log_f_T - log_f_recency, 0.0)
        with np.errstate(divide="ignore"):
            log_dropped = np.log(s) + log_f_recency + _log1mexp(gap)
        return cls(log_alive, np.logaddexp(log_alive, log_dropped))


@dataclass(frozen=True)
class _Prepared:
    """Distinct rows with their distinct (x, t_x) and (x, T) pairs, where 2F1 is evaluated."""

    rows: CompressedSummary
    recency_pairs: IndexArray
    recency_pair_of_row: IndexArray
    T_pairs: IndexArray
    T_pair_of_row: IndexArray

    @classmethod
    def of(cls, rows: CompressedSummary) -> _Prepared:
        recency_pairs, recency_pair_of_row, _ = distinct_rows(rows.frequency, rows.recency)
        T_pairs, T_pair_of_row, _ = distinct_rows(rows.frequency, rows.T)
        return cls(rows, recency_pairs, recency_pair_of_row, T_pairs, T_pair_of_row)

    def log_likelihood(self, log_parameters: FloatArray) -> float:
        r, alpha, s, beta = np.exp(log_parameters)
        rows = self.rows
        x = rows.frequency
        with np.errstate(all="ignore"):
            log_f_recency = _log_f(
                r, alpha, s, beta, x[self.recency_pairs], rows.recency[self.recency_pairs]
            )[self.recency_pair_of_row]
            log_f_T = _log_f(r, alpha, s, beta, x[self.T_pairs], rows.T[self.T_pairs])[
                self.T_pair_of_row
            ]
            terms = _Terms.of(ParetoNbdModel(r, alpha, s, beta), rows, log_f_recency, log_f_T)
            per_row = gammaln(r + x) - gammaln(r) + terms.log_bracket
        total = dot(rows.weight, per_row) + rows.weight.sum() * (
            r * np.log(alpha) + s * np.log(beta)
        )
        return float(total)


def _log_f(
    r: float, alpha: float, s: float, beta: float, x: FloatArray, tau: FloatArray
) -> FloatArray:
    """log F(tau), with 2F1(1, p_M; r+s+x+1; (M-m)/(M+tau)) (see the module docstring).

    scipy's hyp2f1 returns NaN for some large p_M with the argument near 1 (about 5 % of
    such cases); those rows are integrated numerically instead.
    """
    if alpha >= beta:
        m, big = beta, alpha
        p_m, p_big = np.full(len(x), s + 1.0), r + x
    else:
        m, big = alpha, beta
        p_m, p_big = r + x, np.full(len(x), s + 1.0)
    zeta = (big - m) / (big + tau)
    with np.errstate(all="ignore"):
        log_h = np.log(hyp2f1(1.0, p_big, r + s + x + 1.0, zeta)) - np.log(r + s + x)
    broken = ~np.isfinite(log_h)
    if broken.any():
        log_h[broken] = _log_euler_integral(p_m[broken], p_big[broken], zeta[broken])
    return np.asarray(
        (1.0 - p_m) * np.log(m + tau) - p_big * np.log(big + tau) + log_h, dtype=np.float64
    )


def _log_euler_integral(p_m: FloatArray, p_big: FloatArray, zeta: FloatArray) -> FloatArray:
    """log of 2F1(1, p_M; p_m + p_M; zeta) / (p_m + p_M - 1) by quadrature.

    Euler's integral with y = e^-v: integral over v >= 0 of exp(phi(v)), phi(v) =
    -(p_m + p_M - 1) v - p_M log(1 - zeta + zeta e^-v). phi is concave, so the integrand
    is unimodal; its mode has a closed form, and Gauss-Legendre panels doubling in width
    away from the mode resolve both the peak and the exponential tails.
    """
    slope = p_m + p_big - 1.0
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = zeta * (1.0 - p_m) / (slope * (1.0 - zeta))
        mode = np.where((p_m < 1.0) & (ratio > 1.0), np.log(ratio), 0.0)
    width = 0.25 * np.minimum(1.0 / np.sqrt(p_big), 1.0 / slope)
    offsets = width[:, None] * np.concatenate(([0.0], 2.0 ** np.arange(_PANELS)))[None, :]
    right = mode[:, None] + offsets
    left = np.maximum(mode[:, None] - offsets, 0.0)
    low = np.concatenate((left[:, 1:], right[:, :-1]), axis=1)
    high = np.concatenate((left[:, :-1], right[:, 1:]), axis=1)
    nodes, weights = roots_legendre(_LEGENDRE_NODES // 4)
    half = ((high - low) / 2.0)[:, :, None]
    v = ((high + low) / 2.0)[:, :, None] + half * nodes
    phi = -slope[:, None, None] * v - p_big[:, None, None] * np.log1p(
        zeta[:, None, None] * np.expm1(-v)
    )
    with np.errstate(divide="ignore"):
        log_terms = phi + np.log(half) + np.log(weights)
    flat = log_terms.reshape(len(p_m), -1)
    return np.asarray(logsumexp(flat, axis=1), dtype=np.float64)


def _log1mexp(u: FloatArray) -> FloatArray:
    """log(1 - e^u) for u <= 0, accurate at both ends (Maechler 2012); -inf at u = 0."""
    near_zero = u > -np.log(2.0)
    with np.errstate(divide="ignore"):
        small = np.log(-np.expm1(np.where(near_zero, u, -1.0)))
        large = np.log1p(-np.exp(np.where(near_zero, -1.0, u)))
    return np.asarray(np.where(near_zero, small, large), dtype=np.float64)


def _expected_purchases(
    r: FloatArray | float,
    alpha: FloatArray | float,
    s: float,
    beta: FloatArray | float,
    t: FloatArray | float,
) -> FloatArray:
    """r beta / (alpha (s-1)) [1 - (beta/(beta+t))^(s-1)], as -log(q) exprel((s-1) log q).

    exprel(y) = (e^y - 1) / y keeps s = 1 (the log limit) and s near 1 exact.
    """
    log_q = -np.log1p(np.asarray(t, dtype=np.float64) / np.asarray(beta, dtype=np.float64))
    return np.asarray(
        np.asarray(r) / np.asarray(alpha) * np.asarray(beta) * -log_q * exprel((s - 1.0) * log_q),
        dtype=np.float64,
    )


def _probability_of_purchases(model: ParetoNbdModel, n: FloatArray, t: FloatArray) -> FloatArray:
    """P(X(t) = n) = NBD(n; t) (beta/(beta+t))^s + int_0^t NBD(n; tau) f_lifetime(tau) dtau."""
    r, alpha, s, beta = model.r, model.alpha, model.s, model.beta
    survived = _log_nbd(r, alpha, n, t) + s * (np.log(beta) - np.log(beta + t))
    # Substitute v = log(m + tau): the integrand's poles at tau = -alpha, -beta move far away.
    m = min(alpha, beta)
    nodes, weights = roots_legendre(_LEGENDRE_NODES)
    low, high = np.log(m), np.log(m + t)
    half = (high - low)[:, None] / 2.0
    v = (low + high)[:, None] / 2.0 + half * nodes[None, :]
    tau = np.maximum(np.exp(v) - m, 0.0)  # rounding must not make it negative
    log_density = np.log(s) + s * np.log(beta) - (s + 1.0) * np.log(beta + tau)
    log_integrand = _log_nbd(r, alpha, n[:, None], tau) + log_density + v
    with np.errstate(divide="ignore"):
        log_integral = np.log(half[:, 0]) + _log_weighted_sum(log_integrand, weights)
    return np.asarray(np.exp(np.logaddexp(survived, log_integral)), dtype=np.float64)


def _log_nbd(r: float, alpha: float, n: FloatArray, tau: FloatArray) -> FloatArray:
    """log P(N(tau) = n) for a Poisson count with a Gamma(r, alpha) rate."""
    n, tau = np.broadcast_arrays(n, tau)
    with np.errstate(divide="ignore", invalid="ignore"):
        log_tau = np.log(tau)
        value = (
            gammaln(r + n)
            - gammaln(r)
            - gammaln(n + 1.0)
            + r * (np.log(alpha) - np.log(alpha + tau))
            + n * (log_tau - np.log(alpha + tau))
        )
    return np.asarray(np.where(n == 0, r * (np.log(alpha) - np.log(alpha + tau)), value))


def _log_weighted_sum(log_values: FloatArray, weights: FloatArray) -> FloatArray:
    peak = np.max(log_values, axis=1, keepdims=True)
    peak = np.where(np.isfinite(peak), peak, 0.0)
    total = np.einsum("ij,j->i", np.exp(log_values - peak), weights)
    with np.errstate(divide="ignore"):
        return np.asarray(np.log(total) + peak[:, 0])


def _starting_point(rows: CompressedSummary) -> dict[str, float]:
    """r = s = 1, alpha matching the mean purchase rate, beta the mean age (time scaled)."""
    exposure = dot(rows.weight, rows.T)
    purchases = dot(rows.weight, rows.frequency)
    rate = purchases / exposure if exposure > 0 else 1.0
    return {"r": 1.0, "alpha": 1.0 / max(rate, 1e-6), "s": 1.0, "beta": 1.0}
