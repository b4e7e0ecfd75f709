"""The typed syntax tree of a segment (or rule tag) expression, and its canonical text.

A segment expression is a lifecycle rule (:mod:`perennial.lifecycle.rule_ast`:
comparisons, ``in``, ``between``, ``is null``, arithmetic, ``and``/``or``/``not``)
plus what a segment needs and a stage rule does not:

* text matching: ``region contains '上海'``, ``email starts with 'vip'``;
* time relative to now: ``days_since(first_order_at) > 90``, ``first_order_at <
  days_ago(90)``, ``days_to_anniversary(birthday) <= 6``, ``date('2025-11-11')``;
* event predicates: ``did course_purchased where course_id == 'CRS-101' at least 2
  times in last 30 days``, and sequences ``did course_purchased not followed by
  lesson_completed within 30 days``;
* tags and other segments: ``has_tag('vip')``, ``tag('favourite_category') == 'books'``,
  ``in_segment('dormant_learners')``.

The rule nodes are reused as they are, so one tree mixes both; ``Feature`` names
a profile field here. Every node keeps the offset its text starts at, for errors.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from typing import Literal, get_args

from perennial.lifecycle import rule_ast as rule
from perennial.lifecycle.rule_ast import (
    And,
    Arithmetic,
    Between,
    Call,
    Comparison,
    Feature,
    InList,
    IsNull,
    Negate,
    Not,
    Number,
    Or,
    Text,
)

__all__ = [
    "TIME_FUNCTIONS",
    "CountBound",
    "DateLiteral",
    "DateWindow",
    "DaysAgo",
    "DidEvent",
    "EventSpec",
    "Expression",
    "FollowedBy",
    "HasTag",
    "InSegment",
    "LastWindow",
    "Now",
    "SinceEvent",
    "TagValue",
    "TextMatch",
    "TimeFunction",
    "TimeFunctionName",
    "TimeUnit",
    "Window",
    "children",
    "event_types",
    "format_expression",
    "referenced_fields",
    "referenced_segments",
    "referenced_tags",
    "walk",
]

TimeFunctionName = Literal["days_since", "days_until", "days_to_anniversary"]
TIME_FUNCTIONS: tuple[TimeFunctionName, ...] = get_args(TimeFunctionName)
TimeUnit = Literal["days", "hours"]
CountOperator = Literal[">=", "<=", "=="]
MatchOperator = Literal["contains", "starts_with"]


def _position() -> int:
    return field(default=0, compare=False, repr=False, kw_only=True)


@dataclass(frozen=True, slots=True)
class Now:
    """``now()``: the evaluation instant (the wall clock, or the configured clock)."""

    position: int = _position()


@dataclass(frozen=True, slots=True)
class DaysAgo:
    """``days_ago(N)``: the instant N days of 24 hours before now."""

    days: int | float
    position: int = _position()


@dataclass(frozen=True, slots=True)
class DateLiteral:
    """``date('2025-11-11')``: a calendar day (compared with an instant, its local midnight)."""

    value: date
    position: int = _position()


@dataclass(frozen=True, slots=True)
class TimeFunction:
    """Days between now and a time field.

    ``days_since(x)``: float days since an instant, or whole days since a date
    (today in the default zone); ``days_until(x)`` is its negation;
    ``days_to_anniversary(d)``: whole days until the next yearly return of a date's
    month and day (0 on the day itself; 29 February falls on 28 February in other years).
    """

    function: TimeFunctionName
    argument: Expression
    position: int = _position()


@dataclass(frozen=True, slots=True)
class TextMatch:
    """``x contains 'abc'`` or ``x starts with 'abc'``: case-sensitive, the pattern is literal."""

    operator: MatchOperator
    operand: Expression
    pattern: str
    negated: bool = False
    position: int = _position()


@dataclass(frozen=True, slots=True)
class HasTag:
    """``has_tag('vip')``: the customer carries the tag (any value)."""

    name: str
    position: int = _position()


@dataclass(frozen=True, slots=True)
class TagValue:
    """``tag('favourite_category')``: the tag's value as text, null when not tagged."""

    name: str
    position: int = _position()


@dataclass(frozen=True, slots=True)
class InSegment:
    """``in_segment('dormant_learners')``: a member of that segment, evaluated with this one."""

    name: str
    position: int = _position()


@dataclass(frozen=True, slots=True)
class CountBound:
    """``at least N times`` (>=), ``at most N times`` (<=), ``exactly N times`` (==)."""

    operator: CountOperator
    times: int
    position: int = _position()


