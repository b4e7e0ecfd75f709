"""The honest backtest: our models and their baselines scored at one cut-off, on the same customers.

Everything is measured at a cut-off T (timezone-aware) against outcomes in
``[T, T + horizon)``, the churn module's convention, from models that saw only data
before T:

* churn: our classifier comes from ``train_churn_model(data_end=T)``, whose own split
  validates on ``[T - h, T)`` and fits trees and calibrator on earlier windows;
  :func:`require_outcomes_before` checks that no window it used reaches past T. It
  and every baseline of :mod:`backtest_baselines` then score the population at T;
* BTYD: BG/NBD, Pareto/NBD and Gamma-Gamma fitted on the summary as of T, with their
  holdout purchases by calibration frequency (``btyd_checks``);
* CLV: BG/NBD x Gamma-Gamma expected spend over exactly the horizon, undiscounted
  (``clv.customer_lifetime_value`` with no discount, at a horizon that need not be
  whole months), against the actual paid spend, by decile of the prediction;
* next order: ``backtest_next_orders`` (our dates against the last-interval rule).

AUC, PR-AUC and Brier are scikit-learn's. Lift and calibration bins are written
here because scores with few distinct values (a lifecycle stage has five) need ties
shared fairly: the top decile takes a pro-rata part of the tie group straddling its
edge, so an ordinal rule is neither flattered nor punished by the sort order.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from datetime import UTC, date, datetime, time, timedelta
from time import perf_counter
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt
import pyarrow as pa
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score

from perennial.errors import ExitCode, PerennialError
from perennial.features.btyd import summary_for_btyd
from perennial.lifecycle.presets import resolve_model_path
from perennial.lifecycle.stage_model import StageModel, load_stage_model
from perennial.models.backtest_baselines import (
    SEED000_STAGE_RISK,
    BaselineScore,
    churn_baselines,
    last_horizon_spend,
    lifecycle_stages,
    spend_between,
    spend_of,
)
from perennial.models.bgnbd import BgNbdModel, fit_bgnbd
from perennial.models.btyd_checks import (
    HoldoutGroup,
    conditional_expectations_by_frequency,
    holdout_purchases,
)
from perennial.models.btyd_data import BtydSummary, FloatArray
from perennial.models.churn_config import ChurnConfig, parse_churn_config
from perennial.models.churn_labels import (
    InsufficientDataError,
    churned_flags,
    data_end_of,
    labelled_rows,
    split_cutoffs,
)
from perennial.models.churn_model import ChurnModel, train_churn_model
from perennial.models.gamma_gamma import GammaGammaModel, fit_gamma_gamma
from perennial.models.next_order_backtest import NextOrderBacktest, backtest_next_orders
from perennial.models.pareto_nbd import ParetoNbdModel, fit_pareto_nbd
from perennial.store.backends import Backend
from perennial.store.warehouse import Snapshot

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

__all__ = [
    "CDNOW_CUTOFF",
    "CDNOW_HOLDOUT_DAYS",
    "CDNOW_SHORT_CHURN_DAYS",
    "CDNOW_TIMEZONE",
    "DEMO_CUTOFF",
    "DEMO_HORIZON_DAYS",
    "DEMO_TIMEZONE",
    "BacktestError",
    "BacktestPlan",
    "BtydFits",
    "BtydHoldout",
    "CalibrationBin",
    "ChurnBacktest",
    "ClvBacktest",
    "ClvDecile",
    "ScoreMetrics",
    "StoreBacktest",
    "align_summary",
    "backtest_churn",
    "backtest_store",
    "brier",
    "btyd_holdout",
    "calibration_bins",
    "cdnow_plan",
    "clv_backtest",
    "demo_plan",
    "fit_btyd",
    "latent_dropouts",
    "lift_at",
    "measure_score",
    "pr_auc",
    "predicted_holdout_spend",
    "require_outcomes_before",
    "roc_auc",
    "top_fraction_mean",
]

BoolArray = npt.NDArray[np.bool_]
Progress = Callable[[str], None]

DEMO_TIMEZONE = "Asia/Shanghai"
DEMO_CUTOFF = date(2025, 10, 1)
DEMO_HORIZON_DAYS = 90
"""The demo runs 2024-01-01 .. 2025-12-31: T = 2025-10-01 leaves one 90-day window after it
and 21 months before it, enough for the churn model's split (three horizons and more)."""

