"""What "churn" means for this business, as a validated config document.

As in Braze's churn prediction, the definition is data, not code: which activity
counts as staying (a paid order, or an event type such as ``login``), over how
many days after the cut-off, and which customers are asked about at all. Two
presets ship: ``purchase`` (the default: no paid order in the next 90 days, for
customers who have ordered) and ``subscription`` (no login in the next 30 days,
for customers who logged in during the last 90). A YAML file overrides any
part; every field has a default, so an empty document is the ``purchase``
preset::

    label:
      activity: paid_order      # or an event type: login, lesson_completed, ...
      horizon_days: 90          # churned = no such activity in [T, T + 90 d)
    population:
      min_paid_orders: 1        # who is scored at T: customers who have ordered ...
      min_tenure_days: 0
      active_within_days: null  # ... optionally only those active in the last N days
    training:
      train_cutoffs: 6          # training cut-offs, step_days apart
      step_days: 30
      min_labelled: 200         # refuse to train below these (see churn_model)
      min_per_class: 20
    model:
      features: null            # null: the documented default list (churn_model)
      learning_rate: 0.05
      calibration: auto         # isotonic with >= 1000 calibration rows, else sigmoid
    risk_bands: {medium: 0.3, high: 0.5, critical: 0.7}

A document is validated whole before anything runs: an unknown key, a negative
horizon or a feature the feature layer does not have raises
:class:`~perennial.errors.ConfigError` naming the key (``label.horizon_days``).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from perennial.errors import ConfigError
from perennial.features.registry import FeatureKind
from perennial.features.snapshot import FEATURES

__all__ = [
    "CHURN_PRESETS",
    "DERIVED_FEATURES",
    "PAID_ORDER",
    "ChurnConfig",
    "ChurnLabelRule",
    "ChurnPopulation",
    "ModelSettings",
    "RiskBands",
    "TrainingWindow",
    "load_churn_config",
    "parse_churn_config",
    "resolve_churn_config",
]

PAID_ORDER = "paid_order"
"""The activity that means "still a customer" for a shop: an order with status ``paid``."""

DERIVED_FEATURES: tuple[str, ...] = ("recency_over_rhythm",)
"""Features the churn model derives from feature-layer columns (see ``churn_model``)."""

_NUMERIC_FEATURES = frozenset(
    f.name for f in FEATURES if f.kind in (FeatureKind.COUNT, FeatureKind.NUMBER)
)
_EVENT_TYPE = r"^[a-z][a-z0-9_]*$"


class ChurnLabelRule(BaseModel):
    """A customer in the population at ``T`` churned when ``activity`` is absent from
    ``[T, T + horizon_days)``; the features read only ``[.., T)``, so no row is in both."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    activity: str = Field(default=PAID_ORDER, pattern=_EVENT_TYPE)
    horizon_days: int = Field(default=90, gt=0, le=730)


class ChurnPopulation(BaseModel):
    """Who is asked "will they churn?" at a cut-off: only these rows are labelled and scored.

    ``active_within_days`` keeps customers whose last ``activity`` lies in the last
    N days before the cut-off (Braze's "users who did X recently"); null keeps all.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    min_paid_orders: int = Field(default=1, ge=0)
    min_tenure_days: float = Field(default=0.0, ge=0)
    active_within_days: int | None = Field(default=None, gt=0)


class TrainingWindow(BaseModel):
    """How history becomes labelled rows, and how much of it training needs.

    The validation cut-off is the latest with a complete outcome window (the data's
    end minus the horizon), the calibration cut-off one horizon earlier, and
    ``train_cutoffs`` training cut-offs ``step_days`` apart start one horizon before
    that, so no outcome window of one split overlaps another's.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    train_cutoffs: int = Field(default=6, ge=1, le=60)
    step_days: int = Field(default=30, gt=0)
    min_labelled: int = Field(default=200, ge=1)
    min_per_class: int = Field(default=20, ge=1)


