"""The purchase days of a month's buyers, read once, and how each day moves their gaps.

The store-wide rhythm histograms (:mod:`perennial.features.rhythm_population`)
need, for each day, the gaps the day's buyers had before it and the gaps they
have after it. Asking the engine twice a day costs more than answering: so the
purchase days of every customer who buys during a stretch of days are read in
one query, each with the instant it became visible, and the gaps as of any
instant are worked out here. A gap is what :func:`purchase_gaps` makes of
them: the days between consecutive distinct local purchase days, of paid orders
(own) and of categorised order lines (per category).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import UTC, datetime
from itertools import pairwise

import ibis  # type: ignore[import-untyped]
import ibis.expr.datatypes as dt  # type: ignore[import-untyped]
import ibis.expr.types as ir  # type: ignore[import-untyped]
import pyarrow as pa
import pyarrow.compute as pc

from perennial.features.history import History

__all__ = ["PurchaseDays", "purchase_days"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def purchase_days(history: History, items: ir.Table, customers: ir.Table) -> ir.Table:
    """Each purchase day of ``customers`` visible by ``history.as_of``, and since when.

    Rows ``customer_id``, ``category`` (null for the own, all-category days),
    ``local_day`` and ``visible_from``: the order's time, or for an order line the
    later of the line's and its paid order's (``history.purchase_lines`` needs both
    before the as-of). ``items`` is the store's ``order_items`` table.
    """
    orders = history.orders.filter(history.orders.paid)
    orders = orders.semi_join(customers, orders.customer_id == customers.customer_id)
    own = orders.select(
        customer_id=orders.customer_id.cast(dt.string),
        category=ibis.null(dt.string),
        local_day=orders.local_day,
        visible_from=orders.placed_at,
    )
    lines = items.filter((items.placed_at < history.as_of_value) & items.category.notnull())
    joined = lines.join(orders, lines.order_id == orders.order_id)
    by_category = joined.select(
        customer_id=joined.customer_id.cast(dt.string),
        category=joined.category.cast(dt.string),
        local_day=joined.local_day,
        visible_from=ibis.greatest(lines.placed_at, orders.placed_at),
    )
    return ibis.union(own, by_category, distinct=False)


class PurchaseDays:
    """The rows of :func:`purchase_days`, indexed by customer, for gaps as of any instant."""

    def __init__(self, rows: pa.Table) -> None:
        microseconds = pc.cast(rows.column("visible_from"), pa.timestamp("us", tz="UTC"))
        visible = pc.cast(microseconds, pa.int64()).to_pylist()
        days = pc.cast(rows.column("local_day"), pa.int32()).to_pylist()
        self._days: dict[str, list[tuple[str | None, int, int]]] = defaultdict(list)
        columns = zip(
            rows.column("customer_id").to_pylist(),
            rows.column("category").to_pylist(),
            visible,
            days,
            strict=True,
        )
        for customer, category, visible_from, day in columns:
            self._days[customer].append((category, visible_from, day))

    def gap_changes(self, customers: list[str], before: datetime, after: datetime) -> pa.Table:
        """How the gap counts of ``customers`` move from ``before`` to ``after``.

        Rows ``category``, ``gap_days`` and ``gaps`` (negative: gaps gone), for
        :meth:`RhythmPopulation.add`.
        """
        start, end = _microseconds(before), _microseconds(after)
        changes: Counter[tuple[str | None, float]] = Counter()
        for customer in customers:
            earlier: dict[str | None, set[int]] = defaultdict(set)
            later: dict[str | None, set[int]] = defaultdict(set)
            for category, visible_from, day in self._days.get(customer, ()):
                if visible_from < end:
                    later[category].add(day)
                    if visible_from < start:
                        earlier[category].add(day)
            for category, purchase_days in later.items():
                for gap in _gaps(purchase_days):
                    changes[(category, gap)] += 1
            for category, purchase_days in earlier.items():
                for gap in _gaps(purchase_days):
                    changes[(category, gap)] -= 1
        moved = [(key, count) for key, count in changes.items() if count]
        return pa.table(
            {
                "category": pa.array([key[0] for key, _ in moved], pa.string()),
                "gap_days": pa.array([key[1] for key, _ in moved], pa.float64()),
                "gaps": pa.array([count for _, count in moved], pa.int64()),
            }
        )


def _gaps(days: set[int]) -> list[float]:
    """Days between consecutive distinct purchase days, in order."""
    return [float(later - earlier) for earlier, later in pairwise(sorted(days))]


def _microseconds(instant: datetime) -> int:
    step = instant.astimezone(UTC) - _EPOCH
    return (step.days * 86_400 + step.seconds) * 1_000_000 + step.microseconds