CDNOW_TIMEZONE = "America/New_York"
CDNOW_CUTOFF = date(1997, 10, 1)
CDNOW_HOLDOUT_DAYS = 273
"""The literature's split: calibration to 1997-09-30, holdout to 1998-06-30 (39 weeks)."""
CDNOW_SHORT_CHURN_DAYS = 61
"""A churn horizon the nine months of CDNOW before T can train: three horizons and two
training cut-offs 30 days apart fit after the cohort's first purchases (from 1997-03-02)."""


class BacktestError(PerennialError):
    """The store cannot answer the backtest honestly: outcomes missing, or a model saw them."""

    exit_code = ExitCode.INVALID_INPUT


def _require_finite(instance: DataclassInstance) -> None:
    """Dataclass check: every float field is finite (None allowed), so no NaN reaches a report."""
    for item in fields(instance):
        value = getattr(instance, item.name)
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"{type(instance).__name__}.{item.name} is {value}, not finite")


# ---------------------------------------------------------------- metrics


def _scores(score: npt.ArrayLike, values: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
    s = np.asarray(score, dtype=np.float64)
    v = np.asarray(values, dtype=np.float64)
    if s.ndim != 1 or v.shape != s.shape:
        raise ValueError(f"expected two 1-d arrays of one length, got {s.shape} and {v.shape}")
    if s.size == 0:
        raise ValueError("there are no customers to score")
    for name, array in (("score", s), ("outcome", v)):
        bad = np.flatnonzero(~np.isfinite(array))
        if bad.size:
            raise ValueError(f"{name} at position {bad[0]} is {array[bad[0]]}, not finite")
    return s, v


def _binary(score: npt.ArrayLike, outcome: npt.ArrayLike) -> tuple[FloatArray, BoolArray]:
    """Checked scores and outcomes; both outcomes must occur (a rank needs something to rank)."""
    s, y = _scores(score, outcome)
    if not np.all((y == 0) | (y == 1)):
        raise ValueError("outcome must be true/false (or 1/0) for every customer")
    churned = int(y.sum())
    if churned in (0, y.size):
        raise ValueError(
            f"needs customers of both outcomes: {y.size} customers, {churned} with the outcome"
        )
    return s, y.astype(np.bool_)


def roc_auc(score: npt.ArrayLike, outcome: npt.ArrayLike) -> float:
    """Area under the ROC curve (ties count half): 1 perfect, 0.5 a coin, 0 inverted."""
    s, y = _binary(score, outcome)
    return float(roc_auc_score(y, s))


def pr_auc(score: npt.ArrayLike, outcome: npt.ArrayLike) -> float:
    """Average precision; a random ranking scores the base rate, not 0.5."""
    s, y = _binary(score, outcome)
    return float(average_precision_score(y, s))


def brier(probability: npt.ArrayLike, outcome: npt.ArrayLike) -> float:
    """Mean squared error of probabilities; predicting the base rate p scores p (1 - p)."""
    p, y = _binary(probability, outcome)
    if np.any((p < 0) | (p > 1)):
        raise ValueError("a Brier score needs probabilities in [0, 1]")
    return float(brier_score_loss(y, p))


def top_fraction_mean(score: npt.ArrayLike, values: npt.ArrayLike, fraction: float = 0.1) -> float:
    """Mean of ``values`` over the ``fraction`` of customers with the highest scores.

    The group of tied scores that straddles the edge contributes pro rata: the
    expected mean under a random order within ties.
    """
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"fraction must lie in (0, 1], got {fraction}")
    s, v = _scores(score, values)
    order = np.argsort(-s, kind="stable")
    _, start, count = np.unique(-s[order], return_index=True, return_counts=True)
    wanted = fraction * s.size
    weight = np.repeat(np.clip(wanted - start, 0.0, count) / count, count)
    return float(np.dot(weight, v[order]) / wanted)


def lift_at(score: npt.ArrayLike, outcome: npt.ArrayLike, fraction: float = 0.1) -> float:
    """The outcome rate among the top ``fraction`` by score over the overall rate."""
    s, y = _binary(score, outcome)
    return top_fraction_mean(s, y, fraction) / float(y.mean())


@dataclass(frozen=True)
class CalibrationBin:
    """Customers of one bin of predicted probability: the mean prediction and the rate seen."""

    customers: int
    mean_predicted: float
    observed_rate: float

    def __post_init__(self) -> None:
        _require_finite(self)


