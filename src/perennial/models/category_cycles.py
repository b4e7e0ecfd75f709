"""Category consumption cycles, and when each customer's next replenishment window opens.

A category's cycle is measured where it shows: the same customer buying the
same category again. A *repeat pair* is two consecutive distinct local purchase
days (feature time zone) on which one customer bought the category in paid
orders; its gap in days is one observation of the cycle (a 30-day bag of dog
food shows as gaps near 30). Same-day repeat lines are one purchase day. The
cycle is reported from all repeat pairs before T, with the number behind it; a
category with fewer than ``min_repeat_pairs`` gets no cycle and a reason, never
a number made from too little.

Each customer's window for a category opens at their last purchase day of it +
their cycle: their own, shrunk toward the category's by the same empirical-Bayes
model as the next order (:mod:`perennial.models.interval_model`, prior fitted on
the category's repeat customers), once they have ``min_own_intervals`` intervals
of it; the category's median otherwise. A segment "replenishment due" is then
``days_to_window`` between 0 and 2.

:data:`CATEGORY_CYCLE_SCHEMA` (one row per category bought before T):

- ``category`` (string); ``buyers`` (int64): customers who bought it;
- ``repeat_pairs`` (int64): repeat pairs; ``repeat_customers`` (int64): customers
  with at least one;
- ``cycle_days_median``, ``cycle_days_p25``, ``cycle_days_p75`` (float64): the
  median and quartiles of the repeat-pair gaps (linear interpolation between
  order statistics, as SQL's ``percentile_cont``); null exactly when
  ``no_cycle_reason`` is set;
- ``no_cycle_reason`` (string): why there is no cycle, else null.

:data:`REPLENISHMENT_SCHEMA` (one row per customer and category bought before T):

- ``customer_id``, ``category`` (string); ``last_purchased_on`` (date): last local
  purchase day of the category; ``purchase_days`` (int64): distinct purchase days of it;
- ``cycle_days`` (float64): the cycle used; ``cycle_source`` (string): ``"own"`` or
  ``"category"``; both null when the category has no cycle;
- ``window_opens_on`` (date): ``last_purchased_on`` + ``cycle_days`` rounded to a
  day; ``days_to_window`` (int64): from T's local day to it (negative: opened
  already); both null when the category has no cycle.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

import ibis.expr.types as ir  # type: ignore[import-untyped]
import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from perennial.features.history import History, load_history
from perennial.features.intervals import purchase_gaps
from perennial.features.snapshot import DEFAULT_TIMEZONE
from perennial.models.interval_model import IntervalStatistics, fit_prior, posterior
from perennial.models.next_order import local_day
from perennial.store.backends import Backend
from perennial.store.warehouse import Snapshot

__all__ = [
    "CATEGORY_CYCLE_SCHEMA",
    "REPLENISHMENT_SCHEMA",
    "CategoryCycleConfig",
    "CategoryCycles",
    "category_cycles",
    "cycles_from_gap_counts",
    "replenishment_windows",
]

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]

CATEGORY_CYCLE_SCHEMA = pa.schema(
    [
        pa.field("category", pa.string(), nullable=False),
        pa.field("buyers", pa.int64(), nullable=False),
        pa.field("repeat_pairs", pa.int64(), nullable=False),
        pa.field("repeat_customers", pa.int64(), nullable=False),
        pa.field("cycle_days_median", pa.float64()),
        pa.field("cycle_days_p25", pa.float64()),
        pa.field("cycle_days_p75", pa.float64()),
        pa.field("no_cycle_reason", pa.string()),
    ]
)

REPLENISHMENT_SCHEMA = pa.schema(
    [
        pa.field("customer_id", pa.string(), nullable=False),
        pa.field("category", pa.string(), nullable=False),
        pa.field("last_purchased_on", pa.date32(), nullable=False),
        pa.field("purchase_days", pa.int64(), nullable=False),
        pa.field("cycle_days", pa.float64()),
        pa.field("cycle_source", pa.string()),
        pa.field("window_opens_on", pa.date32()),
        pa.field("days_to_window", pa.int64()),
    ]
)


@dataclass(frozen=True)
class CategoryCycleConfig:
    """Thresholds: repeat pairs for a category cycle, own intervals for an own cycle.

    ``min_prior_customers`` customers of a category with an interval are needed to
    fit the prior that shrinks an own cycle; below it everyone gets the category's.
    """

    min_repeat_pairs: int = 30
    min_own_intervals: int = 2
    min_prior_customers: int = 30

    def __post_init__(self) -> None:
        if self.min_repeat_pairs < 1 or self.min_own_intervals < 1:
            raise ValueError("min_repeat_pairs and min_own_intervals must be at least 1")
        if self.min_prior_customers < 2:
            raise ValueError(
                "min_prior_customers must be at least 2: a prior is fitted on customers "
                "with an interval"
            )


@dataclass(frozen=True)
class CategoryCycles:
    """The two outputs: one row per category, one per customer and category."""

    categories: pa.Table
    """Rows of :data:`CATEGORY_CYCLE_SCHEMA`."""
    windows: pa.Table
    """Rows of :data:`REPLENISHMENT_SCHEMA`."""


def category_cycles(
    backend: Backend,
    snapshot: Snapshot,
    as_of: datetime,
    *,
    timezone: str = DEFAULT_TIMEZONE,
    config: CategoryCycleConfig | None = None,
) -> CategoryCycles:
    """Cycles and replenishment windows from paid order lines before ``as_of`` (timezone-aware).

    An empty store, or an ``as_of`` before any order, gives two empty tables.
    """
    config = config or CategoryCycleConfig()
    history = load_history(backend, snapshot, as_of, timezone=timezone)
    days = _category_days(history)
    gaps = purchase_gaps(days, ["customer_id", "category"])
    gap_counts = backend.to_pyarrow(
        gaps.group_by("category", "gap_days").aggregate(pairs=gaps.count())
    )
    per_customer = backend.to_pyarrow(_customer_category_statistics(days, gaps))
    categories = cycles_from_gap_counts(gap_counts, per_customer, config)
    windows = replenishment_windows(per_customer, categories, local_day(as_of, timezone), config)
    return CategoryCycles(categories, windows)


def cycles_from_gap_counts(
    gap_counts: pa.Table, statistics: pa.Table, config: CategoryCycleConfig | None = None
) -> pa.Table:
    """The category table from the gap histogram and the customer-category statistics.

    ``gap_counts`` has ``category, gap_days, pairs`` (pairs with that gap);
    ``statistics`` is what :func:`replenishment_windows` reads. Every category
    there gets a row, sorted by name.
    """
    config = config or CategoryCycleConfig()
    histogram = _group_rows(gap_counts.column("category"))
    counts = statistics.select(["category"]).append_column(
        "repeater", pc.cast(pc.greater(statistics.column("interval_count"), 0), pa.int64())
    )
    counts = counts.group_by("category").aggregate([("category", "count"), ("repeater", "sum")])
    per_category = zip(
        counts.column("category").to_pylist(),
        counts.column("category_count").to_pylist(),
        counts.column("repeater_sum").to_pylist(),
        strict=True,
    )
    gaps = _floats(gap_counts.column("gap_days"))
    pairs = _floats(gap_counts.column("pairs")).astype(np.int64)
    rows: list[dict[str, object]] = []
    for category, buyers, repeaters in sorted(per_category):
        mine = histogram.get(category, np.empty(0, dtype=np.int64))
        total = int(pairs[mine].sum())
        row: dict[str, object] = {
            "category": category,
            "buyers": buyers,
            "repeat_pairs": total,
            "repeat_customers": repeaters,
        }
        reason = _no_cycle_reason(total, config.min_repeat_pairs)
        if reason is None:
            p25, median, p75 = _weighted_quantiles(gaps[mine], pairs[mine], (0.25, 0.5, 0.75))
            row |= {"cycle_days_median": median, "cycle_days_p25": p25, "cycle_days_p75": p75}
        rows.append(row | {"no_cycle_reason": reason})
    return pa.Table.from_pylist(rows, schema=CATEGORY_CYCLE_SCHEMA)


def replenishment_windows(
    statistics: pa.Table,
    categories: pa.Table,
    as_of_day: date,
    config: CategoryCycleConfig | None = None,
) -> pa.Table:
    """Each customer's window per category, from per-customer-category statistics.

    ``statistics`` has ``customer_id, category, purchase_days, last_purchased_on,
    interval_count, log_interval_mean, log_interval_squares``; ``categories`` is
    the category table.
    """
    config = config or CategoryCycleConfig()
    cycle = np.full(statistics.num_rows, np.nan)
    own = np.zeros(statistics.num_rows, dtype=np.bool_)
    medians = dict(
        zip(
            categories.column("category").to_pylist(),
            categories.column("cycle_days_median").to_pylist(),
            strict=True,
        )
    )
    intervals = IntervalStatistics.from_columns(
        statistics.column("interval_count"),
        statistics.column("log_interval_mean"),
        statistics.column("log_interval_squares"),
    )
    for name, rows in _group_rows(statistics.column("category")).items():
        median = medians.get(name)
        if median is None:
            continue
        cycle[rows], own[rows] = _customer_cycles(intervals.take(rows), float(median), config)
    return _window_table(statistics, cycle, own, as_of_day)


def _customer_cycles(
    intervals: IntervalStatistics, category_median: float, config: CategoryCycleConfig
) -> tuple[FloatArray, npt.NDArray[np.bool_]]:
    """One category's customers: their shrunk own cycle where they have enough intervals."""
    cycle = np.full(intervals.count.size, category_median)
    prior = fit_prior(intervals, min_customers=config.min_prior_customers)
    own = intervals.count >= config.min_own_intervals
    if prior is None or not own.any():
        return cycle, np.zeros_like(own)
    chosen = np.flatnonzero(own)
    shrunk = posterior(intervals.take(chosen), [prior], np.zeros(chosen.size, dtype=np.int64))
    cycle[chosen] = shrunk.median_interval_days()
    return cycle, own


