"""Stage models: an ordered list of lifecycle stages, each with a rule, as a YAML document.

The first stage whose rule is true for a customer is that customer's stage, so
order matters: put the narrow, urgent stages (churned, at risk) before the broad
ones (active). The last stage may be ``rule: otherwise`` to catch everyone else.
A document is validated whole, rules included, before anything uses it: every
problem is a :class:`~perennial.errors.ConfigError` naming the file and the key,
e.g. ``stages[3] (dormant).rule: unknown feature 'recency_day' ...``. Example::

    name: seed000
    stages:
      - {key: dormant, label_en: Dormant, label_zh: 休眠期, rule: "recency_days > 45"}
      - {key: active, label_en: Active, label_zh: 活跃, rule: otherwise}

:func:`assign_stage` applies a model to a feature table as one Ibis CASE (first
match wins, null counts as not true), so it runs in the engine, DuckDB or Spark.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import available_timezones

import ibis  # type: ignore[import-untyped]
import ibis.expr.types as ir  # type: ignore[import-untyped]
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    PlainValidator,
    ValidationError,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from perennial.errors import ConfigError
from perennial.lifecycle.rule_errors import MissingFeatureError, ParseError
from perennial.lifecycle.rule_types import ValueKind
from perennial.lifecycle.rules import FEATURE_KINDS, Rule
from perennial.lifecycle.stage_document import (
    describe_validation_error,
    read_yaml_document,
    stage_key_path,
)

__all__ = [
    "KPI_ROLES",
    "STAGE_COLUMNS",
    "KpiRole",
    "Stage",
    "StageModel",
    "assign_stage",
    "load_stage_model",
    "parse_stage_model",
]

STAGE_COLUMNS = ("stage", "stage_rank")
"""What :func:`assign_stage` adds: the stage's key (string) and its index in the model (int16)."""


_STAGE_KEY = re.compile(r"[a-z][a-z0-9_]{0,39}")

KpiRole = Literal["new", "active", "dormant", "churned"]
"""What a stage counts as on the lifecycle board's KPI cards, whatever the model calls it."""

KPI_ROLES: tuple[KpiRole, ...] = ("new", "active", "dormant", "churned")


def _read_rule(value: object, info: ValidationInfo) -> Rule:
    if isinstance(value, Rule):
        return value
    if not isinstance(value, str):
        raise ValueError("a rule is text; quote it if YAML reads it as something else (yes, no, 1)")
    context = info.context if isinstance(info.context, Mapping) else {}
    kinds: Mapping[str, ValueKind] = context.get("feature_kinds", FEATURE_KINDS)
    try:
        return Rule.parse(value, kinds=kinds, allow_otherwise=True)
    except ParseError as error:
        raise ValueError(str(error)) from None


RuleText = Annotated[
    Rule,
    PlainValidator(_read_rule),
    PlainSerializer(lambda rule: rule.text, return_type=str),
    WithJsonSchema({"type": "string", "description": "A rule over features, or 'otherwise'."}),
]


class Stage(BaseModel):
    """One lifecycle stage: a stable key (the value of the ``stage`` column), labels and a rule."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    key: str = Field(description="lower_snake_case; the value stored in the stage column")
    label_en: str = Field(min_length=1)
    label_zh: str = Field(min_length=1)
    rule: RuleText
    description: str = ""
    kpi: KpiRole | None = Field(
        default=None,
        description="The board's KPI card this stage counts toward: new, active, dormant or "
        "churned; none for stages outside those four (e.g. prospects who never bought).",
    )

    @field_validator("key")
    @classmethod
    def _key_is_a_name(cls, key: str) -> str:
        if not _STAGE_KEY.fullmatch(key):
            raise ValueError(
                f"{key!r} is not a stage key: use lower-case letters, digits and '_', "
                "starting with a letter, at most 40 characters (e.g. 'at_risk')"
            )
        return key


class StageModel(BaseModel):
    """A validated stage model; stages in evaluation order (first match wins)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    description: str = ""
    timezone: str | None = Field(
        default=None,
        description="IANA zone whose midnights start a day in this model's stage history.",
    )
    stages: tuple[Stage, ...]

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, zone: str | None) -> str | None:
        if zone is not None and zone not in available_timezones():
            raise ValueError(f"unknown IANA time zone {zone!r} (e.g. 'Asia/Shanghai')")
        return zone

    @field_validator("stages")
    @classmethod
    def _at_least_two(cls, stages: tuple[Stage, ...]) -> tuple[Stage, ...]:
        if len(stages) < 2:
            raise ValueError(f"a stage model needs at least two stages, this one has {len(stages)}")
        return stages

    @model_validator(mode="after")
    def _keys_unique_and_otherwise_last(self) -> StageModel:
        first_index: dict[str, int] = {}
        for index, stage in enumerate(self.stages):
            path = stage_key_path(index, stage.key)
            if stage.key in first_index:
                earlier = first_index[stage.key]
                raise ValueError(
                    f"{path}.key: duplicate key {stage.key!r} (stages[{earlier}] has it)"
                )
            first_index[stage.key] = index
            if stage.rule.is_otherwise and index < len(self.stages) - 1:
                raise ValueError(
                    f"{path}.rule: 'otherwise' is allowed only in the last stage "
                    "(the stages after it could never match)"
                )
        return self

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(stage.key for stage in self.stages)

    def kpi_stages(self, role: KpiRole) -> tuple[str, ...]:
        """The keys of the stages that count toward the KPI ``role`` (maybe none)."""
        return tuple(stage.key for stage in self.stages if stage.kpi == role)

    @property
    def features(self) -> tuple[str, ...]:
        """Every feature some stage's rule reads, each once, in order of first use."""
        return tuple(dict.fromkeys(name for stage in self.stages for name in stage.rule.features))

    def stage(self, key: str) -> Stage:
        """The stage with ``key``; raises :class:`KeyError` naming the known keys."""
        for stage in self.stages:
            if stage.key == key:
                return stage
        raise KeyError(f"stage model {self.name!r} has no stage {key!r}; its stages: {self.keys}")


