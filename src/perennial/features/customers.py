"""Who the feature table is about: every customer known by ``as_of``, and since when.

A customer is known when a ``customers`` record was created before ``as_of``
(a record without ``created_at`` counts as known at any time: it carries no
date to hold it back), or when an order or an attributed event of theirs lies
before ``as_of``. Such a customer gets a row even with no activity at all (a
registered prospect, 潜在用户), so every later stage model sees them.
"""

from __future__ import annotations

import ibis  # type: ignore[import-untyped]
import ibis.expr.datatypes as dt  # type: ignore[import-untyped]
import ibis.expr.types as ir  # type: ignore[import-untyped]

from perennial.features.activity import FIRST_EVENT
from perennial.features.history import History
from perennial.features.orders import FIRST_ANY_ORDER
from perennial.features.registry import Feature, FeatureKind, Section

__all__ = ["CREATED_AT", "SECTION", "customer_records", "first_seen", "known_customers"]

CREATED_AT = "_created_at"
"""Hidden column: the record's ``created_at`` (before ``as_of`` or null)."""

SECTION = Section(
    title="Customer",
    introduction=(
        "One row per customer known by `as_of`: a `customers` record created before it "
        "(or undated), or an order or attributed event before it."
    ),
    features=(
        Feature(
            "customer_id",
            "The customer (`customers.customer_id`, `orders.customer_id` or the "
            "attributed `events.customer_id`).",
            "id",
            "-",
            FeatureKind.STRING,
        ),
        Feature(
            "as_of",
            "The instant the row describes: only rows strictly before it were read.",
            "instant",
            "-",
            FeatureKind.TIMESTAMP,
        ),
        Feature(
            "acquisition_channel",
            "`customers.acquisition_channel` of the customer's record; null without a "
            "record created before `as_of`.",
            "label",
            "-",
            FeatureKind.STRING,
        ),
        Feature(
            "first_seen_at",
            "Earliest of the record's `created_at`, the first order (any status) and the "
            "first attributed event.",
            "instant",
            "all history",
            FeatureKind.TIMESTAMP,
        ),
        Feature(
            "tenure_days",
            "Days from `first_seen_at` to `as_of`; null for an undated record without activity.",
            "days",
            "all history",
            FeatureKind.NUMBER,
        ),
    ),
)


def known_customers(history: History, *per_customer: ir.Table) -> ir.Table:
    """The distinct ``customer_id`` of every customer known by ``as_of``.

    ``per_customer`` are tables already reduced to a row per customer (of the
    orders, of the events): taking the ids from them, not from the raw rows again,
    spares the engine a second pass over every order and event.
    """
    ids = [
        source.select(customer_id=source.customer_id.cast(dt.string))
        for source in (history.customers, *per_customer)
    ]
    return ibis.union(*ids, distinct=True)


def customer_records(history: History) -> ir.Table:
    """The record facts features use, one row per customer with a record."""
    records = history.customers
    return records.select("customer_id", "acquisition_channel", **{CREATED_AT: records.created_at})


def first_seen(table: ir.Table, history: History) -> dict[str, ir.Value]:
    """``first_seen_at`` and ``tenure_days`` from the hidden first-time columns of ``table``."""
    first_seen_at = ibis.least(table[CREATED_AT], table[FIRST_ANY_ORDER], table[FIRST_EVENT])
    return {"first_seen_at": first_seen_at, "tenure_days": history.days_since(first_seen_at)}
