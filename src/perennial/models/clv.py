"""Discounted customer lifetime value over a horizon: a purchase-count model times Gamma-Gamma.

CLV_i = margin * E[spend per purchase]_i * sum over months k = 1..H of
        (E[purchases by month k] - E[purchases by month k-1])_i / (1 + d)^(k / 12),

with the count model's conditional expectation given (x, t_x, T) (BG/NBD eq. 10 or the
Pareto/NBD equivalent), Gamma-Gamma's conditional expected spend, and each month's
purchases discounted at the month's end at the annual rate d. Months are 365.25 / 12
days; the summary's time unit is ``unit_days`` days (7: weeks). The defaults are 12
months and 15 % a year, the annual rate Fader, Hardie & Lee use in "RFM and CLV" (2005).
Spend and purchase counts are assumed independent, as Gamma-Gamma requires (check it
with ``btyd_checks.spend_frequency_correlation``). A Gamma-Gamma fit with q <= 1 has no
finite mean spend: CLV then raises ``ModelFitError`` rather than return infinities.
"""

from __future__ import annotations

from typing import ClassVar, Protocol

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from perennial.models.btyd_data import FloatArray, SummaryLike, as_summary
from perennial.models.gamma_gamma import GammaGammaModel

__all__ = [
    "DAYS_PER_MONTH",
    "DEFAULT_ANNUAL_DISCOUNT_RATE",
    "DEFAULT_HORIZON_MONTHS",
    "PurchaseCountModel",
    "clv_table",
    "customer_lifetime_value",
    "expected_discounted_purchases",
]

DAYS_PER_MONTH = 365.25 / 12
DEFAULT_HORIZON_MONTHS = 12
DEFAULT_ANNUAL_DISCOUNT_RATE = 0.15


class PurchaseCountModel(Protocol):
    """What BG/NBD and Pareto/NBD share: the predictions CLV and the diagnostics use."""

    PARAMETERS: ClassVar[tuple[str, ...]]

    def p_alive(self, data: SummaryLike) -> FloatArray: ...

    def conditional_expected_purchases(self, data: SummaryLike, t: float) -> FloatArray: ...

    def expected_purchases(self, t: npt.ArrayLike) -> FloatArray: ...

    def probability_of_purchases(self, n: npt.ArrayLike, t: npt.ArrayLike) -> FloatArray: ...


def expected_discounted_purchases(
    count_model: PurchaseCountModel,
    data: SummaryLike,
    *,
    horizon_months: int = DEFAULT_HORIZON_MONTHS,
    annual_discount_rate: float = DEFAULT_ANNUAL_DISCOUNT_RATE,
    unit_days: float = 7.0,
) -> FloatArray:
    """Each customer's expected purchases over the horizon, each month's discounted."""
    _require_settings(horizon_months, annual_discount_rate, unit_days)
    summary = as_summary(data)
    month = DAYS_PER_MONTH / unit_days
    total = np.zeros(len(summary))
    previous = np.zeros(len(summary))
    for k in range(1, horizon_months + 1):
        cumulative = count_model.conditional_expected_purchases(summary, k * month)
        total += (cumulative - previous) * (1.0 + annual_discount_rate) ** (-k / 12.0)
        previous = cumulative
    return total


def customer_lifetime_value(
    count_model: PurchaseCountModel,
    spend_model: GammaGammaModel,
    data: SummaryLike,
    *,
    horizon_months: int = DEFAULT_HORIZON_MONTHS,
    annual_discount_rate: float = DEFAULT_ANNUAL_DISCOUNT_RATE,
    unit_days: float = 7.0,
    margin: float = 1.0,
) -> FloatArray:
    """Discounted value of each customer's purchases over the horizon, in the spend's currency.

    ``margin`` (0 < margin) turns revenue into profit; 1 keeps revenue.
    """
    if not (np.isfinite(margin) and margin > 0):
        raise ValueError(f"margin must be positive, got {margin!r}")
    summary = as_summary(data)
    purchases = expected_discounted_purchases(
        count_model,
        summary,
        horizon_months=horizon_months,
        annual_discount_rate=annual_discount_rate,
        unit_days=unit_days,
    )
    return margin * purchases * spend_model.conditional_expected_spend(summary)


def clv_table(
    count_model: PurchaseCountModel,
    spend_model: GammaGammaModel,
    data: SummaryLike,
    *,
    horizon_months: int = DEFAULT_HORIZON_MONTHS,
    annual_discount_rate: float = DEFAULT_ANNUAL_DISCOUNT_RATE,
    unit_days: float = 7.0,
    margin: float = 1.0,
) -> pa.Table:
    """Per customer: p_alive, expected_purchases (undiscounted, over the horizon),
    expected_average_spend and clv, keyed by customer_id: profile fields."""
    summary = as_summary(data)
    horizon = horizon_months * DAYS_PER_MONTH / unit_days
    value = customer_lifetime_value(
        count_model,
        spend_model,
        summary,
        horizon_months=horizon_months,
        annual_discount_rate=annual_discount_rate,
        unit_days=unit_days,
        margin=margin,
    )
    return pa.table(
        {
            "customer_id": pa.array(summary.customer_id.tolist()),
            "p_alive": count_model.p_alive(summary),
            "expected_purchases": count_model.conditional_expected_purchases(summary, horizon),
            "expected_average_spend": spend_model.conditional_expected_spend(summary),
            "clv": value,
        }
    )


def _require_settings(horizon_months: int, annual_discount_rate: float, unit_days: float) -> None:
    if isinstance(horizon_months, bool) or not isinstance(horizon_months, int | np.integer):
        raise ValueError(f"horizon_months must be a whole number of months, got {horizon_months!r}")
    if horizon_months < 1:
        raise ValueError(f"horizon_months must be at least 1, got {horizon_months}")
    if not (np.isfinite(annual_discount_rate) and annual_discount_rate >= 0):
        raise ValueError(f"annual_discount_rate must be >= 0, got {annual_discount_rate!r}")
    if not (np.isfinite(unit_days) and unit_days > 0):
        raise ValueError(f"unit_days must be positive, got {unit_days!r}")
