"""The scores our models are measured against: simple rules and the BTYD models' own outputs.

Every churn score here points the same way as the churn probability: a higher score
means more risk, so one AUC, PR-AUC and lift routine serves them all. Each is
computed from data before the cut-off T only, for the customers of the evaluation
rows, in their order:

* recency: days since the last paid order (the rule "silent longest goes first");
* lifecycle stage: the stage under a stage model (the seed000 preset by default) as
  an ordinal risk rank, ``mature`` < ``growth`` < ``introduction`` < ``dormant`` <
  ``churned``. A new customer with one order (``introduction``) is riskier than an
  established one who buys on rhythm and safer than one already past their rhythm;
  the ranks are fixed by that reasoning, not fitted to the outcome;
* BG/NBD and Pareto/NBD: expected purchases in the horizon, negated; 1 - P(alive);
  and BG/NBD's probability of no purchase in the horizon, a calibrated probability
  that can be scored with Brier like ours.

The CLV baseline is the naive "the next horizon repeats the last one": each
customer's paid spend in ``[T - horizon, T)``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import MappingProxyType

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from perennial.features.history import load_history
from perennial.lifecycle.profiles import build_profiles
from perennial.lifecycle.stage_model import StageModel
from perennial.models.bgnbd import BgNbdModel
from perennial.models.btyd_data import BtydSummary, FloatArray
from perennial.models.clv import PurchaseCountModel
from perennial.models.pareto_nbd import ParetoNbdModel
from perennial.store.backends import Backend
from perennial.store.warehouse import Snapshot

__all__ = [
    "SEED000_STAGE_RISK",
    "BaselineScore",
    "bgnbd_no_purchase_probability",
    "churn_baselines",
    "dropout_score",
    "expected_purchases_score",
    "last_horizon_spend",
    "lifecycle_stage_score",
    "lifecycle_stages",
    "recency_score",
    "spend_between",
    "spend_of",
]

SEED000_STAGE_RISK: Mapping[str, int] = MappingProxyType(
    {"mature": 0, "growth": 1, "introduction": 2, "dormant": 3, "churned": 4}
)
"""The seed000 stages as churn risk ranks (see the module docstring for the order)."""


@dataclass(frozen=True, eq=False)
class BaselineScore:
    """One churn score per evaluation row; ``probability`` says Brier and calibration apply."""

    key: str
    label: str
    score: FloatArray
    probability: bool = False


def churn_baselines(
    rows: pa.Table,
    summary: BtydSummary,
    stages: pa.Table,
    *,
    bgnbd: BgNbdModel,
    pareto_nbd: ParetoNbdModel,
    horizon: float,
    stage_model_name: str,
    stage_risk: Mapping[str, int] = SEED000_STAGE_RISK,
) -> tuple[BaselineScore, ...]:
    """Every baseline for the evaluation ``rows``; ``summary`` holds the same customers in the
    same order, ``horizon`` is the churn horizon in the summary's time unit."""
    ids = rows["customer_id"].to_numpy(zero_copy_only=False)
    return (
        BaselineScore("recency", "recency rule: days since the last order", recency_score(rows)),
        BaselineScore(
            "lifecycle",
            f"lifecycle rule: {stage_model_name} stage as a risk rank",
            lifecycle_stage_score(stages, ids, stage_risk),
        ),
        BaselineScore(
            "bgnbd_expected",
            "BG/NBD: fewer expected purchases",
            expected_purchases_score(bgnbd, summary, horizon),
        ),
        BaselineScore(
            "pareto_expected",
            "Pareto/NBD: fewer expected purchases",
            expected_purchases_score(pareto_nbd, summary, horizon),
        ),
        BaselineScore(
            "bgnbd_no_purchase",
            "BG/NBD: P(no purchase in the horizon)",
            bgnbd_no_purchase_probability(bgnbd, summary, horizon),
            probability=True,
        ),
        BaselineScore(
            "bgnbd_dropout",
            "BG/NBD: 1 - P(alive) (0 for one-time buyers)",
            dropout_score(bgnbd, summary),
        ),
    )


def recency_score(rows: pa.Table) -> FloatArray:
    """``recency_days`` of the evaluation rows; a customer who never ordered (null)
    ranks riskiest, just above the largest recency, as in the churn model's rules."""
    if "recency_days" not in rows.column_names:
        raise KeyError("the evaluation rows have no recency_days column")
    values = pc.cast(rows["recency_days"], pa.float64()).to_numpy(zero_copy_only=False)
    recency = np.asarray(values, dtype=np.float64)
    known = recency[np.isfinite(recency)]
    riskiest = float(known.max()) + 1.0 if known.size else 1.0
    return np.where(np.isfinite(recency), recency, riskiest)


