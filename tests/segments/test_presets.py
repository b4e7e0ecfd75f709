"""The shipped presets select exactly the customers an independent computation finds.

Each preset of ``examples/segments/presets.yaml`` is loaded through the service
(checked, saved, refreshed) and its stored members are compared with a plain
Python reading of the warehouse's Parquet files: the events, the profiles, the
predictions and the customer records. The education split is also checked
against the generator's ground truth (where each learner stood at the end).
"""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from perennial.lifecycle.profiles import PROFILES_TABLE
from perennial.models.predictions import PREDICTIONS_TABLE
from perennial.segments.documents import load_segment_document
from perennial.segments.repository import current_members
from perennial.segments.service import SegmentService
from perennial.store.warehouse import Warehouse
from tests.segments.conftest import CLOCK, TODAY, SegmentStore

PRESETS = Path(__file__).resolve().parents[2] / "examples" / "segments" / "presets.yaml"
"""The example users copy: a link to the shipped ``PRESETS_FILE``."""
LEARNING = ("lesson_completed", "course_purchased", "course_completed", "exam_passed")


@pytest.fixture(scope="module")
def loaded(
    segment_store: SegmentStore, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, set[str]]:
    service = SegmentService.migrated(segment_store.settings(tmp_path_factory.mktemp("presets")))
    results = service.save_many(load_segment_document(PRESETS).segments)
    assert [r.name for r in results] == [s.name for s in load_segment_document(PRESETS).segments]
    with service.operational.connect() as connection:
        return {r.name: set(current_members(connection, r.name)) for r in results}


@pytest.fixture(scope="module")
def tables(segment_store: SegmentStore) -> dict[str, list[dict[str, Any]]]:
    snapshot = Warehouse(segment_store.warehouse).snapshot()
    return {
        name: pq.read_table(snapshot.paths(name)).to_pylist()
        for name in ("events", "customers", PROFILES_TABLE, PREDICTIONS_TABLE)
    }


def _events_by_customer(tables: dict[str, list[dict[str, Any]]]) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for event in tables["events"]:
        if event["customer_id"]:
            found[event["customer_id"]].append(event)
    return found


def _did(events: list[dict[str, Any]], kind: str, since: datetime | None = None) -> bool:
    return any(e["event_type"] == kind and (since is None or e["ts"] > since) for e in events)


def test_the_education_split_matches_the_events(
    loaded: dict[str, set[str]], tables: dict[str, list[dict[str, Any]]]
) -> None:
    by_customer = _events_by_customer(tables)
    month_ago = CLOCK - timedelta(days=30)
    learners = {c for c, events in by_customer.items() if _did(events, "course_purchased")}
    dormant = {
        c for c in learners if not any(_did(by_customer[c], kind, month_ago) for kind in LEARNING)
    }
    a = {c for c in dormant if not _did(by_customer[c], "course_completed")}
    b = {
        c
        for c in dormant
        if _did(by_customer[c], "course_completed") and not _did(by_customer[c], "exam_passed")
    }
    c_ = {c for c in dormant if _did(by_customer[c], "exam_passed")}

    assert loaded["learners"] == learners
    assert loaded["dormant_learners"] == dormant
    assert (loaded["education_a"], loaded["education_b"], loaded["education_c"]) == (a, b, c_)
    assert a and b and c_, "each group has members, so the comparison can fail"
    assert a | b | c_ == dormant and not (a & b or a & c_ or b & c_)


def test_the_education_split_agrees_with_the_ground_truth(
    loaded: dict[str, set[str]], segment_store: SegmentStore
) -> None:
    truth = {
        row["customer_id"]: row["education_status"]
        for row in pq.read_table(segment_store.ground_truth).to_pylist()
        if row["education_status"] is not None
    }
    expected = {
        "education_a": {"bought_not_started", "in_progress"},
        "education_b": {"finished_no_certificate"},
        "education_c": {"certified"},
    }
    for name, statuses in expected.items():
        assert {truth[customer] for customer in loaded[name]} <= statuses, name


def test_profile_and_prediction_presets_match_the_tables(
    loaded: dict[str, set[str]], tables: dict[str, list[dict[str, Any]]]
) -> None:
    profiles = {row["customer_id"]: row for row in tables[PROFILES_TABLE]}
    predictions = {row["customer_id"]: row for row in tables[PREDICTIONS_TABLE]}

    cant_lose = {c for c, p in profiles.items() if p["rfm_segment"] == "cant_lose_them"}
    at_risk = {
        c
        for c, p in profiles.items()
        if p["value_tier"] in ("top_1", "top_10")
        and (predictions.get(c, {}).get("churn_probability") or 0) > 0.6
    }
    coupon_dormant = {
        c
        for c, p in profiles.items()
        if p["stage"] == "dormant" and p["coupon_share"] is not None and p["coupon_share"] >= 0.5
    }
    due = {
        c
        for c, p in predictions.items()
        if p["replenishment_opens_on"] is not None
        and TODAY <= p["replenishment_opens_on"] <= TODAY + timedelta(days=2)
    }
    assert loaded["cant_lose_them"] == cant_lose and cant_lose
    assert loaded["high_value_at_risk"] == at_risk and at_risk
    assert loaded["coupon_sensitive_dormant"] == coupon_dormant
    assert loaded["dormant"] == {c for c, p in profiles.items() if p["stage"] == "dormant"}
    assert loaded["dormant"] >= coupon_dormant
    assert loaded["replenishment_due"] == due and due


def test_birthday_this_week_uses_the_local_calendar(
    loaded: dict[str, set[str]], tables: dict[str, list[dict[str, Any]]]
) -> None:
    expected = set()
    for row in tables["customers"]:
        birthday: date | None = row["birthday"]
        if birthday is None:
            continue
        days = [(TODAY + timedelta(days=n)) for n in range(7)]
        leap_day = birthday.month == 2 and birthday.day == 29
        if any(
            (d.month, d.day) == (birthday.month, birthday.day)
            or (leap_day and (d.month, d.day) == (2, 28))
            for d in days
        ):
            expected.add(row["customer_id"])
    assert loaded["birthday_this_week"] == expected and expected


def test_presets_round_trip_through_the_json_form(loaded: dict[str, set[str]]) -> None:
    from perennial.segments.json_form import from_json, to_json
    from perennial.segments.parser import parse_expression

    for spec in load_segment_document(PRESETS).segments:
        tree = parse_expression(spec.expression)
        assert from_json(json.loads(json.dumps(to_json(tree)))) == tree, spec.name
    assert loaded  # the presets were saved as they are


def test_a_learner_who_is_active_again_leaves_the_dormant_segments(
    segment_store: SegmentStore, tmp_path: Path, loaded: dict[str, set[str]]
) -> None:
    """One evaluation later (the clock moved back to when they last studied), fewer dormant."""
    earlier = segment_store.settings(tmp_path / "home", clock=datetime(2025, 6, 1, tzinfo=UTC))
    service = SegmentService.migrated(earlier)
    service.save_many(load_segment_document(PRESETS).segments)
    with service.operational.connect() as connection:
        then = set(current_members(connection, "dormant_learners"))
    assert then != loaded["dormant_learners"]
