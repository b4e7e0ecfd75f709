"""The typed syntax tree of a lifecycle rule, and its canonical text.

A rule is parsed once into these frozen dataclasses; the Ibis compiler and the
Python evaluator walk the tree, so rule text never becomes SQL text. Every node
remembers where its text starts (``position``, 0-based): later checks (kinds,
missing columns) point at the column. Positions are ignored by ``==``, so a tree
built by hand equals the parsed one.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Literal, assert_never, get_args

__all__ = [
    "FUNCTIONS",
    "And",
    "Arithmetic",
    "ArithmeticOperator",
    "Between",
    "Call",
    "Comparison",
    "ComparisonOperator",
    "Expression",
    "Feature",
    "FunctionName",
    "InList",
    "IsNull",
    "Negate",
    "Not",
    "Number",
    "Or",
    "Text",
    "children",
    "depth",
    "format_rule",
    "referenced_features",
]

ArithmeticOperator = Literal["+", "-", "*", "/"]
ComparisonOperator = Literal["<", "<=", ">", ">=", "==", "!="]
FunctionName = Literal["abs", "coalesce", "greatest", "least", "max", "min"]
FUNCTIONS: tuple[FunctionName, ...] = get_args(FunctionName)


def _position() -> int:
    # Keyword-only and left out of ==, repr and hashing: where the text was is not what it means.
    return field(default=0, compare=False, repr=False, kw_only=True)


@dataclass(frozen=True, slots=True)
class Number:
    """A numeric literal; ``int`` when written without a point or exponent."""

    value: int | float
    position: int = _position()


@dataclass(frozen=True, slots=True)
class Text:
    """A single-quoted string literal (``''`` inside stands for one quote)."""

    value: str
    position: int = _position()


@dataclass(frozen=True, slots=True)
class Feature:
    """A feature column, by its exact (case-sensitive) name."""

    name: str
    position: int = _position()


@dataclass(frozen=True, slots=True)
class Negate:
    operand: Expression
    position: int = _position()


@dataclass(frozen=True, slots=True)
class Arithmetic:
    """``+ - * /`` in float arithmetic; division by zero is null, as in SQL engines' safe mode."""

    operator: ArithmeticOperator
    left: Expression
    right: Expression
    position: int = _position()


@dataclass(frozen=True, slots=True)
class Call:
    """One of :data:`FUNCTIONS`; ``max``/``greatest`` and ``min``/``least`` skip nulls."""

    function: FunctionName
    arguments: tuple[Expression, ...]
    position: int = _position()


@dataclass(frozen=True, slots=True)
class Comparison:
    operator: ComparisonOperator
    left: Expression
    right: Expression
    position: int = _position()


@dataclass(frozen=True, slots=True)
class IsNull:
    operand: Expression
    negated: bool = False
    position: int = _position()


@dataclass(frozen=True, slots=True)
class InList:
    """``x in (...)``: the list holds literals only, so user values are always bound."""

    operand: Expression
    values: tuple[Number | Text, ...]
    negated: bool = False
    position: int = _position()


@dataclass(frozen=True, slots=True)
class Between:
    """``x between a and b``, both bounds included (``a <= x and x <= b``)."""

    operand: Expression
    lower: Expression
    upper: Expression
    negated: bool = False
    position: int = _position()


@dataclass(frozen=True, slots=True)
class And:
    """Two or more conditions; flat, so a long chain does not make a deep tree."""

    operands: tuple[Expression, ...]
    position: int = _position()


@dataclass(frozen=True, slots=True)
class Or:
    operands: tuple[Expression, ...]
    position: int = _position()


@dataclass(frozen=True, slots=True)
class Not:
    operand: Expression
    position: int = _position()


Expression = (
    Number
    | Text
    | Feature
    | Negate
    | Arithmetic
    | Call
    | Comparison
    | IsNull
    | InList
    | Between
    | And
    | Or
    | Not
)


def children(node: Expression) -> tuple[Expression, ...]:
    """The direct sub-expressions of ``node``, left to right."""
    match node:
        case Number() | Text() | Feature():
            return ()
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
        case _:
            assert_never(node)


def _walk(node: Expression) -> Iterator[tuple[Expression, int]]:
    # Iterative, so a pathological tree cannot exhaust Python's recursion limit.
    stack = [(node, 1)]
    while stack:
        current, level = stack.pop()
        yield current, level
        stack.extend((child, level + 1) for child in reversed(children(current)))


def depth(node: Expression) -> int:
    """Levels in the tree: 1 for a lone feature or literal."""
    return max(level for _, level in _walk(node))


def referenced_features(node: Expression) -> tuple[str, ...]:
    """The feature names a rule reads, each once, in order of first appearance."""
    names = (current.name for current, _ in _walk(node) if isinstance(current, Feature))
    return tuple(dict.fromkeys(names))


def format_rule(node: Expression) -> str:
    """Canonical text of ``node``, fully parenthesised: parsing it gives back an equal tree."""
    match node:
        case Number(value):
            return repr(value)
        case Text(value):
            return "'" + value.replace("'", "''") + "'"
        case Feature(name):
            return name
        case Negate(operand):
            return f"-({format_rule(operand)})"
        case Arithmetic(operator, left, right) | Comparison(operator, left, right):
            return f"({format_rule(left)} {operator} {format_rule(right)})"
        case Call(function, arguments):
            return f"{function}({', '.join(format_rule(a) for a in arguments)})"
        case And(operands) | Or(operands):
            joiner = " and " if isinstance(node, And) else " or "
            return "(" + joiner.join(format_rule(operand) for operand in operands) + ")"
        case _:
            return _format_predicate(node)


def _format_predicate(node: IsNull | InList | Between | Not) -> str:
    match node:
        case IsNull(operand, negated):
            return f"({format_rule(operand)} is {'not ' if negated else ''}null)"
        case InList(operand, values, negated):
            listed = ", ".join(format_rule(value) for value in values)
            return f"({format_rule(operand)} {'not ' if negated else ''}in ({listed}))"
        case Between(operand, lower, upper, negated):
            bounds = f"{format_rule(lower)} and {format_rule(upper)}"
            return f"({format_rule(operand)} {'not ' if negated else ''}between {bounds})"
        case Not(operand):
            return f"(not {format_rule(operand)})"
        case _:
            assert_never(node)
