"""An empirical-Bayes model of each customer's inter-purchase intervals.

Why this model, for next-order dates and personal category cycles:

- Customers differ in rhythm (a bag of dog food a month, coffee every fortnight)
  and most have one to five intervals: their own mean alone is noise (one
  interval is one draw) and the population alone ignores their rhythm. A
  hierarchy does both: each customer's log intervals have their own mean and
  spread, drawn from a population prior, and the posterior weighs the two by how
  many intervals the customer has.
- The prior is the conjugate normal-inverse-chi-square on the log intervals
  (Gelman et al., *Bayesian Data Analysis*, 3rd ed., section 3.3; Murphy 2007,
  "Conjugate Bayesian analysis of the Gaussian distribution", section 5): the
  mean log interval shrinks toward the prior's with weight ``kappa0 / (kappa0 +
  n)``, the spread toward ``sigma0^2`` with ``nu0`` pseudo-intervals, in closed
  form, so a million customers update with array arithmetic and no sampler.
- Its four numbers are fitted to the store by empirical Bayes (type-II maximum
  likelihood of the closed-form marginal likelihood), so how far to trust one
  interval is learned, not set by hand.
- The next interval is a gamma with the posterior's log mean and log variance
  (see :class:`NextInterval` for why gamma), and "no purchase for ``w`` days"
  conditions it on ``X > w`` in closed form (the regularised incomplete gamma
  and its inverse).

Tried and rejected on the demo's backtests (20,000 customers, cut-offs
2025-03-01 to 2025-11-01, 30- and 90-day horizons): the log-normal's own
Student-t predictive (its falling hazard put overdue buyers' dates 14-19 days
late on average; mean absolute error 12-47 % higher); a mixture of gammas over
the uncertain mean (about as good for repeat buyers, clearly worse for one-time
buyers, and seconds slower per million); a gamma-gamma model with a conjugate
prior on the rate (worse for one-time buyers); independent, non-conjugate priors
on the mean and spread (worse than the conjugate one). The demo draws gamma
intervals, which favours the gamma here: run ``backtest_next_orders`` on a real
store before trusting the comparison there.

No library fits this: pymc-marketing's BTYD models predict purchase counts, not
interval quantiles, and a sampler takes minutes at a million customers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
from scipy import optimize, special

__all__ = [
    "IntervalPrior",
    "IntervalStatistics",
    "NextInterval",
    "Posterior",
    "fit_prior",
    "inverse_trigamma",
    "posterior",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

_LOG_PI = float(np.log(np.pi))
# Bounds of the fitted prior, in (m, log kappa0, log nu0, log sigma0^2): a prior
# stronger than ~1000 intervals or a spread below e^-9 is a degenerate fit.
_BOUNDS = ((-5.0, 12.0), (-7.0, 7.0), (np.log(0.5), np.log(500.0)), (-9.0, 4.0))
_SAMPLE_SEED = 20_240_101
_TABLE_SHAPES = np.logspace(-2.0, 5.0, 4001)
_TRIGAMMA_TABLE = (-np.log(special.polygamma(1, _TABLE_SHAPES)), np.log(_TABLE_SHAPES))
"""(-log trigamma(x), log x): increasing in its first entry, as ``np.interp`` needs."""


@dataclass(frozen=True)
class IntervalStatistics:
    """Sufficient statistics of each customer's log intervals (days), one array entry each.

    ``count`` is the number of intervals (0 for a single purchase), ``log_mean`` the
    mean of their natural logs (any finite value when ``count`` is 0) and
    ``log_squares`` the sum of squared deviations of the logs from that mean.
    """

    count: IntArray
    log_mean: FloatArray
    log_squares: FloatArray

    @classmethod
    def from_sums(
        cls, count: IntArray, log_mean: FloatArray, log_sum_of_squares: FloatArray
    ) -> IntervalStatistics:
        """From SQL-style aggregates: mean of logs and sum of squared logs (nulls as 0)."""
        safe_mean = np.where(count > 0, np.nan_to_num(log_mean), 0.0)
        squares = np.nan_to_num(log_sum_of_squares) - count * safe_mean**2
        return cls(count, safe_mean, np.maximum(squares, 0.0))

    @classmethod
    def from_columns(
        cls,
        count: pa.ChunkedArray | pa.Array,
        log_mean: pa.ChunkedArray | pa.Array,
        log_sum_of_squares: pa.ChunkedArray | pa.Array,
    ) -> IntervalStatistics:
        """From Arrow columns of a query: nulls (no interval) read as zeros."""
        return cls.from_sums(
            _floats(count).astype(np.int64), _floats(log_mean), _floats(log_sum_of_squares)
        )

    def take(self, rows: IntArray) -> IntervalStatistics:
        return IntervalStatistics(self.count[rows], self.log_mean[rows], self.log_squares[rows])


@dataclass(frozen=True)
class IntervalPrior:
    """The normal-inverse-chi-square prior of one population's customers.

    ``mean_log``: prior mean of a customer's mean log interval (``m``);
    ``strength``: how many intervals that mean is worth (``kappa0``); ``dof`` and
    ``scale``: the spread of log intervals within a customer, worth ``nu0``
    intervals of variance ``sigma0^2``. ``customers`` is how many customers with an
    interval it was fitted on.
    """

    mean_log: float
    strength: float
    dof: float
    scale: float
    customers: int


def fit_prior(
    statistics: IntervalStatistics, *, min_customers: int, sample: int = 200_000
) -> IntervalPrior | None:
    """The prior maximising the customers' marginal likelihood; ``None`` with too few.

    Only customers with at least one interval inform it; fewer than
    ``min_customers`` of them give no prior (a rhythm cannot be learned from a
    handful). Above ``sample`` customers a fixed-seed random sample of that size is
    used: four numbers need no more, and the fit stays well under a second.
    """
    informative = np.flatnonzero(statistics.count > 0)
    if informative.size < max(min_customers, 2):
        return None
    if informative.size > sample:
        informative = np.sort(
            np.random.default_rng(_SAMPLE_SEED).choice(informative, sample, replace=False)
        )
    data = statistics.take(informative)
    result = optimize.minimize(
        _negative_log_marginal,
        _starting_point(data),
        args=(data.count.astype(np.float64), data.log_mean, data.log_squares),
        method="L-BFGS-B",
        jac=True,
        bounds=_BOUNDS,
    )
    mean_log, log_strength, log_dof, log_scale = (float(v) for v in result.x)
    return IntervalPrior(
        mean_log=mean_log,
        strength=float(np.exp(log_strength)),
        dof=float(np.exp(log_dof)),
        scale=float(np.exp(log_scale)),
        customers=int(np.count_nonzero(statistics.count > 0)),
    )


@dataclass(frozen=True)
class Posterior:
    """Each customer's posterior over the mean and spread of their log intervals.

    ``log_mean`` is ``m_n``, ``log_variance`` is ``sigma_n^2`` (the within-customer
    spread), ``strength`` is ``kappa_n`` (how well ``m_n`` is known, in intervals).
    """

    log_mean: FloatArray
    log_variance: FloatArray
    strength: FloatArray

    def next_interval(self) -> NextInterval:
        """The next interval: a gamma with log mean ``m_n`` and log variance below.

        The variance ``sigma_n^2 (1 + 1 / kappa_n)`` adds the uncertainty of ``m_n``
        to the spread, so a customer with one interval gets a wide window and a
        regular buyer with many a narrow one.
        """
        return NextInterval.matching(self.log_mean, self.log_variance * (1.0 + 1.0 / self.strength))

    def median_interval_days(self) -> FloatArray:
        """The customer's typical interval: the median of the gamma of their posterior rhythm."""
        rhythm = NextInterval.matching(self.log_mean, self.log_variance)
        return np.asarray(rhythm.quantiles([0.5])[0], dtype=np.float64)


