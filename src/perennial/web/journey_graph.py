"""A journey's steps as an SVG diagram, laid out on the server (no script draws it).

Steps are placed in rows by their breadth-first depth from ``start`` (the start on
top, what follows below), in the order the search meets them. Edges that go down
are curves from the bottom of one box to the top of the next; an edge within a row
dips below it, and an edge back up (a loop, which always passes a wait) runs round
the right-hand side. Exits that mean something are labelled: a branch's yes/no, a
wait's event/timeout, a split's variants with their share. Each box shows the
step's name, type and the per-step counts of ``GET /v1/journeys/{name}/steps``.
The page's template writes the SVG elements from these numbers; every text in it
is escaped there.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from perennial.api.routes.journeys import StepOut
from perennial.journeys.document import (
    BranchStep,
    Journey,
    SplitStep,
    Step,
    TagStep,
    WaitForEventStep,
    WaitStep,
    WebhookStep,
)
from perennial.journeys.durations import format_duration
from perennial.journeys.graph import Edge, edges_of

__all__ = [
    "BOX_HEIGHT",
    "BOX_WIDTH",
    "COUNT_KEYS",
    "CountCell",
    "GraphDrawing",
    "GraphEdge",
    "StepBox",
    "draw_journey",
    "step_layers",
]

Translate = Callable[..., str]

BOX_WIDTH = 232
BOX_HEIGHT = 104
COUNT_KEYS = ("entered", "waiting", "sent", "suppressed", "converted", "failed")
"""The counts of :class:`perennial.journeys.reports.StepCounts`, in the order boxes show them
(two per row)."""
_COLUMN_GAP = 56
_ROW_GAP = 84
_MARGIN = 24
_LOOP_LANE = 28
_DIP = 44
_NAME_CHARACTERS = 26
_NAMED_BY = {
    "send": "channel",
    "wait_for_event": "event",
    "branch": "condition",
    "coupon": "pool",
    "task": "team",
    "update_attribute": "field",
}
"""Steps whose detail is one of their fields: the step type and that field's name."""
_DETAIL_CHARACTERS = 30


@dataclass(frozen=True, slots=True)
class CountCell:
    key: str
    """A field of the step counts (``entered``, ``sent``, ...)."""
    label: str
    value: int
    x: float
    y: float


@dataclass(frozen=True, slots=True)
class StepBox:
    name: str
    shown_name: str
    """The name, shortened with an ellipsis when it would not fit the box."""
    type: str
    type_line: str
    """The translated type and what the step works on (channel, duration, event, ...)."""
    description: str
    """Everything about the step in words, for the box's tooltip (``<title>``)."""
    x: float
    y: float
    depth: int
    start: bool
    counts: tuple[CountCell, ...]


@dataclass(frozen=True, slots=True)
class GraphEdge:
    source: str
    target: str
    key: str
    """Where the document names the target (``then``, ``on_timeout``, ``variants[1].next``)."""
    label: str
    """Empty for a plain ``next``."""
    path: str
    """The SVG path's ``d``."""
    label_x: float
    label_y: float
    direction: str
    """``down``, ``across`` (same row) or ``back`` (a loop up to an earlier row)."""


@dataclass(frozen=True, slots=True)
class GraphDrawing:
    width: float
    height: float
    box_width: int
    box_height: int
    boxes: tuple[StepBox, ...]
    edges: tuple[GraphEdge, ...]


def step_layers(journey: Journey) -> list[list[str]]:
    """Steps by breadth-first depth from ``start``; any step it cannot reach (a draft's
    mistake) goes in a last row of its own, in document order."""
    depth = {journey.start: 0} if journey.start in journey.steps else {}
    order = list(depth)
    for name in order:
        for edge in edges_of(journey.steps[name]):
            if edge.target in journey.steps and edge.target not in depth:
                depth[edge.target] = depth[name] + 1
                order.append(edge.target)
    layers: list[list[str]] = [[] for _ in range(max(depth.values(), default=-1) + 1)]
    for name in order:
        layers[depth[name]].append(name)
    unreachable = [name for name in journey.steps if name not in depth]
    if unreachable:
        layers.append(unreachable)
    return layers


