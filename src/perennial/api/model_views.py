"""What the model endpoints answer: a stored version's ``metadata.json`` as typed views.

The registry keeps what training measured (window, cut-offs, validation metrics,
data checks, the calibration curve) in each version's metadata; these views give
it a documented shape. The churn fields are read for churn versions only (another
kind keeps its own metadata and shows version, status and dates), and a churn
version whose metadata does not fit raises :class:`ModelMetadataError` naming the
version and the key, rather than answering half a model.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from perennial.features.labels import feature_label
from perennial.models.churn_config import ChurnConfig
from perennial.models.registry import CHURN_KIND, METADATA_FILE, ModelStatus, ModelVersion

__all__ = [
    "CalibrationBin",
    "CutoffCheck",
    "DataChecks",
    "ModelDetail",
    "ModelFeature",
    "ModelList",
    "ModelMetadataError",
    "ModelSummary",
    "SplitCutoffsView",
    "TrainingWindowView",
    "ValidationMetrics",
    "model_detail_view",
    "model_summary",
]

_STRICT = ConfigDict(extra="forbid")
_STORED = ConfigDict(extra="ignore")
"""Views read from metadata skip keys they do not know (a newer version may write more)."""
_Value = TypeVar("_Value")


class ModelMetadataError(ValueError):
    """A version's ``metadata.json`` verifies but does not hold what its kind records."""


class TrainingWindowView(BaseModel):
    model_config = _STORED
    first_cutoff: datetime = Field(description="The earliest training cut-off.")
    data_end: datetime = Field(description="The data's end: no outcome after it was read.")


class ValidationMetrics(BaseModel):
    """Out-of-time quality on the validation cut-off, which training never saw."""

    model_config = _STORED
    rows: int = Field(description="Labelled customers at the validation cut-off.")
    churned: int
    churn_rate: float = Field(description="churned / rows (the base rate).")
    auc: float
    pr_auc: float = Field(description="Average precision; a random score gets ``churn_rate``.")
    brier: float = Field(description="Mean squared error of the probabilities (lower is better).")
    lift_top_decile: float = Field(description="Churn rate of the top 10 % over the base rate.")
    baseline_recency_auc: float = Field(description="AUC of days since the last activity.")
    baseline_rhythm_auc: float = Field(description="AUC of recency over the customer's rhythm.")


class ModelSummary(BaseModel):
    model_config = _STRICT
    version: str = Field(description="``<kind>-<NNNN>``, e.g. ``churn-0003``.")
    kind: str
    status: ModelStatus = Field(description="``promoted``: the version scoring uses.")
    created_at: datetime
    promoted_at: datetime | None = Field(description="When it was last promoted.")
    definition: str | None = Field(description="The churn definition's name (churn only).")
    training_window: TrainingWindowView | None
    metrics: ValidationMetrics | None


class ModelList(BaseModel):
    model_config = _STRICT
    items: list[ModelSummary] = Field(description="Every complete version, oldest first.")
    promoted: dict[str, str] = Field(description="The promoted version of each kind that has one.")


class ModelFeature(BaseModel):
    model_config = _STRICT
    name: str
    label_en: str | None = Field(description="Null for derived and caller-supplied features.")
    label_zh: str | None
    missing_share: float | None = Field(description="Share of training rows without a value.")
    reference: float | None = Field(description="The training rows' median, where any.")


class SplitCutoffsView(BaseModel):
    model_config = _STORED
    training: list[datetime]
    calibration: datetime
    validation: datetime


class CutoffCheck(BaseModel):
    model_config = _STORED
    cutoff: datetime | None
    rows: int
    churned: int


class DataChecks(BaseModel):
    model_config = _STORED
    rows: int = Field(description="Labelled rows over every cut-off.")
    per_cutoff: list[CutoffCheck]
    missing_share: dict[str, float]


class CalibrationBin(BaseModel):
    """One bin of predicted probability on the validation cut-off."""

    model_config = _STORED
    lower: float
    upper: float
    mean_predicted: float
    observed_rate: float
    count: int


