"""The feature snapshot: one row per customer known by ``as_of``, every feature a column.

This is the facade the rest of the product calls (lifecycle stages, RFM,
models, the CLI). It returns an unexecuted Ibis expression, so the same code
runs on DuckDB and on Spark (:mod:`perennial.store.backends` decides where) and
callers can add their own columns before anything is computed. Each source
table is reduced once per customer; the modules contribute reductions and the
joins happen here.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

import ibis.expr.datatypes as dt  # type: ignore[import-untyped]
import ibis.expr.types as ir  # type: ignore[import-untyped]

from perennial.features import activity, customers, intervals, orders, trends
from perennial.features.history import History, load_history
from perennial.features.registry import Feature, Section
from perennial.store.backends import Backend
from perennial.store.warehouse import Snapshot

__all__ = [
    "DEFAULT_TIMEZONE",
    "FEATURES",
    "FEATURE_NAMES",
    "SECTIONS",
    "compute_features",
    "features_from_history",
    "restrict_history",
    "typed_feature_table",
]

DEFAULT_TIMEZONE = "Asia/Shanghai"
"""Zone of local purchase days unless the caller names another."""

SECTIONS: tuple[Section, ...] = (
    customers.SECTION,
    orders.SECTION,
    intervals.SECTION,
    activity.SECTION,
    trends.SECTION,
)

FEATURES: tuple[Feature, ...] = tuple(f for section in SECTIONS for f in section.features)
"""Every feature, in output column order."""

FEATURE_NAMES: tuple[str, ...] = tuple(f.name for f in FEATURES)


def compute_features(
    backend: Backend,
    snapshot: Snapshot,
    as_of: datetime,
    *,
    timezone: str = DEFAULT_TIMEZONE,
    customers: ir.Table | None = None,
) -> ir.Table:
    """Features of every customer known by ``as_of``, from the store's ``snapshot``.

    Only rows strictly before ``as_of`` are read (orders by ``placed_at``, events by
    ``ts``, customer records by ``created_at``); windows end at ``as_of`` and
    local purchase days are calendar days in ``timezone``. ``as_of`` must be
    timezone-aware. Columns are :data:`FEATURE_NAMES`, typed as the registry says.
    ``customers`` (a table with a ``customer_id`` column) computes the features as
    if the store held only those customers: see :func:`restrict_history`.
    """
    history = load_history(backend, snapshot, as_of, timezone=timezone)
    if customers is not None:
        history = restrict_history(history, customers)
    return features_from_history(history)


def restrict_history(history: History, customers: ir.Table) -> History:
    """``history`` with only the rows of ``customers`` (semi-joined on ``customer_id``).

    Every per-customer feature of a restricted history equals the full one; the
    population-wide columns (``category_median_interval_days``,
    ``population_median_interval_days`` and so the expected next order) then
    describe only these customers, so a caller needing them store-wide supplies them
    (as the incremental stage history does).
    """
    ids = customers.select(restricted_customer_id=customers.customer_id.cast("string"))

    def keep(table: ir.Table) -> ir.Table:
        return table.semi_join(ids, table.customer_id == ids.restricted_customer_id)

    return replace(
        history,
        customers=keep(history.customers),
        orders=keep(history.orders),
        purchase_lines=keep(history.purchase_lines),
        events=keep(history.events),
    )


def features_from_history(history: History, *, with_population: bool = True) -> ir.Table:
    """The feature table over an already loaded :class:`History`.

    ``with_population=False`` leaves ``category_median_interval_days`` and
    ``population_median_interval_days`` null (and so the expected next order of
    customers without an own rhythm): see :func:`intervals.interval_tables`.
    """
    order_rows = history.orders.group_by("customer_id").aggregate(
        **orders.order_aggregates(history), **trends.order_trend_aggregates(history)
    )
    event_rows = activity.event_rows(history)
    rhythm = intervals.interval_tables(history, with_population=with_population)

    table = customers.known_customers(history, order_rows, event_rows)
    for part in (
        customers.customer_records(history),
        order_rows,
        event_rows,
        rhythm.own,
        rhythm.favourite,
    ):
        table = _attach(table, part)
    table = table.mutate(
        # A cast, not the bare value: Ibis 12 would otherwise alias every other use
        # of an as-of subquery (History.as_of_scalar) "as_of", which is not SQL.
        as_of=history.as_of_value.cast(dt.Timestamp(timezone="UTC")),
        population_median_interval_days=rhythm.population_median,
        **customers.first_seen(table, history),
    )
    table = table.mutate(**intervals.expected_next_order(table, history))
    return typed_feature_table(table)


def typed_feature_table(table: ir.Table) -> ir.Table:
    """The :data:`FEATURES` columns of ``table``, in order, typed and with their defaults."""
    return table.select(*[_finish(table, feature) for feature in FEATURES])


def _attach(table: ir.Table, part: ir.Table) -> ir.Table:
    """Left-join ``part`` on ``customer_id``, keeping one ``customer_id`` column."""
    joined = table.left_join(part, table.customer_id == part.customer_id)
    return joined.select(
        table.customer_id,
        *[table[c] for c in table.columns if c != "customer_id"],
        *[part[c] for c in part.columns if c != "customer_id"],
    )


def _finish(table: ir.Table, feature: Feature) -> ir.Value:
    """The feature's column: the registered default for customers without rows, its type."""
    column = table[feature.name]
    if feature.default is not None:
        column = column.fill_null(feature.default)
    return column.cast(feature.kind.ibis_type).name(feature.name)
