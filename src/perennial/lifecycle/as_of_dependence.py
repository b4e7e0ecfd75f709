"""How each feature depends on ``as_of``: what moving the as-of one day forward changes.

The incremental stage history (:mod:`perennial.lifecycle.backfill`) carries
yesterday's feature table into today's, so it must know, for every column of
the registry, why it could change between two instants ``previous < current``:

* **shifted**: ``as_of`` minus a stored instant (or the reverse), e.g.
  ``recency_days``. With no new rows it moves by exactly the step; declared in
  :data:`AS_OF_SHIFTED`.
* **windowed**: reductions over windows ending at ``as_of``, e.g.
  ``orders_30d``. They change when a row enters a window (a new row) or leaves
  one (a row at ``as_of - n d`` for an edge ``n``); the edges are read from the
  registry's ``window`` texts (:data:`WINDOW_EDGES`), so a new window cannot be
  forgotten.
* **population-wide**: the same rhythm median for many customers
  (:data:`POPULATION_WIDE`); any customer's new purchase can change them.
* everything else accumulates over all history and changes only with new rows.

:func:`changed_customers` finds, for every day of a range at once, the
customers whose own rows make any of this move; every other customer keeps
yesterday's values, shifted (:func:`shift_as_of`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from types import MappingProxyType

import ibis  # type: ignore[import-untyped]
import ibis.expr.datatypes as dt  # type: ignore[import-untyped]
import ibis.expr.types as ir  # type: ignore[import-untyped]

from perennial.features.registry import DAY_MICROSECONDS, Feature
from perennial.features.snapshot import FEATURES
from perennial.lifecycle.profiles import as_of_instant
from perennial.store.backends import Backend
from perennial.store.warehouse import Snapshot

__all__ = [
    "AS_OF_SHIFTED",
    "POPULATION_WIDE",
    "WINDOWED",
    "WINDOW_EDGES",
    "changed_customers",
    "shift_as_of",
    "window_edges",
]

AS_OF_SHIFTED: Mapping[str, int] = MappingProxyType(
    {
        "tenure_days": 1,
        "recency_days": 1,
        "days_since_last_login": 1,
        "days_to_expected_order": -1,
    }
)
"""Day counts between ``as_of`` and a stored instant: +1 grows with ``as_of``, -1 shrinks."""

POPULATION_WIDE = (
    "category_median_interval_days",
    "population_median_interval_days",
    "expected_next_order_at",
    "days_to_expected_order",
)
"""Columns that read other customers' purchase gaps (the rhythm medians and what uses them)."""

_EDGE = re.compile(r"as_of - (\d+) d")
_UTC = dt.Timestamp(timezone="UTC")


def window_edges(features: Iterable[Feature] = FEATURES) -> tuple[int, ...]:
    """Every ``n`` of an ``as_of - n d`` window edge in the registry, ascending."""
    return tuple(sorted({int(n) for f in features for n in _EDGE.findall(f.window)}))


WINDOW_EDGES = window_edges()
"""Days before ``as_of`` where some window starts or ends (1, 7, 30, 60, 90 today)."""

WINDOWED: tuple[str, ...] = tuple(f.name for f in FEATURES if f.window.startswith("[as_of"))
"""Features over windows ending at ``as_of``: they read only the last ``max(WINDOW_EDGES)`` days."""


def shift_as_of(
    table: ir.Table, current: ir.TimestampValue, step_microseconds: ir.IntegerValue
) -> ir.Table:
    """``table``'s features moved forward to the instant ``current``, ``step_microseconds`` later.

    For customers without new rows. A shifted value is turned back into whole
    microseconds, moved by the step and divided again, which is bit for bit what a
    fresh computation gives (float days of microseconds, exact below 2^52 us, about
    140 years). Both arguments may be columns, so one compiled query serves every day.
    """
    moved = {}
    for name, sign in AS_OF_SHIFTED.items():
        microseconds = (table[name] * DAY_MICROSECONDS).round().cast(dt.int64)
        moved[name] = (microseconds + sign * step_microseconds).cast(dt.float64) / DAY_MICROSECONDS
    return table.mutate(as_of=current, **moved)


