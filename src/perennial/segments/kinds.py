"""Check a segment expression against what exists, before it is saved or run.

A segment is rejected when it is written, not when it first runs: an unknown
field, ``amount > 'abc'``, an event type never seen, a tag nobody sets or a
segment that does not exist is an error with the column of the mistake and,
where a name is close, a suggestion. Five kinds cover profile fields: numbers,
text, instants (timestamps), calendar days (dates) and conditions. Instants
and days compare with each other (a day stands for its local midnight).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from enum import StrEnum

import pyarrow as pa

from perennial.lifecycle import rule_ast as rule
from perennial.lifecycle.rule_errors import ParseError, did_you_mean
from perennial.segments import ast as nodes
from perennial.segments.ast import Expression

__all__ = ["Catalog", "FieldKind", "check_expression", "infer_kind", "kinds_of_arrow_schema"]


class FieldKind(StrEnum):
    NUMBER = "number"
    TEXT = "text"
    TIMESTAMP = "timestamp"
    DATE = "date"
    CONDITION = "condition"

    @property
    def noun(self) -> str:
        return _NOUNS[self]


_NOUNS = {
    FieldKind.NUMBER: "a number",
    FieldKind.TEXT: "text",
    FieldKind.TIMESTAMP: "an instant (timestamp)",
    FieldKind.DATE: "a date",
    FieldKind.CONDITION: "a condition (true or false)",
}
_TEMPORAL = (FieldKind.TIMESTAMP, FieldKind.DATE)


@dataclass(frozen=True)
class Catalog:
    """The names an expression may use. ``None`` for a set means "do not check"."""

    fields: Mapping[str, FieldKind]
    event_types: Collection[str] | None = None
    tags: Collection[str] | None = None
    segments: Collection[str] | None = None
    descriptions: Mapping[str, str] = field(default_factory=dict)


def kinds_of_arrow_schema(schema: pa.Schema) -> dict[str, FieldKind]:
    """Each column's kind; columns an expression cannot use (lists, structs) are left out."""
    kinds: dict[str, FieldKind] = {}
    for column in schema:
        kind = _arrow_kind(column.type)
        if kind is not None and not column.name.startswith("_"):
            kinds[column.name] = kind
    return kinds


def _arrow_kind(data_type: pa.DataType) -> FieldKind | None:
    if pa.types.is_boolean(data_type):
        return FieldKind.CONDITION
    if pa.types.is_integer(data_type) or pa.types.is_floating(data_type):
        return FieldKind.NUMBER
    if pa.types.is_decimal(data_type):
        return FieldKind.NUMBER
    if pa.types.is_string(data_type) or pa.types.is_large_string(data_type):
        return FieldKind.TEXT
    if pa.types.is_timestamp(data_type):
        return FieldKind.TIMESTAMP
    if pa.types.is_date(data_type):
        return FieldKind.DATE
    return None


def check_expression(expression: Expression, catalog: Catalog, text: str) -> None:
    """Raise :class:`ParseError` unless ``expression`` is a condition over known names."""
    kind = infer_kind(expression, catalog, text)
    if kind is not FieldKind.CONDITION:
        reason = f"a segment must be a condition (true or false), but this is {kind.noun}"
        raise ParseError(reason, text, expression.position)


def infer_kind(expression: Expression, catalog: Catalog, text: str) -> FieldKind:
    return _Checker(catalog, text).kind(expression)