def calibration_bins(
    probability: npt.ArrayLike, outcome: npt.ArrayLike, bins: int = 10
) -> tuple[CalibrationBin, ...]:
    """Equal-count bins (deciles by default) of the predicted probability, lowest first."""
    p, y = _scores(probability, outcome)
    if bins < 1 or p.size < bins:
        raise ValueError(f"cannot cut {p.size} customers into {bins} bins")
    groups = np.array_split(np.argsort(p, kind="stable"), bins)
    return tuple(
        CalibrationBin(len(group), float(p[group].mean()), float(y[group].mean()))
        for group in groups
    )


# ---------------------------------------------------------------- churn


@dataclass(frozen=True)
class ScoreMetrics:
    """How one churn score ranks (and, for a probability, predicts) the outcome.

    ``latent_auc`` is the AUC against the demo's ground truth "had already dropped
    out before T", where it is known.
    """

    key: str
    label: str
    auc: float
    pr_auc: float
    lift_top_decile: float
    brier: float | None = None
    calibration: tuple[CalibrationBin, ...] = ()
    latent_auc: float | None = None

    def __post_init__(self) -> None:
        _require_finite(self)


def measure_score(
    key: str,
    label: str,
    score: npt.ArrayLike,
    churned: npt.ArrayLike,
    *,
    probability: bool = False,
    latent_dropped: npt.ArrayLike | None = None,
) -> ScoreMetrics:
    """Every metric of one score; Brier and calibration only for a ``probability``."""
    latent = None if latent_dropped is None else np.asarray(latent_dropped, dtype=np.bool_)
    return ScoreMetrics(
        key=key,
        label=label,
        auc=roc_auc(score, churned),
        pr_auc=pr_auc(score, churned),
        lift_top_decile=lift_at(score, churned, 0.1),
        brier=brier(score, churned) if probability else None,
        calibration=calibration_bins(score, churned) if probability else (),
        latent_auc=roc_auc(score, latent)
        if latent is not None and 0 < latent.sum() < latent.size
        else None,
    )


@dataclass(frozen=True)
class ChurnBacktest:
    """Our churn model (when it could be trained) and the baselines on the population at T.

    ``scores`` lists ours first (key ``ours``), then the baselines; ``model_note``
    says what the model was trained on, or why there is none.
    """

    cutoff: datetime
    horizon_days: int
    definition: str
    customers: int
    churned: int
    scores: tuple[ScoreMetrics, ...]
    model_note: str
    activity: str = "paid_order"
    latent_dropped: int | None = None

    @property
    def base_rate(self) -> float:
        return self.churned / self.customers

    @property
    def model(self) -> ScoreMetrics | None:
        return next((s for s in self.scores if s.key == "ours"), None)

    @property
    def baselines(self) -> tuple[ScoreMetrics, ...]:
        return tuple(s for s in self.scores if s.key != "ours")


@dataclass(frozen=True)
class BacktestPlan:
    """What to measure on one store: the cut-off T, the outcome window, the churn definitions.

    ``horizon_days`` is the outcome window of BTYD, CLV and next-order checks; every
    churn definition's horizon must fit inside it. ``stage_risk`` ranks the stages
    of ``stage_model`` for the lifecycle rule.
    """

    dataset: str
    description: str
    cutoff: datetime
    horizon_days: int
    timezone: str
    churn_configs: tuple[ChurnConfig, ...]
    stage_model: StageModel
    stage_risk: Mapping[str, int] = field(default_factory=lambda: dict(SEED000_STAGE_RISK))
    unit_days: float = 7.0

    def __post_init__(self) -> None:
        if self.cutoff.tzinfo is None or self.cutoff.utcoffset() is None:
            raise ValueError(f"the cut-off must carry a time zone, got {self.cutoff.isoformat()}")
        if self.horizon_days < 1:
            raise ValueError(f"horizon_days must be at least 1, got {self.horizon_days}")
        for config in self.churn_configs:
            if config.label.horizon_days > self.horizon_days:
                raise ValueError(
                    f"churn definition {config.name!r} looks {config.label.horizon_days} days "
                    f"ahead, past the plan's {self.horizon_days}-day outcome window"
                )

    @property
    def window_end(self) -> datetime:
        """The end of the outcome window (exclusive), counted in UTC as the churn labels are."""
        return self.cutoff.astimezone(UTC) + timedelta(days=self.horizon_days)


