"""The feature registry: every feature's name, meaning, unit, window and type.

Each feature module lists its :class:`Feature` entries next to the expressions
that compute them; :mod:`perennial.features.snapshot` assembles the table in
registry order and casts every column to its registered type, and
:mod:`perennial.features.docs` renders ``docs/features.md`` from the same
entries, so the code, the output schema and the documentation cannot drift.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import ibis.expr.datatypes as dt  # type: ignore[import-untyped]

__all__ = ["DAY_MICROSECONDS", "Feature", "FeatureKind", "Section", "event_window_name"]

DAY_MICROSECONDS = 86_400_000_000
"""A day is 24 hours of UTC time: windows and day counts do not follow local clocks."""


class FeatureKind(StrEnum):
    """The column type of a feature in the output table."""

    STRING = "string"
    TIMESTAMP = "timestamp"
    COUNT = "count"
    NUMBER = "number"

    @property
    def ibis_type(self) -> dt.DataType:
        return _IBIS_TYPES[self]

    @property
    def readable(self) -> str:
        return _READABLE[self]


_IBIS_TYPES: dict[FeatureKind, dt.DataType] = {
    FeatureKind.STRING: dt.string,
    FeatureKind.TIMESTAMP: dt.Timestamp(timezone="UTC"),
    FeatureKind.COUNT: dt.int64,
    FeatureKind.NUMBER: dt.float64,
}

_READABLE: dict[FeatureKind, str] = {
    FeatureKind.STRING: "string",
    FeatureKind.TIMESTAMP: "timestamp (UTC)",
    FeatureKind.COUNT: "int64",
    FeatureKind.NUMBER: "float64",
}


@dataclass(frozen=True)
class Feature:
    """One documented output column of the feature table.

    ``window`` says which rows before ``as_of`` feed it (``"all history"`` or a
    half-open interval such as ``[as_of - 30 d, as_of)``). ``default`` is the value
    of a customer who has no rows in the feature's source (0 for counts and sums);
    ``None`` leaves such a customer's value null.
    """

    name: str
    description: str
    unit: str
    window: str
    kind: FeatureKind
    default: int | float | None = None


@dataclass(frozen=True)
class Section:
    """A group of related features, rendered as one table in ``docs/features.md``."""

    title: str
    introduction: str
    features: tuple[Feature, ...]


def event_window_name(plural: str, days: int) -> str:
    """``logins`` and 30 -> ``logins_30d``: the name of a count over the last ``days`` days."""
    return f"{plural}_{days}d"
