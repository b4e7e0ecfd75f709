"""The Gamma-Gamma model of spend per transaction (Fader, Hardie & Lee 2005, "RFM and CLV";
Fader & Hardie 2013, "The Gamma-Gamma Model of Monetary Value").

A customer's transaction values are Gamma(p, nu) around their own mean p / nu, and nu
is Gamma(q, gamma) across customers. Only the mean m_x of a customer's x repeat
transactions is needed: it is Gamma(p x, nu x), so its marginal density is

    f(m_x | x) = Gamma(px + q) / (Gamma(px) Gamma(q)) gamma^q m_x^(px-1) x^(px)
                 / (gamma + m_x x)^(px + q).

The log-likelihood and its gradient are analytic (digamma); functions of x alone are
evaluated once per distinct x. The conditional expectation of the mean spend is a
weighted average of the population mean p gamma / (q - 1) and m_x.

Spend: ``monetary_value`` of ``summary_for_btyd``, the mean value of a customer's repeat
purchases in calibration (same-day orders summed, the first purchase left out). On the
CDNOW sample it reproduces the note's p = 6.25, q = 3.74, gamma = 15.44 over 946
customers (mean spend $35.08); no other spend definition is needed.

Who is fitted: customers with at least one repeat purchase and a positive, known
``monetary_value``. Customers with frequency 0 carry no spend information; a missing
(null or NaN) or non-positive mean (refunds larger than purchases) is left out, and the
number left out is reported. An error names the count when nobody is left.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from scipy.special import digamma, gammaln

from perennial.models.btyd_data import BtydSummary, FloatArray, SummaryLike, as_summary
from perennial.models.mle import (
    FitReport,
    ModelFitError,
    dot,
    maximize_log_likelihood,
    model_document,
    read_model_document,
    require_positive_parameters,
)

__all__ = ["GammaGammaModel", "fit_gamma_gamma", "spend_sample"]


@dataclass(frozen=True)
class GammaGammaModel:
    """Fitted (or given) Gamma-Gamma parameters p, q and gamma (``lifetimes`` calls it v)."""

    p: float
    q: float
    gamma: float
    fit: FitReport | None = None

    NAME: ClassVar[str] = "gamma_gamma"
    PARAMETERS: ClassVar[tuple[str, ...]] = ("p", "q", "gamma")

    def __post_init__(self) -> None:
        require_positive_parameters(self.NAME, self.params)

    @property
    def params(self) -> dict[str, float]:
        return {"p": self.p, "q": self.q, "gamma": self.gamma}

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready document for a model registry (see :meth:`from_dict`)."""
        return model_document(self.NAME, self.params, self.fit)

    @classmethod
    def from_dict(cls, document: dict[str, Any]) -> GammaGammaModel:
        params, fit = read_model_document(document, cls.NAME, cls.PARAMETERS)
        return cls(**params, fit=fit)

    @property
    def population_mean_spend(self) -> float:
        """E[Z] = p gamma / (q - 1): the expected spend of a customer we know nothing about."""
        if self.q <= 1.0:
            raise ModelFitError(
                f"Gamma-Gamma with q = {self.q:.4g} <= 1 has an infinite mean spend: "
                "expected spend is undefined for customers without repeat purchases"
            )
        return self.p * self.gamma / (self.q - 1.0)

    def log_likelihood(self, data: SummaryLike) -> FloatArray:
        """Log-density of each fitted customer's mean spend (customers in :func:`spend_sample`)."""
        x, spend = spend_sample(as_summary(data))
        return _log_density(self.p, self.q, self.gamma, x, spend)

    def conditional_expected_spend(self, data: SummaryLike) -> FloatArray:
        """E[mean spend | x, m_x] = p (gamma + x m_x) / (p x + q - 1) per customer.

        Customers outside the fitted population (no repeat purchase, or a missing or
        non-positive mean) get the population mean p gamma / (q - 1).
        """
        summary = as_summary(data)
        x, spend = _usable_spend(summary)
        known = x > 0
        expected = np.empty(len(summary))
        if not known.all():
            expected[~known] = self.population_mean_spend
        shape = self.p * x[known] + self.q - 1.0
        if np.any(shape <= 0):
            customer = summary.customer_id[np.flatnonzero(known)[np.argmax(shape <= 0)]]
            raise ModelFitError(
                f"Gamma-Gamma with p = {self.p:.4g}, q = {self.q:.4g}: the expected spend of "
                f"customer {str(customer)!r} is infinite (p x + q <= 1)"
            )
        expected[known] = self.p * (self.gamma + x[known] * spend[known]) / shape
        return expected