@dataclass(frozen=True)
class BtydFits:
    """The BTYD summary as of T (weeks when ``unit_days`` is 7) and the models fitted on it."""

    calibration: BtydSummary
    bgnbd: BgNbdModel
    pareto_nbd: ParetoNbdModel
    gamma_gamma: GammaGammaModel
    unit_days: float


def fit_btyd(
    backend: Backend, snapshot: Snapshot, cutoff: datetime, *, timezone: str, unit_days: float = 7.0
) -> BtydFits:
    """Fit BG/NBD, Pareto/NBD and Gamma-Gamma on every customer who bought before ``cutoff``."""
    summary = _btyd_summary(backend, snapshot, cutoff, timezone, unit_days)
    return BtydFits(
        summary, fit_bgnbd(summary), fit_pareto_nbd(summary), fit_gamma_gamma(summary), unit_days
    )


def _btyd_summary(
    backend: Backend, snapshot: Snapshot, end: datetime, timezone: str, unit_days: float
) -> BtydSummary:
    expr = summary_for_btyd(backend, snapshot, end, unit_days=unit_days, timezone=timezone)
    return BtydSummary.from_arrow(backend.to_pyarrow(expr.order_by("customer_id")))


def align_summary(summary: BtydSummary, customer_ids: npt.ArrayLike) -> BtydSummary:
    """The summary's rows for ``customer_ids``, in that order; every one must be there."""
    position = {str(c): i for i, c in enumerate(summary.customer_id)}
    wanted = np.asarray(customer_ids).astype(str)
    missing = [c for c in wanted if c not in position]
    if missing:
        raise BacktestError(
            f"customer {missing[0]!r} (and {len(missing) - 1} more) is scored at the cut-off "
            "but has no BTYD summary: it has no paid order before the cut-off"
        )
    index = np.array([position[c] for c in wanted], dtype=np.intp)
    spend = None if summary.monetary_value is None else summary.monetary_value[index]
    return BtydSummary.from_arrays(
        summary.frequency[index],
        summary.recency[index],
        summary.T[index],
        monetary_value=spend,
        customer_id=summary.customer_id[index],
    )


def require_outcomes_before(
    metadata: Mapping[str, object], horizon_days: int, cutoff: datetime
) -> None:
    """Raise :class:`BacktestError` when a trained model's validation window reaches past
    ``cutoff``: it would have been tuned on the outcomes it is now judged on."""
    cutoffs = metadata.get("cutoffs")
    if not isinstance(cutoffs, Mapping) or not isinstance(cutoffs.get("validation"), str):
        raise BacktestError("the churn model's metadata names no validation cut-off")
    seen_until = datetime.fromisoformat(cutoffs["validation"]) + timedelta(days=horizon_days)
    if seen_until > cutoff:
        raise BacktestError(
            f"the churn model used outcomes up to {seen_until.isoformat()}, after the "
            f"evaluation cut-off {cutoff.isoformat()}: its score would be leaked"
        )


def latent_dropouts(
    ground_truth: pa.Table, customer_ids: npt.ArrayLike, cutoff: datetime
) -> BoolArray:
    """The demo's truth: had each customer dropped out (``churned_at``) before ``cutoff``?"""
    churned_at = dict(
        zip(
            ground_truth["customer_id"].to_pylist(),
            ground_truth["churned_at"].to_pylist(),
            strict=True,
        )
    )
    wanted = np.asarray(customer_ids).astype(str)
    missing = [c for c in wanted if c not in churned_at]
    if missing:
        raise BacktestError(f"customer {missing[0]!r} is not in the ground truth")
    return np.array(
        [churned_at[c] is not None and churned_at[c] < cutoff for c in wanted], dtype=np.bool_
    )


