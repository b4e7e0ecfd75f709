"""Latent customer traits: the hidden truth the later models try to recover.

Each customer draws a purchase rate ``lambda`` per week from Gamma(r, alpha) and a
dropout probability ``p`` from Beta(a, b), as in the BG/NBD model (Fader, Hardie
and Lee 2005, "Counting your customers the easy way", eq. 1-2); the mean order
value comes from the Gamma-Gamma spend model (Fader, Hardie and Lee 2005, "RFM and
CLV", section 3), drawn independently of the purchase process as it assumes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from perennial.demo.calendar import DemandCalendar
from perennial.demo.catalog import CATEGORIES

__all__ = [
    "ACQUISITION_CHANNELS",
    "ORDER_CHANNELS",
    "LatentParameters",
    "Population",
    "draw_population",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

ACQUISITION_CHANNELS = (
    "organic", "paid_search", "social", "referral", "offline_store", "mini_program",
)  # fmt: skip
_ACQUISITION_WEIGHTS = np.array([0.3, 0.18, 0.17, 0.1, 0.1, 0.15])

ORDER_CHANNELS = ("app", "mini_program", "web", "store")
# Preferred order channel by acquisition channel: store and mini-program
# customers keep buying where they were found.
_PREFERRED_CHANNEL = np.array(
    [
        [0.6, 0.15, 0.2, 0.05],
        [0.5, 0.1, 0.35, 0.05],
        [0.5, 0.3, 0.15, 0.05],
        [0.55, 0.25, 0.15, 0.05],
        [0.25, 0.1, 0.05, 0.6],
        [0.15, 0.8, 0.03, 0.02],
    ]
)
_MINUTES_PER_DAY = 1440.0


@dataclass(frozen=True)
class LatentParameters:
    """Population parameters; rates are per week, money in CNY.

    The defaults give about 6 orders per customer over two years (mean ``lambda``
    0.42 a week, mean ``p`` 0.21) and a mean order value near 150 CNY.
    """

    purchase_shape_r: float = 0.8
    purchase_rate_alpha: float = 1.9
    dropout_a: float = 0.9
    dropout_b: float = 3.3
    spend_shape_p: float = 6.0
    spend_shape_q: float = 4.0
    spend_rate_gamma: float = 75.0
    rhythmic_share: float = 0.6
    coupon_sensitive_share: float = 0.25
    mean_complaint_rate: float = 0.015


@dataclass(frozen=True)
class Population:
    """One block of customers; arrays are indexed by position within the block.

    Times are days since the period's start (UTC); ``first_order_days`` may lie
    beyond the period, meaning the customer registered but has not bought yet.
    """

    first_number: int
    signup_days: FloatArray
    first_order_days: FloatArray
    purchase_rate: FloatArray
    dropout_probability: FloatArray
    rhythm_shape: FloatArray
    favourite_category: IntArray
    mean_spend: FloatArray
    coupon_sensitive: BoolArray
    complaint_propensity: FloatArray
    engagement: FloatArray
    acquisition_channel: IntArray
    preferred_order_channel: IntArray

    @property
    def size(self) -> int:
        return int(self.signup_days.shape[0])

    @property
    def numbers(self) -> IntArray:
        """Global customer numbers, 1-based, behind ids like ``C0000001``."""
        return np.arange(self.first_number, self.first_number + self.size, dtype=np.int64)


def draw_population(
    rng: np.random.Generator,
    calendar: DemandCalendar,
    first_number: int,
    count: int,
    parameters: LatentParameters,
) -> Population:
    """Draw ``count`` customers numbered from ``first_number``."""
    rate = rng.gamma(parameters.purchase_shape_r, 1.0 / parameters.purchase_rate_alpha, count)
    rate = np.maximum(rate, 1e-4)
    favourite = _favourite_categories(rng, rate)
    cycle_known = np.array([c.cycle_days is not None for c in CATEGORIES])[favourite]
    rhythmic = cycle_known & (rng.random(count) < parameters.rhythmic_share)
    spend_rate = rng.gamma(parameters.spend_shape_q, 1.0 / parameters.spend_rate_gamma, count)
    complaint_a = 0.6
    complaint_b = complaint_a * (1.0 / parameters.mean_complaint_rate - 1.0)
    acquisition = _choose(rng, np.broadcast_to(_ACQUISITION_WEIGHTS, (count, 6)))
    signup = calendar.sample_signups(rng, count)
    return Population(
        first_number=first_number,
        signup_days=signup,
        first_order_days=signup + _first_order_delay_days(rng, count),
        purchase_rate=rate,
        dropout_probability=rng.beta(parameters.dropout_a, parameters.dropout_b, count),
        rhythm_shape=np.where(rhythmic, rng.uniform(2.0, 6.0, count), 1.0),
        favourite_category=favourite,
        mean_spend=parameters.spend_shape_p / spend_rate,
        coupon_sensitive=rng.random(count) < parameters.coupon_sensitive_share,
        complaint_propensity=rng.beta(complaint_a, complaint_b, count),
        engagement=rng.lognormal(0.0, 0.5, count),
        acquisition_channel=acquisition,
        preferred_order_channel=_choose(rng, _PREFERRED_CHANNEL[acquisition]),
    )


def _choose(rng: np.random.Generator, weights: FloatArray) -> IntArray:
    """One index per row of a (rows, options) weight matrix."""
    cumulative = np.cumsum(weights, axis=1)
    targets = rng.random(weights.shape[0]) * cumulative[:, -1]
    chosen = (cumulative <= targets[:, None]).sum(axis=1)
    return np.asarray(np.minimum(chosen, weights.shape[1] - 1), dtype=np.int64)


def _favourite_categories(rng: np.random.Generator, rate: FloatArray) -> IntArray:
    """Favourite category, likelier the closer its cycle is to the customer's own rhythm.

    A customer buying every week is probably a milk or fruit household; one buying
    every two months, a detergent or skincare one. Irregular categories (books,
    courses) attract anyone.
    """
    gap_weeks = np.log(1.0 / rate)
    columns = []
    for category in CATEGORIES:
        if category.cycle_days is None:
            closeness = np.full(rate.shape[0], 0.45)
        else:
            distance = gap_weeks - np.log(category.cycle_days / 7.0)
            closeness = np.exp(-0.5 * (distance / 0.6) ** 2)
        columns.append(category.popularity * closeness)
    return _choose(rng, np.stack(columns, axis=1))


def _first_order_delay_days(rng: np.random.Generator, count: int) -> FloatArray:
    """Most buy in the sign-up session, some within days, a few only after weeks."""
    kind = rng.random(count)
    return np.where(
        kind < 0.55,
        rng.exponential(20.0 / _MINUTES_PER_DAY, count),
        np.where(kind < 0.85, rng.exponential(4.0, count), rng.exponential(56.0, count)),
    )