def fit_gamma_gamma(data: SummaryLike, *, require_convergence: bool = True) -> GammaGammaModel:
    """Maximum-likelihood Gamma-Gamma on the customers of :func:`spend_sample`.

    The fit report's ``extra`` holds ``excluded_customers``: how many were left out.
    """
    summary = as_summary(data)
    x, spend = spend_sample(summary)
    if len(x) == 0:
        raise ModelFitError(
            f"Gamma-Gamma needs customers with a repeat purchase and a positive mean spend: "
            f"none of the {len(summary)} customers has both"
        )
    if len(np.unique(spend)) < 2:
        raise ModelFitError(
            f"Gamma-Gamma cannot be identified from {len(x)} customer(s) sharing one mean "
            f"spend ({spend[0]:g}): spend must vary across customers"
        )
    money_scale = float(np.mean(spend))
    prepared = _Prepared.of(x, spend / money_scale)
    outcome = maximize_log_likelihood(
        prepared.objective,
        {"p": 1.0, "q": 2.0, "gamma": 1.0},
        model="Gamma-Gamma",
        n_customers=len(x),
        has_gradient=True,
        require_convergence=require_convergence,
    )
    estimates = dict(outcome.estimates)
    estimates["gamma"] *= money_scale
    errors = dict(outcome.standard_errors)
    if "gamma" in errors:
        errors["gamma"] *= money_scale
    report = FitReport(
        log_likelihood=float(np.sum(_log_density(**estimates, x=x, spend=spend))),
        standard_errors=errors,
        n_customers=len(x),
        converged=outcome.converged,
        iterations=outcome.iterations,
        message=outcome.message,
        extra={"excluded_customers": float(len(summary) - len(x))},
    )
    return GammaGammaModel(**estimates, fit=report)


def spend_sample(summary: BtydSummary) -> tuple[FloatArray, FloatArray]:
    """(frequency, mean repeat spend) of the customers Gamma-Gamma is fitted on."""
    x, spend = _usable_spend(summary)
    keep = x > 0
    return x[keep], spend[keep]


def _usable_spend(summary: BtydSummary) -> tuple[FloatArray, FloatArray]:
    """Frequency with 0 wherever the spend is missing or non-positive, and the spend."""
    if summary.monetary_value is None:
        raise ModelFitError("Gamma-Gamma needs a monetary_value column; the summary has none")
    spend = summary.monetary_value
    usable = np.isfinite(spend) & (spend > 0)
    return np.where(usable, summary.frequency, 0.0), np.where(usable, spend, 1.0)


def _log_density(p: float, q: float, gamma: float, x: FloatArray, spend: FloatArray) -> FloatArray:
    px = p * x
    return np.asarray(
        gammaln(px + q)
        - gammaln(px)
        - gammaln(q)
        + q * np.log(gamma)
        + (px - 1.0) * np.log(spend)
        + px * np.log(x)
        - (px + q) * np.log(gamma + x * spend),
        dtype=np.float64,
    )


@dataclass(frozen=True)
class _Prepared:
    """Sums that do not depend on the parameters, and the per-distinct-x pieces."""

    x: FloatArray
    spend_total: FloatArray  # x * m_x, per customer
    x_values: FloatArray
    count_by_x: FloatArray
    sum_x_log_x_spend: float
    sum_log_spend: float

    @classmethod
    def of(cls, x: FloatArray, spend: FloatArray) -> _Prepared:
        x_values, x_index = np.unique(x, return_inverse=True)
        return cls(
            x=x,
            spend_total=x * spend,
            x_values=x_values,
            count_by_x=np.bincount(x_index, minlength=len(x_values)).astype(np.float64),
            sum_x_log_x_spend=dot(x, np.log(x) + np.log(spend)),
            sum_log_spend=float(np.log(spend).sum()),
        )

    def objective(self, log_parameters: FloatArray) -> tuple[float, FloatArray]:
        """Total log-likelihood and its gradient with respect to (log p, log q, log gamma)."""
        p, q, gamma = np.exp(log_parameters)
        n = len(self.x)
        px_values = p * self.x_values
        counts = self.count_by_x
        log_total = np.log(gamma + self.spend_total)
        inverse_total = 1.0 / (gamma + self.spend_total)
        value = (
            dot(counts, gammaln(px_values + q) - gammaln(px_values))
            + n * (q * np.log(gamma) - gammaln(q))
            + p * self.sum_x_log_x_spend
            - self.sum_log_spend
            - p * dot(self.x, log_total)
            - q * log_total.sum()
        )
        psi_pxq = digamma(px_values + q)
        gradient = np.array(
            [
                dot(counts * self.x_values, psi_pxq - digamma(px_values))
                + self.sum_x_log_x_spend
                - dot(self.x, log_total),
                dot(counts, psi_pxq) + n * (np.log(gamma) - digamma(q)) - log_total.sum(),
                n * q / gamma - p * dot(self.x, inverse_total) - q * inverse_total.sum(),
            ]
        )
        return float(value), gradient * np.array([p, q, gamma])