@dataclass(frozen=True, slots=True)
class LastWindow:
    """``in last N days`` (or hours): events after now minus the span."""

    amount: int
    unit: TimeUnit = "days"
    position: int = _position()


@dataclass(frozen=True, slots=True)
class DateWindow:
    """``between 'D1' and 'D2'`` (local days, both included), ``since 'D'``, ``before 'D'``."""

    start: date | None
    end: date | None
    position: int = _position()


@dataclass(frozen=True, slots=True)
class SinceEvent:
    """``since EVENT``: after the customer's latest event of that type (none: no such events)."""

    event_type: str
    position: int = _position()


Window = LastWindow | DateWindow | SinceEvent


@dataclass(frozen=True, slots=True)
class EventSpec:
    """Which events count: a type, an optional filter on their properties, a time window.

    In ``where`` a ``Feature`` names a property of the event (``course_id``, or a
    dotted path ``item.sku``), compared with literals only, so its type is the literal's.
    """

    event_type: str
    where: Expression | None = None
    window: Window | None = None
    position: int = _position()


@dataclass(frozen=True, slots=True)
class DidEvent:
    """``did [not] SPEC [at least|at most|exactly N times] [WINDOW]``.

    Without a count, ``did`` means at least once. ``did not`` is the negation of the
    whole counted predicate, so ``did not login at least 3 times`` is "fewer than 3".
    """

    spec: EventSpec
    count: CountBound | None = None
    negated: bool = False
    position: int = _position()


@dataclass(frozen=True, slots=True)
class FollowedBy:
    """``did A [not] followed by B within N days``.

    True when some event matching ``first`` has (``negated``: has no) event matching
    ``then`` after it and at most ``within`` later. An A whose span has not yet
    elapsed counts with what happened so far.
    """

    first: EventSpec
    then: EventSpec
    within: LastWindow
    negated: bool = False
    position: int = _position()


Expression = (
    rule.Number
    | rule.Text
    | rule.Feature
    | rule.Negate
    | rule.Arithmetic
    | rule.Call
    | rule.Comparison
    | rule.IsNull
    | rule.InList
    | rule.Between
    | rule.And
    | rule.Or
    | rule.Not
    | Now
    | DaysAgo
    | DateLiteral
    | TimeFunction
    | TextMatch
    | HasTag
    | TagValue
    | InSegment
    | DidEvent
    | FollowedBy
)


def children(node: Expression) -> tuple[Expression, ...]:
    """The direct sub-expressions of ``node`` (event filters excluded: they read properties)."""
    match node:
        case TimeFunction(_, argument):
            return (argument,)
        case TextMatch(_, operand):
            return (operand,)
        case Now() | DaysAgo() | DateLiteral() | HasTag() | TagValue() | InSegment():
            return ()
        case DidEvent() | FollowedBy():
            return ()
        case _:
            return _rule_children(node)


def _rule_children(node: Expression) -> tuple[Expression, ...]:
    match node:
        case Negate(operand) | Not(operand) | IsNull(operand):
            return (operand,)
        case Arithmetic(_, left, right) | Comparison(_, left, right):
            return (left, right)
        case Call(_, arguments):
            return arguments
        case And(operands) | Or(operands):
            return operands
        case InList(operand, values):
            return (operand, *values)
        case Between(operand, lower, upper):
            return (operand, lower, upper)
        case Number() | Text() | Feature():
            return ()
    raise TypeError(f"not an expression node: {node!r}")


def walk(node: Expression) -> Iterator[tuple[Expression, int]]:
    """Every node with its level (1 at the root), depth first, without recursion."""
    stack: list[tuple[Expression, int]] = [(node, 1)]
    while stack:
        current, level = stack.pop()
        yield current, level
        stack.extend((child, level + 1) for child in reversed(children(current)))


def referenced_fields(node: Expression) -> tuple[str, ...]:
    """Profile fields read, each once, in order of first appearance."""
    names = (current.name for current, _ in walk(node) if isinstance(current, Feature))
    return tuple(dict.fromkeys(names))


def referenced_tags(node: Expression) -> tuple[str, ...]:
    names = (c.name for c, _ in walk(node) if isinstance(c, HasTag | TagValue))
    return tuple(dict.fromkeys(names))


def referenced_segments(node: Expression) -> tuple[str, ...]:
    names = (c.name for c, _ in walk(node) if isinstance(c, InSegment))
    return tuple(dict.fromkeys(names))


