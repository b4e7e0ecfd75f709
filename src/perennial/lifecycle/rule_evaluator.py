"""Evaluate a rule on one row in plain Python: the reference the Ibis compiler must match.

It is written for clarity, not speed, and spells out the semantics the engines
are held to (see :mod:`perennial.lifecycle.rule_compiler`): SQL's three-valued
logic with ``None`` for null, float arithmetic, null on division by zero, and
``max``/``min`` that skip nulls. Property tests compare it with DuckDB on random
rules and rows; it also explains a single customer's stage without a query.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterable, Mapping
from typing import Any

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
    referenced_features,
)
from perennial.lifecycle.rule_errors import MissingFeatureError

__all__ = [
    "COMPARISONS",
    "call_function",
    "evaluate_rule",
    "float_arithmetic",
    "kleene_and",
    "kleene_not",
    "kleene_or",
]

COMPARISONS: dict[str, Callable[[Any, Any], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
}
_ARITHMETIC: dict[str, Callable[[float, float], float]] = {
    "+": operator.add,
    "-": operator.sub,
    "*": operator.mul,
}


def evaluate_rule(expression: Expression, row: Mapping[str, Any]) -> bool | None:
    """True, false, or ``None`` (null: unknown, which a stage treats as not true).

    ``row`` maps feature names to values (``None`` for null): numbers, strings,
    timezone-aware datetimes. Every feature the rule reads must be a key.
    """
    missing = [name for name in referenced_features(expression) if name not in row]
    if missing:
        raise MissingFeatureError(missing)
    result = _evaluate(expression, row)
    if result is not None and not isinstance(result, bool):
        raise TypeError(f"the rule gives {result!r}, not a condition")
    return result


def _evaluate(node: Expression, row: Mapping[str, Any]) -> Any:
    match node:
        case Number(value) | Text(value):
            return value
        case Feature(name):
            return row[name]
        case Negate(operand):
            value = _evaluate(operand, row)
            return None if value is None else -float(value)
        case Arithmetic(symbol, left, right):
            return float_arithmetic(symbol, _evaluate(left, row), _evaluate(right, row))
        case Call(function, arguments):
            values = [_evaluate(argument, row) for argument in arguments]
            return call_function(function, values)
        case _:
            return _condition(node, row)


def _condition(
    node: Comparison | IsNull | InList | Between | And | Or | Not, row: Mapping[str, Any]
) -> bool | None:
    match node:
        case Comparison(symbol, left, right):
            return _compare(symbol, _evaluate(left, row), _evaluate(right, row))
        case IsNull(operand, negated):
            return (_evaluate(operand, row) is None) != negated
        case InList(operand, values, negated):
            value = _evaluate(operand, row)
            if value is None:
                return None
            return any(value == item.value for item in values) != negated
        case Between(operand, lower, upper, negated):
            value = _evaluate(operand, row)
            inside = kleene_and(
                [
                    _compare("<=", _evaluate(lower, row), value),
                    _compare("<=", value, _evaluate(upper, row)),
                ]
            )
            return kleene_not(inside) if negated else inside
        case And(operands):
            return kleene_and(_evaluate(operand, row) for operand in operands)
        case Or(operands):
            return kleene_or(_evaluate(operand, row) for operand in operands)
        case Not(operand):
            return kleene_not(_evaluate(operand, row))


def _compare(symbol: str, left: Any, right: Any) -> bool | None:
    if left is None or right is None:
        return None
    return COMPARISONS[symbol](left, right)


def float_arithmetic(symbol: str, left: Any, right: Any) -> float | None:
    if left is None or right is None:
        return None
    if symbol == "/":
        return None if float(right) == 0 else float(left) / float(right)
    return _ARITHMETIC[symbol](float(left), float(right))


def call_function(function: str, values: list[Any]) -> Any:
    if function == "abs":
        return None if values[0] is None else abs(values[0])
    present = [value for value in values if value is not None]
    if not present:
        return None
    if function == "coalesce":
        return present[0]
    return max(present) if function in ("max", "greatest") else min(present)


def kleene_and(values: Iterable[bool | None]) -> bool | None:
    # Kleene logic: false wins, then unknown, then true.
    seen = list(values)
    if False in seen:
        return False
    return None if None in seen else True


def kleene_or(values: Iterable[bool | None]) -> bool | None:
    seen = list(values)
    if True in seen:
        return True
    return None if None in seen else False


def kleene_not(value: bool | None) -> bool | None:
    return None if value is None else not value
