"""Errors about a rule's text, pointing at the column, with a caret under it.

Rules are typed by people into YAML files and (later) an API: a message that
says *where* ("at column 17") and shows the line with ``^`` under the spot is
what makes a typo a ten-second fix. Suggestions come from :mod:`difflib`.
"""

from __future__ import annotations

import difflib
import unicodedata
from collections.abc import Collection, Iterable

from perennial.errors import ExitCode, PerennialError

__all__ = ["MissingFeatureError", "ParseError", "did_you_mean"]


class ParseError(PerennialError):
    """A rule cannot be read: bad syntax, an unknown name, or values that do not go together.

    ``position`` is a 0-based offset into ``text``; ``line`` and ``column`` are
    1-based. ``str(error)`` is the one-line summary followed by the offending line
    of the rule and a caret under the column.
    """

    exit_code = ExitCode.CONFIG

    def __init__(self, reason: str, text: str, position: int, *, found: str | None = None) -> None:
        self.reason = reason
        self.text = text
        self.position = max(0, min(position, len(text)))
        self.found = found
        before = text[: self.position]
        self.line = before.count("\n") + 1
        self.column = self.position - (before.rfind("\n") + 1) + 1
        super().__init__(f"{self.summary}\n{self.caret_line}")

    @property
    def summary(self) -> str:
        """E.g. ``expected an operand at column 17, found 'and'``."""
        where = f"column {self.column}"
        if "\n" in self.text.strip("\n"):
            where = f"line {self.line}, {where}"
        found = f", found {self.found}" if self.found else ""
        return f"{self.reason} at {where}{found}"

    @property
    def caret_line(self) -> str:
        """The offending line of the rule, indented, and a ``^`` under the column."""
        line_text = self.text.split("\n")[self.line - 1]
        padding = "".join(_blank(character) for character in line_text[: self.column - 1])
        return f"    {line_text}\n    {padding}^"


def _blank(character: str) -> str:
    # Keep the caret under its character: tabs stay tabs, wide (CJK) characters take two cells.
    if character == "\t":
        return "\t"
    return "  " if unicodedata.east_asian_width(character) in ("W", "F") else " "


class MissingFeatureError(PerennialError):
    """A rule reads a feature the table lacks, typically one a later step adds (RFM scores).

    No "did you mean": the rule was already checked against the known features,
    so the fix is to compute the column (or drop it from the rule), not to rename it.
    """

    exit_code = ExitCode.CONFIG

    def __init__(self, features: Iterable[str], where: str = "") -> None:
        self.features = tuple(features)
        self.where = where
        names = ", ".join(repr(name) for name in self.features)
        noun = "column" if len(self.features) == 1 else "columns"
        prefix = f"{where}: " if where else ""
        super().__init__(
            f"{prefix}the feature table has no {noun} {names}; compute it before using the rule"
        )


def did_you_mean(name: str, candidates: Collection[str]) -> str:
    """`` (did you mean 'x'?)`` with up to three close matches, or ``""`` when nothing is close.

    Matches are :mod:`difflib`'s (similarity ratio >= 0.6), keeping only those
    nearly as close as the closest.
    """
    matches = difflib.get_close_matches(name, sorted(candidates), n=3, cutoff=0.6)
    if not matches:
        return ""
    # Only the near-best: 'recency_day' suggests 'recency_days', not also 'frequency_days'.
    best = difflib.SequenceMatcher(None, name, matches[0]).ratio()
    matches = [m for m in matches if difflib.SequenceMatcher(None, name, m).ratio() >= best - 0.1]
    quoted = [repr(match) for match in matches]
    listed = quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " or " + quoted[-1]
    return f" (did you mean {listed}?)"
