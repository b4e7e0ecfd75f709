"""Segments that name other segments: inlining, and the cycles that forbid it.

``in_segment('x')`` is evaluated by putting x's expression in its place, so a
segment is always computed from the same data as the ones it builds on (no
stale membership read back from a table) and the engine optimises the whole.
Inlining needs the references to form no cycle; a cycle is reported with its path.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping

from perennial.errors import ExitCode, PerennialError
from perennial.lifecycle import rule_ast as rule
from perennial.segments import ast as nodes
from perennial.segments.ast import Expression, referenced_segments

__all__ = ["SegmentCycleError", "UnknownSegmentError", "find_cycle", "inline_segments"]

_MAX_INLINE_DEPTH = 16


class SegmentCycleError(PerennialError):
    """Segments that reference each other in a loop (a -> b -> a)."""

    exit_code = ExitCode.CONFIG

    def __init__(self, path: list[str]) -> None:
        self.path = path
        super().__init__("segments reference each other in a cycle: " + " -> ".join(path))


class UnknownSegmentError(PerennialError):
    exit_code = ExitCode.CONFIG

    def __init__(self, name: str, referrer: str | None) -> None:
        self.name = name
        where = f" (referenced by '{referrer}')" if referrer else ""
        super().__init__(f"unknown segment '{name}'{where}")


def find_cycle(
    name: str, expression: Expression, saved: Mapping[str, Expression]
) -> list[str] | None:
    """The first cycle through ``name`` if it had ``expression``, as a path, or ``None``."""
    graph = {key: referenced_segments(value) for key, value in saved.items()}
    graph[name] = referenced_segments(expression)
    path = [name]

    def visit(current: str, seen: set[str]) -> list[str] | None:
        for target in graph.get(current, ()):
            if target == name:
                return [*path, name]
            if target in seen:
                continue
            seen.add(target)
            path.append(target)
            found = visit(target, seen)
            if found:
                return found
            path.pop()
        return None

    return visit(name, {name})


def inline_segments(expression: Expression, saved: Mapping[str, Expression]) -> Expression:
    """``expression`` with every ``in_segment`` replaced by that segment's expression."""
    return _inline(expression, saved, [])


def _inline(node: Expression, saved: Mapping[str, Expression], stack: list[str]) -> Expression:
    if isinstance(node, nodes.InSegment):
        if node.name in stack:
            raise SegmentCycleError([*stack[stack.index(node.name) :], node.name])
        if len(stack) >= _MAX_INLINE_DEPTH:
            raise SegmentCycleError([*stack, node.name])
        target = saved.get(node.name)
        if target is None:
            raise UnknownSegmentError(node.name, stack[-1] if stack else None)
        return _inline(target, saved, [*stack, node.name])
    return _map_children(node, lambda child: _inline(child, saved, stack))


def _map_children(node: Expression, fn: Callable[[Expression], Expression]) -> Expression:
    # The rule nodes are typed over rule expressions; a segment tree puts its own
    # nodes inside them, which the type checker cannot know (hence the ignores).
    match node:
        case rule.And(operands) | rule.Or(operands):
            return dataclasses.replace(node, operands=tuple(fn(o) for o in operands))  # type: ignore[misc]
        case rule.Not(operand) | rule.Negate(operand) | rule.IsNull(operand):
            return dataclasses.replace(node, operand=fn(operand))  # type: ignore[arg-type]
        case rule.Comparison(_, left, right) | rule.Arithmetic(_, left, right):
            return dataclasses.replace(node, left=fn(left), right=fn(right))  # type: ignore[arg-type]
        case rule.Between(operand, lower, upper):
            return dataclasses.replace(node, operand=fn(operand), lower=fn(lower), upper=fn(upper))  # type: ignore[arg-type]
        case rule.InList(operand):
            return dataclasses.replace(node, operand=fn(operand))  # type: ignore[arg-type]
        case rule.Call(_, arguments):
            return dataclasses.replace(node, arguments=tuple(fn(a) for a in arguments))  # type: ignore[misc]
        case nodes.TimeFunction(_, argument):
            return dataclasses.replace(node, argument=fn(argument))
        case nodes.TextMatch(_, operand):
            return dataclasses.replace(node, operand=fn(operand))
    return node