def backtest_churn(
    backend: Backend,
    snapshot: Snapshot,
    plan: BacktestPlan,
    config: ChurnConfig,
    fits: BtydFits,
    stages: pa.Table,
    *,
    ground_truth: pa.Table | None = None,
    progress: Progress | None = None,
) -> ChurnBacktest:
    """Train on data before T, then score the population at T with ours and every baseline."""
    report = progress or _quiet
    model, note = _model_trained_before(backend, snapshot, plan, config, report)
    report(f"scoring churn ({config.label.horizon_days} d) as of {plan.cutoff:%Y-%m-%d}")
    rows = labelled_rows(backend, snapshot, plan.cutoff, config, timezone=plan.timezone)
    if rows.num_rows == 0:
        raise InsufficientDataError(f"nobody is in the churn population at {plan.cutoff}")
    churned = churned_flags(rows)
    ids = rows["customer_id"].to_numpy(zero_copy_only=False)
    summary = align_summary(fits.calibration, ids)
    latent = None if ground_truth is None else latent_dropouts(ground_truth, ids, plan.cutoff)
    candidates = list(
        churn_baselines(
            rows,
            summary,
            stages,
            bgnbd=fits.bgnbd,
            pareto_nbd=fits.pareto_nbd,
            horizon=config.label.horizon_days / fits.unit_days,
            stage_model_name=plan.stage_model.name,
            stage_risk=plan.stage_risk,
        )
    )
    if model is not None:
        candidates.insert(
            0, BaselineScore("ours", "our churn model", model.predict_proba(rows), True)
        )
    scores = tuple(
        measure_score(
            c.key, c.label, c.score, churned, probability=c.probability, latent_dropped=latent
        )
        for c in candidates
    )
    return ChurnBacktest(
        cutoff=plan.cutoff,
        horizon_days=config.label.horizon_days,
        definition=config.name,
        customers=int(churned.size),
        churned=int(churned.sum()),
        scores=scores,
        model_note=note,
        activity=config.label.activity,
        latent_dropped=None if latent is None else int(latent.sum()),
    )


def _model_trained_before(
    backend: Backend, snapshot: Snapshot, plan: BacktestPlan, config: ChurnConfig, report: Progress
) -> tuple[ChurnModel | None, str]:
    """``train_churn_model`` on the data before T, checked for leakage; None and the reason
    when the store holds too little history before T for the config's split."""
    split = split_cutoffs(plan.cutoff, config)
    first_order = _first_order_at(backend, snapshot)
    no_buyer_yet = first_order is None or split.training[-1] <= first_order
    if config.population.min_paid_orders >= 1 and no_buyer_yet:
        # A population of buyers is empty at every training cut-off: say so without
        # labelling the empty cut-offs one by one.
        return None, (
            f"not trained: a {config.label.horizon_days}-day horizon puts the training "
            f"cut-offs at {split.training[0]:%Y-%m-%d} .. {split.training[-1]:%Y-%m-%d} "
            "(the last one three horizons before T, so that no outcome window overlaps "
            "another), before "
            f"the store's first order{_on(first_order)}: there is no one to learn from"
        )
    try:
        model = train_churn_model(
            backend,
            snapshot,
            config,
            data_end=plan.cutoff,
            timezone=plan.timezone,
            progress=report,
        )
    except InsufficientDataError as error:
        return None, f"not trained: {error}"
    require_outcomes_before(model.metadata, config.label.horizon_days, plan.cutoff)
    cutoffs = model.metadata["cutoffs"]
    training = cutoffs["training"]
    return model, (
        f"trained on cut-offs {training[0][:10]} .. {training[-1][:10]}, calibrated on "
        f"{cutoffs['calibration'][:10]}, validated on {cutoffs['validation'][:10]} (outcomes "
        f"until {plan.cutoff:%Y-%m-%d}); the evaluation window starts at the cut-off"
    )


def _first_order_at(backend: Backend, snapshot: Snapshot) -> datetime | None:
    orders = backend.table("orders", snapshot)
    first = backend.to_pyarrow(orders.aggregate(first=orders.placed_at.min()))["first"][0]
    instant: datetime | None = first.as_py()
    return None if instant is None else instant.astimezone(UTC)


def _on(instant: datetime | None) -> str:
    return "" if instant is None else f" ({instant:%Y-%m-%d})"


# ---------------------------------------------------------------- BTYD and CLV


@dataclass(frozen=True)
class BtydHoldout:
    """One count model's holdout purchases by calibration frequency (0, 1, ..., 7+)."""

    model: str
    parameters: dict[str, float]
    groups: tuple[HoldoutGroup, ...]

    @property
    def actual_total(self) -> float:
        return sum(g.actual_purchases for g in self.groups)

    @property
    def predicted_total(self) -> float:
        return sum(g.predicted_purchases for g in self.groups)


