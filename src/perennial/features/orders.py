"""Purchase features: recency, frequency, monetary value, refunds, coupons, order windows.

All of them read orders placed strictly before ``as_of``. Only ``paid`` orders
count as purchases: refunded and cancelled orders are netted out by exclusion
(an order's status is its current one; the store keeps no refund time). Amounts
are summed exactly as decimals in the store and reported as float64 in the
order's currency; orders in different currencies are not converted.
"""

from __future__ import annotations

import ibis.expr.datatypes as dt  # type: ignore[import-untyped]
import ibis.expr.types as ir  # type: ignore[import-untyped]

from perennial.features.history import History
from perennial.features.registry import Feature, FeatureKind, Section, event_window_name

__all__ = ["FIRST_ANY_ORDER", "ORDER_WINDOWS", "SECTION", "order_aggregates", "rfm_inputs"]

ORDER_WINDOWS = (1, 7, 30, 90)
"""Days in each ``orders_<n>d`` window; every window ends at ``as_of``."""

FIRST_ANY_ORDER = "_first_any_order_at"
"""Hidden column: the first order of any status, for ``first_seen_at``."""

_ALL = "all history"
_LAST_30 = "[as_of - 30 d, as_of)"
_TIME = FeatureKind.TIMESTAMP

SECTION = Section(
    title="Purchases",
    introduction=(
        "From `orders` placed before `as_of`. Purchases are `paid` orders; refunded and "
        "cancelled orders are excluded from every purchase figure. A customer without "
        "orders has zero counts and sums and null times and means."
    ),
    features=(
        Feature(
            "first_order_at",
            "Time of the first paid order.",
            "instant",
            _ALL,
            FeatureKind.TIMESTAMP,
        ),
        Feature(
            "last_order_at", "Time of the last paid order.", "instant", _ALL, FeatureKind.TIMESTAMP
        ),
        Feature(
            "recency_days",
            "Days from the last paid order to `as_of`; null without paid orders.",
            "days",
            _ALL,
            FeatureKind.NUMBER,
        ),
        Feature("frequency_orders", "Number of paid orders.", "orders", _ALL, FeatureKind.COUNT, 0),
        Feature(
            "frequency_days",
            "Number of distinct local calendar days (in the feature time zone) with a paid "
            "order: two orders on one day are one purchase occasion.",
            "days",
            _ALL,
            FeatureKind.COUNT,
            0,
        ),
        Feature(
            "refunded_orders",
            "Number of orders whose status is `refunded`.",
            "orders",
            _ALL,
            FeatureKind.COUNT,
            0,
        ),
        Feature(
            "monetary_total",
            "Sum of paid order amounts.",
            "currency",
            _ALL,
            FeatureKind.NUMBER,
            0.0,
        ),
        Feature(
            "monetary_mean",
            "Mean paid order amount; null without paid orders.",
            "currency",
            _ALL,
            FeatureKind.NUMBER,
        ),
        Feature(
            "monetary_max",
            "Largest paid order amount; null without paid orders.",
            "currency",
            _ALL,
            FeatureKind.NUMBER,
        ),
        Feature(
            "coupon_share",
            "Share of paid orders that carry a `coupon_code` (coupon dependence); null "
            "without paid orders.",
            "ratio 0-1",
            _ALL,
            FeatureKind.NUMBER,
        ),
        *(
            Feature(
                event_window_name("orders", days),
                f"Paid orders in the last {days} d.",
                "orders",
                f"[as_of - {days} d, as_of)",
                FeatureKind.COUNT,
                0,
            )
            for days in ORDER_WINDOWS
        ),
        Feature(
            "spend_30d",
            "Sum of paid order amounts in the last 30 d.",
            "currency",
            _LAST_30,
            FeatureKind.NUMBER,
            0.0,
        ),
        Feature(
            "spend_prev_30d",
            "Sum of paid order amounts in the 30 d before the last 30 d.",
            "currency",
            "[as_of - 60 d, as_of - 30 d)",
            FeatureKind.NUMBER,
            0.0,
        ),
    ),
)


def order_aggregates(history: History) -> dict[str, ir.Value]:
    """Per-customer reductions over ``history.orders`` (group by ``customer_id``)."""
    orders = history.orders
    paid = orders.paid
    amount = orders.amount
    monetary_total = amount.sum(where=paid).cast(dt.float64)
    last_order_at = orders.placed_at.max(where=paid)
    frequency_orders = orders.count(where=paid)
    with_coupon = paid & orders.coupon_code.notnull() & (orders.coupon_code != "")
    aggregates: dict[str, ir.Value] = {
        "first_order_at": orders.placed_at.min(where=paid),
        "last_order_at": last_order_at,
        "recency_days": history.days_since(last_order_at),
        "frequency_orders": frequency_orders,
        "frequency_days": orders.local_day.nunique(where=paid),
        "refunded_orders": orders.count(where=orders.status == "refunded"),
        "monetary_total": monetary_total,
        "monetary_mean": monetary_total / frequency_orders.nullif(0),
        "monetary_max": amount.max(where=paid).cast(dt.float64),
        "coupon_share": orders.count(where=with_coupon).cast(dt.float64)
        / frequency_orders.nullif(0),
        FIRST_ANY_ORDER: orders.placed_at.min(),
    }
    for days in ORDER_WINDOWS:
        aggregates[event_window_name("orders", days)] = orders.count(
            where=paid & history.within(orders.placed_at, days)
        )
    aggregates["spend_30d"] = amount.sum(where=paid & history.within(orders.placed_at, 30)).cast(
        dt.float64
    )
    aggregates["spend_prev_30d"] = amount.sum(
        where=paid & history.within(orders.placed_at, 30, skip=30)
    ).cast(dt.float64)
    return aggregates


def rfm_inputs(history: History) -> ir.Table:
    """What RFM needs and nothing else, for customers with a paid order.

    ``customer_id, first_order_at, last_order_at, recency_days, frequency_orders,
    monetary_total``, equal to the same columns of the full feature table. Paid
    orders are filtered before grouping, so the engine reads four columns and
    aggregates once per row: the cheap path when only the scores are wanted.
    """
    paid = history.orders.filter(history.orders.paid)
    last_order_at = paid.placed_at.max()
    return paid.group_by("customer_id").aggregate(
        first_order_at=paid.placed_at.min(),
        last_order_at=last_order_at,
        recency_days=history.days_since(last_order_at),
        frequency_orders=paid.count(),
        monetary_total=paid.amount.sum().cast(dt.float64),
    )
