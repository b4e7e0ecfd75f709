"""One day's feature table from the day before's, recomputing only what moved.

Customers fall into three groups by :func:`changed_customers`:

* **new rows** (an order, line, event or record arrived during the day): every
  feature is computed afresh from their whole history, restricted to them;
* **leaving rows only** (a row crossed a window edge): the accumulated columns
  are carried over and only the windowed ones (:data:`WINDOWED`) are recomputed,
  from their rows of the last ``max(WINDOW_EDGES)`` days, which is all any
  window reads;
* **everyone else**: yesterday's row, shifted to the new as-of.

Both recomputed groups come out of one query (:func:`fresh_features`). Then
:func:`carried_table` merges them into yesterday's shifted table and rewrites
the population-wide rhythm columns for every row. :func:`carried_table` takes
the day's values (as-of, step, rhythm medians) as tables, not literals, so one
compiled query serves every day of a backfill.
"""

from __future__ import annotations

from dataclasses import replace

import ibis  # type: ignore[import-untyped]
import ibis.expr.datatypes as dt  # type: ignore[import-untyped]
import ibis.expr.types as ir  # type: ignore[import-untyped]

from perennial.features.history import History
from perennial.features.rhythm_population import with_population_rhythm
from perennial.features.snapshot import FEATURES, features_from_history
from perennial.lifecycle.as_of_dependence import WINDOW_EDGES, WINDOWED, shift_as_of

__all__ = [
    "DAY_SCHEMA",
    "FEATURES_SCHEMA",
    "FRESH_SCHEMA",
    "MEDIANS_SCHEMA",
    "carried_table",
    "fresh_features",
    "typed_features",
]

FEATURES_SCHEMA = ibis.schema({f.name: f.kind.ibis_type for f in FEATURES})
"""The feature table's columns and types, as the registry says."""

FRESH_SCHEMA = ibis.schema({"full_row": dt.boolean, "known": dt.boolean, **FEATURES_SCHEMA})
""":func:`fresh_features`: ``full_row`` false means only the windowed columns are fresh;
``known`` false means the customer has no row in the day's feature table at all."""

MEDIANS_SCHEMA = ibis.schema({"rhythm_category": dt.string, "rhythm_median": dt.float64})
"""The category median gaps of the day (:meth:`RhythmPopulation.medians_table`)."""

DAY_SCHEMA = ibis.schema(
    {
        "as_of": dt.Timestamp(timezone="UTC"),
        "step_microseconds": dt.int64,
        "population_median": dt.float64,
    }
)
"""One row: the day's as-of, the step from the day before, the population median gap."""

_DEFAULTS = {f.name: f.default for f in FEATURES}


def fresh_features(history: History, changed: ir.Table) -> ir.Table:
    """Fresh rows of the day's ``changed`` customers (``customer_id``, ``new_rows``).

    Customers with new rows get their whole history; the others only their rows of
    the longest window, so only their windowed columns are meaningful. One row per
    changed customer (:data:`FRESH_SCHEMA`); one the restricted table has no row for
    gets the registry's empty values and ``known`` false: either no rows are left in
    any window, or the customer is not known yet (changed only through a device
    linked later).
    """
    ids = changed.select(changed_customer_id="customer_id", whole_history="new_rows")
    since = history.days_ago(max(WINDOW_EDGES))

    def keep(table: ir.Table, instant: str | None) -> ir.Table:
        """The rows of changed customers: all of them, or only recent ones."""
        joined = table.join(ids, table.customer_id == ids.changed_customer_id)
        wanted = joined.whole_history
        if instant is not None:
            wanted |= joined[instant] >= since
        return joined.filter(wanted).select(*table.columns)

    records = history.customers
    combined = replace(
        history,
        customers=records.semi_join(ids, records.customer_id == ids.changed_customer_id),
        orders=keep(history.orders, "placed_at"),
        purchase_lines=keep(history.purchase_lines, None),
        events=keep(history.events, "ts"),
    )
    features = features_from_history(combined)
    joined = ids.left_join(features, ids.changed_customer_id == features.customer_id)
    columns = [_with_default(joined[name], name) for name in FEATURES_SCHEMA.names[1:]]
    known = features.customer_id.notnull()
    return typed_features(
        joined.select(
            ids.changed_customer_id.name("customer_id"),
            *columns,
            full_row=ids.whole_history,
            known=known,
        ),
        FRESH_SCHEMA,
    )


def carried_table(
    eve: ir.Table, fresh: ir.Table, medians: ir.Table, day: ir.Table, reference: History
) -> ir.Table:
    """The day's features: ``eve`` shifted, with ``fresh`` rows and columns laid over it.

    ``eve`` has the day before's features, ``fresh`` the output of
    :func:`fresh_features`, ``medians`` and ``day`` the day's rhythm and as-of (see
    the schemas). ``reference`` is any history of the same store (see
    :func:`with_population_rhythm`).
    """
    today = day.select(
        today_as_of="as_of", today_step="step_microseconds", today_median="population_median"
    )
    shifted = eve.cross_join(today)
    shifted = shift_as_of(shifted, shifted.today_as_of, shifted.today_step)
    renamed = fresh.rename({f"fresh_{name}": name for name in FRESH_SCHEMA.names})
    joined = shifted.outer_join(renamed, shifted.customer_id == renamed.fresh_customer_id)
    # Known the day before, or now: a changed customer may be one only linked later on.
    joined = joined.filter(joined.customer_id.notnull() | joined.fresh_known)
    known = joined.fresh_customer_id.notnull()
    whole = joined.fresh_full_row.fill_null(False)
    columns = [joined.customer_id.coalesce(joined.fresh_customer_id).name("customer_id")]
    for name in FEATURES_SCHEMA.names[1:]:
        kept, recomputed = joined[name], joined[f"fresh_{name}"]
        fresh_here = (whole | known) if name in WINDOWED else whole
        column = ibis.ifelse(fresh_here, recomputed, kept)
        columns.append(column.name(name))
    merged = typed_features(joined.select(*columns)).cross_join(today)
    rewritten = with_population_rhythm(
        merged, medians, population_median="today_median", as_of="today_as_of", reference=reference
    )
    return typed_features(rewritten)


def typed_features(table: ir.Table, schema: ibis.Schema = FEATURES_SCHEMA) -> ir.Table:
    """``schema``'s columns of ``table`` in order and types, so tables of them union."""
    return table.select(*[table[name].cast(dtype).name(name) for name, dtype in schema.items()])


def _with_default(column: ir.Value, name: str) -> ir.Value:
    """The registered empty value (0 for counts and sums) where ``column`` is null."""
    default = _DEFAULTS[name]
    return (column if default is None else column.fill_null(default)).name(name)
