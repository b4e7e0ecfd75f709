"""The buy-till-you-die summary: frequency, recency and T per customer.

The input of BG/NBD, Pareto/NBD and Gamma-Gamma (Fader, Hardie & Lee 2005,
"Counting Your Customers the Easy Way", section 2; the same definitions as
``lifetimes.utils.summary_data_from_transaction_data``). Time is counted in
whole local calendar days, so purchases on one day are one transaction:

* ``frequency``: repeat purchase days (distinct purchase days - 1);
* ``recency``: last purchase day - first purchase day;
* ``T``: last observed day - first purchase day, where the last observed day is
  the local calendar day of the last instant before ``calibration_end``;
* ``monetary_value``: mean amount per repeat purchase day (same-day orders
  summed, the first day left out); 0 without repeat purchases.

``recency`` and ``T`` are in units of ``unit_days`` days (7: weeks). Only paid
orders strictly before ``calibration_end`` count, as everywhere in features.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import ibis  # type: ignore[import-untyped]
import ibis.expr.datatypes as dt  # type: ignore[import-untyped]
import ibis.expr.types as ir  # type: ignore[import-untyped]

from perennial.features.history import load_history
from perennial.features.snapshot import DEFAULT_TIMEZONE
from perennial.store.backends import Backend
from perennial.store.warehouse import Snapshot

__all__ = ["BTYD_COLUMNS", "last_observed_day", "summary_for_btyd"]

BTYD_COLUMNS = ("customer_id", "frequency", "recency", "T", "monetary_value")
"""The summary's columns, named as in the literature and in ``lifetimes``."""


def summary_for_btyd(
    backend: Backend,
    snapshot: Snapshot,
    calibration_end: datetime,
    *,
    unit_days: float = 7,
    timezone: str = DEFAULT_TIMEZONE,
) -> ir.Table:
    """Frequency, recency, T and monetary value of every customer with a paid order.

    ``calibration_end`` is exclusive and timezone-aware: for CDNOW's calibration
    through 1997-09-30, pass 1997-10-01 00:00 America/New_York. Customers without a
    paid order before it have no row (they have no first purchase).
    """
    if unit_days <= 0:
        raise ValueError(f"unit_days must be positive, got {unit_days}")
    history = load_history(backend, snapshot, calibration_end, timezone=timezone)
    orders = history.orders.filter(history.orders.paid)
    days = orders.group_by("customer_id", "local_day").aggregate(day_amount=orders.amount.sum())
    # Repeat spend is all spend but the first day's, taken with arg_min: a window
    # over millions of customers to mark each first day costs more than the rest.
    # Amounts stay decimal until then, so the subtraction is exact.
    per_customer = days.group_by("customer_id").aggregate(
        purchase_days=days.count(),
        first_day=days.local_day.min(),
        last_day=days.local_day.max(),
        all_amount=days.day_amount.sum(),
        first_amount=days.day_amount.argmin(days.local_day),
    )
    per_customer = per_customer.mutate(
        repeat_amount=(per_customer.all_amount - per_customer.first_amount).cast(dt.float64)
    )
    end_day = ibis.literal(last_observed_day(calibration_end, timezone), type=dt.date)
    frequency = per_customer.purchase_days - 1
    return per_customer.select(
        customer_id=per_customer.customer_id,
        frequency=frequency.cast(dt.int64),
        recency=_in_units(
            per_customer.last_day.delta(per_customer.first_day, unit="day"), unit_days
        ),
        T=_in_units(end_day.delta(per_customer.first_day, unit="day"), unit_days),
        monetary_value=(
            per_customer.repeat_amount / frequency.cast(dt.float64).nullif(0.0)
        ).fill_null(0.0),
    )


def last_observed_day(calibration_end: datetime, timezone: str) -> date:
    """The local calendar day of the last instant before ``calibration_end``."""
    if calibration_end.tzinfo is None or calibration_end.utcoffset() is None:
        raise ValueError(f"calibration_end must carry a time zone: {calibration_end.isoformat()}")
    last_instant = calibration_end - timedelta(microseconds=1)
    return last_instant.astimezone(ZoneInfo(timezone)).date()


def _in_units(days: ir.IntegerValue, unit_days: float) -> ir.FloatingValue:
    return days.cast(dt.float64) / unit_days