@dataclass(frozen=True)
class NextInterval:
    """Gamma distributions of the next interval in days, one per customer.

    Why gamma and not the log-normal the prior is fitted with: a gamma of shape
    ``k >= 1`` has a non-decreasing hazard, so a rhythmic customer past their usual
    interval becomes *more* likely to buy each day, as replenishment does (Erlang
    inter-purchase times: Chatfield and Goodhardt 1973, "A consumer purchasing
    model with Erlang inter-purchase times"), while the log-normal's (and the
    Student-t predictive's) falling hazard pushes an overdue customer's date ever
    later. Matching on the log scale keeps the fitted prior's meaning:
    ``E[log X] = digamma(k) + log(theta)``, ``Var[log X] = trigamma(k)``.
    """

    shape: FloatArray
    scale: FloatArray

    @classmethod
    def matching(cls, log_mean: FloatArray, log_variance: FloatArray) -> NextInterval:
        shape = inverse_trigamma(log_variance)
        return cls(shape, np.exp(log_mean - special.digamma(shape)))

    def quantiles(self, probabilities: Sequence[float]) -> FloatArray:
        """Unconditional quantiles in days; one row per probability."""
        return self.conditional_quantiles(probabilities, np.zeros_like(self.shape))

    def conditional_quantiles(
        self, probabilities: Sequence[float], longer_than_days: FloatArray
    ) -> FloatArray:
        """Quantiles in days of ``X`` given ``X > longer_than_days``; one row per probability.

        ``Q(x) = (1 - p) Q(w)`` with ``Q`` the gamma survival function. Where no
        mass is left beyond ``w`` (numerically), the quantiles are ``+inf``: the
        caller caps them.
        """
        survival = special.gammaincc(self.shape, longer_than_days / self.scale)
        rows = [
            self.scale * special.gammainccinv(self.shape, (1.0 - p) * survival)
            for p in probabilities
        ]
        quantiles = np.vstack(rows) if rows else np.empty((0, self.shape.size))
        quantiles = np.maximum(quantiles, longer_than_days)
        # Ordered even where floating point rounding would swap neighbours.
        return np.asarray(np.maximum.accumulate(quantiles, axis=0), dtype=np.float64)

    def conditional_probability(
        self, longer_than_days: FloatArray, at_most_days: FloatArray
    ) -> FloatArray:
        """``P(X <= at_most | X > longer_than)``; 0 where no mass is left beyond ``longer_than``."""
        lower = special.gammaincc(self.shape, longer_than_days / self.scale)
        upper = special.gammaincc(self.shape, at_most_days / self.scale)
        alive = lower > 0.0
        ratio = np.divide(upper, lower, out=np.ones_like(lower), where=alive)
        probability = np.where(alive, 1.0 - ratio, 0.0)
        return np.asarray(np.clip(probability, 0.0, 1.0), dtype=np.float64)


