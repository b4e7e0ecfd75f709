"""Labelled rows from past cut-offs: features as of ``T``, the outcome in ``[T, T + horizon)``.

Every row is one customer of the config's population at one cut-off ``T``: the
feature layer's row as of ``T`` (rows strictly before ``T``), optional extra
columns computed as of ``T`` by another model, and ``churned``, true when the
config's activity (a paid order, or an event type) is absent from the half-open
window ``[T, T + horizon)``. The two intervals meet at ``T`` and do not overlap,
so a row at ``T`` exactly is seen by the outcome, never by the features, and
data at or after ``T + horizon`` is read by neither: that is what keeps the
labels honest (DESIGN.md rule 1). Cut-offs are placed by :func:`split_cutoffs`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any, Literal, TypeAlias

import ibis  # type: ignore[import-untyped]
import ibis.expr.types as ir  # type: ignore[import-untyped]
import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from perennial.errors import ExitCode, PerennialError
from perennial.features.history import History, days_between, load_history
from perennial.features.snapshot import DEFAULT_TIMEZONE, compute_features
from perennial.models.churn_config import PAID_ORDER, ChurnConfig
from perennial.store.backends import Backend
from perennial.store.warehouse import Snapshot

__all__ = [
    "ExtraFeatures",
    "ExtraFeaturesError",
    "InsufficientDataError",
    "SplitCutoffs",
    "activity_summary",
    "churned_flags",
    "data_end_of",
    "extra_columns_at",
    "label_checks",
    "labelled_rows",
    "population_at",
    "population_rows",
    "require_enough_labels",
    "split_cutoffs",
]

ExtraFeatures: TypeAlias = Callable[[datetime], pa.Table] | pa.Table
"""More columns joined on ``customer_id``, such as BG/NBD P(alive) and expected purchases.

