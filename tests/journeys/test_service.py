"""Publishing journeys against the segments' demo store: names checked, versions kept,
status moves, and nothing saved when anything is wrong."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from perennial.journeys.loading import JourneyInvalid, load_journey, parse_journey
from perennial.journeys.repository import JourneyStateError, UnknownJourney
from perennial.journeys.service import JourneyService
from perennial.segments.documents import PRESETS_FILE, load_segment_document
from perennial.segments.service import SegmentService
from tests.segments import conftest as segments_conftest
from tests.segments.conftest import SegmentStore

segment_store = segments_conftest.segment_store

EXAMPLES = Path(__file__).parents[2] / "examples" / "journeys"


@pytest.fixture
def service(segment_store: SegmentStore, tmp_path: Path) -> JourneyService:
    settings = segment_store.settings(tmp_path / "home")
    segments = SegmentService.migrated(settings)
    segments.save_many(load_segment_document(PRESETS_FILE).segments, user="test")
    return JourneyService.migrated(settings)


def _example(name: str) -> dict[str, Any]:
    raw = yaml.safe_load((EXAMPLES / f"{name}.yaml").read_text(encoding="utf-8"))
    assert isinstance(raw, dict)
    return raw


def _problems(service: JourneyService, raw: dict[str, Any]) -> list[tuple[str, str]]:
    journey = parse_journey(raw, "test")
    with pytest.raises(JourneyInvalid) as caught:
        service.publish(journey, actor="test")
    return [(problem.path, problem.reason) for problem in caught.value.problems]


def test_every_example_publishes_on_the_demo_store(service: JourneyService) -> None:
    for path in sorted(EXAMPLES.glob("*.yaml")):
        published = service.publish(load_journey(path), actor="test")
        assert (published.version, published.status) == (1, "active")
    listed = {journey.name: journey for journey in service.saved()}
    assert set(listed) == {path.stem for path in EXAMPLES.glob("*.yaml")}
    assert listed["high-value-callback"].title == "高价值挽留回访 / High-value call-back"


def test_unknown_names_are_caught_at_publish_and_nothing_is_saved(
    service: JourneyService,
) -> None:
    raw = _example("education-dormant-learners")
    raw["trigger"]["segment"] = "dormant_lerners"
    raw["steps"]["which_group"]["condition"] = "in_segment('education_x')"
    raw["steps"]["send_a"]["message"]["text"] = {"zh-CN": "{{ frist_name }}", "en": "Hi"}
    problems = dict(_problems(service, raw))
    assert problems["trigger.segment"] == (
        "no segment named 'dormant_lerners' (did you mean 'dormant_learners'?)"
    )
    assert "education_x" in problems["steps.which_group.condition"]
    assert "'frist_name' is undefined" in problems["steps.send_a.message.text.zh-CN"]
    assert "steps.send_a.message.text.en" not in problems
    assert service.saved() == []


def test_event_types_and_field_kinds(service: JourneyService) -> None:
    raw = _example("dormant-win-back")
    raw["steps"]["wait_return"]["event"] = "lesson_complete"
    raw["goal"]["event"] = "order_placed"  # built in: orders arrive as this event
    problems = _problems(service, raw)
    assert problems == [
        (
            "steps.wait_return.event",
            "no event of type 'lesson_complete' has been seen (did you mean 'lesson_completed'?)",
        )
    ]
    birthday = _example("birthday-with-holdout")
    birthday["trigger"] = {"type": "date", "field": "recency_days"}
    by_path = dict(_problems(service, birthday))
    assert "is a number; this trigger needs a date" in by_path["trigger.field"]


@pytest.mark.parametrize("kind", ["stage_change", "date", "schedule", "inactivity", "prediction"])
def test_every_trigger_type_publishes(service: JourneyService, kind: str) -> None:
    triggers = {
        "stage_change": {"type": "stage_change", "to": "dormant"},
        "date": {"type": "date", "field": "birthday"},
        "schedule": {"type": "schedule", "cron": "0 9 * * 1"},
        "inactivity": {"type": "inactivity", "event": "login", "days": 30},
        "prediction": {
            "type": "prediction",
            "field": "recency_days",
            "crosses": "above",
            "threshold": 60,
        },
    }
    raw = _example("replenishment-reminder")
    raw["trigger"] = triggers[kind]
    published = service.publish(parse_journey(raw, "test"), actor="test")
    assert (published.version, published.status) == (1, "active")


def test_a_template_filter_on_the_wrong_kind_fails_at_publish(service: JourneyService) -> None:
    raw = _example("replenishment-reminder")
    raw["steps"]["remind"]["message"]["text"] = "{{ favourite_category + 1 }}"
    [(path, reason)] = _problems(service, raw)
    assert path == "steps.remind.message.text" and "cannot render" in reason


def test_a_new_version_goes_live_and_the_old_one_is_kept(service: JourneyService) -> None:
    raw = _example("replenishment-reminder")
    service.publish(parse_journey(raw, "v1"), actor="ana")
    changed = copy.deepcopy(raw)
    changed["steps"]["remind"]["channel"] = "email"
    changed["steps"]["remind"]["message"]["subject"] = "补货提醒"
    published = service.publish(parse_journey(changed, "v2"), actor="bo")
    assert published.version == 2
    saved = service.get("replenishment-reminder")
    assert (saved.live_version, saved.latest_version, saved.updated_by) == (2, 2, "bo")
    assert service.document("replenishment-reminder", 1).steps["remind"].channel == "app_push"  # type: ignore[union-attr]
    assert service.document("replenishment-reminder").steps["remind"].channel == "email"  # type: ignore[union-attr]


def test_draft_then_publish_and_status_moves(service: JourneyService) -> None:
    journey = load_journey(EXAMPLES / "high-value-callback.yaml")
    assert service.save_draft(journey, actor="ana") == 1
    draft = service.get("high-value-callback")
    assert (draft.status, draft.live_version) == ("draft", None)
    with pytest.raises(JourneyStateError, match="it is draft"):
        service.change_status("high-value-callback", "pause", actor="ana")
    assert service.publish_saved("high-value-callback", actor="ana").version == 1
    assert service.change_status("high-value-callback", "pause", actor="ana") == "paused"
    with pytest.raises(JourneyStateError, match="it is paused"):
        service.change_status("high-value-callback", "pause", actor="ana")
    assert service.change_status("high-value-callback", "resume", actor="ana") == "active"
    assert service.change_status("high-value-callback", "archive", actor="ana") == "archived"
    assert service.saved() == []
    assert [j.status for j in service.saved(archived=True)] == ["archived"]
    with pytest.raises(JourneyStateError, match="archived"):
        service.publish(journey, actor="ana")
    with pytest.raises(JourneyStateError, match="archived"):
        service.save_draft(journey, actor="ana")


def test_unknown_journeys(service: JourneyService) -> None:
    with pytest.raises(UnknownJourney, match="no journey 'nope'"):
        service.publish_saved("nope", actor="ana")
    with pytest.raises(UnknownJourney):
        service.change_status("nope", "resume", actor="ana")
    service.save_draft(load_journey(EXAMPLES / "high-value-callback.yaml"), actor="ana")
    with pytest.raises(UnknownJourney, match="no version 7"):
        service.document("high-value-callback", 7)