def event_types(node: Expression) -> tuple[str, ...]:
    """Event types the expression reads (its live updates come from events of these types)."""
    found: list[str] = []
    for current, _ in walk(node):
        specs: tuple[EventSpec, ...] = ()
        if isinstance(current, DidEvent):
            specs = (current.spec,)
        elif isinstance(current, FollowedBy):
            specs = (current.first, current.then)
        for spec in specs:
            found.append(spec.event_type)
            if isinstance(spec.window, SinceEvent):
                found.append(spec.window.event_type)
    return tuple(dict.fromkeys(found))


# -- canonical text ---------------------------------------------------------------


def format_expression(node: Expression) -> str:
    """Canonical text of ``node``, fully parenthesised: parsing it gives back an equal tree."""
    match node:
        case Now():
            return "now()"
        case DaysAgo(days):
            return f"days_ago({days!r})"
        case DateLiteral(value):
            return f"date('{value.isoformat()}')"
        case TimeFunction(function, argument):
            return f"{function}({format_expression(argument)})"
        case TextMatch(operator, operand, pattern, negated):
            word = ("not " if negated else "") + operator.replace("_", " ")
            return f"({format_expression(operand)} {word} {_quote(pattern)})"
        case HasTag(name) | TagValue(name) | InSegment(name):
            call = {HasTag: "has_tag", TagValue: "tag", InSegment: "in_segment"}[type(node)]
            return f"{call}({_quote(name)})"
        case DidEvent(spec, count, negated):
            counted = "" if count is None else " " + _format_count(count)
            spec_text = _format_spec(spec, with_window=False)
            window = "" if spec.window is None else " " + _format_window(spec.window)
            return f"(did {'not ' if negated else ''}{spec_text}{counted}{window})"
        case FollowedBy(first, then, within, negated):
            word = "not followed by" if negated else "followed by"
            return (
                f"(did {_format_spec(first, with_window=True)} {word} "
                f"{_format_spec(then, with_window=False)} within {within.amount} {within.unit})"
            )
        case _:
            return _format_rule_node(node)


def _format_rule_node(node: Expression) -> str:
    match node:
        case Number(value):
            return repr(value)
        case Text(value):
            return _quote(value)
        case Feature(name):
            return name
        case Negate(operand):
            return f"-({format_expression(operand)})"
        case Arithmetic(operator, left, right) | Comparison(operator, left, right):
            return f"({format_expression(left)} {operator} {format_expression(right)})"
        case Call(function, arguments):
            return f"{function}({', '.join(format_expression(a) for a in arguments)})"
        case And(operands) | Or(operands):
            joiner = " and " if isinstance(node, And) else " or "
            return "(" + joiner.join(format_expression(o) for o in operands) + ")"
        case _:
            return _format_predicate(node)


def _format_predicate(node: Expression) -> str:
    match node:
        case IsNull(operand, negated):
            return f"({format_expression(operand)} is {'not ' if negated else ''}null)"
        case InList(operand, values, negated):
            listed = ", ".join(format_expression(value) for value in values)
            return f"({format_expression(operand)} {'not ' if negated else ''}in ({listed}))"
        case Between(operand, lower, upper, negated):
            bounds = f"{format_expression(lower)} and {format_expression(upper)}"
            return f"({format_expression(operand)} {'not ' if negated else ''}between {bounds})"
        case Not(operand):
            return f"(not {format_expression(operand)})"
    raise TypeError(f"not an expression node: {node!r}")


def _format_spec(spec: EventSpec, *, with_window: bool) -> str:
    text = _event_name(spec.event_type)
    if spec.where is not None:
        text += f" where {format_expression(spec.where)}"
    if with_window and spec.window is not None:
        text += " " + _format_window(spec.window)
    return text


def _format_count(count: CountBound) -> str:
    word = {">=": "at least", "<=": "at most", "==": "exactly"}[count.operator]
    return f"{word} {count.times} times"


def _format_window(window: Window) -> str:
    match window:
        case LastWindow(amount, unit):
            return f"in last {amount} {unit}"
        case SinceEvent(event_type):
            return f"since {_event_name(event_type)}"
        case DateWindow(start, end):
            if start is not None and end is not None:
                return f"between '{start.isoformat()}' and '{end.isoformat()}'"
            if start is not None:
                return f"since '{start.isoformat()}'"
            return f"before '{end.isoformat() if end else ''}'"


def _event_name(event_type: str) -> str:
    plain = event_type.isidentifier() and event_type.isascii()
    return event_type if plain and event_type.lower() not in _RESERVED else _quote(event_type)


def _quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


_RESERVED = frozenset(
    {
        "and",
        "or",
        "not",
        "is",
        "null",
        "in",
        "between",
        "otherwise",
        "did",
        "where",
        "at",
        "exactly",
        "since",
        "before",
        "followed",
        "within",
        "contains",
        "starts",
    }
)
