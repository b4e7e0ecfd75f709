"""The graph checks against a brute-force reference on random journeys (hypothesis)."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from perennial.journeys.document import Journey
from perennial.journeys.graph import edges_of, graph_problems

_KINDS = ("exit", "tag", "wait", "branch", "wait_for_event")


def _step(kind: str, targets: list[str]) -> dict[str, Any]:
    match kind:
        case "exit":
            return {"type": "exit"}
        case "tag":
            return {"type": "tag", "add": "t", "next": targets[0]}
        case "wait":
            return {"type": "wait", "duration": "1h", "next": targets[0]}
        case "branch":
            return {"type": "branch", "condition": "x > 1", "then": targets[0], "else": targets[1]}
        case _:
            return {
                "type": "wait_for_event",
                "event": "e",
                "timeout": "1d",
                "on_event": targets[0],
                "on_timeout": targets[1],
            }


@st.composite
def journeys(draw: st.DrawFn) -> Journey:
    count = draw(st.integers(min_value=1, max_value=7))
    names = [f"s{index}" for index in range(count)]
    steps = {
        name: _step(
            draw(st.sampled_from(_KINDS)),
            [draw(st.sampled_from(names)) for _ in range(2)],
        )
        for name in names
    }
    return Journey.model_validate(
        {"journey": "j", "trigger": {"type": "manual"}, "start": "s0", "steps": steps}
    )


def _closure(nodes: list[str], edges: set[tuple[str, str]]) -> set[tuple[str, str]]:
    """Pairs (a, b) with a path of one or more edges from a to b (Warshall)."""
    reach = set(edges)
    for middle in nodes:
        for start in nodes:
            for end in nodes:
                if (start, middle) in reach and (middle, end) in reach:
                    reach.add((start, end))
    return reach


@settings(max_examples=300, deadline=None)
@given(journeys())
def test_problems_match_a_brute_force_reference(journey: Journey) -> None:
    names = list(journey.steps)
    edges = {(name, edge.target) for name, step in journey.steps.items() for edge in edges_of(step)}
    reach = _closure(names, edges)
    reachable = {"s0"} | {end for start, end in reach if start == "s0"}
    exits = {name for name, step in journey.steps.items() if step.type == "exit"}
    ends = exits | {start for start, end in reach if end in exits}
    waiting = {n for n, s in journey.steps.items() if s.type in ("wait", "wait_for_event")}
    others = [name for name in names if name not in waiting]
    bare = {(a, b) for a, b in edges if a not in waiting and b not in waiting}
    has_bare_loop = any((name, name) in _closure(others, bare) for name in others)

    problems = graph_problems(journey)
    unreachable = {
        p.path.removeprefix("steps.") for p in problems if "cannot be reached" in p.reason
    }
    endless = {p.path.removeprefix("steps.") for p in problems if "reaches an exit" in p.reason}
    loops = [p for p in problems if "does not pass through a wait" in p.reason]

    assert unreachable == set(names) - reachable
    assert endless == reachable - ends
    assert bool(loops) == has_bare_loop
