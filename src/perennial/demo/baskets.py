"""The lines of each order: which products, how many, at what unit price.

The first line is usually the customer's favourite category (the one setting
their rhythm); bigger orders have more lines. An order's gross value (amount paid
plus coupon discount) is split over its lines in proportion to their categories'
typical prices, and each line's unit price picks the product on that category's
price ladder, so a product's price stays within a few percent across orders.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from perennial.demo.catalog import (
    CATEGORIES,
    PRICE_LADDER_RUNGS,
    PRICE_LADDER_STEP,
    PRODUCT_IDS,
)
from perennial.demo.population import Population
from perennial.demo.purchases import PurchaseHistory
from perennial.demo.spend import OrderValues

__all__ = ["Baskets", "draw_baskets", "product_ids"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

_FAVOURITE_FIRST_LINE = 0.8
_LINE_VALUE_CNY = 300.0  # each 300 CNY of value adds one expected extra line
_MAX_EXTRA_LINES = 2.5
_PRICE_SPREAD = 0.45  # log-sd of the price of the product picked around the typical one
_MAX_UNITS = 12

_POPULARITY = np.array([c.popularity for c in CATEGORIES])
_TYPICAL_PRICE = np.array([c.typical_unit_price for c in CATEGORIES])


@dataclass(frozen=True)
class Baskets:
    """Order lines, grouped by order in order position; money in CNY cents."""

    order: IntArray  # position of the line's order in the ``PurchaseHistory``
    category: IntArray  # index into ``CATEGORIES``
    rung: IntArray  # product's position on its category's price ladder
    quantity: IntArray
    unit_cents: IntArray

    @property
    def size(self) -> int:
        return int(self.order.shape[0])

    def per_order(self, orders: int) -> tuple[IntArray, IntArray]:
        """Units and gross value in cents of each of ``orders`` orders."""
        units = np.bincount(self.order, weights=self.quantity, minlength=orders)
        gross = np.bincount(self.order, weights=self.quantity * self.unit_cents, minlength=orders)
        return units.astype(np.int64), np.rint(gross).astype(np.int64)


def draw_baskets(
    rng: np.random.Generator,
    population: Population,
    history: PurchaseHistory,
    values: OrderValues,
) -> Baskets:
    """Split every order's gross value into product lines."""
    gross_cents = values.paid_cents + values.discount_cents
    extra = np.minimum(gross_cents / 100.0 / _LINE_VALUE_CNY, _MAX_EXTRA_LINES)
    lines = 1 + rng.poisson(extra)
    order = np.repeat(np.arange(history.size, dtype=np.int64), lines)
    starts = np.cumsum(lines) - lines
    first_line = np.zeros(order.shape[0], dtype=np.bool_)
    first_line[starts] = True

    favourite = population.favourite_category[history.customer][order]
    other = rng.choice(len(CATEGORIES), size=order.shape[0], p=_POPULARITY / _POPULARITY.sum())
    loyal = first_line & (rng.random(order.shape[0]) < _FAVOURITE_FIRST_LINE)
    category = np.where(loyal, favourite, other).astype(np.int64)

    weight = _TYPICAL_PRICE[category] * rng.gamma(2.0, 0.5, order.shape[0])
    share = weight / np.bincount(order, weights=weight, minlength=history.size)[order]
    line_cents = gross_cents[order] * share

    typical_cents = _TYPICAL_PRICE[category] * 100.0
    chosen_price = typical_cents * rng.lognormal(0.0, _PRICE_SPREAD, order.shape[0])
    quantity = np.clip(np.rint(line_cents / chosen_price), 1, _MAX_UNITS).astype(np.int64)
    unit_cents = np.maximum(np.rint(line_cents / quantity), 1).astype(np.int64)
    rung = np.rint(np.log(unit_cents / typical_cents) / np.log(PRICE_LADDER_STEP))
    rung = np.clip(rung + PRICE_LADDER_RUNGS // 2, 0, PRICE_LADDER_RUNGS - 1).astype(np.int64)
    return Baskets(
        order=order, category=category, rung=rung, quantity=quantity, unit_cents=unit_cents
    )


def product_ids(baskets: Baskets) -> pa.Array:
    """Product ids such as ``P-MLK-024``: category code and price-ladder rung."""
    return pa.array(PRODUCT_IDS).take(
        pa.array(baskets.category * PRICE_LADDER_RUNGS + baskets.rung)
    )
