"""Evaluate a segment expression in plain Python: the reference the compiled query must match.

Written for clarity, not speed, it spells out the semantics of
:mod:`perennial.segments.compiler` customer by customer: SQL's three-valued logic
with ``None`` for null, float arithmetic, null on division by zero, event
windows and sequences by their definitions. The property test compares it with
DuckDB on random expressions and data; it also explains one customer's
membership without a query.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from perennial.lifecycle import rule_ast as rule
from perennial.lifecycle.rule_evaluator import (
    COMPARISONS,
    call_function,
    float_arithmetic,
    kleene_and,
    kleene_not,
    kleene_or,
)
from perennial.segments import ast as nodes
from perennial.segments.ast import Expression
from perennial.segments.compiler import local_midnight
from perennial.segments.references import inline_segments

__all__ = ["ReferenceData", "ReferenceEvent", "evaluate_reference", "properties_match"]


@dataclass(frozen=True)
class ReferenceEvent:
    customer_id: str
    event_type: str
    ts: datetime
    properties: str | None = None


@dataclass(frozen=True)
class ReferenceData:
    """Profiles by customer id, events, tags as ``{(customer, tag): value}``, saved segments."""

    profiles: Mapping[str, Mapping[str, Any]]
    events: Sequence[ReferenceEvent]
    now: datetime
    timezone: str
    tags: Mapping[tuple[str, str], str | None] = field(default_factory=dict)
    segments: Mapping[str, Expression] = field(default_factory=dict)


def evaluate_reference(expression: Expression, data: ReferenceData) -> dict[str, bool | None]:
    """True, false or ``None`` for every customer of ``data.profiles``."""
    expanded = inline_segments(expression, data.segments)
    by_customer: dict[str, list[ReferenceEvent]] = defaultdict(list)
    for event in data.events:
        by_customer[event.customer_id].append(event)
    evaluator = _Evaluator(data)
    return {
        customer: evaluator.condition(expanded, customer, row, by_customer.get(customer, []))
        for customer, row in data.profiles.items()
    }


class _Evaluator:
    def __init__(self, data: ReferenceData) -> None:
        self._data = data
        self._now = data.now.astimezone(UTC)
        self._zone = ZoneInfo(data.timezone)
        self._today = self._now.astimezone(self._zone).date()

    def condition(
        self, node: Expression, customer: str, row: Mapping[str, Any], events: list[ReferenceEvent]
    ) -> bool | None:
        value = _Row(self, customer, row, events).value(node)
        if value is not None and not isinstance(value, bool):
            raise TypeError(f"the expression gives {value!r}, not a condition")
        return value

    def local_day(self, instant: datetime) -> date:
        return instant.astimezone(self._zone).date()


class _Row:
    def __init__(
        self,
        evaluator: _Evaluator,
        customer: str,
        row: Mapping[str, Any],
        events: list[ReferenceEvent],
    ) -> None:
        self._e = evaluator
        self._customer = customer
        self._row = row
        self._events = events

    def value(self, node: Expression) -> Any:
        match node:
            case rule.Number(number) | rule.Text(number):
                return number
            case rule.Feature(name):
                return self._row[name]
            case nodes.Now():
                return self._e._now
            case nodes.DaysAgo(days):
                return self._e._now - timedelta(microseconds=round(days * 86_400_000_000))
            case nodes.DateLiteral(day):
                return day
            case nodes.TimeFunction(function, argument):
                return self._time_function(function, self.value(argument))
            case _:
                return self._predicate_value(node)

    def _predicate_value(self, node: Expression) -> Any:
        match node:
            case nodes.TextMatch(match, operand, pattern, negated):
                return _text_match(match, self.value(operand), pattern, negated)
            case nodes.HasTag(name):
                return (self._customer, name) in self._e._data.tags
            case nodes.TagValue(name):
                return self._e._data.tags.get((self._customer, name))
            case nodes.DidEvent(spec, count, negated):
                counted = sum(1 for _ in self._matching(spec))
                bound = count or nodes.CountBound(">=", 1)
                holds = COMPARISONS[bound.operator](counted, bound.times)
                return not holds if negated else holds
            case nodes.FollowedBy(first, then, within, negated):
                return self._followed_by(first, then, within, negated)
            case _:
                return self._rule_value(node)

    def _rule_value(self, node: Expression) -> Any:
        match node:
            case rule.Negate(operand):
                value = self.value(operand)
                return None if value is None else -float(value)
            case rule.Arithmetic(symbol, left, right):
                return float_arithmetic(symbol, self.value(left), self.value(right))
            case rule.Call(function, arguments):
                return call_function(function, [self.value(argument) for argument in arguments])
            case rule.And(operands):
                return kleene_and(self.value(operand) for operand in operands)
            case rule.Or(operands):
                return kleene_or(self.value(operand) for operand in operands)
            case rule.Not(operand):
                return kleene_not(self.value(operand))
        return self._comparison_value(node)

    def _comparison_value(self, node: Expression) -> Any:
        match node:
            case rule.Comparison(symbol, left, right):
                return self._compare(symbol, self.value(left), self.value(right))
            case rule.IsNull(operand, negated):
                return (self.value(operand) is None) != negated
            case rule.InList(operand, values, negated):
                value = self.value(operand)
                if value is None:
                    return None
                return any(value == item.value for item in values) != negated
            case rule.Between(operand, lower, upper, negated):
                value = self.value(operand)
                inside = kleene_and(
                    [
                        self._compare("<=", self.value(lower), value),
                        self._compare("<=", value, self.value(upper)),
                    ]
                )
                return kleene_not(inside) if negated else inside
        raise TypeError(f"not an expression node: {node!r}")

    def _compare(self, symbol: str, left: Any, right: Any) -> bool | None:
        if left is None or right is None:
            return None
        if isinstance(left, datetime) and not isinstance(right, datetime):
            left = self._e.local_day(left)
        elif isinstance(right, datetime) and not isinstance(left, datetime):
            right = self._e.local_day(right)
        return COMPARISONS[symbol](left, right)

    def _time_function(self, function: str, value: Any) -> float | None:
        if value is None:
            return None
        if function == "days_to_anniversary":
            day = self._e.local_day(value) if isinstance(value, datetime) else value
            return float(_days_to_anniversary(day, self._e._today))
        if isinstance(value, datetime):
            since = ((self._e._now - value) // timedelta(microseconds=1)) / 86_400_000_000
        else:
            since = float((self._e._today - value).days)
        return since if function == "days_since" else -since

    # -- events -----------------------------------------------------------------------

    def _matching(
        self, spec: nodes.EventSpec, *, with_window: bool = True
    ) -> Iterable[ReferenceEvent]:
        since: datetime | None = None
        if with_window and isinstance(spec.window, nodes.SinceEvent):
            anchors = [e.ts for e in self._events if e.event_type == spec.window.event_type]
            if not anchors:
                return
            since = max(anchors)
        for event in self._events:
            if event.event_type != spec.event_type:
                continue
            if (
                spec.where is not None
                and _property_condition(spec.where, event.properties) is not True
            ):
                continue
            if with_window and not self._in_window(spec.window, event.ts, since):
                continue
            yield event

    def _in_window(self, window: nodes.Window | None, ts: datetime, since: datetime | None) -> bool:
        match window:
            case None:
                return True
            case nodes.LastWindow(amount, unit):
                span = timedelta(days=amount) if unit == "days" else timedelta(hours=amount)
                return ts > self._e._now - span
            case nodes.DateWindow(start, end):
                zone = self._e._data.timezone
                after = start is None or ts >= local_midnight(start, zone)
                before = end is None or ts < local_midnight(end + timedelta(days=1), zone)
                return after and before
            case nodes.SinceEvent():
                return since is not None and ts > since
        return False

    def _followed_by(
        self,
        first: nodes.EventSpec,
        then: nodes.EventSpec,
        within: nodes.LastWindow,
        negated: bool,
    ) -> bool:
        span = (
            timedelta(days=within.amount)
            if within.unit == "days"
            else timedelta(hours=within.amount)
        )
        seconds = [e.ts for e in self._matching(then)]
        for start in {e.ts for e in self._matching(first)}:
            hits = sum(1 for ts in seconds if start < ts <= start + span)
            if (hits == 0) if negated else (hits >= 1):
                return True
        return False


def properties_match(condition: Expression, properties: str | None) -> bool:
    """Does one event's properties (JSON text) satisfy a ``where`` condition? The same
    semantics as the compiled query; journeys filter arriving events with it."""
    return _property_condition(condition, properties) is True


def _property_condition(node: Expression, properties: str | None) -> bool | None:
    document = _parse_properties(properties)
    return _PropertyRow(document).value(node)


def _parse_properties(properties: str | None) -> dict[str, Any]:
    if not properties:
        return {}
    try:
        parsed = json.loads(properties)
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


class _PropertyRow:
    def __init__(self, document: Mapping[str, Any]) -> None:
        self._document = document

    def text(self, name: str) -> str | None:
        value = self._document.get(name)
        if value is None:
            return None
        if isinstance(value, str):
            return value
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))

    def number(self, name: str) -> float | None:
        text = self.text(name)
        if text is None:
            return None
        try:
            number = float(text)
        except ValueError:
            return None
        return number

    def lookup(self, name: str, literal: Expression) -> Any:
        return self.number(name) if isinstance(literal, rule.Number) else self.text(name)

    def value(self, node: Expression) -> bool | None:
        match node:
            case rule.And(operands):
                return kleene_and(self.value(o) for o in operands)
            case rule.Or(operands):
                return kleene_or(self.value(o) for o in operands)
            case rule.Not(operand):
                return kleene_not(self.value(operand))
        return self._test(node)

    def _test(self, node: Expression) -> bool | None:
        match node:
            case rule.Comparison(symbol, rule.Feature(name), literal):
                value = self.lookup(name, literal)
                if value is None:
                    return None
                return COMPARISONS[symbol](value, _literal(literal))
            case rule.IsNull(rule.Feature(name), negated):
                return (self.text(name) is None) != negated
            case rule.InList(rule.Feature(name), values, negated):
                value = self.lookup(name, values[0])
                if value is None:
                    return None
                return any(value == _literal(item) for item in values) != negated
            case rule.Between(rule.Feature(name), lower, upper, negated):
                value = self.lookup(name, lower)
                if value is None:
                    return None
                inside = _literal(lower) <= value <= _literal(upper)
                return not inside if negated else inside
            case nodes.TextMatch(match, rule.Feature(name), pattern, negated):
                return _text_match(match, self.text(name), pattern, negated)
        raise TypeError(f"not a property condition: {node!r}")


def _literal(node: Expression) -> Any:
    if isinstance(node, rule.Number):
        return float(node.value)
    if isinstance(node, rule.Text):
        return node.value
    raise TypeError(f"not a literal: {node!r}")


def _text_match(match: str, value: Any, pattern: str, negated: bool) -> bool | None:
    if value is None:
        return None
    found = pattern in value if match == "contains" else value.startswith(pattern)
    return not found if negated else found


def _days_to_anniversary(day: date, today: date) -> int:
    upcoming = _anniversary(today.year, day)
    if upcoming < today:
        upcoming = _anniversary(today.year + 1, day)
    return (upcoming - today).days


def _anniversary(year: int, day: date) -> date:
    leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
    if day.month == 2 and day.day == 29 and not leap:
        return date(year, 2, 28)
    return date(year, day.month, day.day)