def draw_journey(journey: Journey, counts: Mapping[str, StepOut], t: Translate) -> GraphDrawing:
    """The diagram of ``journey`` with each step's ``counts`` (a step never entered: zeros)."""
    layers = step_layers(journey)
    widest = max((len(layer) for layer in layers), default=1)
    content_width = widest * BOX_WIDTH + (widest - 1) * _COLUMN_GAP
    positions: dict[str, tuple[float, float, int]] = {}
    for depth, layer in enumerate(layers):
        row_width = len(layer) * BOX_WIDTH + (len(layer) - 1) * _COLUMN_GAP
        left = _MARGIN + (content_width - row_width) / 2
        top = _MARGIN + depth * (BOX_HEIGHT + _ROW_GAP)
        for index, name in enumerate(layer):
            positions[name] = (left + index * (BOX_WIDTH + _COLUMN_GAP), top, depth)
    boxes = tuple(
        _box(name, journey, positions[name], counts.get(name), t)
        for layer in layers
        for name in layer
    )
    edges, loops = _edges(journey, positions, t)
    width = 2 * _MARGIN + content_width + (loops + 1) * _LOOP_LANE
    height = 2 * _MARGIN + len(layers) * BOX_HEIGHT + (len(layers) - 1) * _ROW_GAP + _DIP
    return GraphDrawing(width, height, BOX_WIDTH, BOX_HEIGHT, boxes, tuple(edges))


def _box(
    name: str,
    journey: Journey,
    position: tuple[float, float, int],
    counted: StepOut | None,
    t: Translate,
) -> StepBox:
    x, y, depth = position
    step = journey.steps[name]
    type_label = t(f"journeys.step.{step.type}")
    detail = _detail(step)
    cells = []
    for index, key in enumerate(COUNT_KEYS):
        column, row = index % 2, index // 2
        cells.append(
            CountCell(
                key,
                t(f"journeys.count.{key}"),
                int(getattr(counted, key)) if counted is not None else 0,
                x + 12 + column * (BOX_WIDTH / 2),
                y + 62 + row * 16,
            )
        )
    type_line = f"{type_label} · {detail}" if detail else type_label
    description = f"{name}: {type_line}"
    if counted is not None and counted.suppressed_by:
        reasons = ", ".join(f"{reason} {n}" for reason, n in sorted(counted.suppressed_by.items()))
        description += f" ({t('journeys.count.suppressed')}: {reasons})"
    return StepBox(
        name=name,
        shown_name=_shorten(name, _NAME_CHARACTERS),
        type=step.type,
        type_line=_shorten(type_line, _DETAIL_CHARACTERS),
        description=description,
        x=x,
        y=y,
        depth=depth,
        start=name == journey.start,
        counts=tuple(cells),
    )


def _detail(step: Step) -> str:
    """What a step works on, in the document's own terms (they are names, not prose)."""
    if step.type in _NAMED_BY:
        return str(getattr(step, _NAMED_BY[step.type]))
    match step:
        case WaitStep(duration=duration, until_time=until_time, until_field=until_field):
            if duration is not None:
                return format_duration(duration)
            if until_time is not None:
                days = f" {','.join(step.weekdays)}" if step.weekdays else ""
                return f"{until_time:%H:%M}{days}"
            return str(until_field)
        case SplitStep(variants=variants):
            return "/".join(variant.name for variant in variants)
        case TagStep(add=add, remove=remove):
            return " ".join(f"{sign}{tag}" for sign, tag in (("+", add), ("-", remove)) if tag)
        case WebhookStep(url=url):
            return url.host or ""
        case _:
            return ""


def _edge_label(step: Step, edge: Edge, t: Translate) -> str:
    match step:
        case BranchStep():
            return t("journeys.edge.then" if edge.key == "then" else "journeys.edge.else")
        case WaitForEventStep(event=event, timeout=timeout):
            if edge.key == "on_event":
                return t("journeys.edge.on_event", event=event)
            return t("journeys.edge.on_timeout", timeout=format_duration(timeout))
        case SplitStep(variants=variants):
            total = sum(variant.weight for variant in variants)
            index = int(edge.key.removeprefix("variants[").split("]")[0])
            variant = variants[index]
            return t(
                "journeys.edge.variant", name=variant.name, share=f"{variant.weight / total:.0%}"
            )
        case _:
            return ""


