"""How much each order is worth, whether a coupon paid part of it, and where it was placed.

The amount paid follows the Gamma-Gamma model: order values of a customer are
Gamma(p, nu) around the customer's own mean ``p / nu`` (Fader, Hardie and Lee
2005, "RFM and CLV", eq. 1), in CNY cents. Coupon-sensitive customers, a latent
share, use a coupon on most orders; others mostly on the first order and during
promotions.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from perennial.demo.calendar import DemandCalendar, Promotion
from perennial.demo.catalog import COUPONS, coupon_for
from perennial.demo.population import ORDER_CHANNELS, LatentParameters, Population
from perennial.demo.purchases import PurchaseHistory

__all__ = ["NO_COUPON", "OrderValues", "draw_order_values"]

IntArray = npt.NDArray[np.int64]

NO_COUPON = -1

_COUPON_USE_SENSITIVE = 0.75
_COUPON_USE_OTHERS = 0.06
_COUPON_USE_FIRST_ORDER = 0.45
_COUPON_USE_PROMOTION_BONUS = 0.15
_PREFERRED_CHANNEL_SHARE = 0.75
_MINIMUM_ORDER_CENTS = 100


@dataclass(frozen=True)
class OrderValues:
    """Per order: the Gamma-Gamma amount to be paid, the coupon and the sales channel."""

    paid_cents: IntArray
    coupon: IntArray  # index into ``COUPONS``, ``NO_COUPON`` when none was used
    discount_cents: IntArray
    channel: IntArray  # index into ``ORDER_CHANNELS``


def draw_order_values(
    rng: np.random.Generator,
    population: Population,
    history: PurchaseHistory,
    calendar: DemandCalendar,
    parameters: LatentParameters,
) -> OrderValues:
    """Draw amount, coupon and channel for every order of ``history``."""
    size = history.size
    shape = parameters.spend_shape_p
    mean = population.mean_spend[history.customer]
    paid = np.maximum(np.rint(rng.gamma(shape, mean / shape) * 100.0), _MINIMUM_ORDER_CENTS)

    promotion = calendar.promotion(history.days)
    sensitive = population.coupon_sensitive[history.customer]
    use = np.where(sensitive, _COUPON_USE_SENSITIVE, _COUPON_USE_OTHERS)
    use = np.where(history.first_order, np.maximum(use, _COUPON_USE_FIRST_ORDER), use)
    use = np.where(
        ~history.first_order & (promotion != Promotion.NONE),
        use + _COUPON_USE_PROMOTION_BONUS,
        use,
    )
    used = rng.random(size) < use
    coupon = np.where(used, coupon_for(promotion, history.first_order), NO_COUPON)
    discounts = np.array([round(c.discount * 100) for c in COUPONS] + [0], dtype=np.int64)

    preferred = population.preferred_order_channel[history.customer]
    other = rng.integers(0, len(ORDER_CHANNELS), size)
    channel = np.where(rng.random(size) < _PREFERRED_CHANNEL_SHARE, preferred, other)
    return OrderValues(
        paid_cents=paid.astype(np.int64),
        coupon=coupon.astype(np.int64),
        discount_cents=discounts[coupon],
        channel=channel.astype(np.int64),
    )