def btyd_holdout(
    fits: BtydFits, whole_period: BtydSummary, horizon_days: int
) -> tuple[BtydHoldout, ...]:
    """BG/NBD's and Pareto/NBD's conditional expectations against the holdout's purchases."""
    actual = holdout_purchases(fits.calibration, whole_period)
    horizon = horizon_days / fits.unit_days
    return tuple(
        BtydHoldout(
            name,
            model.params,
            conditional_expectations_by_frequency(model, fits.calibration, actual, horizon),
        )
        for name, model in (("BG/NBD", fits.bgnbd), ("Pareto/NBD", fits.pareto_nbd))
    )


@dataclass(frozen=True)
class ClvDecile:
    """Customers of one decile of predicted value (1 lowest, 10 highest): spend totals."""

    decile: int
    customers: int
    predicted_spend: float
    actual_spend: float
    baseline_spend: float

    def __post_init__(self) -> None:
        _require_finite(self)


@dataclass(frozen=True)
class ClvBacktest:
    """Predicted against actual spend in the horizon, per customer and in total.

    ``*_top_decile_share``: the share of all actual spend made by the 10 % of
    customers ranked highest by the prediction (the people a campaign would pick).
    """

    customers: int
    horizon_days: int
    predicted_total: float
    actual_total: float
    baseline_total: float
    model_mae: float
    baseline_mae: float
    model_top_decile_share: float
    baseline_top_decile_share: float
    deciles: tuple[ClvDecile, ...]

    def __post_init__(self) -> None:
        _require_finite(self)


def predicted_holdout_spend(fits: BtydFits, horizon_days: float) -> FloatArray:
    """E[purchases in the horizon] x E[spend per purchase]: undiscounted CLV over the horizon."""
    horizon = horizon_days / fits.unit_days
    purchases = fits.bgnbd.conditional_expected_purchases(fits.calibration, horizon)
    return purchases * fits.gamma_gamma.conditional_expected_spend(fits.calibration)


def clv_backtest(
    predicted: npt.ArrayLike, actual: npt.ArrayLike, baseline: npt.ArrayLike, *, horizon_days: int
) -> ClvBacktest:
    """Compare predicted and baseline spend with the actual, by decile of the prediction."""
    p, a = _scores(predicted, actual)
    b, _ = _scores(baseline, actual)
    if a.sum() <= 0:
        raise ValueError("nobody spent anything in the horizon: there is no value to predict")
    if p.size < 10:
        raise ValueError(f"cannot cut {p.size} customers into deciles")
    groups = np.array_split(np.argsort(p, kind="stable"), 10)
    deciles = tuple(
        ClvDecile(n + 1, len(g), float(p[g].sum()), float(a[g].sum()), float(b[g].sum()))
        for n, g in enumerate(groups)
    )
    return ClvBacktest(
        customers=int(p.size),
        horizon_days=horizon_days,
        predicted_total=float(p.sum()),
        actual_total=float(a.sum()),
        baseline_total=float(b.sum()),
        model_mae=float(np.abs(p - a).mean()),
        baseline_mae=float(np.abs(b - a).mean()),
        model_top_decile_share=_top_decile_share(p, a),
        baseline_top_decile_share=_top_decile_share(b, a),
        deciles=deciles,
    )


def _top_decile_share(score: FloatArray, actual: FloatArray) -> float:
    return top_fraction_mean(score, actual, 0.1) * 0.1 * actual.size / float(actual.sum())


# ---------------------------------------------------------------- one store


@dataclass(frozen=True)
class StoreBacktest:
    """Every measurement of one store at one cut-off; ``seconds`` is how long it took."""

    dataset: str
    description: str
    cutoff: datetime
    horizon_days: int
    customers: int
    churn: tuple[ChurnBacktest, ...]
    btyd: tuple[BtydHoldout, ...]
    clv: ClvBacktest
    next_order: NextOrderBacktest
    seconds: float