A callable gets the cut-off and returns ``customer_id`` plus numeric columns
computed from data before it (point in time: this is the caller's promise). A
table instead holds ``customer_id``, ``as_of`` and the columns for every cut-off
it serves; rows are matched on ``as_of == T``.
"""


class InsufficientDataError(PerennialError):
    """Too few labelled customers, or too few of one class, to train or judge a model."""

    exit_code = ExitCode.INVALID_INPUT


class ExtraFeaturesError(PerennialError):
    """The extra columns cannot be joined: no ``customer_id``, non-numeric, or no rows for T."""


@dataclass(frozen=True)
class SplitCutoffs:
    """The cut-offs of one training run, every outcome window ending by ``data_end``.

    ``validation`` is the latest cut-off with a complete window; ``calibration`` is
    one horizon before it and the ``training`` cut-offs (ascending) end one horizon
    before that, so each split's outcomes precede the next split's cut-off: the
    validation metrics are out of time.
    """

    data_end: datetime
    training: tuple[datetime, ...]
    calibration: datetime
    validation: datetime


def split_cutoffs(data_end: datetime, config: ChurnConfig) -> SplitCutoffs:
    """Cut-offs at UTC midnights for data ending at ``data_end`` (timezone-aware)."""
    if data_end.tzinfo is None:
        raise ValueError(f"data_end must carry a time zone, got naive {data_end.isoformat()}")
    horizon = timedelta(days=config.label.horizon_days)
    latest = (data_end.astimezone(UTC) - horizon).date()
    validation = datetime.combine(latest, time(), tzinfo=UTC)
    calibration = validation - horizon
    last_training = calibration - horizon
    step = timedelta(days=config.training.step_days)
    training = tuple(
        last_training - step * k for k in reversed(range(config.training.train_cutoffs))
    )
    return SplitCutoffs(data_end, training, calibration, validation)


def data_end_of(backend: Backend, snapshot: Snapshot) -> datetime | None:
    """The latest order or event time in the store (UTC); None for a store without either."""
    orders = backend.table("orders", snapshot)
    events = backend.table("events", snapshot)
    latest = [
        backend.to_pyarrow(orders.aggregate(latest=orders.placed_at.max()))["latest"][0].as_py(),
        backend.to_pyarrow(events.aggregate(latest=events.ts.max()))["latest"][0].as_py(),
    ]
    known = [instant for instant in latest if instant is not None]
    return max(known).astimezone(UTC) if known else None


def activity_summary(history: History, activity: str, cutoff: datetime) -> ir.Table:
    """Per customer: ``last_activity_at`` before ``cutoff`` and ``stayed`` (any activity from
    ``cutoff`` on), over ``history`` loaded up to the end of the outcome window."""
    if activity == PAID_ORDER:
        orders = history.orders.filter(history.orders.paid)
        rows = orders.select("customer_id", at=orders.placed_at)
    else:
        events = history.events.filter(history.events.event_type == activity)
        rows = events.select("customer_id", at=events.ts)
    before = rows.at < cutoff
    return rows.group_by("customer_id").aggregate(
        last_activity_at=rows.at.max(where=before),
        stayed=rows.count(where=~before) > 0,
    )


def population_rows(features: ir.Table, summary: ir.Table, config: ChurnConfig) -> ir.Table:
    """The feature rows of the config's population, with ``stayed`` from ``summary``."""
    joined = features.left_join(summary, features.customer_id == summary.customer_id)
    table = joined.select(
        *[features[c] for c in features.columns],
        summary.last_activity_at,
        activity_recency_days=days_between(features.as_of, summary.last_activity_at),
        stayed=summary.stayed.fill_null(False),
    )
    population = config.population
    conditions = [table.frequency_orders >= population.min_paid_orders]
    if population.min_tenure_days > 0:
        conditions.append(table.tenure_days >= population.min_tenure_days)
    if population.active_within_days is not None:
        days = population.active_within_days
        conditions.append(table.last_activity_at >= table.as_of - _days(days))
    return table.filter(*conditions)


def labelled_rows(
    backend: Backend,
    snapshot: Snapshot,
    cutoff: datetime,
    config: ChurnConfig,
    *,
    timezone: str = DEFAULT_TIMEZONE,
    extra_features: ExtraFeatures | None = None,
) -> pa.Table:
    """The population at ``cutoff`` with its features and ``churned``, sorted by customer.

    Columns: ``customer_id``, ``cutoff``, ``churned`` (bool), every feature of the
    feature layer as of ``cutoff``, ``activity_recency_days`` (days since the last
    activity before ``cutoff``, the recency rule's score), then the extra columns.
    The store must hold the whole outcome window; the caller places ``cutoff``
    (see :func:`split_cutoffs`).
    """
    window_end = cutoff.astimezone(UTC) + timedelta(days=config.label.horizon_days)
    return _rows(backend, snapshot, cutoff, window_end, config, timezone, extra_features)


def population_at(
    backend: Backend,
    snapshot: Snapshot,
    as_of: datetime,
    config: ChurnConfig,
    *,
    timezone: str = DEFAULT_TIMEZONE,
    extra_features: ExtraFeatures | None = None,
) -> pa.Table:
    """The rows a scorer sees at ``as_of``: :func:`labelled_rows` without the future.

    Nothing at or after ``as_of`` is read, so ``churned`` is false on every row and
    means nothing; scoring ignores it.
    """
    return _rows(backend, snapshot, as_of, as_of, config, timezone, extra_features)


def _rows(
    backend: Backend,
    snapshot: Snapshot,
    cutoff: datetime,
    read_until: datetime,
    config: ChurnConfig,
    timezone: str,
    extra_features: ExtraFeatures | None,
) -> pa.Table:
    cutoff = cutoff.astimezone(UTC)
    features = compute_features(backend, snapshot, cutoff, timezone=timezone)
    outcome_history = load_history(backend, snapshot, read_until, timezone=timezone)
    summary = activity_summary(outcome_history, config.label.activity, cutoff)
    rows = backend.to_pyarrow(population_rows(features, summary, config))
    rows = _labelled(rows, cutoff)
    if extra_features is not None:
        rows = _join_extra(rows, extra_columns_at(extra_features, cutoff))
    return rows.sort_by("customer_id")


def churned_flags(rows: pa.Table) -> npt.NDArray[np.bool_]:
    """The ``churned`` column as a numpy bool array."""
    return np.asarray(rows["churned"].to_numpy(zero_copy_only=False), dtype=np.bool_)


def require_enough_labels(
    split: Literal["training", "calibration", "validation"],
    tables: list[pa.Table],
    cutoffs: SplitCutoffs,
    config: ChurnConfig,
) -> None:
    """Refuse, with the numbers found and needed, when a split is too small or lacks a class.

    The training cut-offs together need ``training.min_labelled`` rows; every split
    needs ``training.min_per_class`` churned and as many retained customers.
    """
    need = config.training
    if split == "training":
        first, last = cutoffs.training[0], cutoffs.training[-1]
        where = f"the {len(tables)} training cut-offs ({first:%Y-%m-%d} .. {last:%Y-%m-%d})"
        min_rows = need.min_labelled
    else:
        cutoff = cutoffs.calibration if split == "calibration" else cutoffs.validation
        where, min_rows = f"the {split} cut-off {cutoff:%Y-%m-%d}", 0
    rows = sum(t.num_rows for t in tables)
    churned = sum(int(churned_flags(t).sum()) for t in tables)
    retained = rows - churned
    if rows < min_rows or min(churned, retained) < need.min_per_class:
        raise InsufficientDataError(
            f"too little data to train a churn model: {where} hold {rows} labelled "
            f"customers ({churned} churned, {retained} retained); needed at least "
            f"{max(min_rows, 2 * need.min_per_class)} with {need.min_per_class} churned and "
            f"{need.min_per_class} retained (data ends {cutoffs.data_end:%Y-%m-%d}, horizon "
            f"{config.label.horizon_days} d). Load more history or lower "
            "training.min_labelled / training.min_per_class in the churn config"
        )


def label_checks(splits: list[pa.Table], features: tuple[str, ...]) -> dict[str, Any]:
    """What the registry records about the data: rows and churned per cut-off, and the
    share of missing values of each feature column (derived features are left out)."""
    per_cutoff = [
        {
            "cutoff": table["cutoff"][0].as_py().isoformat() if table.num_rows else None,
            "rows": table.num_rows,
            "churned": int(churned_flags(table).sum()),
        }
        for table in splits
    ]
    rows = sum(t.num_rows for t in splits)
    missing = {
        name: round(sum(t[name].null_count for t in splits) / rows, 4) if rows else 0.0
        for name in features
        if all(name in t.column_names for t in splits)
    }
    return {"rows": rows, "per_cutoff": per_cutoff, "missing_share": missing}


def extra_columns_at(source: ExtraFeatures, cutoff: datetime) -> pa.Table:
    """The extra columns as of ``cutoff``: ``customer_id`` plus numeric columns."""
    if isinstance(source, pa.Table):
        if "as_of" not in source.column_names:
            raise ExtraFeaturesError(
                "an extra-feature table needs an as_of column (one block of rows per cut-off), "
                "else one table would serve every cut-off and leak the future"
            )
        as_of = pc.cast(source["as_of"], pa.timestamp("us", tz="UTC"))
        table = source.filter(pc.equal(as_of, pa.scalar(cutoff, pa.timestamp("us", tz="UTC"))))
        table = table.drop_columns(["as_of"])
        if table.num_rows == 0:
            raise ExtraFeaturesError(f"the extra-feature table has no rows as of {cutoff}")
    else:
        table = source(cutoff)
    _check_extra(table)
    return table


def _check_extra(table: pa.Table) -> None:
    if "customer_id" not in table.column_names:
        raise ExtraFeaturesError("extra features need a customer_id column")
    for field in table.schema:
        if field.name == "customer_id":
            continue
        if not (pa.types.is_integer(field.type) or pa.types.is_floating(field.type)):
            raise ExtraFeaturesError(f"extra feature {field.name!r} is {field.type}, not numeric")
    if pc.count_distinct(table["customer_id"]).as_py() != table.num_rows:
        raise ExtraFeaturesError("extra features hold more than one row for a customer")


def _join_extra(rows: pa.Table, extra: pa.Table) -> pa.Table:
    clashes = set(extra.column_names) & set(rows.column_names) - {"customer_id"}
    if clashes:
        raise ExtraFeaturesError(f"extra features repeat existing columns: {sorted(clashes)}")
    extra = extra.set_column(
        extra.column_names.index("customer_id"),
        "customer_id",
        pc.cast(extra["customer_id"], pa.string()),
    )
    return rows.join(extra, "customer_id", join_type="left outer")


def _labelled(rows: pa.Table, cutoff: datetime) -> pa.Table:
    """``customer_id``, ``cutoff``, ``churned`` first, then the features and
    ``activity_recency_days`` (days since the last activity before ``cutoff``)."""
    churned = pc.invert(rows["stayed"])
    rest = rows.drop_columns(["stayed", "last_activity_at"])
    cutoffs = pa.array([cutoff] * rows.num_rows, pa.timestamp("us", tz="UTC"))
    head = {"customer_id": rest["customer_id"], "cutoff": cutoffs, "churned": churned}
    tail = {name: rest[name] for name in rest.column_names if name != "customer_id"}
    return pa.table({**head, **tail})


def _days(days: int) -> ir.IntervalScalar:
    """``days`` 24-hour days, in seconds as the feature layer counts them."""
    return ibis.interval(days * 86_400, unit="s")
