"""Named RFM segments: boxes on the R x FM grid, and the check that they tile it.

The grid is the common one (Putler's and Martin's RFM grids): rows are the
recency score R, columns the FM score, the mean of the frequency and monetary
scores rounded down. Each segment is a box of score ranges; the boxes must
cover every one of the 125 (R, F, M) combinations exactly once, so every
customer who has ordered lands in exactly one segment whatever the segments'
order. This module is pure Python (no Ibis): it is the geometry that
``rfm.py`` compiles into an expression and ``docs/rfm.md`` tabulates.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from itertools import product
from types import MappingProxyType
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field

__all__ = [
    "ALL_CELLS",
    "DEFAULT_SEGMENTS",
    "NO_ORDERS_KEY",
    "NO_ORDERS_LABEL",
    "SCORE_LEVELS",
    "SEGMENT_KEY_PATTERN",
    "Cell",
    "RfmSegment",
    "ScoreRange",
    "SegmentLabel",
    "check_segment_grid",
    "fm_score",
    "grid_cells",
    "rfm_code",
]

SCORE_LEVELS = (1, 2, 3, 4, 5)
"""Every R, F and M score; 5 is best on each axis."""

Cell = tuple[int, int, int]
"""An (r, f, m) combination of scores."""

ALL_CELLS: tuple[Cell, ...] = tuple((r, f, m) for r, f, m in product(SCORE_LEVELS, repeat=3))
"""The 125 (r, f, m) combinations a segment set must cover exactly once."""

SEGMENT_KEY_PATTERN = r"^[a-z][a-z0-9_]*$"
"""Segment keys are stable identifiers (they are stored in profiles and used in rules)."""

NO_ORDERS_KEY = "no_orders"
"""The default segment of customers who have never ordered (their scores are null)."""


def fm_score(f: int, m: int) -> int:
    """The FM score: the mean of F and M rounded down.

    Rounding down keeps the top FM columns for customers strong on both axes:
    F 5 with M 4 is FM 4, and FM 5 needs F 5 and M 5.
    """
    return (f + m) // 2


def rfm_code(r: int, f: int, m: int) -> str:
    """The three-digit code of a cell, e.g. ``"545"``."""
    return f"{r}{f}{m}"


def _range_shorthand(value: Any) -> Any:
    """Accept ``4`` for ``[4, 4]`` and ``"4-5"`` for ``[4, 5]`` besides a two-item list."""
    if isinstance(value, int) and not isinstance(value, bool):
        return (value, value)
    if isinstance(value, str):
        match = re.fullmatch(r"\s*(\d+)\s*-\s*(\d+)\s*", value)
        if match is None:
            raise ValueError(f"expected a score or a range like [4, 5] or '4-5', got {value!r}")
        return (int(match.group(1)), int(match.group(2)))
    return value


def _within_scores(bounds: tuple[int, int]) -> tuple[int, int]:
    low, high = bounds
    if not 1 <= low <= high <= 5:
        raise ValueError(f"a range is [low, high] with 1 <= low <= high <= 5, got {[*bounds]}")
    return bounds


ScoreRange = Annotated[
    tuple[int, int], BeforeValidator(_range_shorthand), AfterValidator(_within_scores)
]
"""An inclusive range of scores ``(low, high)``; YAML may write ``[4, 5]``, ``4-5`` or ``5``."""


class SegmentLabel(BaseModel):
    """What operators read: the segment's name in English and in Chinese."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    en: str = Field(min_length=1)
    zh: str = Field(min_length=1)


