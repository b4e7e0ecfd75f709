"""The diagnostics of Fader, Hardie & Lee (2005): does a fitted count model describe the data?

* Calibration fit: how many customers made 0, 1, ..., 7+ repeat purchases, actual vs
  the model's sum over customers of P(X(T_i) = n) (the paper's Figure 2), with
  Pearson's chi-square (degrees of freedom: bins - 1 - parameters).
* Conditional expectations: customers grouped by calibration frequency 0..7+, their
  mean actual holdout purchases vs the mean of the model's E[Y(t*) | x, t_x, T]
  (Figure 5; t* = 39 weeks for CDNOW's weeks 40-78), with group totals for a report.
* Tracking: expected cumulative repeat purchases of the whole cohort at any time
  relative to the calibration end, sum_i E[X(T_i + h)] (the aggregate of Figure 3).
* Gamma-Gamma's assumption: the correlation between frequency and mean spend among
  repeat buyers should be weak (Fader & Hardie's note reports 0.11 for CDNOW).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pyarrow as pa
from scipy.stats import chi2

from perennial.models.btyd_data import (
    BtydInputError,
    BtydSummary,
    FloatArray,
    SummaryLike,
    as_summary,
)
from perennial.models.clv import PurchaseCountModel
from perennial.models.gamma_gamma import spend_sample

__all__ = [
    "DEFAULT_MAX_FREQUENCY",
    "FrequencyBin",
    "FrequencyHistogram",
    "HoldoutGroup",
    "conditional_expectations_by_frequency",
    "expected_cumulative_repeat_purchases",
    "frequency_histogram",
    "holdout_purchases",
    "holdout_table",
    "spend_frequency_correlation",
]

DEFAULT_MAX_FREQUENCY = 7
"""The paper's last bin is "7+"."""


@dataclass(frozen=True)
class FrequencyBin:
    """Customers with ``repeat_purchases`` repeat purchases (or more, when ``open_ended``)."""

    repeat_purchases: int
    open_ended: bool
    actual_customers: int
    expected_customers: float

    @property
    def label(self) -> str:
        return f"{self.repeat_purchases}+" if self.open_ended else str(self.repeat_purchases)


@dataclass(frozen=True)
class FrequencyHistogram:
    """Actual vs expected calibration frequencies and Pearson's chi-square of the difference."""

    bins: tuple[FrequencyBin, ...]
    chi_square: float
    degrees_of_freedom: int
    p_value: float

    def to_arrow(self) -> pa.Table:
        return pa.table(
            {
                "repeat_purchases": [b.label for b in self.bins],
                "actual_customers": [b.actual_customers for b in self.bins],
                "expected_customers": [b.expected_customers for b in self.bins],
            }
        )


@dataclass(frozen=True)
class HoldoutGroup:
    """Customers with one calibration frequency (or more, when ``open_ended``) in the holdout."""

    calibration_frequency: int
    open_ended: bool
    customers: int
    actual_purchases: float
    predicted_purchases: float

    @property
    def label(self) -> str:
        suffix = "+" if self.open_ended else ""
        return f"{self.calibration_frequency}{suffix}"

    @property
    def actual_mean(self) -> float:
        return self.actual_purchases / self.customers if self.customers else 0.0

    @property
    def predicted_mean(self) -> float:
        return self.predicted_purchases / self.customers if self.customers else 0.0


def frequency_histogram(
    model: PurchaseCountModel, data: SummaryLike, *, max_frequency: int = DEFAULT_MAX_FREQUENCY
) -> FrequencyHistogram:
    """Calibration repeat-purchase histogram 0..max_frequency+, actual vs expected."""
    summary = as_summary(data)
    degrees_of_freedom = max_frequency - len(model.PARAMETERS)  # (max + 1) bins - 1 - k
    if degrees_of_freedom < 1:
        raise ValueError(
            f"max_frequency {max_frequency} leaves no degree of freedom for a "
            f"{len(model.PARAMETERS)}-parameter model: use at least {len(model.PARAMETERS) + 1}"
        )
    ages, customers_per_age = np.unique(summary.T, return_counts=True)
    counts = np.arange(max_frequency)
    probabilities = model.probability_of_purchases(counts[:, None], ages[None, :])
    expected = list(np.einsum("ij,j->i", probabilities, customers_per_age))
    expected.append(len(summary) - sum(expected))
    actual = [int(np.sum(summary.frequency == n)) for n in counts]
    actual.append(int(np.sum(summary.frequency >= max_frequency)))
    bins = tuple(
        FrequencyBin(n, n == max_frequency, actual[n], float(expected[n]))
        for n in range(max_frequency + 1)
    )
    observed, predicted = np.array(actual, dtype=np.float64), np.array(expected)
    positive = predicted > 0
    statistic = float(np.sum((observed[positive] - predicted[positive]) ** 2 / predicted[positive]))
    return FrequencyHistogram(
        bins, statistic, degrees_of_freedom, float(chi2.sf(statistic, degrees_of_freedom))
    )


