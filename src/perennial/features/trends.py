"""Trend ratios: the last 30 days against the 30 days before them.

A ratio above 1 means more activity recently, below 1 a slowdown (an early
churn signal, the seeds' 活跃度下降). The earlier window is
``[as_of - 60 d, as_of - 30 d)``, the later ``[as_of - 30 d, as_of)``; when the
earlier window is empty the ratio is null rather than infinite, so a brand-new
customer is not read as a surge.
"""

from __future__ import annotations

import ibis.expr.datatypes as dt  # type: ignore[import-untyped]
import ibis.expr.types as ir  # type: ignore[import-untyped]

from perennial.features.history import History
from perennial.features.registry import Feature, FeatureKind, Section

__all__ = ["SECTION", "TREND_DAYS", "login_trend", "order_trend_aggregates"]

TREND_DAYS = 30
"""Length of each of the two compared windows."""

_WINDOW = "[as_of - 60 d, as_of)"


def _trend(name: str, measure: str) -> Feature:
    return Feature(
        name,
        f"{measure} in the last 30 d divided by {measure.lower()} in the 30 d before; "
        "null when the earlier window is 0.",
        "ratio",
        _WINDOW,
        FeatureKind.NUMBER,
    )


SECTION = Section(
    title="Trends",
    introduction="Last 30 days over the 30 days before them, from the same rows as above.",
    features=(
        _trend("orders_trend_30d", "Paid orders"),
        _trend("spend_trend_30d", "Paid amount"),
        _trend("logins_trend_30d", "Logins"),
    ),
)


def order_trend_aggregates(history: History) -> dict[str, ir.Value]:
    """Order and spend trends: reductions over ``history.orders`` by ``customer_id``."""
    orders = history.orders
    recent = orders.paid & history.within(orders.placed_at, TREND_DAYS)
    earlier = orders.paid & history.within(orders.placed_at, TREND_DAYS, skip=TREND_DAYS)
    recent_spend = orders.amount.sum(where=recent).cast(dt.float64).fill_null(0.0)
    earlier_spend = orders.amount.sum(where=earlier).cast(dt.float64)
    return {
        "orders_trend_30d": _ratio(orders.count(where=recent), orders.count(where=earlier)),
        "spend_trend_30d": recent_spend / earlier_spend.nullif(0.0),
    }


def login_trend(recent: ir.IntegerValue, earlier: ir.IntegerValue) -> ir.FloatingValue:
    """Logins in the last 30 d over the 30 d before (the counts come from activity)."""
    return _ratio(recent, earlier)


def _ratio(recent: ir.IntegerValue, earlier: ir.IntegerValue) -> ir.FloatingValue:
    return recent.cast(dt.float64) / earlier.cast(dt.float64).nullif(0.0)