class ModelSettings(BaseModel):
    """LightGBM's knobs (small trees, shrinkage, early stopping) and the calibration method."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    features: tuple[str, ...] | None = None
    learning_rate: float = Field(default=0.05, gt=0, le=1)
    num_leaves: int = Field(default=15, ge=2, le=255)
    max_depth: int = Field(default=5, ge=1, le=32)
    """Shallow trees: the per-customer reasons (TreeSHAP) cost leaves x depth squared per
    tree, and scoring a million customers is dominated by them."""
    min_data_in_leaf: int = Field(default=20, ge=1)
    max_rounds: int = Field(default=400, ge=1)
    early_stopping_rounds: int = Field(default=30, ge=1)
    seed: int = Field(default=7, ge=0)
    calibration: Literal["auto", "isotonic", "sigmoid"] = "auto"

    @model_validator(mode="after")
    def _known_features(self) -> ModelSettings:
        if self.features is None:
            return self
        if len(self.features) < 2:
            raise ValueError("features: name at least two features")
        for position, name in enumerate(self.features):
            if name not in _NUMERIC_FEATURES and name not in DERIVED_FEATURES:
                raise ValueError(
                    f"features.{position}: {name!r} is not a numeric feature of the feature "
                    "layer (see docs/features.md) nor a derived one "
                    f"({', '.join(DERIVED_FEATURES)})"
                )
        if len(set(self.features)) != len(self.features):
            raise ValueError("features: a feature is named twice")
        return self


class RiskBands(BaseModel):
    """Calibrated probability thresholds: below ``medium`` is low, from ``critical`` critical.

    Defaults: low < 0.3 <= medium < 0.5 <= high < 0.7 <= critical. They cut
    calibrated probabilities, so "high" means "more likely than not to churn".
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    medium: float = Field(default=0.3, gt=0, lt=1)
    high: float = Field(default=0.5, gt=0, lt=1)
    critical: float = Field(default=0.7, gt=0, lt=1)

    @model_validator(mode="after")
    def _ascending(self) -> RiskBands:
        if not self.medium < self.high < self.critical:
            raise ValueError(
                "risk_bands: thresholds must rise, medium < high < critical; got "
                f"{self.medium}, {self.high}, {self.critical}"
            )
        return self

    def band(self, probability: float) -> str:
        """``low``, ``medium``, ``high`` or ``critical`` for a calibrated probability."""
        if probability >= self.critical:
            return "critical"
        if probability >= self.high:
            return "high"
        return "medium" if probability >= self.medium else "low"


class ChurnConfig(BaseModel):
    """A validated churn definition with its training, model and banding settings."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(default="purchase", min_length=1, max_length=64)
    label: ChurnLabelRule = ChurnLabelRule()
    population: ChurnPopulation = ChurnPopulation()
    training: TrainingWindow = TrainingWindow()
    model: ModelSettings = ModelSettings()
    risk_bands: RiskBands = RiskBands()


CHURN_PRESETS: dict[str, ChurnConfig] = {
    "purchase": ChurnConfig(),
    "subscription": ChurnConfig(
        name="subscription",
        label=ChurnLabelRule(activity="login", horizon_days=30),
        population=ChurnPopulation(min_paid_orders=0, active_within_days=90),
        training=TrainingWindow(train_cutoffs=6, step_days=14),
    ),
}
"""``purchase``: no paid order in 90 days, for customers who ordered (the default).
``subscription``: no login in 30 days, for customers who logged in in the last 90."""


def parse_churn_config(document: object, source: str = "churn config") -> ChurnConfig:
    """Validate a config already read (YAML, an API body); ``None`` is the default."""
    if document is None:
        document = {}
    if not isinstance(document, Mapping):
        raise ConfigError(source, "", "a churn config must be a YAML object (label, population)")
    try:
        return ChurnConfig.model_validate(document)
    except ValidationError as error:
        raise _config_error(source, error) from None


def load_churn_config(path: Path | str) -> ChurnConfig:
    """Read and validate a churn config file; any problem raises :class:`ConfigError`."""
    try:
        document = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(str(path), "", "churn config file not found") from None
    except yaml.YAMLError as error:
        raise ConfigError(str(path), "", f"not valid YAML: {error}") from None
    return parse_churn_config(document, source=str(path))


def resolve_churn_config(name_or_path: str | None) -> ChurnConfig:
    """A preset by name (``purchase``, ``subscription``), else a YAML file; None: default."""
    if name_or_path is None:
        return CHURN_PRESETS["purchase"]
    if name_or_path in CHURN_PRESETS:
        return CHURN_PRESETS[name_or_path]
    return load_churn_config(name_or_path)


def _config_error(source: str, error: ValidationError) -> ConfigError:
    """The first problem, with pydantic's key path, extended by the one a message starts with."""
    first = error.errors()[0]
    key_path = ".".join(str(part) for part in first["loc"])
    message = first["msg"].removeprefix("Value error, ")
    head, separator, rest = message.partition(": ")
    if separator and " " not in head:
        key_path = f"{key_path}.{head}" if key_path and not key_path.endswith(head) else head
        message = rest
    return ConfigError(source, key_path, message)