def changed_customers(
    backend: Backend,
    snapshot: Snapshot,
    days: Sequence[date],
    timezone: str,
    *,
    edges: Iterable[int] = WINDOW_EDGES,
) -> ir.Table:
    """For each of the consecutive ``days``, the customers whose features may have moved.

    Day D runs from the end of local day D-1 to the end of D in ``timezone``, so a
    row at instant ``t`` arrives on the local date of ``t``, and leaves the window
    of edge ``n`` on the local date of ``t + n * 24 h``. One row per ``day`` and
    ``customer_id``, with two flags. ``new_rows``: an order, order line, event or
    customer record arrived that day, so any feature may have moved; otherwise only
    rows leaving a window did, and only windowed features moved. ``new_purchases``:
    an order or order line arrived, so purchase gaps may have changed. Anonymous
    events count for every customer their ``anonymous_id`` was ever linked to before
    the last day ends: a superset of the point-in-time attribution, which costs only
    a few extra recomputed rows.
    """
    first, last = days[0], days[-1]
    edges = tuple(edges)
    since = as_of_instant((first - timedelta(days=1)).isoformat(), timezone)
    since -= timedelta(days=max(edges, default=0))
    until = as_of_instant(last.isoformat(), timezone)

    def local_day(instant: ir.TimestampValue, later_days: int = 0) -> ir.DateValue:
        if later_days:
            instant = instant + ibis.interval(later_days * DAY_MICROSECONDS, unit="us")
        return backend.local_wall_clock(instant, timezone).date()

    def rows(table: ir.Table, column: str) -> ir.Table:
        instant = table[column]
        return table.filter((instant >= _instant(since)) & (instant < _instant(until)))

    def arrivals_and_departures(table: ir.Table, column: str, *, purchases: bool) -> list[ir.Table]:
        recent = rows(table, column)
        parts = [_flagged(recent, local_day(recent[column]), new_rows=True, purchases=purchases)]
        parts += [_flagged(recent, local_day(recent[column], n), new_rows=False) for n in edges]
        return parts

    orders = backend.table("orders", snapshot)
    items = rows(backend.table("order_items", snapshot), "placed_at")
    line_orders = items.join(orders, items.order_id == orders.order_id).select(
        orders.customer_id, placed_at=items.placed_at
    )
    customers = rows(backend.table("customers", snapshot), "created_at")
    every_event = backend.table("events", snapshot)
    events = _attributed_events(rows(every_event, "ts"), every_event, until)
    parts = [
        *arrivals_and_departures(orders, "placed_at", purchases=True),
        _flagged(line_orders, local_day(line_orders.placed_at), new_rows=True, purchases=True),
        _flagged(customers, local_day(customers.created_at), new_rows=True),
        *arrivals_and_departures(events, "ts", purchases=False),
    ]
    union = ibis.union(*parts, distinct=False)
    union = union.filter(union.day.between(first, last))
    return union.group_by("day", "customer_id").aggregate(
        new_rows=union.new_rows.any(), new_purchases=union.new_purchases.any()
    )


def _attributed_events(events: ir.Table, every: ir.Table, until: datetime) -> ir.Table:
    """``events`` with a ``customer_id``: their own, or every customer linked to their device.

    ``every`` is the whole events table, where the links (events with both ids) are.
    """
    named = events.filter(events.customer_id.notnull())
    named = named.select(customer_id=named.customer_id.cast(dt.string), ts=named.ts.cast(_UTC))
    anonymous = events.filter(events.customer_id.isnull() & events.anonymous_id.notnull())
    links = (
        every.filter(
            every.customer_id.notnull()
            & every.anonymous_id.notnull()
            & (every.ts < _instant(until))
        )
        .select(link_anonymous_id="anonymous_id", link_customer_id="customer_id")
        .distinct()
    )
    linked = anonymous.join(links, anonymous.anonymous_id == links.link_anonymous_id)
    linked = linked.select(
        customer_id=linked.link_customer_id.cast(dt.string), ts=linked.ts.cast(_UTC)
    )
    return ibis.union(named, linked, distinct=False)


def _flagged(
    table: ir.Table, day: ir.DateValue, *, new_rows: bool, purchases: bool = False
) -> ir.Table:
    return table.select(
        day=day,
        customer_id=table.customer_id.cast(dt.string),
        new_rows=ibis.literal(new_rows, type=dt.boolean),
        new_purchases=ibis.literal(purchases, type=dt.boolean),
    )


def _instant(moment: datetime) -> ir.TimestampScalar:
    return ibis.literal(moment.astimezone(UTC), type=_UTC)
