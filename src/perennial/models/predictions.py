"""Every model's answer for every customer as of one instant: the ``predictions`` table.

One row per customer who has bought (or whom the churn model scores), with plain
columns that the serving store, segments and journeys read like any profile field:

* ``p_alive``, ``expected_purchases_90d``, ``expected_purchases_12m``,
  ``expected_average_spend`` and ``clv_12m`` (discounted, the store's currency):
  BG/NBD and Gamma-Gamma fitted on this store's own summary as of the instant
  (weeks; customers' same-day orders are one purchase);
* ``churn_probability``, ``churn_risk_band``, ``churn_percentile``,
  ``churn_reasons_en`` / ``churn_reasons_zh`` (up to three sentences) and
  ``churn_model_version``: the promoted churn model from the registry;
* ``next_order_expected_at``, ``next_order_earliest``, ``next_order_latest``
  (local days): the interval model, which assumes the customer buys again; and
  ``next_order_probability_30d``, its chance of an order within 30 days times
  BG/NBD's P(alive) (so a customer long gone is not "likely to order soon");
* ``replenishment_category`` and ``replenishment_opens_on``: the product category whose
  consumption cycle (the customer's own, or the category's) next opens a window to buy
  again, on or after the as-of's local day: a reminder can go a day or two before it.

A model that cannot run (too little data, no promoted churn model, a fit that does
not converge) leaves its columns null for everyone and says why in
:attr:`PredictionRun.notes`; nothing is ever written as NaN.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

import polars as pl
import pyarrow as pa

from perennial.errors import PerennialError
from perennial.features.btyd import summary_for_btyd
from perennial.features.snapshot import DEFAULT_TIMEZONE
from perennial.models.registry import ModelRegistry, UnknownModelError
from perennial.store.backends import Backend
from perennial.store.warehouse import Snapshot, Warehouse

__all__ = [
    "PREDICTIONS_SCHEMA",
    "PREDICTIONS_TABLE",
    "PredictionRun",
    "compute_predictions",
    "store_predictions",
]

PREDICTIONS_TABLE = "predictions"
_WEEK_DAYS = 7.0

PREDICTIONS_SCHEMA = pa.schema(
    [
        pa.field("customer_id", pa.string(), nullable=False),
        pa.field("as_of", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("p_alive", pa.float64()),
        pa.field("expected_purchases_90d", pa.float64()),
        pa.field("expected_purchases_12m", pa.float64()),
        pa.field("expected_average_spend", pa.float64()),
        pa.field("clv_12m", pa.float64()),
        pa.field("churn_probability", pa.float64()),
        pa.field("churn_risk_band", pa.string()),
        pa.field("churn_percentile", pa.float64()),
        pa.field("churn_reasons_en", pa.list_(pa.string())),
        pa.field("churn_reasons_zh", pa.list_(pa.string())),
        pa.field("churn_model_version", pa.string()),
        pa.field("next_order_expected_at", pa.date32()),
        pa.field("next_order_earliest", pa.date32()),
        pa.field("next_order_latest", pa.date32()),
        pa.field("next_order_probability_30d", pa.float64()),
        pa.field("replenishment_category", pa.string()),
        pa.field("replenishment_opens_on", pa.date32()),
    ]
)


@dataclass
class PredictionRun:
    """The table, and what each model did (parameters, or why it could not run)."""

    table: pa.Table
    notes: list[str] = field(default_factory=list)
    btyd: dict[str, float] = field(default_factory=dict)
    churn_model_version: str | None = None


def compute_predictions(
    backend: Backend,
    snapshot: Snapshot,
    as_of: datetime,
    registry: ModelRegistry,
    *,
    timezone: str = DEFAULT_TIMEZONE,
) -> PredictionRun:
    """All predictions as of ``as_of`` (timezone-aware) from data strictly before it."""
    if as_of.tzinfo is None:
        raise ValueError("as_of must be timezone-aware")
    run = PredictionRun(table=PREDICTIONS_SCHEMA.empty_table())
    parts = [
        _btyd_part(backend, snapshot, as_of, timezone, run),
        _churn_part(backend, snapshot, as_of, timezone, registry, run),
        _next_order_part(backend, snapshot, as_of, timezone),
        _replenishment_part(backend, snapshot, as_of, timezone),
    ]
    run.table = _combine([p for p in parts if p is not None], as_of)
    return run


def store_predictions(warehouse: Warehouse, predictions: pa.Table, batch_id: str) -> int:
    """Replace the warehouse's predictions with ``predictions`` in one atomic commit."""
    if predictions.schema != PREDICTIONS_SCHEMA:
        raise ValueError("predictions must have PREDICTIONS_SCHEMA")
    with warehouse.transaction(batch_id) as txn:
        txn.remove_all(PREDICTIONS_TABLE)
        txn.append_arrow(PREDICTIONS_TABLE, predictions)
    return int(predictions.num_rows)


