"""Compile a rule's tree to an Ibis boolean expression over a feature table.

Ibis turns expression objects into the engine's SQL (DuckDB by default, Spark at
scale), so a user's values reach the engine as typed literals, never as spliced
text (DESIGN rule 4). The semantics are pinned so that every engine, and the
Python reference in :mod:`perennial.lifecycle.rule_evaluator`, agree:

- nulls follow SQL: a comparison with null is null, and ``and``/``or``/``not`` use
  three-valued logic; a stage's CASE and a filter treat null as "not true";
- arithmetic is float64, so integers never overflow (Spark's ANSI mode would fail);
- division by zero is null (DuckDB alone would give ``inf``, ANSI Spark an error);
- ``max``/``greatest`` and ``min``/``least`` skip nulls and are null only when every
  value is (DuckDB, Spark and PostgreSQL agree);
- a float literal is a DOUBLE: DuckDB reads ``0.1`` as a DECIMAL, where
  ``0.1 + 0.2 == 0.3`` holds and floats disagree.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from typing import Any

import ibis  # type: ignore[import-untyped]
import ibis.expr.types as ir  # type: ignore[import-untyped]

from perennial.lifecycle.rule_ast import (
    And,
    Arithmetic,
    Between,
    Call,
    Comparison,
    Expression,
    Feature,
    FunctionName,
    InList,
    IsNull,
    Negate,
    Not,
    Number,
    Or,
    Text,
    format_rule,
    referenced_features,
)
from perennial.lifecycle.rule_errors import MissingFeatureError
from perennial.lifecycle.rule_types import ValueKind

__all__ = [
    "COMPARISONS",
    "balanced",
    "compile_arithmetic",
    "compile_call",
    "compile_rule",
    "kinds_of_schema",
    "number_literal",
]

COMPARISONS: dict[str, Callable[[Any, Any], Any]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
}
_ARITHMETIC: dict[str, Callable[[Any, Any], Any]] = {
    "+": operator.add,
    "-": operator.sub,
    "*": operator.mul,
}


def compile_rule(expression: Expression, table: ir.Table) -> ir.BooleanValue:
    """An Ibis boolean over ``table``'s rows: true, false or null for each row.

    Every feature the rule reads must be a column of ``table``, else
    :class:`MissingFeatureError`. The tree should have passed
    :func:`~perennial.lifecycle.rule_types.check_condition` against the table's
    kinds (see :func:`kinds_of_schema`); Ibis rejects what it cannot type.
    """
    columns = set(table.columns)
    missing = [name for name in referenced_features(expression) if name not in columns]
    if missing:
        raise MissingFeatureError(missing)
    value = _compile(expression, table)
    if not isinstance(value, ir.BooleanValue):
        raise TypeError(f"{format_rule(expression)} is not a condition")
    return value


def kinds_of_schema(schema: ibis.Schema) -> dict[str, ValueKind]:
    """Each column's :class:`ValueKind`; columns rules cannot use (arrays, JSON) are left out."""
    kinds: dict[str, ValueKind] = {}
    for name, dtype in schema.items():
        if dtype.is_boolean():
            kinds[name] = ValueKind.CONDITION
        elif dtype.is_numeric():
            kinds[name] = ValueKind.NUMBER
        elif dtype.is_string():
            kinds[name] = ValueKind.TEXT
        elif dtype.is_timestamp() or dtype.is_date():
            kinds[name] = ValueKind.TIMESTAMP
    return kinds


def _compile(node: Expression, table: ir.Table) -> ir.Value:
    match node:
        case Number(value):
            return number_literal(value)
        case Text(value):
            return ibis.literal(value, type="string")
        case Feature(name):
            return table[name]
        case Negate(operand):
            return -_compile(operand, table).cast("float64")
        case Arithmetic(symbol, left, right):
            return compile_arithmetic(symbol, _compile(left, table), _compile(right, table))
        case Call(function, arguments):
            return compile_call(function, [_compile(argument, table) for argument in arguments])
        case _:
            return _condition(node, table)


def _condition(
    node: Comparison | IsNull | InList | Between | And | Or | Not, table: ir.Table
) -> ir.BooleanValue:
    match node:
        case Comparison(symbol, left, right):
            return COMPARISONS[symbol](_compile(left, table), _compile(right, table))
        case IsNull(operand, negated):
            value = _compile(operand, table)
            return value.notnull() if negated else value.isnull()
        case InList(operand, values, negated):
            value = _compile(operand, table)
            listed = [_compile(item, table) for item in values]
            return value.notin(listed) if negated else value.isin(listed)
        case Between(operand, lower, upper, negated):
            inside = _compile(operand, table).between(
                _compile(lower, table), _compile(upper, table)
            )
            return ~inside if negated else inside
        case And(operands):
            return balanced(operator.and_, [_compile(o, table) for o in operands])
        case Or(operands):
            return balanced(operator.or_, [_compile(o, table) for o in operands])
        case Not(operand):
            return ~_compile(operand, table)


def balanced(combine: Callable[[Any, Any], Any], values: list[ir.Value]) -> ir.BooleanValue:
    # Pairwise, so 500 conditions joined by 'or' nest 9 deep in Ibis, not 500 (its recursion).
    while len(values) > 1:
        pairs = range(0, len(values) - 1, 2)
        values = [combine(values[i], values[i + 1]) for i in pairs] + values[len(values) // 2 * 2 :]
    return values[0]


def number_literal(value: int | float) -> ir.NumericScalar:
    if isinstance(value, int):
        return ibis.literal(value, type="int64")
    # repr() is the shortest text that reads back as the same double.
    return ibis.literal(repr(value), type="string").cast("float64")


def compile_arithmetic(symbol: str, left: ir.Value, right: ir.Value) -> ir.NumericValue:
    left, right = left.cast("float64"), right.cast("float64")
    if symbol == "/":
        return left / right.nullif(0)
    return _ARITHMETIC[symbol](left, right)


def compile_call(function: FunctionName, arguments: Sequence[ir.Value]) -> ir.Value:
    if function == "abs":
        return arguments[0].abs()
    if function == "coalesce":
        return ibis.coalesce(*arguments)
    if function in ("max", "greatest"):
        return ibis.greatest(*arguments)
    return ibis.least(*arguments)