def _window_table(
    statistics: pa.Table, cycle: FloatArray, own: npt.NDArray[np.bool_], as_of_day: date
) -> pa.Table:
    known = np.isfinite(cycle)
    last = _epoch_days(statistics.column("last_purchased_on"))
    opens = last + np.rint(np.where(known, cycle, 0.0)).astype(np.int64)
    today = (as_of_day - date(1970, 1, 1)).days
    source = np.where(own, "own", "category")
    columns = {
        "customer_id": statistics.column("customer_id"),
        "category": statistics.column("category"),
        "last_purchased_on": statistics.column("last_purchased_on"),
        "purchase_days": statistics.column("purchase_days"),
        "cycle_days": pa.array(cycle, pa.float64(), mask=~known),
        "cycle_source": pa.array(source, pa.string(), mask=~known),
        "window_opens_on": pa.array(opens.astype(np.int32), pa.int32(), mask=~known).cast(
            pa.date32()
        ),
        "days_to_window": pa.array(opens - today, pa.int64(), mask=~known),
    }
    return pa.table(
        [columns[name] for name in REPLENISHMENT_SCHEMA.names], names=REPLENISHMENT_SCHEMA.names
    ).cast(REPLENISHMENT_SCHEMA)


def _category_days(history: History) -> ir.Table:
    """Distinct ``customer_id, category, local_day`` of categorised paid order lines."""
    lines = history.purchase_lines
    lines = lines.filter(lines.category.notnull())
    return lines.select(
        customer_id=lines.customer_id.cast("string"),
        category=lines.category.cast("string"),
        local_day=lines.local_day,
    ).distinct()


