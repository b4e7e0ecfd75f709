"""Which segments change with the clock alone, and so need re-evaluating on a schedule.

An event arriving can only change segments that read its type; the clock, though,
moves every customer at once: ``did not order in last 45 days`` becomes true for
someone at the instant their last order turns 45 days old, with no event at all.
Such segments are re-evaluated by the server's scheduler
(``segment_refresh_seconds``), on top of the live path for events.
"""

from __future__ import annotations

from collections.abc import Mapping

from perennial.segments import ast as nodes
from perennial.segments.ast import Expression, walk
from perennial.segments.references import inline_segments

__all__ = ["is_time_relative"]


def is_time_relative(expression: Expression, saved: Mapping[str, Expression]) -> bool:
    """True when the expression (with the segments it names) reads now."""
    for node, _ in walk(inline_segments(expression, saved)):
        if isinstance(node, nodes.Now | nodes.DaysAgo | nodes.TimeFunction):
            return True
        if isinstance(node, nodes.DidEvent) and isinstance(node.spec.window, nodes.LastWindow):
            return True
        if isinstance(node, nodes.FollowedBy) and isinstance(node.first.window, nodes.LastWindow):
            return True
    return False
