"""Every customer's churn risk as of a date: probability, band, percentile and reasons.

Scoring reads the store as a past cut-off did in training (the same population
rule, the same features, data strictly before ``as_of``), so a score is what the
model was validated on. Customers outside the config's population (by default
those who never ordered) get no row: the model knows nothing about them.

Columns of the result, one row per scored customer, sorted by ``customer_id``:
``customer_id``, ``as_of``, ``churn_probability`` (calibrated, in
``[0.001, 0.999]``), ``churn_risk_band`` (``low`` / ``medium`` / ``high`` /
``critical`` by the config's ``risk_bands``; defaults 0.3, 0.5, 0.7),
``churn_percentile`` (share of scored customers at or below this probability,
0-100), ``churn_reasons_en`` and ``churn_reasons_zh`` (up to three sentences),
``churn_reason_features`` (the features behind them) and ``churn_model_version``.
"""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pyarrow as pa
from scipy.stats import rankdata

from perennial.features.snapshot import DEFAULT_TIMEZONE
from perennial.models.churn_labels import ExtraFeatures, ExtraFeaturesError, population_at
from perennial.models.churn_model import ChurnModel
from perennial.models.churn_reasons import churn_reasons
from perennial.store.backends import Backend
from perennial.store.warehouse import Snapshot

__all__ = ["SCORE_SCHEMA", "score_customers", "score_rows"]

SCORE_SCHEMA = pa.schema(
    [
        pa.field("customer_id", pa.string(), nullable=False),
        pa.field("as_of", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("churn_probability", pa.float64(), nullable=False),
        pa.field("churn_risk_band", pa.string(), nullable=False),
        pa.field("churn_percentile", pa.float64(), nullable=False),
        pa.field("churn_reasons_en", pa.list_(pa.string()), nullable=False),
        pa.field("churn_reasons_zh", pa.list_(pa.string()), nullable=False),
        pa.field("churn_reason_features", pa.list_(pa.string()), nullable=False),
        pa.field("churn_model_version", pa.string()),
    ]
)


def score_customers(
    backend: Backend,
    snapshot: Snapshot,
    model: ChurnModel,
    as_of: datetime,
    *,
    timezone: str = DEFAULT_TIMEZONE,
    extra_features: ExtraFeatures | None = None,
    version: str | None = None,
) -> pa.Table:
    """Score the population as of ``as_of`` (timezone-aware); see the module for columns.

    A model trained with extra features needs the same ``extra_features`` source.
    """
    if model.extra_features and extra_features is None:
        raise ExtraFeaturesError(
            f"this churn model was trained with extra features {list(model.extra_features)}; "
            "pass the same source to score with it"
        )
    rows = population_at(
        backend, snapshot, as_of, model.config, timezone=timezone, extra_features=extra_features
    )
    return score_rows(model, rows, as_of, version=version)


def score_rows(
    model: ChurnModel, rows: pa.Table, as_of: datetime, *, version: str | None = None
) -> pa.Table:
    """Score feature rows already read (the columns :func:`population_at` gives)."""
    missing = [name for name in model.extra_features if name not in rows.column_names]
    if missing:
        raise ExtraFeaturesError(f"the rows lack the model's extra features {missing}")
    if rows.num_rows == 0:
        return SCORE_SCHEMA.empty_table()
    probability = model.predict_proba(rows)
    reasons = churn_reasons(model, rows)
    bands = model.config.risk_bands
    percentile = 100.0 * rankdata(probability, method="max") / probability.shape[0]
    count = rows.num_rows
    return pa.table(
        {
            "customer_id": rows["customer_id"],
            "as_of": pa.array([as_of.astimezone(UTC)] * count, pa.timestamp("us", tz="UTC")),
            "churn_probability": probability,
            "churn_risk_band": [bands.band(float(p)) for p in probability],
            "churn_percentile": np.round(percentile, 1),
            "churn_reasons_en": [[r.en for r in row] for row in reasons],
            "churn_reasons_zh": [[r.zh for r in row] for row in reasons],
            "churn_reason_features": [[r.feature for r in row] for row in reasons],
            "churn_model_version": pa.array([version] * count, pa.string()),
        },
        schema=SCORE_SCHEMA,
    )
