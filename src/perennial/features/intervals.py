"""Purchase rhythm: inter-purchase intervals and the expected next order.

An interval is the number of calendar days between two consecutive distinct
local purchase days (paid orders, days in the feature time zone), so two orders
on one day are one occasion and an order at 23:30 and one at 00:30 the next
local day are one day apart. The customer's own rhythm needs two purchase days;
without it the expected next order falls back to the rhythm of the customer's
favourite category, then to the whole population's (the simple baseline that
later next-order models must beat, DESIGN.md C8).
"""

from __future__ import annotations

from dataclasses import dataclass

import ibis  # type: ignore[import-untyped]
import ibis.expr.datatypes as dt  # type: ignore[import-untyped]
import ibis.expr.types as ir  # type: ignore[import-untyped]
from ibis import _

from perennial.features.history import History
from perennial.features.registry import DAY_MICROSECONDS, Feature, FeatureKind, Section

__all__ = ["SECTION", "Intervals", "expected_next_order", "interval_tables", "purchase_gaps"]

_ALL = "all history"

SECTION = Section(
    title="Purchase rhythm",
    introduction=(
        "An interval is the number of days between consecutive distinct local purchase "
        "days (paid orders). Own intervals need at least two purchase days."
    ),
    features=(
        Feature(
            "own_mean_interval_days",
            "Mean interval between the customer's purchase days; null with fewer than 2.",
            "days",
            _ALL,
            FeatureKind.NUMBER,
        ),
        Feature(
            "own_median_interval_days",
            "Median interval between the customer's purchase days; null with fewer than 2.",
            "days",
            _ALL,
            FeatureKind.NUMBER,
        ),
        Feature(
            "favourite_category",
            "Category with the most units bought in paid orders (ties: the first by name); "
            "null without categorised `order_items`.",
            "category",
            _ALL,
            FeatureKind.STRING,
        ),
        Feature(
            "category_median_interval_days",
            "Median interval between purchase days of the favourite category, over all "
            "customers who bought it (the category's consumption cycle).",
            "days",
            _ALL,
            FeatureKind.NUMBER,
        ),
        Feature(
            "population_median_interval_days",
            "Median of all customers' intervals (every interval counts once); the same "
            "for every row.",
            "days",
            _ALL,
            FeatureKind.NUMBER,
        ),
        Feature(
            "expected_next_order_at",
            "last_order_at + the own median interval, else the category median, else "
            "the population median; null without paid orders.",
            "instant",
            _ALL,
            FeatureKind.TIMESTAMP,
        ),
        Feature(
            "days_to_expected_order",
            "expected_next_order_at - as_of; negative when the order is overdue.",
            "days",
            _ALL,
            FeatureKind.NUMBER,
        ),
    ),
)


def purchase_gaps(days: ir.Table, keys: list[str]) -> ir.Table:
    """Rows of ``days`` (distinct ``keys`` + ``local_day``) with ``gap_days`` to the previous day.

    The first day of each key has no previous day and is left out.
    """
    ordered = ibis.window(group_by=[days[key] for key in keys], order_by=days.local_day)
    with_previous = days.mutate(previous_day=days.local_day.lag().over(ordered))
    return with_previous.filter(_.previous_day.notnull()).mutate(
        gap_days=_.local_day.delta(_.previous_day, unit="day").cast(dt.float64)
    )


@dataclass(frozen=True)
class Intervals:
    """The rhythm expressions: per-customer tables to join on ``customer_id``, and a scalar."""

    own: ir.Table
    """``own_mean_interval_days``, ``own_median_interval_days`` (customers with 2+ days)."""
    favourite: ir.Table
    """``favourite_category``, ``category_median_interval_days``."""
    population_median: ir.FloatingScalar
    """``population_median_interval_days``: one value for all."""


def interval_tables(history: History, *, with_population: bool = True) -> Intervals:
    """Own intervals, favourite category with its category median, and the population median.

    ``with_population=False`` leaves the two population-wide columns null, for a
    caller that lays store-wide values over them (:mod:`perennial.features.buckets`)
    and should not pay for medians it throws away.
    """
    orders = history.orders
    own_days = orders.filter(orders.paid).select("customer_id", "local_day").distinct()
    own_gaps = purchase_gaps(own_days, ["customer_id"])
    own = own_gaps.group_by("customer_id").aggregate(
        own_mean_interval_days=own_gaps.gap_days.mean(),
        own_median_interval_days=own_gaps.gap_days.median(),
    )

    lines = history.purchase_lines.filter(history.purchase_lines.category.notnull())
    # One pass over the lines: the units of each purchase day, from which come both the
    # units per category and the distinct purchase days of each category.
    category_days = lines.group_by("customer_id", "category", "local_day").aggregate(
        units=lines.quantity.sum()
    )
    units = category_days.group_by("customer_id", "category").aggregate(
        units=category_days.units.sum()
    )
    most_first = ibis.window(
        group_by=units.customer_id, order_by=[units.units.desc(), units.category]
    )
    favourites = (
        units.mutate(category_rank=ibis.row_number().over(most_first))
        .filter(_.category_rank == 0)
        .select("customer_id", favourite_category=_.category)
    )
    if not with_population:
        unknown = ibis.null(dt.float64)
        return Intervals(own, favourites.mutate(category_median_interval_days=unknown), unknown)
    category_gaps = purchase_gaps(
        category_days.select("customer_id", "category", "local_day"), ["customer_id", "category"]
    )
    category_medians = category_gaps.group_by("category").aggregate(
        category_median_interval_days=category_gaps.gap_days.median()
    )
    favourite = favourites.left_join(
        category_medians, favourites.favourite_category == category_medians.category
    ).select("customer_id", "favourite_category", "category_median_interval_days")
    return Intervals(own, favourite, own_gaps.gap_days.median().as_scalar())


def expected_next_order(table: ir.Table, history: History) -> dict[str, ir.Value]:
    """The expected next order from ``last_order_at`` and the interval columns of ``table``.

    ``table`` must already hold ``last_order_at``, the own, category and
    population medians.
    """
    interval = table.own_median_interval_days.coalesce(
        table.category_median_interval_days, table.population_median_interval_days
    )
    microseconds = (interval * DAY_MICROSECONDS).round().cast(dt.int64)
    expected = table.last_order_at + microseconds.as_interval("us")
    return {
        "expected_next_order_at": expected,
        "days_to_expected_order": history.days_between(expected, history.as_of_value),
    }