def _customer_category_statistics(days: ir.Table, gaps: ir.Table) -> ir.Table:
    """Per customer and category: purchase days, last day and the log-interval sums."""
    per_day = days.group_by("customer_id", "category").aggregate(
        purchase_days=days.count(), last_purchased_on=days.local_day.max()
    )
    log_gap = gaps.gap_days.ln()
    per_gap = gaps.group_by(gap_customer=gaps.customer_id, gap_category=gaps.category).aggregate(
        interval_count=gaps.count(),
        log_interval_mean=log_gap.mean(),
        log_interval_squares=(log_gap * log_gap).sum(),
    )
    joined = per_day.left_join(
        per_gap,
        (per_day.customer_id == per_gap.gap_customer) & (per_day.category == per_gap.gap_category),
    )
    return joined.select(
        "customer_id",
        "category",
        "last_purchased_on",
        purchase_days=joined.purchase_days.cast("int64"),
        interval_count=joined.interval_count.fill_null(0).cast("int64"),
        log_interval_mean=joined.log_interval_mean.cast("float64"),
        log_interval_squares=joined.log_interval_squares.cast("float64"),
    )


def _no_cycle_reason(pairs: int, needed: int) -> str | None:
    if pairs >= needed:
        return None
    if pairs == 0:
        return "no customer bought it on two different days"
    return f"only {pairs} repeat pairs; a cycle needs at least {needed}"


def _weighted_quantiles(
    values: FloatArray, counts: IntArray, probabilities: tuple[float, ...]
) -> tuple[float, ...]:
    """Quantiles of ``values`` each repeated ``counts`` times, as ``percentile_cont``.

    Position ``(N - 1) p`` in the sorted multiset, interpolated between its two
    neighbours; found by binary search on the cumulative counts, so a histogram of
    a million gaps costs as much as its few hundred distinct lengths.
    """
    order = np.argsort(values)
    values, ends = values[order], np.cumsum(counts[order])
    result = []
    for probability in probabilities:
        position = (ends[-1] - 1) * probability
        below = int(np.floor(position))
        low = values[np.searchsorted(ends, below, side="right")]
        high = values[np.searchsorted(ends, below + 1, side="right")] if position > below else low
        result.append(float(low + (high - low) * (position - below)))
    return tuple(result)


def _group_rows(column: pa.ChunkedArray) -> dict[str, IntArray]:
    """Row positions of each distinct non-null value of a string column."""
    encoded = pc.dictionary_encode(column).combine_chunks()
    codes = np.asarray(pc.fill_null(encoded.indices, -1).to_numpy(), dtype=np.int64)
    order = np.argsort(codes, kind="stable")
    bounds = np.searchsorted(codes[order], np.arange(len(encoded.dictionary) + 1))
    return {
        str(name): order[bounds[code] : bounds[code + 1]]
        for code, name in enumerate(encoded.dictionary.to_pylist())
    }


def _floats(column: pa.ChunkedArray) -> FloatArray:
    return np.asarray(pc.cast(column, pa.float64()).to_numpy(), dtype=np.float64)


def _epoch_days(column: pa.ChunkedArray) -> IntArray:
    as_int = pc.cast(pc.cast(column, pa.date32()), pa.int32())
    return np.asarray(as_int.to_numpy(), dtype=np.int64)