def holdout_purchases(calibration: SummaryLike, whole_period: SummaryLike) -> FloatArray:
    """Repeat purchases after calibration, per calibration customer (in its order).

    ``whole_period`` is the summary through the holdout's end: its frequency minus the
    calibration frequency is what happened in the holdout. Every calibration customer
    must appear in it, with no fewer purchases.
    """
    before, after = as_summary(calibration), as_summary(whole_period)
    ids = after.customer_id.astype(str)
    order = np.argsort(ids, kind="stable")
    wanted = before.customer_id.astype(str)
    position = np.minimum(np.searchsorted(ids, wanted, sorter=order), len(ids) - 1)
    found = order[position] if len(ids) else np.empty(0, dtype=np.intp)
    missing = np.flatnonzero((ids[found] != wanted) if len(ids) else np.ones(len(wanted), bool))
    if len(missing):
        raise BtydInputError(
            f"is in the calibration summary but not in the whole-period one "
            f"({len(missing)} such customers)",
            customer_id=str(wanted[missing[0]]),
            column="customer_id",
        )
    extra = after.frequency[found] - before.frequency
    fewer = np.flatnonzero(extra < 0)
    if len(fewer):
        raise BtydInputError(
            "has fewer purchases over the whole period than in calibration",
            customer_id=str(wanted[fewer[0]]),
            column="frequency",
        )
    return np.asarray(extra, dtype=np.float64)


def conditional_expectations_by_frequency(
    model: PurchaseCountModel,
    calibration: SummaryLike,
    actual_holdout_purchases: npt.ArrayLike,
    holdout_length: float,
    *,
    max_frequency: int = DEFAULT_MAX_FREQUENCY,
) -> tuple[HoldoutGroup, ...]:
    """Actual vs predicted holdout purchases by calibration frequency 0..max_frequency+."""
    summary = as_summary(calibration)
    actual = np.asarray(actual_holdout_purchases, dtype=np.float64)
    if actual.shape != (len(summary),):
        raise ValueError(
            f"expected one holdout count per calibration customer ({len(summary)}), "
            f"got shape {actual.shape}"
        )
    predicted = model.conditional_expected_purchases(summary, holdout_length)
    group = np.minimum(summary.frequency, max_frequency).astype(np.intp)
    size = np.bincount(group, minlength=max_frequency + 1)
    actual_total = np.bincount(group, actual, minlength=max_frequency + 1)
    predicted_total = np.bincount(group, predicted, minlength=max_frequency + 1)
    return tuple(
        HoldoutGroup(
            n, n == max_frequency, int(size[n]), float(actual_total[n]), float(predicted_total[n])
        )
        for n in range(max_frequency + 1)
    )


def holdout_table(groups: tuple[HoldoutGroup, ...]) -> pa.Table:
    """The holdout check as a table a report can print."""
    return pa.table(
        {
            "calibration_frequency": [g.label for g in groups],
            "customers": [g.customers for g in groups],
            "actual_purchases": [g.actual_purchases for g in groups],
            "predicted_purchases": [g.predicted_purchases for g in groups],
            "actual_mean": [g.actual_mean for g in groups],
            "predicted_mean": [g.predicted_mean for g in groups],
        }
    )


def expected_cumulative_repeat_purchases(
    model: PurchaseCountModel, data: SummaryLike, offsets: npt.ArrayLike
) -> FloatArray:
    """sum_i E[X(max(T_i + h, 0))] for each offset h from the calibration end (tracking).

    h = 0 is the expected calibration total, h = t* the total through the holdout; the
    difference is the model's unconditional holdout forecast.
    """
    summary: BtydSummary = as_summary(data)
    shifts = np.atleast_1d(np.asarray(offsets, dtype=np.float64))
    if not np.all(np.isfinite(shifts)):
        raise ValueError("offsets must be finite")
    ages, customers = np.unique(summary.T, return_counts=True)
    totals = []
    for h in shifts:
        expected = model.expected_purchases(np.maximum(ages + h, 0.0))
        totals.append(float(np.einsum("i,i->", customers, expected)))
    return np.array(totals)


def spend_frequency_correlation(data: SummaryLike) -> float:
    """Pearson correlation of frequency and mean spend among Gamma-Gamma's customers."""
    x, spend = spend_sample(as_summary(data))
    if len(x) < 2 or np.ptp(x) == 0 or np.ptp(spend) == 0:
        raise ValueError("the correlation needs at least two repeat buyers who differ")
    return float(np.corrcoef(x, spend)[0, 1])