class _Checker:
    def __init__(self, catalog: Catalog, text: str) -> None:
        self._catalog = catalog
        self._text = text

    def kind(self, node: Expression) -> FieldKind:
        match node:
            case rule.Number():
                return FieldKind.NUMBER
            case rule.Text():
                return FieldKind.TEXT
            case rule.Feature(name):
                return self._field(name, node.position)
            case nodes.Now() | nodes.DaysAgo():
                return FieldKind.TIMESTAMP
            case nodes.DateLiteral():
                return FieldKind.DATE
            case nodes.TimeFunction(function, argument):
                actual = self.kind(argument)
                if actual not in _TEMPORAL:
                    reason = f"{function}() needs an instant or a date, but this is {actual.noun}"
                    raise self._error(reason, argument.position)
                return FieldKind.NUMBER
            case _:
                return self._predicate(node)

    def _predicate(self, node: Expression) -> FieldKind:
        match node:
            case nodes.TextMatch(operator, operand):
                word = operator.replace("_", " ")
                self._expect(operand, FieldKind.TEXT, f"'{word}' needs text")
                return FieldKind.CONDITION
            case nodes.HasTag(name) | nodes.TagValue(name):
                self._known(name, self._catalog.tags, "tag", node.position)
                return FieldKind.TEXT if isinstance(node, nodes.TagValue) else FieldKind.CONDITION
            case nodes.InSegment(name):
                self._known(name, self._catalog.segments, "segment", node.position)
                return FieldKind.CONDITION
            case nodes.DidEvent(spec):
                self._spec(spec)
                return FieldKind.CONDITION
            case nodes.FollowedBy(first, then):
                self._spec(first)
                self._spec(then)
                return FieldKind.CONDITION
            case _:
                return self._rule_node(node)

    def _rule_node(self, node: Expression) -> FieldKind:
        match node:
            case rule.Negate(operand):
                return self._expect(operand, FieldKind.NUMBER, "'-' needs a number")
            case rule.Arithmetic(operator, left, right):
                self._expect(left, FieldKind.NUMBER, f"'{operator}' needs numbers")
                return self._expect(right, FieldKind.NUMBER, f"'{operator}' needs numbers")
            case rule.Call():
                return self._call(node)
            case rule.And(operands) | rule.Or(operands):
                word = "'and'" if isinstance(node, rule.And) else "'or'"
                for operand in operands:
                    self._expect(operand, FieldKind.CONDITION, f"{word} joins conditions")
            case rule.Not(operand):
                self._expect(operand, FieldKind.CONDITION, "'not' needs a condition")
            case _:
                self._comparison(node)
        return FieldKind.CONDITION

    def _comparison(self, node: Expression) -> None:
        match node:
            case rule.Comparison(operator, left, right):
                self._same_kind(f"'{operator}'", left, (right,))
            case rule.Between(operand, lower, upper):
                self._same_kind("'between'", operand, (lower, upper))
            case rule.InList(operand, values):
                kind = self.kind(operand)
                if kind not in (FieldKind.NUMBER, FieldKind.TEXT):
                    reason = f"'in' lists numbers or text, but this is {kind.noun}"
                    raise self._error(reason, operand.position)
                for value in values:
                    self._expect(value, kind, f"'in' needs values of one kind ({kind.noun})")
            case rule.IsNull(operand):
                self.kind(operand)

    def _field(self, name: str, position: int) -> FieldKind:
        kind = self._catalog.fields.get(name)
        if kind is None:
            reason = f"unknown field '{name}'{did_you_mean(name, self._catalog.fields)}"
            raise self._error(reason, position)
        return kind

    def _known(self, name: str, known: Collection[str] | None, noun: str, position: int) -> None:
        if known is not None and name not in known:
            hint = did_you_mean(name, known)
            raise self._error(f"unknown {noun} '{name}'{hint}", position)

    def _spec(self, spec: nodes.EventSpec) -> None:
        self._known_event(spec.event_type, spec.position)
        if isinstance(spec.window, nodes.SinceEvent):
            self._known_event(spec.window.event_type, spec.window.position)
        if spec.where is not None:
            _PropertyChecker(self._text).check(spec.where)

    def _known_event(self, name: str, position: int) -> None:
        known = self._catalog.event_types
        if known is not None and name not in known:
            hint = did_you_mean(name, known) or " (no event of this type has been seen)"
            raise self._error(f"unknown event type '{name}'{hint}", position)

    def _call(self, node: rule.Call) -> FieldKind:
        if node.function == "abs":
            return self._expect(node.arguments[0], FieldKind.NUMBER, "abs() needs a number")
        first = self.kind(node.arguments[0])
        if first is FieldKind.CONDITION:
            reason = f"{node.function}() takes values, not conditions"
            raise self._error(reason, node.arguments[0].position)
        for argument in node.arguments[1:]:
            self._expect(argument, first, f"{node.function}() needs values of one kind")
        return first

    def _same_kind(self, operator: str, left: Expression, others: tuple[Expression, ...]) -> None:
        kind = self.kind(left)
        if kind is FieldKind.CONDITION:
            reason = f"{operator} compares values, not conditions; join conditions with 'and'/'or'"
            raise self._error(reason, left.position)
        for other in others:
            other_kind = self.kind(other)
            if other_kind is kind or (kind in _TEMPORAL and other_kind in _TEMPORAL):
                continue
            reason = (
                f"{operator} compares values of one kind: {_name(left)} is {kind.noun}, "
                f"{_name(other)} is {other_kind.noun}"
            )
            raise self._error(reason, other.position)

    def _expect(self, node: Expression, expected: FieldKind, context: str) -> FieldKind:
        actual = self.kind(node)
        if actual is not expected:
            raise self._error(f"{context}, but {_name(node)} is {actual.noun}", node.position)
        return actual

    def _error(self, reason: str, position: int) -> ParseError:
        return ParseError(reason, self._text, position)


class _PropertyChecker:
    """An event filter compares properties with literals: the literal gives the type."""

    def __init__(self, text: str) -> None:
        self._text = text

    def check(self, node: Expression) -> None:
        match node:
            case rule.And(operands) | rule.Or(operands):
                for operand in operands:
                    self.check(operand)
            case rule.Not(operand):
                self.check(operand)
            case rule.Between(_, lower, upper) if type(lower.value) is not type(upper.value):  # type: ignore[union-attr]
                both_numbers = isinstance(lower, rule.Number) and isinstance(upper, rule.Number)
                if not both_numbers:
                    raise ParseError(
                        "'between' needs two numbers or two strings", self._text, lower.position
                    )
            case rule.InList(_, values):
                if len({isinstance(value, rule.Number) for value in values}) > 1:
                    raise ParseError(
                        "an 'in' list of a property holds numbers or strings, not both",
                        self._text,
                        values[0].position,
                    )


def _name(node: Expression) -> str:
    match node:
        case rule.Feature(name):
            return f"'{name}'"
        case rule.Number(value):
            return f"the number {value!r}"
        case rule.Text(value):
            return f"the string '{value}'"
        case _:
            return "this"