class ModelDetail(ModelSummary):
    features: list[ModelFeature] = Field(description="In the model's column order.")
    extra_features: list[str] = Field(description="Features beyond the configured list.")
    config: ChurnConfig | None = Field(description="The churn definition trained for.")
    cutoffs: SplitCutoffsView | None
    checks: DataChecks | None
    calibration_method: str | None = Field(description="``isotonic`` or ``sigmoid``.")
    best_iteration: int | None = Field(description="Trees kept by early stopping.")
    calibration_curve: list[CalibrationBin] | None = Field(
        description="Non-empty bins of 10, lowest first; null for versions trained without it."
    )


def model_summary(stored: ModelVersion) -> ModelSummary:
    """The list entry of ``stored``; churn fields are null for other kinds."""
    churn = stored.kind == CHURN_KIND
    return ModelSummary(
        version=stored.version,
        kind=stored.kind,
        status=stored.status,
        created_at=_parsed(stored, "created_at", _INSTANT),
        promoted_at=_parsed(stored, "promoted_at", _OPTIONAL_INSTANT),
        definition=_parsed(stored, "definition", _TEXT) if churn else None,
        training_window=_parsed(stored, "training_window", _WINDOW) if churn else None,
        metrics=_metrics(stored) if churn else None,
    )


def model_detail_view(stored: ModelVersion) -> ModelDetail:
    """Everything the metadata of ``stored`` says of the model."""
    summary = model_summary(stored).model_dump()
    if stored.kind != CHURN_KIND:
        return ModelDetail(
            **summary,
            features=[],
            extra_features=[],
            config=None,
            cutoffs=None,
            checks=None,
            calibration_method=None,
            best_iteration=None,
            calibration_curve=None,
        )
    checks = _parsed(stored, "checks", _CHECKS)
    return ModelDetail(
        **summary,
        features=_features(stored, checks),
        extra_features=_parsed(stored, "extra_features", _NAMES),
        config=_parsed(stored, "config", _CONFIG),
        cutoffs=_parsed(stored, "cutoffs", _CUTOFFS),
        checks=checks,
        calibration_method=_parsed(stored, "calibration", _TEXT),
        best_iteration=_parsed(stored, "best_iteration", _COUNT),
        calibration_curve=_parsed(stored, "calibration_curve", _CURVE),
    )


_INSTANT = TypeAdapter(datetime)
_OPTIONAL_INSTANT = TypeAdapter(datetime | None)
_TEXT = TypeAdapter(str)
_COUNT = TypeAdapter(int)
_NAMES = TypeAdapter(list[str])
_NUMBERS = TypeAdapter(dict[str, float])
_MAPPING = TypeAdapter(dict[str, Any])
_WINDOW = TypeAdapter(TrainingWindowView)
_METRICS = TypeAdapter(ValidationMetrics)
_CHECKS = TypeAdapter(DataChecks)
_CONFIG = TypeAdapter(ChurnConfig)
_CUTOFFS = TypeAdapter(SplitCutoffsView)
_CURVE = TypeAdapter(list[CalibrationBin] | None)


def _metrics(stored: ModelVersion) -> ValidationMetrics:
    """The stored metrics; the registry's ``base_rate`` is the API's ``churn_rate``."""
    metrics = _parsed(stored, "metrics", _MAPPING)
    renamed = {
        ("churn_rate" if key == "base_rate" else key): value for key, value in metrics.items()
    }
    try:
        return _METRICS.validate_python(renamed)
    except ValidationError as error:
        raise _error(stored, "metrics", error) from None


def _features(stored: ModelVersion, checks: DataChecks) -> list[ModelFeature]:
    references = _parsed(stored, "references", _NUMBERS)
    features = []
    for name in _parsed(stored, "features", _NAMES):
        label = feature_label(name)
        features.append(
            ModelFeature(
                name=name,
                label_en=label.en if label else None,
                label_zh=label.zh if label else None,
                missing_share=checks.missing_share.get(name),
                reference=references.get(name),
            )
        )
    return features


def _parsed(stored: ModelVersion, key: str, shape: TypeAdapter[_Value]) -> _Value:
    """The metadata value under ``key`` validated as ``shape``, or an error naming both."""
    try:
        return shape.validate_python(stored.metadata.get(key))
    except ValidationError as error:
        raise _error(stored, key, error) from None


def _error(stored: ModelVersion, key: str, error: ValidationError) -> ModelMetadataError:
    first = error.errors()[0]
    where = ".".join([key, *(str(part) for part in first["loc"])])
    return ModelMetadataError(f"{stored.version}: {METADATA_FILE} {where}: {first['msg']}")
