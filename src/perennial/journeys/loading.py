"""Read a journey document and report every problem in it at once, each with its key path.

Three passes, each only when the one before found nothing it depends on: the
schema (types, ranges, unknown keys), then the graph (:mod:`.graph`) together
with everything written in a sub-language: conditions in the segment language,
event property filters, cron schedules and message templates. A document with
any problem is rejected whole; nothing of it is saved. Names that need the
store (fields, event types, segments, template variables) are checked when the
journey is published.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from cronsim import CronSim, CronSimError
from pydantic import ValidationError

from perennial.channels.templates import template_problem
from perennial.errors import ExitCode, PerennialError
from perennial.journeys.document import (
    BranchStep,
    EventTrigger,
    Journey,
    LocalizedText,
    ScheduleTrigger,
    Step,
    WaitForEventStep,
    templates_in,
)
from perennial.journeys.graph import Problem, graph_problems
from perennial.lifecycle.rule_errors import ParseError
from perennial.segments.parser import parse_expression, parse_property_filter

__all__ = ["JourneyInvalid", "journey_json", "load_journey", "parse_journey", "read_journey_text"]

_TAGS = {"trigger": 1, "steps": 2}
"""Where pydantic puts a tagged union's tag in an error's location (dropped from paths)."""


class JourneyInvalid(PerennialError):
    """A journey document has problems; ``problems`` lists each with its key path."""

    exit_code = ExitCode.CONFIG

    def __init__(self, source: str, problems: list[Problem]) -> None:
        self.source = source
        self.problems = problems
        count = f"{len(problems)} problem{'s' if len(problems) != 1 else ''}"
        lines = [f"{source}: the journey is not valid ({count}):"]
        for problem in problems:
            where = f"{problem.path}: " if problem.path else ""
            lines.append(f"  - {where}{problem.reason}".replace("\n", "\n    "))
        super().__init__("\n".join(lines))


def load_journey(path: Path) -> Journey:
    """Read ``path`` (YAML or JSON) and check it; raises :class:`JourneyInvalid`."""
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise JourneyInvalid(source, [Problem("", f"cannot read the file: {error}")]) from None
    return read_journey_text(text, source)


def read_journey_text(text: str, source: str) -> Journey:
    """Parse YAML (JSON is YAML too) and check it."""
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise JourneyInvalid(source, [Problem("", f"not valid YAML: {error}")]) from None
    return parse_journey(raw, source)


def parse_journey(raw: object, source: str) -> Journey:
    """Check a decoded document (what the API receives as JSON) in full."""
    if not isinstance(raw, Mapping):
        problem = Problem("", "a journey document is a mapping of keys (journey, trigger, ...)")
        raise JourneyInvalid(source, [problem])
    try:
        journey = Journey.model_validate(raw)
    except ValidationError as error:
        raise JourneyInvalid(source, _schema_problems(error)) from None
    problems = graph_problems(journey) + list(_language_problems(journey))
    if problems:
        raise JourneyInvalid(source, problems)
    return journey


def _schema_problems(error: ValidationError) -> list[Problem]:
    return [
        Problem(_path(detail["loc"]), detail["msg"].removeprefix("Value error, "))
        for detail in error.errors()
    ]


def _path(location: tuple[int | str, ...]) -> str:
    parts: list[str] = []
    for index, part in enumerate(location):
        if location and index == _TAGS.get(str(location[0])):
            continue  # the union's tag ('send', 'segment_enter'), not a key of the document
        if isinstance(part, int):
            parts.append(f"[{part}]")
        elif "[" in part or part in ("str", "int", "float", "bool", "none"):
            continue  # which branch of a union (e.g. text or per-locale mapping)
        else:
            parts.append(f".{part}" if parts else part)
    return "".join(parts)


def _language_problems(journey: Journey) -> Iterator[Problem]:
    trigger = journey.trigger
    if isinstance(trigger, ScheduleTrigger):
        yield from _cron_problem("trigger.cron", trigger.cron)
    if isinstance(trigger, EventTrigger) and trigger.where:
        yield from _filter_problem("trigger.where", trigger.where)
    if journey.goal is not None and journey.goal.where:
        yield from _filter_problem("goal.where", journey.goal.where)
    for name, step in journey.steps.items():
        yield from _step_language_problems(f"steps.{name}", step)


def _step_language_problems(path: str, step: Step) -> Iterator[Problem]:
    match step:
        case BranchStep(condition=condition):
            yield from _parse_problem(f"{path}.condition", condition, parse_expression)
        case WaitForEventStep(where=where) if where:
            yield from _filter_problem(f"{path}.where", where)
    for key, text, _html in templates_in(step):
        yield from _template_problems(f"{path}.{key}", text)


def _filter_problem(path: str, text: str) -> Iterator[Problem]:
    yield from _parse_problem(path, text, parse_property_filter)


def _parse_problem(path: str, text: str, parse: Any) -> Iterator[Problem]:
    try:
        parse(text)
    except ParseError as error:
        yield Problem(path, str(error))


def _cron_problem(path: str, expression: str) -> Iterator[Problem]:
    try:
        CronSim(expression, datetime(2000, 1, 1, tzinfo=UTC))
    except CronSimError as error:
        yield Problem(path, f"not a cron schedule ({error}): write five fields, e.g. '0 9 * * 1'")


def _template_problems(path: str, text: LocalizedText) -> Iterator[Problem]:
    variants = {"": text} if isinstance(text, str) else dict(text)
    for locale, source in variants.items():
        problem = template_problem(source)
        if problem is not None:
            yield Problem(f"{path}.{locale}" if locale else path, problem)


def journey_json(journey: Journey) -> str:
    """The canonical JSON form (what the store keeps and the API returns)."""
    return json.dumps(
        journey.model_dump(mode="json", by_alias=True, exclude_none=True),
        ensure_ascii=False,
        sort_keys=True,
    )
