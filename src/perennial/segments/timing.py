"""Which segments change with the clock alone, and so need re-evaluating on a schedule.

An event arriving can only change segments that read its type; the clock, though,
moves every customer at once: ``did not order in last 45 days`` becomes true for
someone at the instant their last order turns 45 days old, with no event at all.
Such segments are re-evaluated by the server's scheduler
(``segment_refresh_seconds``), on top of the live path for events.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import ibis  # type: ignore[import-untyped]
import ibis.expr.datatypes as dt  # type: ignore[import-untyped]

from perennial.lifecycle import rule_ast as rule
from perennial.segments import ast as nodes
from perennial.segments.ast import Expression, children, walk
from perennial.segments.evaluation import Evaluation
from perennial.segments.references import inline_segments

__all__ = ["is_time_relative", "next_change"]

_UTC = dt.Timestamp(timezone="UTC")


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


def next_change(expression: Expression, evaluation: Evaluation) -> datetime | None:
    """The earliest instant after now at which the clock alone may change who matches.

    Known for the forms that carry their own deadline: an event leaves an ``in last N
    days`` window at its time plus the span; ``days_since(F) > c`` (and ``<``, ``>=``,
    ...) turns at ``F + c`` days, ``days_until(F) ...`` at ``F - c`` days, ``F < days_ago(c)``
    at ``F + c`` days; date functions turn at the next local midnight. ``None`` when the
    expression reads the clock some other way (say, inside arithmetic): then only the
    schedule applies. The scheduler wakes at this instant, so a condition such as "no
    login for 30 days" is seen the moment it becomes true, not up to an interval later.
    """
    expanded = inline_segments(expression, evaluation.saved)
    candidates: list[datetime] = []
    if not _collect(expanded, evaluation, candidates):
        return None
    later = [moment for moment in candidates if moment > evaluation.now]
    return min(later) if later else None


def _collect(node: Expression, evaluation: Evaluation, out: list[datetime]) -> bool:
    """Add ``node``'s deadlines to ``out``; False when it reads the clock in an unknown way."""
    if isinstance(node, nodes.DidEvent | nodes.FollowedBy):
        spec = node.spec if isinstance(node, nodes.DidEvent) else node.first
        if isinstance(spec.window, nodes.LastWindow):
            out.extend(_window_exits(spec, spec.window, evaluation))
        return True
    if isinstance(node, rule.Comparison):
        known = _comparison_deadline(node, evaluation)
        if known is not None:
            out.extend(known)
            return True
    if isinstance(node, nodes.TimeFunction) and _reads_a_date(node, evaluation):
        out.append(_next_local_midnight(evaluation))
        return True
    if isinstance(node, nodes.TimeFunction | nodes.DaysAgo | nodes.Now):
        return False
    return all(_collect(child, evaluation, out) for child in children(node))


def _reads_a_date(node: nodes.TimeFunction, evaluation: Evaluation) -> bool:
    """Whole-day functions change only at local midnight."""
    if node.function == "days_to_anniversary":
        return True
    argument = node.argument
    return isinstance(argument, rule.Feature) and evaluation.frame[argument.name].type().is_date()


def _window_exits(
    spec: nodes.EventSpec, window: nodes.LastWindow, evaluation: Evaluation
) -> list[datetime]:
    span = (
        timedelta(days=window.amount) if window.unit == "days" else timedelta(hours=window.amount)
    )
    events = evaluation.events
    matching = events.filter(
        (events.event_type == ibis.literal(spec.event_type, type="string"))
        & (events.ts > ibis.literal(evaluation.now - span, type=_UTC))
    )
    first = evaluation.backend.to_pyarrow(matching.aggregate(first=matching.ts.min()))
    value = first.column("first")[0].as_py()
    return [] if value is None else [value + span]


def _comparison_deadline(node: rule.Comparison, evaluation: Evaluation) -> list[datetime] | None:
    """``days_since(F) OP c``, ``days_until(F) OP c`` or ``F OP days_ago(c)`` over an instant F."""
    left, right = node.left, node.right
    offset: timedelta | None = None
    field: str | None = None
    if isinstance(left, nodes.TimeFunction) and isinstance(right, rule.Number):
        if isinstance(left.argument, rule.Feature) and left.function != "days_to_anniversary":
            field = left.argument.name
            days = timedelta(days=float(right.value))
            offset = days if left.function == "days_since" else -days
    elif isinstance(left, rule.Feature) and isinstance(right, nodes.DaysAgo):
        field, offset = left.name, timedelta(days=float(right.days))
    if field is None or offset is None:
        return None
    frame = evaluation.frame
    if not frame[field].type().is_timestamp():
        return [_next_local_midnight(evaluation)]
    shifted = frame[field] + ibis.interval(seconds=int(offset.total_seconds()))
    pending = frame.filter(shifted > ibis.literal(evaluation.now, type=_UTC))
    first = evaluation.backend.to_pyarrow(pending.aggregate(first=shifted.min()))
    value = first.column("first")[0].as_py()
    return [] if value is None else [value]


def _next_local_midnight(evaluation: Evaluation) -> datetime:
    zone = ZoneInfo(evaluation.timezone)
    tomorrow = evaluation.now.astimezone(zone).date() + timedelta(days=1)
    return datetime(tomorrow.year, tomorrow.month, tomorrow.day, tzinfo=zone).astimezone(UTC)