class RfmSegment(BaseModel):
    """A box on the score grid: a customer is in it when every score is in its range.

    ``r`` and ``fm`` are the usual axes; ``f`` and ``m`` (default: any) let a
    custom config split a cell, e.g. "new" as R 5 with F 1 whatever M is.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    label: SegmentLabel
    r: ScoreRange = (1, 5)
    fm: ScoreRange = (1, 5)
    f: ScoreRange = (1, 5)
    m: ScoreRange = (1, 5)

    def covers(self, r: int, f: int, m: int) -> bool:
        """True when the cell (r, f, m) belongs to this segment."""
        return (
            self.r[0] <= r <= self.r[1]
            and self.f[0] <= f <= self.f[1]
            and self.m[0] <= m <= self.m[1]
            and self.fm[0] <= fm_score(f, m) <= self.fm[1]
        )

    def cells(self) -> Iterator[Cell]:
        """The (r, f, m) cells of the segment, in code order."""
        return (cell for cell in ALL_CELLS if self.covers(*cell))


def _segment(en: str, zh: str, r: tuple[int, int], fm: tuple[int, int]) -> RfmSegment:
    return RfmSegment(label=SegmentLabel(en=en, zh=zh), r=r, fm=fm)


DEFAULT_SEGMENTS: Mapping[str, RfmSegment] = MappingProxyType(
    {
        "champions": _segment("Champions", "重要价值客户", r=(4, 5), fm=(4, 5)),
        "loyal": _segment("Loyal", "忠诚客户", r=(3, 3), fm=(4, 5)),
        "potential_loyalist": _segment("Potential loyalist", "潜力客户", r=(4, 5), fm=(2, 3)),
        "new": _segment("New", "新客户", r=(5, 5), fm=(1, 1)),
        "promising": _segment("Promising", "有望发展客户", r=(4, 4), fm=(1, 1)),
        "need_attention": _segment("Need attention", "需要关注客户", r=(3, 3), fm=(3, 3)),
        "about_to_sleep": _segment("About to sleep", "即将沉睡客户", r=(3, 3), fm=(1, 2)),
        "at_risk": _segment("At risk", "流失风险客户", r=(1, 2), fm=(3, 4)),
        "cant_lose_them": _segment("Can't lose them", "重要挽留客户", r=(1, 2), fm=(5, 5)),
        "hibernating": _segment("Hibernating", "沉睡客户", r=(2, 2), fm=(1, 2)),
        "lost": _segment("Lost", "已流失客户", r=(1, 1), fm=(1, 2)),
    }
)
"""The shipped segment grid (R rows x FM columns); ``examples/lifecycle/rfm.yaml`` repeats it."""

NO_ORDERS_LABEL = SegmentLabel(en="No orders yet", zh="未购客户")
"""The default label of the customers who have never ordered."""


def grid_cells(segments: Mapping[str, RfmSegment] = DEFAULT_SEGMENTS) -> list[tuple[int, int, str]]:
    """Every (r, fm, segment key) a segment set can produce, best cells first.

    The layout of the RFM grid view, empty cells included; counts come from
    :func:`perennial.lifecycle.rfm.segment_grid`.
    """
    cells = {
        (r, fm_score(f, m), key) for key, segment in segments.items() for r, f, m in segment.cells()
    }
    return sorted(cells, key=lambda cell: (-cell[0], -cell[1], cell[2]))


def check_segment_grid(segments: Mapping[str, RfmSegment]) -> None:
    """Raise ``ValueError("segments.<key>: ...")`` unless the segments tile all 125 cells.

    An overlap names the later segment (key path) and the one it overlaps; a
    gap names the uncovered codes and the segments next to them on the grid,
    which are the ones a user most likely meant to widen.
    """
    owners: dict[Cell, str] = {}
    for key, segment in segments.items():
        clashes: dict[str, list[Cell]] = {}
        for cell in segment.cells():
            if cell in owners:
                clashes.setdefault(owners[cell], []).append(cell)
            else:
                owners[cell] = key
        if clashes:
            other, cells = next(iter(clashes.items()))
            raise ValueError(f"segments.{key}: overlaps segments.{other} on rfm {_codes(cells)}")
    gaps = [cell for cell in ALL_CELLS if cell not in owners]
    if gaps:
        grid = sorted({(r, fm_score(f, m)) for r, f, m in gaps}, reverse=True)
        where = ", ".join(f"r {r} fm {fm}" for r, fm in grid)
        neighbours = sorted(_neighbours(gaps, owners))
        beside = f"; next to {', '.join(neighbours)}" if neighbours else ""
        raise ValueError(f"segments: no segment covers rfm {_codes(gaps)} ({where}){beside}")


def _codes(cells: list[Cell], shown: int = 6) -> str:
    codes = [rfm_code(*cell) for cell in cells]
    more = f" and {len(codes) - shown} more" if len(codes) > shown else ""
    return ", ".join(codes[:shown]) + more


def _neighbours(gaps: list[Cell], owners: Mapping[Cell, str]) -> set[str]:
    """Segments owning a cell one score step away from a gap on any axis."""
    found: set[str] = set()
    for r, f, m in gaps:
        for dr, df, dm in ((1, 0, 0), (-1, 0, 0), (0, 1, 0), (0, -1, 0), (0, 0, 1), (0, 0, -1)):
            owner = owners.get((r + dr, f + df, m + dm))
            if owner is not None:
                found.add(owner)
    return found
