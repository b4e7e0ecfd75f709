"""What only the store can check, done when a journey is published.

The document check (:mod:`.loading`) knows the syntax; publishing also needs the
names to exist now: the segments a trigger or a condition names, the event types
a trigger or a wait listens for, the date and prediction fields, and every
variable a template reads. Templates are rendered once with a sample value of
the right kind for every profile field, so a misspelt variable, or a filter
applied to the wrong kind of value, fails at publish and never in a customer's
inbox (``| default(...)`` makes a variable optional, as people expect).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, date, datetime
from typing import Any

from perennial.channels.templates import TemplateProblem, render_template
from perennial.journeys.document import (
    BranchStep,
    DateTrigger,
    EventTrigger,
    InactivityTrigger,
    Journey,
    LocalizedText,
    PredictionTrigger,
    ScheduleTrigger,
    SegmentTrigger,
    Step,
    WaitForEventStep,
    templates_in,
)
from perennial.journeys.graph import Problem
from perennial.journeys.trigger_segments import trigger_condition
from perennial.lifecycle.rule_errors import ParseError, did_you_mean
from perennial.segments.kinds import Catalog, FieldKind

__all__ = ["BUILT_IN_EVENTS", "RUN_VARIABLES", "publish_problems"]

BUILT_IN_EVENTS = frozenset({"order_placed"})
"""Events the runtime derives itself (an order arriving), known before any is stored."""

RUN_VARIABLES: Mapping[str, Any] = {
    "customer_id": "C0001",
    "coupon_code": "CODE-0001",
    "unsubscribe_url": "https://example.invalid/u/token",
    "journey": "journey",
    "variant": "a",
    "locale": "zh-CN",
}
"""Variables every template may read besides the profile's fields."""

_SAMPLES: Mapping[FieldKind, Any] = {
    FieldKind.NUMBER: 1.5,
    FieldKind.TEXT: "text",
    FieldKind.TIMESTAMP: datetime(2026, 1, 1, tzinfo=UTC),
    FieldKind.DATE: date(2026, 1, 1),
    FieldKind.CONDITION: True,
}

ConditionCheck = Callable[[str], object]
"""Checks a segment-language condition against the store; raises ParseError."""


def publish_problems(
    journey: Journey, catalog: Catalog, check_condition: ConditionCheck
) -> list[Problem]:
    """Every name in ``journey`` that does not exist in ``catalog`` now."""
    variables = {name: _SAMPLES[kind] for name, kind in catalog.fields.items()} | dict(
        RUN_VARIABLES
    )
    problems = list(_trigger_problems(journey, catalog))
    condition = trigger_condition(journey.trigger)
    if condition is not None and not problems:
        try:
            check_condition(condition)
        except ParseError as error:
            problems.append(Problem("trigger", f"its condition {condition!r}: {error}"))
    if journey.goal is not None:
        problems += _event_problems("goal.event", journey.goal.event, catalog)
    for name, step in journey.steps.items():
        problems += _step_problems(f"steps.{name}", step, catalog, variables, check_condition)
    return problems


def _trigger_problems(journey: Journey, catalog: Catalog) -> Iterator[Problem]:
    trigger = journey.trigger
    if isinstance(trigger, DateTrigger) and trigger.offset_days > 0:
        yield Problem(
            "trigger.offset_days",
            "a date trigger fires on or before the day (offset_days 0 or below); for days "
            "after it, trigger on the day and begin with a wait step",
        )
    match trigger:
        case SegmentTrigger(segment=segment) | ScheduleTrigger(segment=str() as segment):
            yield from _segment_problems("trigger.segment", segment, catalog)
        case EventTrigger(event=event) | InactivityTrigger(event=event):
            yield from _event_problems("trigger.event", event, catalog)
        case DateTrigger(field=field):
            yield from _field_problems(
                "trigger.field", field, catalog, (FieldKind.DATE, FieldKind.TIMESTAMP)
            )
        case PredictionTrigger(field=field):
            yield from _field_problems("trigger.field", field, catalog, (FieldKind.NUMBER,))


def _step_problems(
    path: str,
    step: Step,
    catalog: Catalog,
    variables: Mapping[str, Any],
    check_condition: ConditionCheck,
) -> Iterator[Problem]:
    match step:
        case BranchStep(condition=condition):
            try:
                check_condition(condition)
            except ParseError as error:
                yield Problem(f"{path}.condition", str(error))
        case WaitForEventStep(event=event):
            yield from _event_problems(f"{path}.event", event, catalog)
    for key, text, html in templates_in(step):
        yield from _render_problems(f"{path}.{key}", text, variables, html=html)


def _segment_problems(path: str, segment: str, catalog: Catalog) -> Iterator[Problem]:
    known = catalog.segments
    if known is not None and segment not in known:
        yield Problem(path, f"no segment named {segment!r}{did_you_mean(segment, known)}")


def _event_problems(path: str, event: str, catalog: Catalog) -> Iterator[Problem]:
    known = catalog.event_types
    if known is None or event in known or event in BUILT_IN_EVENTS:
        return
    every = sorted({*known, *BUILT_IN_EVENTS})
    yield Problem(path, f"no event of type {event!r} has been seen{did_you_mean(event, every)}")


def _field_problems(
    path: str, field: str, catalog: Catalog, kinds: tuple[FieldKind, ...]
) -> Iterator[Problem]:
    kind = catalog.fields.get(field)
    if kind is None:
        yield Problem(path, f"no profile field {field!r}{did_you_mean(field, catalog.fields)}")
    elif kind not in kinds:
        wanted = " or ".join(k.noun for k in kinds)
        yield Problem(path, f"{field!r} is {kind.noun}; this trigger needs {wanted}")


def _render_problems(
    path: str, text: LocalizedText, variables: Mapping[str, Any], *, html: bool = False
) -> Iterator[Problem]:
    variants = {"": text} if isinstance(text, str) else dict(text)
    for locale, source in variants.items():
        try:
            render_template(source, variables, html=html)
        except TemplateProblem as error:
            yield Problem(f"{path}.{locale}" if locale else path, str(error))
