"""The store-wide purchase rhythm as gap counts, updated one day's buyers at a time.

Two feature columns are medians over other customers' purchase gaps:
``population_median_interval_days`` (every customer's gaps) and
``category_median_interval_days`` (the gaps of the customer's favourite
category), and the expected next order falls back on them. Recomputing them
means reading every order, every day. A gap is a whole number of local days, so
the multiset of all gaps is a small histogram (length -> count, per category):
removing the gaps the day's buyers had before and adding the ones they have now
keeps it exact, and its median is the engines' ``percentile_cont(0.5)`` (the
middle value, or the mean of the two middle ones).
"""

from __future__ import annotations

from bisect import bisect_right
from collections import Counter
from dataclasses import dataclass, field
from itertools import accumulate

import ibis  # type: ignore[import-untyped]
import ibis.expr.datatypes as dt  # type: ignore[import-untyped]
import ibis.expr.types as ir  # type: ignore[import-untyped]
import pyarrow as pa
from ibis import _

from perennial.features.history import History
from perennial.features.intervals import expected_next_order, purchase_gaps

__all__ = [
    "RhythmPopulation",
    "gap_counts",
    "with_population_rhythm",
]


def gap_counts(history: History) -> ir.Table:
    """How many purchase gaps of each length ``history`` holds, own and per category.

    Columns ``category`` (null for the customers' own, all-category gaps),
    ``gap_days`` and ``gaps``.
    The same gaps :mod:`perennial.features.intervals` takes medians of: between
    consecutive distinct local purchase days of paid orders, and of categorised
    order lines per customer and category.
    """
    orders = history.orders
    own_days = orders.filter(orders.paid).select("customer_id", "local_day").distinct()
    own = purchase_gaps(own_days, ["customer_id"])
    lines = history.purchase_lines.filter(history.purchase_lines.category.notnull())
    category_days = lines.select("customer_id", "category", "local_day").distinct()
    by_category = purchase_gaps(category_days, ["customer_id", "category"])
    parts = [
        own.select(category=ibis.null(dt.string), gap_days=own.gap_days),
        by_category.select(category=by_category.category.cast(dt.string), gap_days="gap_days"),
    ]
    gaps = ibis.union(*parts, distinct=False)
    return gaps.group_by("category", "gap_days").aggregate(gaps=_.count())


@dataclass
class RhythmPopulation:
    """Gap length -> count, for the own gaps (key ``None``) and for each category."""

    counts: dict[str | None, Counter[float]] = field(default_factory=dict)

    @classmethod
    def from_counts(cls, counts: pa.Table) -> RhythmPopulation:
        """From the rows of :func:`gap_counts`, run."""
        rhythm = cls()
        rhythm.add(counts)
        return rhythm

    def add(self, counts: pa.Table) -> None:
        """Add the rows of :func:`gap_counts` or of changes to them (negative: remove)."""
        for row in counts.to_pylist():
            histogram = self.counts.setdefault(row["category"], Counter())
            histogram[row["gap_days"]] += row["gaps"]
            if histogram[row["gap_days"]] < 0:
                raise ValueError(f"more gaps removed than held: {row}")
            if histogram[row["gap_days"]] == 0:
                del histogram[row["gap_days"]]

    def population_median(self) -> float | None:
        """Median of every customer's own gaps; None without any."""
        return _median(self.counts.get(None, Counter()))

    def medians_table(self) -> pa.Table:
        """``rhythm_category``, ``rhythm_median``: the category medians as a table."""
        medians = self.category_medians()
        return pa.table(
            {
                "rhythm_category": pa.array(list(medians), pa.string()),
                "rhythm_median": pa.array(list(medians.values()), pa.float64()),
            }
        )

    def category_medians(self) -> dict[str, float]:
        """Median gap per category that has gaps."""
        medians: dict[str, float] = {}
        for category, histogram in self.counts.items():
            median = _median(histogram)
            if category is not None and median is not None:
                medians[category] = median
        return medians


def with_population_rhythm(
    features: ir.Table,
    medians: ir.Table,
    *,
    population_median: str,
    as_of: str,
    reference: History,
) -> ir.Table:
    """``features`` with the population-wide columns rewritten for every row.

    ``medians`` maps ``rhythm_category`` to ``rhythm_median`` (see
    :meth:`RhythmPopulation.medians_table`); ``population_median`` and ``as_of`` name
    columns of ``features`` holding the day's values, so one compiled query serves
    every day. The expected next order is the features' own expression;
    ``reference`` is any history of the store, since that expression reads the as-of
    only for ``days_to_expected_order``, which is recomputed here against ``as_of``.
    """
    joined = features.left_join(medians, features.favourite_category == medians.rhythm_category)
    table = joined.select(
        *[joined[c] for c in features.columns if c != "category_median_interval_days"],
        category_median_interval_days=joined.rhythm_median,
    )
    table = table.mutate(population_median_interval_days=table[population_median])
    expected = expected_next_order(table, reference)["expected_next_order_at"]
    table = table.mutate(expected_next_order_at=expected)
    table = table.mutate(
        days_to_expected_order=reference.days_between(table.expected_next_order_at, table[as_of])
    )
    return table.select(*features.columns)


def _median(histogram: Counter[float]) -> float | None:
    """The median of a histogram: the middle value, or the mean of the two middle ones."""
    if not histogram:
        return None
    values = sorted(histogram)
    cumulative = list(accumulate(histogram[value] for value in values))
    total = cumulative[-1]
    low = values[bisect_right(cumulative, (total - 1) // 2)]
    high = values[bisect_right(cumulative, total // 2)]
    return (low + high) / 2