def posterior(
    statistics: IntervalStatistics, priors: Sequence[IntervalPrior], prior_index: IntArray
) -> Posterior:
    """Every customer's posterior under their prior (``prior_index[i]`` picks from ``priors``).

    With ``n`` intervals: ``kappa_n = kappa0 + n``, ``m_n`` the precision-weighted
    mean of the prior mean and the customer's mean log interval, ``nu_n = nu0 + n``
    and ``nu_n sigma_n^2 = nu0 sigma0^2 + SS + kappa0 n / kappa_n (ybar - m0)^2``
    (Murphy 2007, section 5.2). A customer without intervals gets the prior.
    """
    m0, kappa0, nu0, scale0 = _prior_arrays(priors, prior_index)
    n = statistics.count.astype(np.float64)
    kappa_n = kappa0 + n
    nu_n = nu0 + n
    mean_n = (kappa0 * m0 + n * statistics.log_mean) / kappa_n
    deviation = statistics.log_mean - m0
    spread_n = (nu0 * scale0 + statistics.log_squares + kappa0 * n / kappa_n * deviation**2) / nu_n
    return Posterior(mean_n, spread_n, kappa_n)


def inverse_trigamma(values: FloatArray) -> FloatArray:
    """The ``x`` with ``trigamma(x) = value``, elementwise, for values in (0, inf).

    Interpolated on a log-log table (relative error below 1e-5), far faster than
    Newton's method on a million values; values beyond the table give the shapes
    at its ends (1e-2 and 1e5), which no interval data reaches.
    """
    log_values = np.log(np.maximum(np.asarray(values, dtype=np.float64), 1e-300))
    return np.asarray(np.exp(np.interp(-log_values, *_TRIGAMMA_TABLE)), dtype=np.float64)


