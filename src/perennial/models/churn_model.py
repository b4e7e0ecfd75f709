"""The churn classifier: LightGBM trees on 18 point-in-time features, calibrated, out of time.

Training stacks the labelled rows of several past cut-offs (:mod:`churn_labels`),
fits gradient-boosted trees on the training cut-offs with early stopping on the
later calibration cut-off, fits a calibrator on that same cut-off (isotonic
regression, or Platt's sigmoid when it has under 1,000 rows, as scikit-learn's
guide advises), and reports AUC, PR-AUC, Brier and top-decile lift on the
validation cut-off, which no earlier step has seen, next to two baselines: the
recency rule and the customer's-own-rhythm rule. The model shipped is the one
measured. The calibrator is kept as numbers (thresholds or two coefficients)
so an artifact is plain text and JSON, never a pickle.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import lightgbm as lgb
import numpy as np
import numpy.typing as npt
import orjson
import pyarrow as pa
import pyarrow.compute as pc
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score

from perennial.features.snapshot import DEFAULT_TIMEZONE, FEATURE_NAMES
from perennial.models.churn_config import ChurnConfig
from perennial.models.churn_labels import (
    ExtraFeatures,
    InsufficientDataError,
    SplitCutoffs,
    churned_flags,
    data_end_of,
    label_checks,
    labelled_rows,
    require_enough_labels,
    split_cutoffs,
)
from perennial.store.backends import Backend
from perennial.store.warehouse import Snapshot

__all__ = [
    "CALIBRATION_BINS",
    "CHURN_FEATURES",
    "Calibrator",
    "ChurnMetrics",
    "ChurnModel",
    "calibration_curve",
    "churn_metrics",
    "feature_matrix",
    "fit_calibrator",
    "train_churn_model",
]

FloatArray = npt.NDArray[np.float64]

CHURN_FEATURES: tuple[str, ...] = (
    # Silence, measured against the customer's own pace (the seeds' "45 d when the norm is 30").
    "recency_days",  # days since the last paid order
    "recency_over_rhythm",  # derived: recency / own (else category, else store) median interval
    "days_to_expected_order",  # negative when the expected next order is overdue
    "own_median_interval_days",  # the pace itself: a weekly buyer's 30 d silence means more
    # How established the relationship is.
    "frequency_orders",
    "orders_90d",
    "orders_trend_30d",  # last 30 d against the 30 d before: slowing down
    "monetary_mean",
    "tenure_days",
    # Engagement beyond purchases (null where a shop has no login data: trees handle it).
    "days_since_last_login",
    "logins_30d",
    "logins_trend_30d",
    "browse_without_cart_ratio_30d",
    # Bought by incentive rather than by habit.
    "coupon_share",
    # Friction and looking for the exit.
    "complaints_90d",
    "refund_requests_90d",
    "refunded_orders",
    "help_searches_90d",
)
"""The default feature list: 18 dimensions over recency and rhythm, frequency and value,
engagement, coupons and friction (the seeds' 12 dimensions and more)."""

CLIP = 1e-3
"""Calibrated probabilities are kept in ``[CLIP, 1 - CLIP]``: never a certain outcome."""

CALIBRATION_BINS = 10
"""Equal-width bins of predicted probability in the stored validation calibration curve."""

_ISOTONIC_MIN_ROWS = 1000


@dataclass(frozen=True)
class Calibrator:
    """Maps the trees' raw probability to a calibrated one.

    ``isotonic``: piecewise-linear through (``x``, ``y``), flat beyond the ends
    (scikit-learn's ``IsotonicRegression(out_of_bounds="clip")``, whose fitted
    thresholds these are). ``sigmoid``: Platt's ``1 / (1 + exp(-(slope * logit(p) +
    intercept)))``.
    """

    method: Literal["isotonic", "sigmoid"]
    x: tuple[float, ...] = ()
    y: tuple[float, ...] = ()
    slope: float = 1.0
    intercept: float = 0.0

    def apply(self, raw: FloatArray) -> FloatArray:
        if self.method == "isotonic":
            calibrated = np.interp(raw, np.asarray(self.x), np.asarray(self.y))
        else:
            calibrated = _sigmoid(self.slope * _logit(raw) + self.intercept)
        return np.asarray(np.clip(calibrated, CLIP, 1.0 - CLIP), dtype=np.float64)

    def to_json(self) -> bytes:
        return orjson.dumps(
            {
                "method": self.method,
                "x": self.x,
                "y": self.y,
                "slope": self.slope,
                "intercept": self.intercept,
            }
        )

    @classmethod
    def from_json(cls, data: bytes) -> Calibrator:
        raw = orjson.loads(data)
        return cls(raw["method"], tuple(raw["x"]), tuple(raw["y"]), raw["slope"], raw["intercept"])


def fit_calibrator(
    raw: FloatArray, churned: npt.NDArray[np.bool_], method: str = "auto"
) -> Calibrator:
    """Fit on held-out rows; ``auto`` is isotonic from 1,000 rows, sigmoid below."""
    if method == "auto":
        method = "isotonic" if raw.shape[0] >= _ISOTONIC_MIN_ROWS else "sigmoid"
    target = churned.astype(np.float64)
    if method == "isotonic":
        isotonic = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip")
        isotonic.fit(raw, target)
        x = tuple(float(v) for v in isotonic.X_thresholds_)
        y = tuple(float(v) for v in isotonic.y_thresholds_)
        return Calibrator("isotonic", x, y)
    platt = LogisticRegression(C=1e4)
    platt.fit(_logit(raw).reshape(-1, 1), churned.astype(np.int64))
    return Calibrator(
        "sigmoid", slope=float(platt.coef_[0, 0]), intercept=float(platt.intercept_[0])
    )


@dataclass(frozen=True)
class ChurnMetrics:
    """Quality on one labelled split; AUCs of the two rules on the same rows for comparison.

    ``lift_top_decile``: the churn rate among the 10 % highest scores over the base rate.
    The recency rule scores days since the last activity; the rhythm rule scores
    that recency over the customer's own median interval (else category, else store).
    """

    rows: int
    churned: int
    base_rate: float
    auc: float
    pr_auc: float
    brier: float
    lift_top_decile: float
    baseline_recency_auc: float
    baseline_rhythm_auc: float

    def as_dict(self) -> dict[str, float | int]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class ChurnModel:
    """A trained churn model: trees, calibrator, the feature order and what it was trained on.

    ``references`` are the training rows' median of each feature (the "typical"
    value reasons compare with); ``metadata`` is the JSON the registry stores.
    """

    booster: lgb.Booster
    calibrator: Calibrator
    features: tuple[str, ...]
    config: ChurnConfig
    references: dict[str, float]
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def extra_features(self) -> tuple[str, ...]:
        return tuple(self.metadata.get("extra_features", ()))

    def matrix(self, rows: pa.Table) -> FloatArray:
        return feature_matrix(rows, self.features)

    def raw_probability(self, rows: pa.Table) -> FloatArray:
        return np.asarray(self.booster.predict(self.matrix(rows)), dtype=np.float64)

    def predict_proba(self, rows: pa.Table) -> FloatArray:
        """Calibrated churn probabilities, one per row, always finite."""
        probability = self.calibrator.apply(self.raw_probability(rows))
        if not np.all(np.isfinite(probability)):
            raise ValueError("churn model produced a non-finite probability")
        return probability

    def contributions(self, rows: pa.Table) -> FloatArray:
        """TreeSHAP contributions in log-odds: a column per feature, then the expected value."""
        return np.asarray(
            self.booster.predict(self.matrix(rows), pred_contrib=True), dtype=np.float64
        )


def feature_matrix(rows: pa.Table, features: Sequence[str]) -> FloatArray:
    """Rows x features as float64, nulls as NaN (LightGBM's missing value)."""
    columns = [_feature_column(rows, name) for name in features]
    if not columns:
        return np.empty((rows.num_rows, 0))
    return np.column_stack(columns)


def train_churn_model(
    backend: Backend,
    snapshot: Snapshot,
    config: ChurnConfig,
    *,
    data_end: datetime | None = None,
    timezone: str = DEFAULT_TIMEZONE,
    extra_features: ExtraFeatures | None = None,
    progress: Callable[[str], None] | None = None,
) -> ChurnModel:
    """Train, calibrate and validate out of time on data before ``data_end``.

    ``data_end`` defaults to the store's latest order or event. Raises
    :class:`InsufficientDataError` naming the counts found and needed.
    """
    report = progress or (lambda _message: None)
    end = data_end if data_end is not None else data_end_of(backend, snapshot)
    if end is None:
        raise InsufficientDataError("the store holds no orders or events: nothing to learn from")
    cutoffs = split_cutoffs(end, config)

    def rows_at(cutoff: datetime) -> pa.Table:
        report(f"labelling customers as of {cutoff:%Y-%m-%d}")
        return labelled_rows(
            backend, snapshot, cutoff, config, timezone=timezone, extra_features=extra_features
        )

    training = [rows_at(cutoff) for cutoff in cutoffs.training]
    require_enough_labels("training", training, cutoffs, config)
    calibration = rows_at(cutoffs.calibration)
    require_enough_labels("calibration", [calibration], cutoffs, config)
    validation = rows_at(cutoffs.validation)
    require_enough_labels("validation", [validation], cutoffs, config)
    features = _model_features(config, validation)
    train_rows = pa.concat_tables(training, promote_options="permissive")
    report("fitting trees")
    booster = _fit_trees(train_rows, calibration, features, config)
    raw = np.asarray(booster.predict(feature_matrix(calibration, features)), dtype=np.float64)
    calibrator = fit_calibrator(raw, churned_flags(calibration), config.model.calibration)
    model = ChurnModel(booster, calibrator, features, config, _references(train_rows, features))
    probability = model.predict_proba(validation)
    metrics = churn_metrics(probability, validation)
    metadata = _metadata(model, cutoffs, metrics, [*training, calibration, validation])
    metadata["calibration_curve"] = calibration_curve(probability, churned_flags(validation))
    return ChurnModel(booster, calibrator, features, config, model.references, metadata)


def churn_metrics(probability: FloatArray, rows: pa.Table) -> ChurnMetrics:
    """Metrics of ``probability`` against ``rows.churned``, with the two baselines."""
    churned = churned_flags(rows)
    positives = int(churned.sum())
    if positives in (0, churned.shape[0]):
        raise InsufficientDataError(
            f"cannot judge a churn model on {churned.shape[0]} labelled customers: AUC needs "
            f"churned and retained ones ({positives} churned)"
        )
    return ChurnMetrics(
        rows=int(churned.shape[0]),
        churned=positives,
        base_rate=float(churned.mean()),
        auc=float(roc_auc_score(churned, probability)),
        pr_auc=float(average_precision_score(churned, probability)),
        brier=float(brier_score_loss(churned, probability)),
        lift_top_decile=_lift_top_decile(probability, churned),
        baseline_recency_auc=float(roc_auc_score(churned, _finite(_activity_recency(rows)))),
        baseline_rhythm_auc=float(roc_auc_score(churned, _finite(_recency_over_rhythm(rows)))),
    )


def calibration_curve(
    probability: FloatArray, churned: npt.NDArray[np.bool_], bins: int = CALIBRATION_BINS
) -> list[dict[str, float | int]]:
    """Predicted against observed churn in ``bins`` equal-width bins of ``probability``.

    One entry per non-empty bin, lowest first: its edges, the mean predicted
    probability, the observed churn rate and the row count. The bins are scikit-learn's
    ``calibration_curve(strategy="uniform")`` (a bin holds ``(lower, upper]``, the first
    also 0), whose answer lacks the counts a reader needs to judge a bin's noise.
    """
    if bins < 1:
        raise ValueError(f"calibration curve: bins must be at least 1, got {bins}")
    if probability.shape != churned.shape:
        raise ValueError(
            f"calibration curve: {probability.shape[0]} probabilities for "
            f"{churned.shape[0]} outcomes"
        )
    if not np.all(np.isfinite(probability) & (probability >= 0) & (probability <= 1)):
        raise ValueError("calibration curve: probabilities must be finite and in [0, 1]")
    edges = np.linspace(0.0, 1.0, bins + 1)
    index = np.searchsorted(edges[1:-1], probability)
    count = np.bincount(index, minlength=bins)
    predicted = np.bincount(index, weights=probability, minlength=bins)
    observed = np.bincount(index, weights=churned.astype(np.float64), minlength=bins)
    return [
        {
            "lower": b / bins,  # not edges[b]: 0.3, not 0.30000000000000004
            "upper": (b + 1) / bins,
            "mean_predicted": float(predicted[b] / count[b]),
            "observed_rate": float(observed[b] / count[b]),
            "count": int(count[b]),
        }
        for b in range(bins)
        if count[b]
    ]


def _fit_trees(
    train: pa.Table, stopping: pa.Table, features: tuple[str, ...], config: ChurnConfig
) -> lgb.Booster:
    settings = config.model
    params: dict[str, Any] = {
        "objective": "binary",
        "metric": "binary_logloss",
        "learning_rate": settings.learning_rate,
        "num_leaves": settings.num_leaves,
        "max_depth": settings.max_depth,
        "min_data_in_leaf": settings.min_data_in_leaf,
        "feature_fraction": 0.9,
        "bagging_fraction": 0.9,
        "bagging_freq": 1,
        "lambda_l2": 1.0,
        "seed": settings.seed,
        "deterministic": True,
        "force_row_wise": True,
        "num_threads": 2,
        "verbose": -1,
    }
    names = list(features)
    train_set = lgb.Dataset(
        feature_matrix(train, features),
        churned_flags(train),
        feature_name=names,
        free_raw_data=True,
    )
    stop_set = train_set.create_valid(feature_matrix(stopping, features), churned_flags(stopping))
    return lgb.train(
        params,
        train_set,
        num_boost_round=settings.max_rounds,
        valid_sets=[stop_set],
        callbacks=[lgb.early_stopping(settings.early_stopping_rounds, verbose=False)],
    )


def _model_features(config: ChurnConfig, rows: pa.Table) -> tuple[str, ...]:
    base = config.model.features or CHURN_FEATURES
    known = {"customer_id", "cutoff", "churned", "activity_recency_days"}
    extra = tuple(c for c in rows.column_names if c not in known and c not in FEATURE_NAMES)
    return (*base, *extra)


def _metadata(
    model: ChurnModel, cutoffs: SplitCutoffs, metrics: ChurnMetrics, splits: list[pa.Table]
) -> dict[str, Any]:
    config = model.config
    extra = [f for f in model.features if f not in (config.model.features or CHURN_FEATURES)]
    return {
        "kind": "churn",
        "definition": config.name,
        "config": config.model_dump(mode="json"),
        "training_window": {
            "first_cutoff": _iso(cutoffs.training[0]),
            "data_end": _iso(cutoffs.data_end),
        },
        "cutoffs": {
            "training": [_iso(c) for c in cutoffs.training],
            "calibration": _iso(cutoffs.calibration),
            "validation": _iso(cutoffs.validation),
        },
        "features": list(model.features),
        "extra_features": extra,
        "calibration": model.calibrator.method,
        "best_iteration": int(model.booster.best_iteration or model.booster.current_iteration()),
        "metrics": metrics.as_dict(),
        "checks": label_checks(splits, model.features),
        "references": model.references,
    }


def _references(rows: pa.Table, features: tuple[str, ...]) -> dict[str, float]:
    matrix = feature_matrix(rows, features)
    references: dict[str, float] = {}
    for index, name in enumerate(features):
        column = matrix[:, index]
        finite = column[np.isfinite(column)]
        if finite.size:
            references[name] = float(np.median(finite))
    return references


def _feature_column(rows: pa.Table, name: str) -> FloatArray:
    if name == "recency_over_rhythm":
        return _recency_over_rhythm(rows)
    if name not in rows.column_names:
        raise KeyError(f"feature {name!r} is missing from the rows")
    return _floats(rows[name])


def _floats(column: pa.ChunkedArray) -> FloatArray:
    values = pc.cast(column, pa.float64()).to_numpy(zero_copy_only=False)
    return np.asarray(values, dtype=np.float64)


def _recency_over_rhythm(rows: pa.Table) -> FloatArray:
    """Recency over the usual interval: own median, else the category's, else the store's."""
    interval = _floats(rows["own_median_interval_days"])
    for fallback in ("category_median_interval_days", "population_median_interval_days"):
        interval = np.where(np.isnan(interval), _floats(rows[fallback]), interval)
    with np.errstate(invalid="ignore", divide="ignore"):
        return _floats(rows["recency_days"]) / np.maximum(interval, 1.0)


def _activity_recency(rows: pa.Table) -> FloatArray:
    return _floats(rows["activity_recency_days"])


def _finite(score: FloatArray) -> FloatArray:
    """Missing scores (never active) rank as the riskiest, just above the largest one."""
    finite = score[np.isfinite(score)]
    top = float(finite.max()) + 1.0 if finite.size else 1.0
    return np.where(np.isfinite(score), score, top)


def _lift_top_decile(probability: FloatArray, churned: npt.NDArray[np.bool_]) -> float:
    top = max(1, math.ceil(0.1 * probability.shape[0]))
    order = np.argsort(-probability, kind="stable")[:top]
    return float(churned[order].mean() / churned.mean())


def _logit(p: FloatArray) -> FloatArray:
    clipped = np.clip(p, 1e-9, 1.0 - 1e-9)
    return np.asarray(np.log(clipped / (1.0 - clipped)), dtype=np.float64)


def _sigmoid(z: FloatArray) -> FloatArray:
    return np.asarray(1.0 / (1.0 + np.exp(-z)), dtype=np.float64)


def _iso(instant: datetime) -> str:
    return instant.astimezone(UTC).isoformat()
