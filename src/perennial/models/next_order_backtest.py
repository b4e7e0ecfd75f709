"""Scoring next-order dates after the fact: our model against the naive rules, at a cut-off.

Predictions are made as of the cut-off from the data before it
(:func:`~perennial.models.next_order.predict_from_statistics`), then compared with each
customer's first purchase day in ``[cutoff, cutoff + horizon)``. Two naive baselines
are scored on the same customers: last purchase day + last interval, and the feature
layer's ``expected_next_order_at`` (own median interval, else category's, else the
store's), each also with past dates moved to the cut-off's day.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import ibis  # type: ignore[import-untyped]
import ibis.expr.datatypes as dt  # type: ignore[import-untyped]
import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from perennial.features.history import load_history
from perennial.features.snapshot import DEFAULT_TIMEZONE, compute_features
from perennial.models.next_order import (
    NextOrderConfig,
    local_day,
    predict_from_statistics,
    purchase_statistics,
)
from perennial.store.backends import Backend
from perennial.store.warehouse import Snapshot

__all__ = ["NextOrderBacktest", "backtest_next_orders"]

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class NextOrderBacktest:
    """How the predictions as of ``cutoff`` met the orders of the following ``horizon_days``.

    Errors are absolute differences in days between a predicted date and the
    customer's actual next purchase day, over customers who bought in ``[cutoff,
    cutoff + horizon)``; a mean over no customers is ``None``. "Repeat" customers
    had 2+ purchase days before the cutoff, so all three predictions exist for
    them: ours, the last-interval baseline (last purchase day + last interval)
    and the feature layer's ``expected_next_order_at``. Only ours knows the order
    is still to come; the ``*_clipped`` baselines move a date before the cutoff's
    day to that day, the least any forecaster would do. ``coverage`` is the share
    of repeat customers' actual days inside ``[earliest, latest]``: as only
    customers who bought within the horizon count, a horizon shorter than most
    windows favours early misses, so read it next to ``nominal_coverage``.
    """

    cutoff: datetime
    horizon_days: int
    repeat_customers: int
    model_mae_days: float | None
    last_interval_mae_days: float | None
    last_interval_clipped_mae_days: float | None
    simple_interval_mae_days: float | None
    simple_interval_clipped_mae_days: float | None
    coverage: float | None
    nominal_coverage: float
    first_time_customers: int
    first_time_model_mae_days: float | None
    first_time_simple_interval_mae_days: float | None


def backtest_next_orders(
    backend: Backend,
    snapshot: Snapshot,
    cutoff: datetime,
    horizon_days: int,
    *,
    timezone: str = DEFAULT_TIMEZONE,
    config: NextOrderConfig | None = None,
) -> NextOrderBacktest:
    """Predict as of ``cutoff`` from the data before it, then score against the next orders."""
    if horizon_days < 1:
        raise ValueError(f"horizon_days must be at least 1, got {horizon_days}")
    config = config or NextOrderConfig()
    today = local_day(cutoff, timezone)
    statistics = purchase_statistics(backend, snapshot, cutoff, timezone=timezone)
    predictions = predict_from_statistics(statistics, today, config)
    outcome = _actual_next_days(backend, snapshot, cutoff, horizon_days, timezone)
    simple = _simple_interval_days(backend, snapshot, cutoff, timezone)
    scored = (
        predictions.join(outcome, "customer_id", join_type="inner")
        .join(statistics.select(["customer_id", "last_interval_days"]), "customer_id")
        .join(simple, "customer_id", join_type="left outer")
    )
    actual = _days(scored.column("actual_next_on"))
    last = _days(scored.column("last_purchase_on"))
    repeat = _numbers(scored.column("purchase_days"), 0) >= 2
    first_time = ~repeat
    floor = _epoch_day(today)
    model = _days_or_missing(scored.column("next_order_expected_at"))
    last_interval = last + _numbers(scored.column("last_interval_days"), np.nan)
    simple_day = _days_or_missing(scored.column("simple_interval_on"))
    inside = (actual >= _days_or_missing(scored.column("next_order_earliest"))) & (
        actual <= _days_or_missing(scored.column("next_order_latest"))
    )
    return NextOrderBacktest(
        cutoff=cutoff,
        horizon_days=horizon_days,
        repeat_customers=int(repeat.sum()),
        model_mae_days=_mean_error(model, actual, repeat),
        last_interval_mae_days=_mean_error(last_interval, actual, repeat),
        last_interval_clipped_mae_days=_mean_error(np.fmax(last_interval, floor), actual, repeat),
        simple_interval_mae_days=_mean_error(simple_day, actual, repeat),
        simple_interval_clipped_mae_days=_mean_error(np.fmax(simple_day, floor), actual, repeat),
        coverage=float(inside[repeat].mean()) if repeat.any() else None,
        nominal_coverage=config.coverage,
        first_time_customers=int(first_time.sum()),
        first_time_model_mae_days=_mean_error(model, actual, first_time),
        first_time_simple_interval_mae_days=_mean_error(simple_day, actual, first_time),
    )


def _actual_next_days(
    backend: Backend, snapshot: Snapshot, cutoff: datetime, horizon_days: int, timezone: str
) -> pa.Table:
    """``customer_id, actual_next_on``: the first purchase day in the horizon after the last one.

    A purchase later on the last purchase day before the cutoff is the same
    purchase day, not the next one.
    """
    end = cutoff + timedelta(days=horizon_days)
    history = load_history(backend, snapshot, end, timezone=timezone)
    paid = history.orders.filter(history.orders.paid)
    cutoff_value = ibis.literal(cutoff.astimezone(UTC), type=dt.Timestamp(timezone="UTC"))
    earlier = paid.filter(paid.placed_at < cutoff_value)
    last = earlier.group_by(last_customer=earlier.customer_id).aggregate(
        last_day=earlier.local_day.max()
    )
    later = paid.filter(paid.placed_at >= cutoff_value)
    joined = later.left_join(last, later.customer_id == last.last_customer)
    fresh = joined.filter(joined.last_day.isnull() | (joined.local_day > joined.last_day))
    expr = fresh.group_by("customer_id").aggregate(actual_next_on=fresh.local_day.min())
    return backend.to_pyarrow(expr.mutate(customer_id=expr.customer_id.cast("string")))


def _simple_interval_days(
    backend: Backend, snapshot: Snapshot, cutoff: datetime, timezone: str
) -> pa.Table:
    """``customer_id, simple_interval_on``: the local day of ``expected_next_order_at``."""
    features = compute_features(backend, snapshot, cutoff, timezone=timezone)
    expected = backend.local_wall_clock(features.expected_next_order_at, timezone).date()
    expr = features.select(
        customer_id=features.customer_id.cast("string"), simple_interval_on=expected
    )
    return backend.to_pyarrow(expr.filter(expr.simple_interval_on.notnull()))


def _mean_error(
    predicted: FloatArray | IntArray, actual: IntArray, rows: npt.NDArray[np.bool_]
) -> float | None:
    """Mean absolute error in days over ``rows`` with a prediction; ``None`` over none."""
    errors = np.abs(np.asarray(predicted, dtype=np.float64) - actual)[rows]
    errors = errors[np.isfinite(errors)]
    return float(errors.mean()) if errors.size else None


def _days_or_missing(column: pa.ChunkedArray) -> FloatArray:
    """Days since 1970-01-01 of a date column as floats, NaN for nulls (scoring only)."""
    as_int = pc.cast(pc.cast(column, pa.date32()), pa.int32())
    return _numbers(as_int, np.nan)


def _numbers(column: pa.ChunkedArray | pa.Array, null_as: float) -> FloatArray:
    filled = pc.fill_null(pc.cast(column, pa.float64()), null_as)
    return np.asarray(filled.to_numpy(zero_copy_only=False), dtype=np.float64)


def _days(column: pa.ChunkedArray) -> IntArray:
    """Days since 1970-01-01 of a date column."""
    as_int = pc.cast(column, pa.date32()).cast(pa.int32())
    return np.asarray(as_int.to_numpy(zero_copy_only=False), dtype=np.int64)


def _epoch_day(day: date) -> int:
    return (day - date(1970, 1, 1)).days