def _floats(column: pa.ChunkedArray | pa.Array) -> FloatArray:
    filled = pc.fill_null(pc.cast(column, pa.float64()), 0.0)
    return np.asarray(filled.to_numpy(zero_copy_only=False), dtype=np.float64)


def _prior_arrays(
    priors: Sequence[IntervalPrior], prior_index: IntArray
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    table = np.array([[p.mean_log, p.strength, p.dof, p.scale] for p in priors], dtype=np.float64)
    chosen = table.reshape(-1, 4)[prior_index]
    return chosen[:, 0], chosen[:, 1], chosen[:, 2], chosen[:, 3]


def _starting_point(data: IntervalStatistics) -> FloatArray:
    """Method-of-moments values: pooled within-customer variance, spread of the means."""
    n = data.count.astype(np.float64)
    pooled = float(data.log_squares.sum()) / max(float((n - 1).sum()), 1.0)
    within = pooled if pooled > 0.01 else 0.5  # one interval each: no spread seen yet
    between = float(np.var(data.log_mean)) - float(np.mean(within / n))
    strength = within / max(between, 0.05 * within)
    start = [float(np.mean(data.log_mean)), np.log(strength), np.log(5.0), np.log(within)]
    clipped = np.clip(np.array(start), [b[0] for b in _BOUNDS], [b[1] for b in _BOUNDS])
    return np.asarray(clipped, dtype=np.float64)


def _negative_log_marginal(
    theta: FloatArray, n: FloatArray, log_mean: FloatArray, log_squares: FloatArray
) -> tuple[float, FloatArray]:
    """Mean negative log marginal likelihood of the customers and its gradient in ``theta``.

    ``log p(y) = lgamma(nu_n/2) - lgamma(nu0/2) + (log kappa0 - log kappa_n)/2
    + (nu0/2) log(nu0 sigma0^2) - (nu_n/2) log(nu_n sigma_n^2) - (n/2) log pi``
    (Murphy 2007, section 5.3).
    """
    m0, log_kappa0, log_nu0, log_scale0 = theta
    kappa0, nu0, scale0 = np.exp(log_kappa0), np.exp(log_nu0), np.exp(log_scale0)
    kappa_n = kappa0 + n
    nu_n = nu0 + n
    deviation = log_mean - m0
    weight = kappa0 * n / kappa_n
    total = nu0 * scale0 + log_squares + weight * deviation**2
    log_likelihood = (
        special.gammaln(nu_n / 2.0)
        - special.gammaln(nu0 / 2.0)
        + 0.5 * (log_kappa0 - np.log(kappa_n))
        + 0.5 * nu0 * (np.log(nu0) + log_scale0)
        - 0.5 * nu_n * np.log(total)
        - 0.5 * n * _LOG_PI
    )
    pull = nu_n / total  # d(-nu_n/2 log total)/d total = -pull/2
    d_m0 = pull * weight * deviation
    d_weight = (n / kappa_n) ** 2  # d weight / d kappa0
    d_kappa0 = 0.5 / kappa0 - 0.5 / kappa_n - 0.5 * pull * d_weight * deviation**2
    d_nu0 = (
        0.5 * special.digamma(nu_n / 2.0)
        - 0.5 * special.digamma(nu0 / 2.0)
        + 0.5 * (np.log(nu0) + log_scale0 + 1.0)
        - 0.5 * np.log(total)
        - 0.5 * pull * scale0
    )
    d_scale0 = 0.5 * nu0 / scale0 - 0.5 * pull * nu0
    gradient = np.array(
        [
            d_m0.mean(),
            (d_kappa0 * kappa0).mean(),
            (d_nu0 * nu0).mean(),
            (d_scale0 * scale0).mean(),
        ]
    )
    return float(-log_likelihood.mean()), -gradient