def _btyd_part(
    backend: Backend, snapshot: Snapshot, as_of: datetime, timezone: str, run: PredictionRun
) -> pl.DataFrame | None:
    """BG/NBD counts and Gamma-Gamma spend; ``None`` (with a note) when they cannot fit."""
    from perennial.models.bgnbd import fit_bgnbd
    from perennial.models.clv import clv_table
    from perennial.models.gamma_gamma import fit_gamma_gamma

    summary = backend.to_pyarrow(
        summary_for_btyd(backend, snapshot, as_of, unit_days=_WEEK_DAYS, timezone=timezone)
    )
    if summary.num_rows == 0:
        run.notes.append("BG/NBD and CLV: no customer has a paid order before the as-of")
        return None
    try:
        counts = fit_bgnbd(summary)
        spend = fit_gamma_gamma(summary)
    except PerennialError as error:
        run.notes.append(f"BG/NBD and CLV not computed: {error}")
        return None
    run.btyd = {f"bgnbd_{k}": v for k, v in counts.params.items()}
    run.btyd.update({f"gamma_gamma_{k}": v for k, v in spend.params.items()})
    values = clv_table(counts, spend, summary, horizon_months=12)
    return pl.DataFrame(
        {
            "customer_id": values["customer_id"].to_pylist(),
            "p_alive": values["p_alive"].to_numpy(),
            "expected_purchases_90d": counts.conditional_expected_purchases(
                summary, 90 / _WEEK_DAYS
            ),
            "expected_purchases_12m": values["expected_purchases"].to_numpy(),
            "expected_average_spend": values["expected_average_spend"].to_numpy(),
            "clv_12m": values["clv"].to_numpy(),
        }
    )


def _churn_part(
    backend: Backend,
    snapshot: Snapshot,
    as_of: datetime,
    timezone: str,
    registry: ModelRegistry,
    run: PredictionRun,
) -> pl.DataFrame | None:
    """The promoted churn model's scores; ``None`` (with a note) when there is none."""
    from perennial.models.churn_scoring import score_customers
    from perennial.models.registry import load_churn_model

    try:
        model, stored = load_churn_model(registry)
    except UnknownModelError as error:
        run.notes.append(f"churn risk not computed: {error}")
        return None
    scores = score_customers(
        backend, snapshot, model, as_of, timezone=timezone, version=stored.version
    )
    run.churn_model_version = stored.version
    return pl.DataFrame(
        scores.select(
            [
                "customer_id",
                "churn_probability",
                "churn_risk_band",
                "churn_percentile",
                "churn_reasons_en",
                "churn_reasons_zh",
                "churn_model_version",
            ]
        )
    )


def _next_order_part(
    backend: Backend, snapshot: Snapshot, as_of: datetime, timezone: str
) -> pl.DataFrame:
    from perennial.models.next_order import predict_next_orders

    table = predict_next_orders(backend, snapshot, as_of, timezone=timezone)
    frame = pl.DataFrame(
        table.select(
            [
                "customer_id",
                "next_order_expected_at",
                "next_order_earliest",
                "next_order_latest",
                "next_order_probability_within_30d",
            ]
        )
    )
    return frame.rename({"next_order_probability_within_30d": "next_order_probability_30d"})


def _replenishment_part(
    backend: Backend, snapshot: Snapshot, as_of: datetime, timezone: str
) -> pl.DataFrame:
    """Each customer's next category window to open on or after the as-of's local day (the
    soonest, ties by category name); customers with none have no row."""
    from perennial.models.category_cycles import category_cycles

    windows = pl.DataFrame(category_cycles(backend, snapshot, as_of, timezone=timezone).windows)
    upcoming = windows.filter(pl.col("days_to_window") >= 0).sort(
        ["customer_id", "window_opens_on", "category"]
    )
    return (
        upcoming.group_by("customer_id", maintain_order=True)
        .first()
        .select(
            "customer_id",
            pl.col("category").alias("replenishment_category"),
            pl.col("window_opens_on").alias("replenishment_opens_on"),
        )
    )


def _combine(parts: list[pl.DataFrame], as_of: datetime) -> pa.Table:
    """Outer-join the parts on ``customer_id``; missing columns null; non-finite -> null."""
    combined: pl.DataFrame | None = None
    for part in parts:
        combined = (
            part
            if combined is None
            else combined.join(part, on="customer_id", how="full", coalesce=True)
        )
    if combined is None or combined.height == 0:
        return PREDICTIONS_SCHEMA.empty_table()
    columns = []
    for column in PREDICTIONS_SCHEMA:
        if column.name == "as_of":
            columns.append(pl.lit(as_of.astimezone(UTC)).alias("as_of"))
        elif column.name not in combined.columns:
            columns.append(pl.lit(None).alias(column.name))
        elif column.type == pa.float64():
            value = pl.col(column.name)
            columns.append(
                pl.when(value.is_finite()).then(value).otherwise(None).alias(column.name)
            )
        else:
            columns.append(pl.col(column.name))
    frame = combined.select(columns)
    if "p_alive" in combined.columns:  # the interval model assumes the customer buys again
        frame = frame.with_columns(
            next_order_probability_30d=pl.col("next_order_probability_30d") * pl.col("p_alive")
        )
    return frame.sort("customer_id").to_arrow().cast(PREDICTIONS_SCHEMA)