def _edges(
    journey: Journey, positions: Mapping[str, tuple[float, float, int]], t: Translate
) -> tuple[list[GraphEdge], int]:
    """Every edge with its path and label place; also how many loops need a lane."""
    edges: list[GraphEdge] = []
    loops = 0
    right = max((x for x, _, _ in positions.values()), default=0.0) + BOX_WIDTH
    for name, step in journey.steps.items():
        outgoing = [edge for edge in edges_of(step) if edge.target in positions]
        for index, edge in enumerate(outgoing):
            # several exits of one step leave from points spread along its bottom
            spread = (index - (len(outgoing) - 1) / 2) * 24
            source, target = positions[name], positions[edge.target]
            if target[2] > source[2]:
                route, direction = _down(source, target, spread), "down"
            elif target[2] == source[2]:
                route, direction = _across(source, target, spread), "across"
            else:
                loops += 1
                route, direction = _back(source, target, spread, right, loops), "back"
            label = _edge_label(step, edge, t)
            edges.append(GraphEdge(name, edge.target, edge.key, label, *route, direction))
    return edges, loops


Route = tuple[str, float, float]
"""An edge's SVG path and where its label goes (x, y)."""


def _down(
    source: tuple[float, float, int], target: tuple[float, float, int], spread: float
) -> Route:
    """To the next row (breadth-first depths differ by one along any edge): an S-curve from
    the source's bottom to the target's top, labelled just below the source."""
    x1, y1 = source[0] + BOX_WIDTH / 2 + spread, source[1] + BOX_HEIGHT
    x2, y2 = target[0] + BOX_WIDTH / 2 + spread / 3, target[1]
    bend = (y2 - y1) / 2
    path = (
        f"M{x1:.1f},{y1:.1f} C{x1:.1f},{y1 + bend:.1f} {x2:.1f},{y2 - bend:.1f} {x2:.1f},{y2:.1f}"
    )
    return path, x1 + (x2 - x1) * 0.2, y1 + min(28.0, bend)


def _across(
    source: tuple[float, float, int], target: tuple[float, float, int], spread: float
) -> Route:
    """Within a row: a dip below it, from the source's bottom up into the target's."""
    x1, y1 = source[0] + BOX_WIDTH / 2 + spread, source[1] + BOX_HEIGHT
    x2, y2 = target[0] + BOX_WIDTH / 2, target[1] + BOX_HEIGHT
    path = (
        f"M{x1:.1f},{y1:.1f} C{x1:.1f},{y1 + _DIP:.1f} "
        f"{x2:.1f},{y2 + _DIP:.1f} {x2:.1f},{y2 + 2:.1f}"
    )
    return path, (x1 + x2) / 2, y1 + _DIP * 0.75


def _back(
    source: tuple[float, float, int],
    target: tuple[float, float, int],
    spread: float,
    right: float,
    loop: int,
) -> Route:
    """Up to an earlier row: down out of the source into the gap below its row, right to a
    lane of its own beyond every box, up to the gap above the target's row and into its top,
    so the line crosses no box. Labelled where it meets the lane."""
    lane = right + loop * _LOOP_LANE
    offset = loop % 3 * 5  # loops of neighbouring lanes cross the gaps at different heights
    x1, y1 = source[0] + BOX_WIDTH / 2 + spread, source[1] + BOX_HEIGHT
    x2, y2 = target[0] + BOX_WIDTH / 2 + 12 + offset, target[1]
    # below the labels of the source's other exits, which sit about 28 below its box
    below, above = y1 + 42 + offset, y2 - 14 - offset
    path = f"M{x1:.1f},{y1:.1f} V{below:.1f} H{lane:.1f} V{above:.1f} H{x2:.1f} V{y2:.1f}"
    return path, lane - 6, below - 5


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
