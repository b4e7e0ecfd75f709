"""What the demo shop sells: categories with their consumption cycles, and coupons.

A category's cycle is how long one purchase lasts a household (milk a week,
detergent two months); customers whose favourite category it is buy on roughly
that rhythm, which is what repurchase-cycle models later try to recover.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from perennial.demo.calendar import Promotion

__all__ = [
    "CATEGORIES",
    "COUPONS",
    "PRICE_LADDER_RUNGS",
    "PRICE_LADDER_STEP",
    "PRODUCT_IDS",
    "SEARCH_TERMS",
    "SEARCH_TERM_OFFSETS",
    "Category",
    "Coupon",
    "coupon_for",
]


@dataclass(frozen=True)
class Category:
    """A product category; ``cycle_days`` is ``None`` when purchases are irregular."""

    name: str
    code: str
    cycle_days: float | None
    popularity: float
    typical_unit_price: float  # CNY
    search_terms: tuple[str, ...]


CATEGORIES: tuple[Category, ...] = (
    Category("fruit", "FRT", 5.0, 0.16, 32.0, ("水果", "车厘子", "草莓", "fruit")),
    Category("milk", "MLK", 7.0, 0.16, 12.0, ("牛奶", "酸奶", "milk", "oat milk")),
    Category("coffee", "COF", 14.0, 0.13, 78.0, ("咖啡豆", "挂耳咖啡", "coffee beans")),
    Category("shampoo", "SHP", 30.0, 0.12, 58.0, ("洗发水", "护发素", "shampoo")),
    Category("skincare", "SKN", 45.0, 0.12, 210.0, ("面霜", "精华", "防晒", "serum")),
    Category("detergent", "DTG", 60.0, 0.11, 45.0, ("洗衣液", "洗洁精", "detergent")),
    Category("books", "BOK", None, 0.12, 48.0, ("小说", "绘本", "python book")),
    Category("courses", "CRS", None, 0.08, 299.0, ("课程", "考证", "online course")),
)

PRICE_LADDER_RUNGS = 64
"""Products per category, one per price rung, so a product's price stays within a rung."""

PRICE_LADDER_STEP = 1.07
"""Ratio between the prices of neighbouring products in a category."""

PRODUCT_IDS: tuple[str, ...] = tuple(
    f"P-{c.code}-{rung:03d}" for c in CATEGORIES for rung in range(PRICE_LADDER_RUNGS)
)
"""Product ids such as ``P-MLK-032``, at ``category * PRICE_LADDER_RUNGS + rung``."""

SEARCH_TERMS: tuple[str, ...] = tuple(term for c in CATEGORIES for term in c.search_terms)
"""Every category's search terms, category after category."""

SEARCH_TERM_OFFSETS = np.cumsum([0] + [len(c.search_terms) for c in CATEGORIES])
"""Where each category's terms start in ``SEARCH_TERMS`` (and, last, their total)."""


@dataclass(frozen=True)
class Coupon:
    """A coupon code and the fixed discount it gives, in CNY."""

    code: str
    discount: float


COUPONS: tuple[Coupon, ...] = (
    Coupon("SAVE10", 10.0),
    Coupon("WELCOME15", 15.0),
    Coupon("MEMBERDAY8", 8.0),
    Coupon("618SALE20", 20.0),
    Coupon("DOUBLE11-30", 30.0),
    Coupon("CNY-FEAST12", 12.0),
)

_COUPON_BY_PROMOTION = {
    Promotion.NONE: 0,
    Promotion.MEMBER_DAY: 2,
    Promotion.MID_YEAR: 3,
    Promotion.SINGLES_DAY: 4,
    Promotion.NEW_YEAR: 5,
}
_WELCOME = 1


def coupon_for(
    promotion: npt.NDArray[np.int64], first_order: npt.NDArray[np.bool_]
) -> npt.NDArray[np.int64]:
    """Index into ``COUPONS`` of the coupon an order would use.

    A first order uses the welcome coupon (new customer, first-order incentive);
    otherwise the coupon of the promotion running that day, or the everyday one.
    """
    by_promotion = np.zeros(max(_COUPON_BY_PROMOTION) + 1, dtype=np.int64)
    for code, coupon in _COUPON_BY_PROMOTION.items():
        by_promotion[code] = coupon
    return np.where(first_order, _WELCOME, by_promotion[promotion])
