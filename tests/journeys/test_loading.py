"""Journey documents: the schema, the graph checks and the sub-languages, bad paths first."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from perennial.journeys.document import BranchStep, Journey, SendStep, WaitStep
from perennial.journeys.loading import (
    JourneyInvalid,
    journey_json,
    load_journey,
    parse_journey,
    read_journey_text,
)

EXAMPLES = Path(__file__).parents[2] / "examples" / "journeys"

BASE: dict[str, Any] = {
    "journey": "win-back",
    "trigger": {"type": "segment_enter", "segment": "dormant"},
    "start": "report",
    "steps": {
        "report": {
            "type": "send",
            "channel": "email",
            "message": {"subject": "Hi {{ first_name }}", "text": "Hello"},
            "next": "wait",
        },
        "wait": {
            "type": "wait_for_event",
            "event": "order_placed",
            "timeout": "7d",
            "on_event": "done",
            "on_timeout": "check",
        },
        "check": {
            "type": "branch",
            "condition": "recency_days > 60",
            "then": "done",
            "else": "report",
        },
        "done": {"type": "exit"},
    },
}


def _document(**changes: Any) -> dict[str, Any]:
    document = copy.deepcopy(BASE)
    for key, value in changes.items():
        if value is None:
            document.pop(key, None)
        else:
            document[key] = value
    return document


def _with_step(name: str, step: dict[str, Any] | None) -> dict[str, Any]:
    document = _document()
    if step is None:
        del document["steps"][name]
    else:
        document["steps"][name] = step
    return document


def _problems(document: object) -> list[tuple[str, str]]:
    with pytest.raises(JourneyInvalid) as caught:
        parse_journey(document, "j.yaml")
    return [(problem.path, problem.reason) for problem in caught.value.problems]


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.yaml")), ids=lambda path: path.stem)
def test_every_shipped_example_is_valid(path: Path) -> None:
    journey = load_journey(path)
    assert journey.journey == path.stem


def test_a_valid_document_reads_into_typed_steps() -> None:
    journey = parse_journey(_document(), "j.yaml")
    assert isinstance(journey.steps["report"], SendStep)
    assert isinstance(journey.steps["check"], BranchStep)
    assert journey.steps["check"].otherwise == "report"
    assert journey.entry.re_entry == "after_exit"
    assert journey.quiet_hours == "defer"


def test_json_form_reads_back_to_the_same_journey() -> None:
    journey = parse_journey(_document(), "j.yaml")
    again = parse_journey(json.loads(journey_json(journey)), "again.json")
    assert again == journey
    assert json.loads(journey_json(journey))["steps"]["wait"]["timeout"] == "7d"


# -- schema --------------------------------------------------------------------------------


def test_unknown_and_missing_keys_name_their_path_without_the_union_tag() -> None:
    document = _document(trigger={"type": "segment_enter", "segmnt": "dormant"})
    assert _problems(document) == [
        ("trigger.segment", "Field required"),
        ("trigger.segmnt", "Extra inputs are not permitted"),
    ]


def test_a_misspelt_step_key_is_an_error_not_a_default() -> None:
    step = {**BASE["steps"]["wait"], "time_out": "7d"}
    del step["timeout"]
    paths = [path for path, _ in _problems(_with_step("wait", step))]
    assert paths == ["steps.wait.timeout", "steps.wait.time_out"]


def test_unknown_step_type_lists_the_known_ones() -> None:
    [(path, reason)] = _problems(_with_step("wait", {"type": "sleep", "next": "done"}))
    assert path == "steps.wait"
    assert "'sleep'" in reason and "'wait_for_event'" in reason


@pytest.mark.parametrize(
    ("step", "path", "words"),
    [
        ({"type": "wait", "next": "done"}, "steps.wait", "exactly one of"),
        (
            {"type": "wait", "duration": "1d", "until_time": "10:00", "next": "done"},
            "steps.wait",
            "exactly one of",
        ),
        (
            {"type": "wait", "duration": "1d", "weekdays": ["mon"], "next": "done"},
            "steps.wait",
            "'weekdays' goes with 'until_time'",
        ),
        ({"type": "wait", "duration": "7x", "next": "done"}, "steps.wait.duration", "7x"),
        (
            {"type": "wait", "until_time": "25:00", "next": "done"},
            "steps.wait.until_time",
            "time",
        ),
        ({"type": "tag", "next": "done"}, "steps.wait", "'add', 'remove'"),
        (
            {
                "type": "split",
                "variants": [
                    {"name": "a", "weight": 1, "next": "done"},
                    {"name": "a", "weight": 1, "next": "done"},
                ],
            },
            "steps.wait",
            "repeat",
        ),
        (
            {"type": "split", "variants": [{"name": "a", "weight": 0, "next": "done"}] * 2},
            "steps.wait.variants[0].weight",
            "greater than 0",
        ),
        (
            {"type": "webhook", "url": "not a url", "next": "done"},
            "steps.wait.url",
            "URL",
        ),
        (
            {"type": "task", "team": "t", "title": "x", "due_in": "1d", "next": "Bad Name"},
            "steps.wait.next",
            "pattern",
        ),
    ],
)
def test_step_schema_errors(step: dict[str, Any], path: str, words: str) -> None:
    problems = _problems(_with_step("wait", step))
    assert any(found == path and words in reason for found, reason in problems), problems


@pytest.mark.parametrize(
    ("entry", "words"),
    [
        ({"re_entry": "after_days"}, "re_entry_days"),
        ({"re_entry": "never", "re_entry_days": 3}, "re_entry_days"),
        ({"re_entry": "after_exit", "max_concurrent": 2}, "re_entry: every"),
        ({"re_entry": "sometimes"}, "'never'"),
        ({"limit": 0}, "greater than or equal to 1"),
    ],
)
def test_entry_rules_that_contradict_themselves(entry: dict[str, Any], words: str) -> None:
    problems = _problems(_document(entry=entry))
    assert any(path.startswith("entry") and words in reason for path, reason in problems)


def test_stage_change_needs_a_change() -> None:
    [(path, reason)] = _problems(
        _document(trigger={"type": "stage_change", "from": "dormant", "to": "dormant"})
    )
    assert path == "trigger" and "same stage" in reason
    assert _problems(_document(trigger={"type": "stage_change"}))[0][0] == "trigger"


def test_localized_text_accepts_known_locales_only() -> None:
    step = copy.deepcopy(BASE["steps"]["report"])
    step["message"]["text"] = {"fr": "Bonjour"}
    problems = _problems(_with_step("report", step))
    assert any(path.startswith("steps.report.message.text") for path, _ in problems), problems


def test_not_a_mapping_and_bad_yaml() -> None:
    assert _problems(["a", "list"])[0][1].startswith("a journey document is a mapping")
    with pytest.raises(JourneyInvalid, match="not valid YAML"):
        read_journey_text("journey: [unclosed", "j.yaml")


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(JourneyInvalid, match="cannot read the file"):
        load_journey(tmp_path / "missing.yaml")
    (tmp_path / "latin1.yaml").write_bytes("journey: caf\xe9".encode("latin-1"))
    with pytest.raises(JourneyInvalid, match="cannot read the file"):
        load_journey(tmp_path / "latin1.yaml")


# -- graph ----------------------------------------------------------------------------------


def test_dangling_edge_names_the_key() -> None:
    step = {**BASE["steps"]["check"], "else": "reportt"}
    problems = _problems(_with_step("check", step))
    assert ("steps.check.else", "names no step: 'reportt'") in problems


def test_start_must_name_a_step() -> None:
    assert ("start", "names no step: 'nowhere'") in _problems(_document(start="nowhere"))


def test_unreachable_step() -> None:
    document = _with_step("orphan", {"type": "tag", "add": "x", "next": "done"})
    assert _problems(document) == [("steps.orphan", "cannot be reached from start ('report')")]


def test_a_loop_through_a_wait_is_fine_but_one_without_is_not() -> None:
    parse_journey(_document(), "j.yaml")  # report -> wait -> check -> report waits in 'wait'
    document = _document()
    document["steps"]["report"]["next"] = "check"
    document["steps"]["wait"] = None
    del document["steps"]["wait"]
    problems = _problems(document)
    assert (
        "steps.report",
        "the loop report -> check -> report does not pass through a wait step",
    ) in problems


def test_every_path_must_end() -> None:
    document = _document()
    document["steps"]["check"]["then"] = "report"  # every edge loops back: no exit reachable
    document["steps"]["wait"]["on_event"] = "check"
    problems = _problems(document)
    assert ("steps.done", "cannot be reached from start ('report')") in problems
    assert ("steps.check", "no path from this step reaches an exit step") in problems
    assert len([p for p in problems if "reaches an exit" in p[1]]) == 3


# -- sub-languages ------------------------------------------------------------------------------


def test_condition_error_points_at_the_column() -> None:
    step = {**BASE["steps"]["check"], "condition": "recency_days >> 60"}
    [(path, reason)] = _problems(_with_step("check", step))
    assert path == "steps.check.condition"
    assert "column 15" in reason and "^" in reason


def test_property_filter_errors() -> None:
    step = {**BASE["steps"]["wait"], "where": "amount > 'x' and"}
    [(path, reason)] = _problems(_with_step("wait", step))
    assert path == "steps.wait.where" and "column" in reason
    problems = _problems(_document(goal={"event": "order_placed", "where": "= 3"}))
    assert [path for path, _ in problems] == ["goal.where"]


def test_injection_in_a_filter_is_a_parse_error_not_sql() -> None:
    step = {**BASE["steps"]["wait"], "where": "sku == 'a'; DROP TABLE journeys; --'"}
    [(path, _reason)] = _problems(_with_step("wait", step))
    assert path == "steps.wait.where"


def test_cron_schedule_is_checked() -> None:
    problems = _problems(_document(trigger={"type": "schedule", "cron": "0 25 * * *"}))
    assert problems[0][0] == "trigger.cron" and "Bad hour" in problems[0][1]
    parse_journey(_document(trigger={"type": "schedule", "cron": "0 9 * * mon"}), "j")


def test_template_errors_name_the_locale() -> None:
    step = copy.deepcopy(BASE["steps"]["report"])
    step["message"]["text"] = {"zh-CN": "你好 {{ first_name", "en": "Hi"}
    [(path, reason)] = _problems(_with_step("report", step))
    assert path == "steps.report.message.text.zh-CN"
    assert reason.startswith("template error on line 1")


def test_all_problems_are_reported_at_once() -> None:
    document = _document()
    document["steps"]["check"]["condition"] = "("
    document["steps"]["check"]["then"] = "nowhere"
    document["trigger"] = {"type": "schedule", "cron": "nope"}
    paths = {path for path, _ in _problems(document)}
    assert {"steps.check.condition", "steps.check.then", "trigger.cron"} <= paths


def test_the_message_lists_every_problem() -> None:
    document = _document(start="nowhere")
    document["steps"]["check"]["condition"] = "("
    with pytest.raises(JourneyInvalid) as caught:
        parse_journey(document, "j.yaml")
    text = str(caught.value)
    assert text.startswith("j.yaml: the journey is not valid (")
    assert "  - start: names no step: 'nowhere'" in text
    assert "  - steps.check.condition:" in text


def test_wait_until_time_on_weekdays() -> None:
    step = {"type": "wait", "until_time": "10:00", "weekdays": ["fri"], "next": "check"}
    journey = parse_journey(_with_step("wait", step) | {}, "j.yaml")
    wait = journey.steps["wait"]
    assert isinstance(wait, WaitStep) and wait.weekdays == ("fri",)
    assert isinstance(journey, Journey)
