"""The answers the models are graded against: each customer's latent traits and fate.

Not an ingest input. ``purchase_rate_per_week`` and ``dropout_probability`` are
the BG/NBD ``lambda`` and ``p`` the customer was drawn with, ``mean_spend`` the
Gamma-Gamma mean order value in CNY; ``churned_at`` is when the customer left
(UTC), null when still active at the end of the period.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from perennial.demo.calendar import DemandCalendar
from perennial.demo.catalog import CATEGORIES
from perennial.demo.education import EDUCATION_STATUSES, NOT_A_LEARNER
from perennial.demo.population import Population

__all__ = ["GROUND_TRUTH_SCHEMA", "ground_truth_table"]

GROUND_TRUTH_SCHEMA = pa.schema(
    [
        pa.field("customer_id", pa.string(), nullable=False),
        pa.field("purchase_rate_per_week", pa.float64(), nullable=False),
        pa.field("dropout_probability", pa.float64(), nullable=False),
        pa.field("mean_spend", pa.float64(), nullable=False),
        pa.field("alive_at_end", pa.bool_(), nullable=False),
        pa.field("churned_at", pa.timestamp("us", tz="UTC")),
        pa.field("favourite_category", pa.string(), nullable=False),
        pa.field("education_status", pa.string()),
    ]
)


def ground_truth_table(
    population: Population,
    calendar: DemandCalendar,
    customer_ids: pa.Array,
    churn_days: npt.NDArray[np.float64],
    education_status: npt.NDArray[np.int64],
) -> pa.Table:
    """One row per customer of the block; ``churn_days`` is ``inf`` for those still active."""
    churned = np.isfinite(churn_days)
    churned_seconds = calendar.epoch_seconds(np.where(churned, churn_days, 0.0))
    learner = education_status != NOT_A_LEARNER
    return pa.Table.from_arrays(
        [
            customer_ids,
            pa.array(population.purchase_rate),
            pa.array(population.dropout_probability),
            pa.array(population.mean_spend),
            pa.array(~churned),
            pa.array(churned_seconds * 1_000_000, pa.timestamp("us", tz="UTC"), mask=~churned),
            pa.array([c.name for c in CATEGORIES]).take(pa.array(population.favourite_category)),
            pa.array(EDUCATION_STATUSES).take(
                pa.array(np.where(learner, education_status, 0), mask=~learner)
            ),
        ],
        schema=GROUND_TRUTH_SCHEMA,
    )
