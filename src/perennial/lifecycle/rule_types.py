"""Check that a rule's values go together before it runs anywhere.

A stage model is rejected when it is loaded, not on the first night it runs on
Spark: ``acquisition_channel > 3`` or ``recency_days and frequency_orders`` is an
error naming the column. Four kinds are enough for rules: numbers (integers and
floats mix freely), text, timestamps, and conditions (true, false or null).
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum

from perennial.lifecycle.rule_ast import (
    And,
    Arithmetic,
    Between,
    Call,
    Comparison,
    Expression,
    Feature,
    InList,
    IsNull,
    Negate,
    Not,
    Number,
    Or,
    Text,
)
from perennial.lifecycle.rule_errors import ParseError, did_you_mean

__all__ = ["ValueKind", "check_condition", "infer_kind"]


class ValueKind(StrEnum):
    """What a feature or a sub-expression holds; any of them may also be null."""

    NUMBER = "number"
    TEXT = "text"
    TIMESTAMP = "timestamp"
    CONDITION = "condition"

    @property
    def noun(self) -> str:
        """How a message names the kind: "'tier' is text"."""
        return _NOUNS[self]


_NOUNS = {
    ValueKind.NUMBER: "a number",
    ValueKind.TEXT: "text",
    ValueKind.TIMESTAMP: "a timestamp",
    ValueKind.CONDITION: "a condition (true or false)",
}


def infer_kind(expression: Expression, kinds: Mapping[str, ValueKind], text: str) -> ValueKind:
    """The kind of ``expression``; raises :class:`ParseError` at the first mismatch.

    ``kinds`` gives each feature's kind (from the feature registry, or from a
    table's schema); ``text`` is the rule the tree was parsed from, for the caret.
    """
    return _Checker(kinds, text).kind(expression)


def check_condition(expression: Expression, kinds: Mapping[str, ValueKind], text: str) -> None:
    """Raise :class:`ParseError` unless ``expression`` is a well-formed condition."""
    kind = infer_kind(expression, kinds, text)
    if kind is not ValueKind.CONDITION:
        reason = (
            f"a rule must be a condition (true or false), but {_name(expression)} is {kind.noun}"
        )
        raise ParseError(reason, text, expression.position)


class _Checker:
    def __init__(self, kinds: Mapping[str, ValueKind], text: str) -> None:
        self._kinds = kinds
        self._text = text

    def kind(self, node: Expression) -> ValueKind:
        match node:
            case Number():
                return ValueKind.NUMBER
            case Text():
                return ValueKind.TEXT
            case Feature(name):
                return self._feature(name, node.position)
            case Negate(operand):
                return self._expect(operand, ValueKind.NUMBER, "'-' needs a number")
            case Arithmetic(operator, left, right):
                self._expect(left, ValueKind.NUMBER, f"'{operator}' needs numbers")
                return self._expect(right, ValueKind.NUMBER, f"'{operator}' needs numbers")
            case Call():
                return self._call(node)
            case _:
                return self._condition(node)

    def _condition(
        self, node: Comparison | IsNull | InList | Between | And | Or | Not
    ) -> ValueKind:
        match node:
            case Comparison(operator, left, right):
                self._same_kind(f"'{operator}'", left, (right,))
            case Between(operand, lower, upper):
                self._same_kind("'between'", operand, (lower, upper))
            case InList(operand, values):
                self._in_list(operand, values)
            case IsNull(operand):
                self.kind(operand)
            case And(operands) | Or(operands):
                word = "'and'" if isinstance(node, And) else "'or'"
                for operand in operands:
                    self._expect(operand, ValueKind.CONDITION, f"{word} joins conditions")
            case Not(operand):
                self._expect(operand, ValueKind.CONDITION, "'not' needs a condition")
        return ValueKind.CONDITION

    def _feature(self, name: str, position: int) -> ValueKind:
        kind = self._kinds.get(name)
        if kind is None:
            reason = f"unknown feature '{name}'{did_you_mean(name, self._kinds)}"
            raise ParseError(reason, self._text, position)
        return kind

    def _call(self, node: Call) -> ValueKind:
        if node.function == "abs":
            return self._expect(node.arguments[0], ValueKind.NUMBER, "abs() needs a number")
        first = self.kind(node.arguments[0])
        if first is ValueKind.CONDITION:
            reason = f"{node.function}() takes values, not conditions"
            raise ParseError(reason, self._text, node.arguments[0].position)
        for argument in node.arguments[1:]:
            self._expect(argument, first, f"{node.function}() needs values of one kind")
        return first

    def _same_kind(self, operator: str, left: Expression, others: tuple[Expression, ...]) -> None:
        kind = self.kind(left)
        if kind is ValueKind.CONDITION:
            reason = f"{operator} compares values, not conditions; join conditions with 'and'/'or'"
            raise ParseError(reason, self._text, left.position)
        for other in others:
            self._expect(
                other,
                kind,
                f"{operator} compares values of one kind ({_name(left)} is {kind.noun})",
            )

    def _in_list(self, operand: Expression, values: tuple[Number | Text, ...]) -> None:
        kind = self.kind(operand)
        if kind not in (ValueKind.NUMBER, ValueKind.TEXT):
            reason = f"'in' lists numbers or text, but {_name(operand)} is {kind.noun}"
            raise ParseError(reason, self._text, operand.position)
        for value in values:
            self._expect(
                value, kind, f"'in' needs values of one kind ({_name(operand)} is {kind.noun})"
            )

    def _expect(self, node: Expression, expected: ValueKind, context: str) -> ValueKind:
        actual = self.kind(node)
        if actual is not expected:
            reason = f"{context}, but {_name(node)} is {actual.noun}"
            raise ParseError(reason, self._text, node.position)
        return actual


def _name(node: Expression) -> str:
    match node:
        case Feature(name):
            return f"'{name}'"
        case Number(value):
            return f"the number {value!r}"
        case Text(value):
            return f"the string '{value}'"
        case _:
            return "this"