def backtest_store(
    backend: Backend,
    snapshot: Snapshot,
    plan: BacktestPlan,
    *,
    ground_truth: pa.Table | None = None,
    progress: Progress | None = None,
) -> StoreBacktest:
    """Run every measurement of ``plan``; the store must hold the whole outcome window."""
    started = perf_counter()
    report = progress or _quiet
    _require_outcome_window(backend, snapshot, plan)
    report("fitting BG/NBD, Pareto/NBD and Gamma-Gamma as of the cut-off")
    fits = fit_btyd(
        backend, snapshot, plan.cutoff, timezone=plan.timezone, unit_days=plan.unit_days
    )
    whole = _btyd_summary(backend, snapshot, plan.window_end, plan.timezone, plan.unit_days)
    report("lifecycle stages as of the cut-off")
    stages = lifecycle_stages(
        backend, snapshot, plan.cutoff, plan.stage_model, timezone=plan.timezone
    )
    churn = tuple(
        backtest_churn(
            backend,
            snapshot,
            plan,
            config,
            fits,
            stages,
            ground_truth=ground_truth,
            progress=report,
        )
        for config in plan.churn_configs
    )
    report("customer value in the outcome window")
    ids = fits.calibration.customer_id
    actual = spend_of(
        spend_between(backend, snapshot, plan.cutoff, plan.window_end, timezone=plan.timezone), ids
    )
    naive = last_horizon_spend(
        backend, snapshot, plan.cutoff, plan.horizon_days, ids, timezone=plan.timezone
    )
    clv = clv_backtest(
        predicted_holdout_spend(fits, plan.horizon_days),
        actual,
        naive,
        horizon_days=plan.horizon_days,
    )
    report("next orders")
    next_order = backtest_next_orders(
        backend, snapshot, plan.cutoff, plan.horizon_days, timezone=plan.timezone
    )
    return StoreBacktest(
        dataset=plan.dataset,
        description=plan.description,
        cutoff=plan.cutoff,
        horizon_days=plan.horizon_days,
        customers=len(fits.calibration),
        churn=churn,
        btyd=btyd_holdout(fits, whole, plan.horizon_days),
        clv=clv,
        next_order=next_order,
        seconds=perf_counter() - started,
    )


def _require_outcome_window(backend: Backend, snapshot: Snapshot, plan: BacktestPlan) -> None:
    """The store's data must reach the window's last local day, else outcomes are missing.

    Days, not instants: a source with dates only (CDNOW) stamps the last day at midnight.
    """
    end = data_end_of(backend, snapshot)
    zone = ZoneInfo(plan.timezone)
    last_day = (plan.window_end - timedelta(microseconds=1)).astimezone(zone).date()
    if end is None or end.astimezone(zone).date() < last_day:
        ends = (
            "holds no orders or events" if end is None else f"ends {end.astimezone(zone):%Y-%m-%d}"
        )
        raise BacktestError(
            f"the store's data {ends}, before the outcome window [{plan.cutoff:%Y-%m-%d}, "
            f"+{plan.horizon_days} d) ends on {last_day}: choose an earlier cut-off or a shorter "
            "horizon"
        )


def demo_plan(
    description: str, *, cutoff: date = DEMO_CUTOFF, horizon_days: int = DEMO_HORIZON_DAYS
) -> BacktestPlan:
    """The demo's plan: the default churn definition at ``horizon_days``, the seed000 stages."""
    return BacktestPlan(
        dataset="demo",
        description=description,
        cutoff=_local_midnight(cutoff, DEMO_TIMEZONE),
        horizon_days=horizon_days,
        timezone=DEMO_TIMEZONE,
        churn_configs=(parse_churn_config({"label": {"horizon_days": horizon_days}}),),
        stage_model=load_stage_model(resolve_model_path("seed000")),
    )


def cdnow_plan(description: str) -> BacktestPlan:
    """CDNOW's plan: the published calibration/holdout split, churn over the whole holdout
    (which our model cannot be trained for) and over two months (which it can)."""
    whole_holdout = parse_churn_config(
        {"name": "whole-holdout", "label": {"horizon_days": CDNOW_HOLDOUT_DAYS}}
    )
    two_months = parse_churn_config(
        {
            "name": "two-months",
            "label": {"horizon_days": CDNOW_SHORT_CHURN_DAYS},
            "training": {"train_cutoffs": 2, "step_days": 30},
        }
    )
    return BacktestPlan(
        dataset="CDNOW",
        description=description,
        cutoff=_local_midnight(CDNOW_CUTOFF, CDNOW_TIMEZONE),
        horizon_days=CDNOW_HOLDOUT_DAYS,
        timezone=CDNOW_TIMEZONE,
        churn_configs=(whole_holdout, two_months),
        stage_model=load_stage_model(resolve_model_path("seed000")),
    )


def _local_midnight(day: date, timezone: str) -> datetime:
    """T at a local midnight, so no local purchase day is split between before and after."""
    return datetime.combine(day, time(), tzinfo=ZoneInfo(timezone))


def _quiet(_message: str) -> None:
    """The default progress callback: say nothing."""
