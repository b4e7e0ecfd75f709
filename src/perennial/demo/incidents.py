"""Complaints, refund requests and cancellations, and the churn they cause.

Incidents are rare but costly: a complaint makes a customer leave within weeks
with probability 0.35, a refund request without complaint with 0.12, on top of
the BG/NBD dropout. The ground truth's ``churned_at`` is whichever comes first,
and nothing the customer does after it is kept.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt

from perennial.demo.population import Population
from perennial.demo.purchases import PurchaseHistory

__all__ = [
    "COMPLAINT_REASONS",
    "REFUND_REASONS",
    "Incidents",
    "churn_days",
    "draw_incidents",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

COMPLAINT_REASONS = ("late_delivery", "damaged", "quality", "wrong_item", "service_attitude")
REFUND_REASONS = ("quality", "damaged", "not_as_described", "changed_mind", "late_delivery")

_CANCEL_RATE = 0.02
_REFUND_RATE = 0.025
_REFUND_RATE_AFTER_COMPLAINT = 0.5
_REFUND_APPROVAL = 0.85
_CHURN_AFTER_COMPLAINT = 0.35
_CHURN_AFTER_REFUND = 0.12


@dataclass(frozen=True)
class Incidents:
    """Per order of a ``PurchaseHistory``: times in days, ``nan`` where nothing happened."""

    cancelled: BoolArray
    complaint_days: FloatArray
    complaint_reason: IntArray
    refund_days: FloatArray
    refund_reason: IntArray
    refund_approved: BoolArray
    triggered_churn_days: FloatArray

    def select(self, keep: BoolArray) -> Incidents:
        """The incidents of the orders where ``keep`` is true."""
        return Incidents(
            cancelled=self.cancelled[keep],
            complaint_days=self.complaint_days[keep],
            complaint_reason=self.complaint_reason[keep],
            refund_days=self.refund_days[keep],
            refund_reason=self.refund_reason[keep],
            refund_approved=self.refund_approved[keep],
            triggered_churn_days=self.triggered_churn_days[keep],
        )

    def censor(self, limit_days: FloatArray) -> Incidents:
        """Forget incidents after each order's limit (its customer's churn or the period end)."""
        return replace(
            self,
            complaint_days=np.where(self.complaint_days <= limit_days, self.complaint_days, np.nan),
            refund_days=np.where(self.refund_days <= limit_days, self.refund_days, np.nan),
        )

    @property
    def refunded(self) -> BoolArray:
        """Orders whose refund request was made (and kept) and approved."""
        return ~np.isnan(self.refund_days) & self.refund_approved


def draw_incidents(
    rng: np.random.Generator, population: Population, history: PurchaseHistory
) -> Incidents:
    """Draw what goes wrong with each order, and the churn each incident may cause."""
    size = history.size
    cancelled = rng.random(size) < _CANCEL_RATE
    complained = ~cancelled & (rng.random(size) < population.complaint_propensity[history.customer])
    complaint_days = np.where(complained, history.days + rng.uniform(0.3, 5.0, size), np.nan)
    refund_rate = np.where(complained, _REFUND_RATE_AFTER_COMPLAINT, _REFUND_RATE)
    refunded = ~cancelled & (rng.random(size) < refund_rate)
    refund_days = np.where(
        complained,
        complaint_days + rng.uniform(0.0, 1.0, size),
        history.days + rng.uniform(0.5, 7.0, size),
    )
    refund_days = np.where(refunded, refund_days, np.nan)

    leave_after_complaint = complained & (rng.random(size) < _CHURN_AFTER_COMPLAINT)
    leave_after_refund = refunded & ~complained & (rng.random(size) < _CHURN_AFTER_REFUND)
    triggered = np.full(size, np.inf)
    triggered[leave_after_complaint] = complaint_days[leave_after_complaint] + rng.exponential(
        10.0, int(leave_after_complaint.sum())
    )
    triggered[leave_after_refund] = refund_days[leave_after_refund] + rng.exponential(
        14.0, int(leave_after_refund.sum())
    )
    return Incidents(
        cancelled=cancelled,
        complaint_days=complaint_days,
        complaint_reason=rng.integers(0, len(COMPLAINT_REASONS), size),
        refund_days=refund_days,
        refund_reason=rng.integers(0, len(REFUND_REASONS), size),
        refund_approved=rng.random(size) < _REFUND_APPROVAL,
        triggered_churn_days=triggered,
    )


def churn_days(history: PurchaseHistory, incidents: Incidents, period_days: float) -> FloatArray:
    """Each customer's churn time in days, ``inf`` when still active at the period's end.

    The earlier of the BG/NBD dropout and any incident-triggered departure. An
    incident after the customer had already left triggers nothing, which holds
    because a departure always follows the incident that caused it.
    """
    churn = history.dropout_days.copy()
    triggered = np.isfinite(incidents.triggered_churn_days)
    np.minimum.at(churn, history.customer[triggered], incidents.triggered_churn_days[triggered])
    churn[churn >= period_days] = np.inf
    return churn