def lifecycle_stages(
    backend: Backend,
    snapshot: Snapshot,
    as_of: datetime,
    stage_model: StageModel,
    *,
    timezone: str,
) -> pa.Table:
    """``customer_id`` (string) and ``stage`` of every customer as of ``as_of``."""
    profiles = build_profiles(backend, snapshot, as_of, stage_model, timezone=timezone)
    expr = profiles.select(customer_id=profiles.customer_id.cast("string"), stage=profiles.stage)
    return backend.to_pyarrow(expr)


def lifecycle_stage_score(
    stages: pa.Table,
    customer_ids: npt.ArrayLike,
    stage_risk: Mapping[str, int] = SEED000_STAGE_RISK,
) -> FloatArray:
    """Each customer's stage as its risk rank, in the order of ``customer_ids``.

    Raises ``KeyError`` naming the first customer without a stage, or a stage the
    ranking does not know (give ``stage_risk`` for every stage of the model).
    """
    stage_of = dict(
        zip(stages["customer_id"].to_pylist(), stages["stage"].to_pylist(), strict=True)
    )
    ranks = []
    for customer in np.asarray(customer_ids).astype(str):
        stage = stage_of.get(str(customer))
        if stage is None:
            raise KeyError(f"customer {customer!r} has no lifecycle stage at the cut-off")
        if stage not in stage_risk:
            raise KeyError(
                f"stage {stage!r} (customer {customer!r}) has no risk rank; known: "
                f"{', '.join(stage_risk)}"
            )
        ranks.append(stage_risk[stage])
    return np.asarray(ranks, dtype=np.float64)


def expected_purchases_score(
    model: PurchaseCountModel, summary: BtydSummary, horizon: float
) -> FloatArray:
    """Minus E[purchases in the next ``horizon``] (summary units): fewer means riskier."""
    return -model.conditional_expected_purchases(summary, horizon)


def dropout_score(model: PurchaseCountModel, summary: BtydSummary) -> FloatArray:
    """1 - P(alive at T). Under BG/NBD it is 0 for everyone without a repeat purchase
    (dropout follows a purchase), so it cannot rank one-time buyers at all."""
    return 1.0 - model.p_alive(summary)


def bgnbd_no_purchase_probability(
    model: BgNbdModel, summary: BtydSummary, horizon: float
) -> FloatArray:
    """P(no purchase in (T, T + horizon] | x, t_x, T) under BG/NBD.

    Dead customers never buy; a customer alive at T drops out only after a purchase,
    so they make none in the horizon with the Poisson zero probability averaged over
    the posterior rate Gamma(r + x, alpha + T): ((alpha + T) / (alpha + T + t))^(r + x)
    (Fader, Hardie & Lee 2005, the reasoning behind their eq. 10).
    """
    if not (np.isfinite(horizon) and horizon > 0):
        raise ValueError(f"the horizon must be positive, got {horizon!r}")
    alive = model.p_alive(summary)
    age = model.alpha + summary.T
    log_silent = (model.r + summary.frequency) * (np.log(age) - np.log(age + horizon))
    return np.asarray(1.0 - alive + alive * np.exp(log_silent), dtype=np.float64)


def spend_between(
    backend: Backend, snapshot: Snapshot, start: datetime, end: datetime, *, timezone: str
) -> pa.Table:
    """``customer_id`` (string) and ``spend`` (float64): paid order amounts in ``[start, end)``.

    Amounts are summed as stored, whatever their currency: the BTYD summary's spend
    does the same, so a store must hold one currency for spend to compare.
    """
    if end <= start:
        raise ValueError(f"the spend window is empty: {start.isoformat()} .. {end.isoformat()}")
    history = load_history(backend, snapshot, end, timezone=timezone)
    orders = history.orders
    window = orders.filter(orders.paid, orders.placed_at >= start)
    expr = window.group_by(customer_id=window.customer_id.cast("string")).aggregate(
        spend=window.amount.sum().cast("float64")
    )
    return backend.to_pyarrow(expr)


def spend_of(spend: pa.Table, customer_ids: npt.ArrayLike) -> FloatArray:
    """The ``spend`` column in the order of ``customer_ids``, 0 for customers without any."""
    by_customer = dict(
        zip(spend["customer_id"].to_pylist(), spend["spend"].to_pylist(), strict=True)
    )
    ids = np.asarray(customer_ids).astype(str)
    return np.array([by_customer.get(str(c)) or 0.0 for c in ids], dtype=np.float64)


def last_horizon_spend(
    backend: Backend,
    snapshot: Snapshot,
    cutoff: datetime,
    horizon_days: int,
    customer_ids: npt.ArrayLike,
    *,
    timezone: str,
) -> FloatArray:
    """The naive CLV forecast: each customer's spend in ``[cutoff - horizon, cutoff)``."""
    start = cutoff - timedelta(days=horizon_days)
    return spend_of(
        spend_between(backend, snapshot, start, cutoff, timezone=timezone), customer_ids
    )
