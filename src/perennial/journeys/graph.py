"""The shape checks a journey must pass before it can be published.

A schema cannot see these: every ``next`` must name a step (no dangling edge),
every step must be reachable from ``start``, every loop must pass through a wait
(a loop of actions would send without end within one tick), and from every
step some path must reach an ``exit`` (every branch ends). Each problem names
the step and the key, in the order the steps are written.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from perennial.journeys.document import (
    BranchStep,
    ExitStep,
    Journey,
    SplitStep,
    Step,
    WaitForEventStep,
    WaitStep,
)

__all__ = ["Edge", "Problem", "edges_of", "graph_problems"]


@dataclass(frozen=True)
class Problem:
    """Something wrong in a document: ``path`` is the key (``steps.coupon.next``)."""

    path: str
    reason: str


@dataclass(frozen=True)
class Edge:
    """An outgoing edge of a step: ``key`` is where the document names ``target``."""

    key: str
    target: str


def edges_of(step: Step) -> tuple[Edge, ...]:
    """The step's outgoing edges, in the order a reader sees them."""
    match step:
        case ExitStep():
            return ()
        case BranchStep(then=then, otherwise=otherwise):
            return (Edge("then", then), Edge("else", otherwise))
        case WaitForEventStep(on_event=on_event, on_timeout=on_timeout):
            return (Edge("on_event", on_event), Edge("on_timeout", on_timeout))
        case SplitStep(variants=variants):
            return tuple(
                Edge(f"variants[{index}].next", variant.next)
                for index, variant in enumerate(variants)
            )
        case _:
            return (Edge("next", step.next),)


def graph_problems(journey: Journey) -> list[Problem]:
    """Every shape problem of ``journey`` (empty when it may be published)."""
    steps = journey.steps
    problems = list(_dangling_edges(journey))
    if journey.start not in steps:
        problems.append(Problem("start", f"names no step: {journey.start!r}"))
        return problems
    successors = {
        name: [edge.target for edge in edges_of(step) if edge.target in steps]
        for name, step in steps.items()
    }
    reachable = _reachable(journey.start, successors)
    problems += [
        Problem(f"steps.{name}", f"cannot be reached from start ({journey.start!r})")
        for name in steps
        if name not in reachable
    ]
    problems += _loops_without_wait(steps, successors)
    ending = _can_reach_exit(steps, successors)
    problems += [
        Problem(f"steps.{name}", "no path from this step reaches an exit step")
        for name in steps
        if name in reachable and name not in ending
    ]
    return problems


def _dangling_edges(journey: Journey) -> Iterator[Problem]:
    for name, step in journey.steps.items():
        for edge in edges_of(step):
            if edge.target not in journey.steps:
                yield Problem(f"steps.{name}.{edge.key}", f"names no step: {edge.target!r}")


def _reachable(start: str, successors: Mapping[str, list[str]]) -> set[str]:
    seen = {start}
    frontier = [start]
    while frontier:
        for target in successors[frontier.pop()]:
            if target not in seen:
                seen.add(target)
                frontier.append(target)
    return seen


def _loops_without_wait(
    steps: Mapping[str, Step], successors: Mapping[str, list[str]]
) -> list[Problem]:
    """Cycles among steps that do not wait: a depth-first search over those steps alone."""
    waits = {name for name, step in steps.items() if isinstance(step, WaitStep | WaitForEventStep)}
    state: dict[str, int] = {}  # 1 on the current path, 2 finished
    problems: list[Problem] = []

    def visit(name: str, path: list[str]) -> None:
        state[name] = 1
        path.append(name)
        for target in successors[name]:
            if target in waits:
                continue
            if state.get(target) == 1:
                loop = [*path[path.index(target) :], target]
                problems.append(
                    Problem(
                        f"steps.{target}",
                        f"the loop {' -> '.join(loop)} does not pass through a wait step",
                    )
                )
            elif target not in state:
                visit(target, path)
        path.pop()
        state[name] = 2

    for name in steps:
        if name not in waits and name not in state:
            visit(name, [])
    return problems


def _can_reach_exit(steps: Mapping[str, Step], successors: Mapping[str, list[str]]) -> set[str]:
    predecessors: dict[str, list[str]] = {name: [] for name in steps}
    for name, targets in successors.items():
        for target in targets:
            predecessors[target].append(name)
    ending = {name for name, step in steps.items() if isinstance(step, ExitStep)}
    frontier = list(ending)
    while frontier:
        for source in predecessors[frontier.pop()]:
            if source not in ending:
                ending.add(source)
                frontier.append(source)
    return ending
