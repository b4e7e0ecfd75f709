"""The RFM configuration document: how each score is cut and which segments exist.

A config is YAML, validated whole before anything is scored, so a typo never
half-applies; every problem is a :class:`~perennial.errors.ConfigError` naming
the key (``scores.r``, ``segments.lost``). Every field has a default, so an
empty document is the shipped config (``examples/lifecycle/rfm.yaml``)::

    scores:
      r: quantile            # or four ascending cut points, e.g. [7, 30, 90, 180] days
      f: [1, 2, 3, 5]        # orders: 1 | 2 | 3 | 4-5 | 6+
      m: quantile
    no_orders: {key: no_orders, label: {en: No orders yet, zh: 未购客户}}
    segments:                # replaces the default set as a whole when given
      champions: {label: {en: Champions, zh: 重要价值客户}, r: [4, 5], fm: [4, 5]}
      ...
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from itertools import pairwise
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, FiniteFloat, ValidationError, model_validator

from perennial.errors import ConfigError
from perennial.lifecycle.rfm_segments import (
    DEFAULT_SEGMENTS,
    NO_ORDERS_KEY,
    NO_ORDERS_LABEL,
    SCORE_LEVELS,
    SEGMENT_KEY_PATTERN,
    RfmSegment,
    SegmentLabel,
    check_segment_grid,
)

__all__ = [
    "DEFAULT_FREQUENCY_THRESHOLDS",
    "NoOrdersSegment",
    "RfmConfig",
    "RfmScores",
    "ScoreRule",
    "default_rfm_config",
    "load_rfm_config",
    "parse_rfm_config",
]

DEFAULT_FREQUENCY_THRESHOLDS = (1.0, 2.0, 3.0, 5.0)
"""F by fixed cuts by default: 1 order -> 1, 2 -> 2, 3 -> 3, 4-5 -> 4, 6 or more -> 5.

Quantiles of a distribution where most customers ordered once are degenerate
(every one-time buyer ties at the bottom and scores 2 and 3 stay empty), so F
is cut at order counts an operator can read.
"""


class ScoreRule(BaseModel):
    """How one of R, F, M becomes a 1-5 score: quantiles, or four cut points.

    Cut points are inclusive upper edges in the column's unit, ascending: for
    R ``[7, 30, 90, 180]`` reads "recency <= 7 days scores 5, <= 30 scores 4,
    <= 90 scores 3, <= 180 scores 2, older scores 1"; for F and M the same
    edges score 1, 2, 3, 4 and above the last edge 5.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    thresholds: tuple[FiniteFloat, FiniteFloat, FiniteFloat, FiniteFloat] | None = None

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        if data == "quantile":
            return {}
        if isinstance(data, list | tuple):
            if len(data) != len(SCORE_LEVELS) - 1:
                raise ValueError(f"expected four ascending cut points, got {len(data)}")
            return {"thresholds": data}
        if isinstance(data, dict | ScoreRule):
            return data
        raise ValueError(f"expected 'quantile' or four ascending cut points, got {data!r}")

    @model_validator(mode="after")
    def _ascending(self) -> ScoreRule:
        cuts = self.thresholds
        if cuts is not None and any(low >= high for low, high in pairwise(cuts)):
            raise ValueError(f"cut points must be strictly ascending, got {[*cuts]}")
        return self

    @property
    def is_quantile(self) -> bool:
        """True when the score comes from the customer's rank, not from fixed cuts."""
        return self.thresholds is None


class RfmScores(BaseModel):
    """The rule of each score; defaults: R and M by quantile, F by fixed order counts."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    r: ScoreRule = ScoreRule()
    f: ScoreRule = ScoreRule(thresholds=DEFAULT_FREQUENCY_THRESHOLDS)
    m: ScoreRule = ScoreRule()


class NoOrdersSegment(BaseModel):
    """The segment of customers who never ordered: they have no scores, only this name."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    key: str = Field(default=NO_ORDERS_KEY, pattern=SEGMENT_KEY_PATTERN)
    label: SegmentLabel = NO_ORDERS_LABEL


def _default_segments() -> dict[str, RfmSegment]:
    return dict(DEFAULT_SEGMENTS)


class RfmConfig(BaseModel):
    """A validated RFM config: score rules, the no-orders segment and the segment grid."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    scores: RfmScores = RfmScores()
    no_orders: NoOrdersSegment = NoOrdersSegment()
    segments: dict[str, RfmSegment] = Field(default_factory=_default_segments)

    @model_validator(mode="after")
    def _consistent(self) -> RfmConfig:
        for key in self.segments:
            if not _is_segment_key(key):
                raise ValueError(f"segments.{key}: a key is lower-case letters, digits and _")
        if self.no_orders.key in self.segments:
            raise ValueError(f"no_orders.key: {self.no_orders.key!r} is also a scored segment")
        check_segment_grid(self.segments)
        return self


def _is_segment_key(key: str) -> bool:
    return re.fullmatch(SEGMENT_KEY_PATTERN, key) is not None


def default_rfm_config() -> RfmConfig:
    """The shipped config: the same document as ``examples/lifecycle/rfm.yaml``."""
    return RfmConfig()


def parse_rfm_config(document: object, source: str = "RFM config") -> RfmConfig:
    """Validate a config already read (from the API, or YAML); problems name the key.

    ``None`` (an empty YAML file) is the default config.
    """
    if document is None:
        document = {}
    if not isinstance(document, Mapping):
        raise ConfigError(source, "", "an RFM config must be a YAML object (scores, segments)")
    try:
        return RfmConfig.model_validate(document)
    except ValidationError as error:
        raise _config_error(source, error) from None


def load_rfm_config(path: Path | str) -> RfmConfig:
    """Read and validate an RFM config file; any problem raises :class:`ConfigError`."""
    try:
        document = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(str(path), "", "RFM config file not found") from None
    except yaml.YAMLError as error:
        raise ConfigError(str(path), "", f"not valid YAML: {error}") from None
    return parse_rfm_config(document, source=str(path))


def _config_error(source: str, error: ValidationError) -> ConfigError:
    """The first problem, with the key path pydantic gives or the one the message starts with."""
    first = error.errors()[0]
    key_path = ".".join(str(part) for part in first["loc"])
    message = first["msg"].removeprefix("Value error, ")
    if not key_path and ": " in message:
        key_path, message = message.split(": ", 1)
    return ConfigError(source, key_path, message)