def assign_stage(model: StageModel, features: ir.Table) -> ir.Table:
    """``features`` with ``stage`` (the first matching stage's key) and ``stage_rank`` added.

    ``stage_rank`` is the stage's 0-based index in ``model.stages``, the ``i`` of
    ``stages[i]`` in messages: evaluation order, not necessarily the order a
    report shows. A customer no rule matches (possible only without a final
    ``otherwise``) gets null in both. Raises :class:`MissingFeatureError` when a
    rule reads a column ``features`` lacks, and :class:`ConfigError` when a
    column's type does not fit a rule (e.g. a score stored as text).
    """
    missing = [name for name in model.features if name not in features.columns]
    if missing:
        first = next(
            index
            for index, stage in enumerate(model.stages)
            if not set(stage.rule.features).isdisjoint(missing)
        )
        where = f"stage model {model.name!r}, {stage_key_path(first, model.stages[first].key)}.rule"
        raise MissingFeatureError(missing, where)
    branches: list[tuple[ir.BooleanValue, ir.IntegerScalar]] = []
    fallback = None
    for index, stage in enumerate(model.stages):
        rank = ibis.literal(index, type="int16")
        if stage.rule.is_otherwise:
            fallback = rank
            continue
        branches.append((_condition(model, index, features), rank))
    ranked = features.mutate(stage_rank=ibis.cases(*branches, else_=fallback))
    stage = ranked.stage_rank.cases(
        *((index, stage.key) for index, stage in enumerate(model.stages)), else_=None
    )
    return ranked.mutate(stage=stage).relocate("stage", before="stage_rank")


def _condition(model: StageModel, index: int, features: ir.Table) -> ir.BooleanValue:
    stage = model.stages[index]
    try:
        return stage.rule.compile(features)
    except ParseError as error:
        path = f"{stage_key_path(index, stage.key)}.rule"
        reason = f"does not fit the feature table's column types: {error}"
        raise ConfigError(f"stage model {model.name!r}", path, reason) from None


def load_stage_model(
    path: Path | str, *, feature_kinds: Mapping[str, ValueKind] = FEATURE_KINDS
) -> StageModel:
    """Read and validate a stage model file; any problem is a :class:`ConfigError` naming the key.

    ``feature_kinds`` is what rules may use (default: the known features and their kinds).
    """
    document = read_yaml_document(Path(path), what="stage model")
    return parse_stage_model(document, str(path), feature_kinds=feature_kinds)


def parse_stage_model(
    document: object,
    source: str = "stage model",
    *,
    feature_kinds: Mapping[str, ValueKind] = FEATURE_KINDS,
) -> StageModel:
    """Validate an already-parsed document (from YAML, JSON or an API body).

    ``source`` names the document in error messages (a path, or e.g. ``"request body"``).
    """
    if not isinstance(document, dict):
        raise ConfigError(source, "", "a stage model is a mapping with 'name' and 'stages' keys")
    try:
        return StageModel.model_validate(document, context={"feature_kinds": feature_kinds})
    except ValidationError as error:
        raise _config_error(source, error, document) from None


def _config_error(source: str, error: ValidationError, document: dict[str, Any]) -> ConfigError:
    key_path, reason = describe_validation_error(
        error.errors()[0],
        document,
        model_keys=tuple(StageModel.model_fields),
        stage_keys=tuple(Stage.model_fields),
    )
    return ConfigError(source, key_path, reason)
