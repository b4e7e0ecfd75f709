"""``/v1/journeys`` and ``/unsubscribe`` over HTTP on the segments' demo store."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml
from fastapi.testclient import TestClient

from perennial.channels.setup import signing_secret
from perennial.channels.tables import CONSENTS
from perennial.channels.unsubscribe import unsubscribe_token
from perennial.segments.documents import PRESETS_FILE, load_segment_document
from perennial.segments.service import SegmentService
from tests.segments import conftest as segments_conftest
from tests.segments.conftest import SegmentStore
from tests.segments.test_api import _client

segment_store = segments_conftest.segment_store
EXAMPLES = Path(__file__).parents[2] / "examples" / "journeys"


@pytest.fixture
def api(segment_store: SegmentStore, tmp_path: Path) -> Iterator[tuple[TestClient, Any, Any, Any]]:
    settings = segment_store.settings(tmp_path / "home")
    SegmentService.migrated(settings).save_many(
        load_segment_document(PRESETS_FILE).segments, user="test"
    )
    for client, operator, viewer in _client(settings):
        yield client, operator, viewer, client.app


def _example(name: str) -> dict[str, Any]:
    loaded = yaml.safe_load((EXAMPLES / f"{name}.yaml").read_text(encoding="utf-8"))
    assert isinstance(loaded, dict)
    return loaded


def test_validate_lists_every_problem_with_its_path(api: Any) -> None:
    client, _, viewer, _ = api
    document = _example("education-dormant-learners")
    document["trigger"]["segment"] = "dormant_lerners"
    document["steps"]["send_a"]["next"] = "nowhere"
    answer = client.post("/v1/journeys/validate", json={"document": document}, headers=viewer)
    assert answer.status_code == 200
    assert answer.json()["valid"] is False
    assert {p["path"] for p in answer.json()["problems"]} == {"steps.send_a.next", "steps.send_a"}
    document["steps"]["send_a"]["next"] = "done"
    problems = client.post(
        "/v1/journeys/validate", json={"document": document}, headers=viewer
    ).json()["problems"]
    assert problems == [
        {
            "path": "trigger.segment",
            "reason": "no segment named 'dormant_lerners' (did you mean 'dormant_learners'?)",
        }
    ]
    valid = client.post(
        "/v1/journeys/validate", json={"document": _example("high-value-callback")}, headers=viewer
    )
    assert valid.json() == {"valid": True, "problems": []}


def test_save_publish_pause_resume_archive_and_roles(api: Any) -> None:
    client, operator, viewer, _ = api
    document = _example("replenishment-reminder")
    assert (
        client.post("/v1/journeys", json={"document": document}, headers=viewer).status_code == 403
    )
    saved = client.post("/v1/journeys", json={"document": document}, headers=operator)
    assert saved.status_code == 201
    assert saved.json() == {"name": "replenishment-reminder", "version": 1, "status": "draft"}
    published = client.post("/v1/journeys/replenishment-reminder/publish", headers=operator)
    assert published.json() == {"name": "replenishment-reminder", "version": 1, "status": "active"}
    assert (
        client.post("/v1/journeys/replenishment-reminder/pause", headers=operator).json()["status"]
        == "paused"
    )
    conflict = client.post("/v1/journeys/replenishment-reminder/pause", headers=operator)
    assert conflict.status_code == 409 and "it is paused" in conflict.json()["error"]["message"]
    assert (
        client.post("/v1/journeys/replenishment-reminder/resume", headers=operator).status_code
        == 200
    )
    listed = client.get("/v1/journeys", headers=viewer).json()
    assert [(j["name"], j["status"], j["live_version"]) for j in listed] == [
        ("replenishment-reminder", "active", 1)
    ]
    shown = client.get("/v1/journeys/replenishment-reminder", headers=viewer).json()
    assert shown["document"]["steps"]["remind"]["channel"] == "app_push"
    assert (
        client.post("/v1/journeys/replenishment-reminder/archive", headers=operator).status_code
        == 200
    )
    assert client.get("/v1/journeys", headers=viewer).json() == []
    again = client.post("/v1/journeys", json={"document": document}, headers=operator)
    assert again.status_code == 409


def test_an_invalid_document_is_a_422_and_nothing_is_saved(api: Any) -> None:
    client, operator, viewer, _ = api
    document = _example("dormant-win-back")
    document["steps"]["coupon"]["next"] = "nowhere"
    answer = client.post("/v1/journeys", json={"document": document}, headers=operator)
    assert answer.status_code == 422
    assert answer.json()["error"]["field"] == "document.steps.coupon.next"
    assert client.get("/v1/journeys", headers=viewer).json() == []
    assert client.get("/v1/journeys/dormant-win-back", headers=viewer).status_code == 404
    assert (
        client.post("/v1/journeys", json={"document": [1, 2]}, headers=operator).status_code == 422
    )
    assert client.post("/v1/journeys", json={"document": {}}, headers=operator).status_code == 422


def test_enrol_runs_steps_and_sends_reports(api: Any) -> None:
    client, operator, viewer, _ = api
    document = _example("high-value-callback")
    document["trigger"] = {"type": "manual"}
    client.post("/v1/journeys", json={"document": document}, headers=operator)
    client.post("/v1/journeys/high-value-callback/publish", headers=operator)
    enrolled = client.post(
        "/v1/journeys/high-value-callback/enrol",
        json={"customers": ["C0000001", "C0000002"], "occurrence": "list-1"},
        headers=operator,
    )
    assert enrolled.json() == {"entered": 2, "holdout": 0, "refused": {}}
    repeat = client.post(
        "/v1/journeys/high-value-callback/enrol",
        json={"customers": ["C0000001"], "occurrence": "list-1"},
        headers=operator,
    )
    assert repeat.json()["refused"] == {"same_occurrence": 1}
    runs = client.get("/v1/journeys/high-value-callback/runs", headers=viewer).json()
    assert sorted(r["customer_id"] for r in runs) == ["C0000001", "C0000002"]
    assert {r["status"] for r in runs} == {"active"}
    steps = client.get("/v1/journeys/high-value-callback/steps", headers=viewer).json()
    assert steps == [
        {
            "step": "call_back",
            "entered": 2,
            "waiting": 0,
            "sent": 0,
            "suppressed": 0,
            "failed": 0,
            "converted": 0,
            "suppressed_by": {},
        }
    ]
    assert client.get("/v1/journeys/high-value-callback/sends", headers=viewer).json() == []
    assert client.get("/v1/journeys/nope/steps", headers=viewer).status_code == 404


def test_preview_renders_for_one_customer_and_reports_missing_variables(api: Any) -> None:
    client, _, viewer, _ = api
    document = _example("dormant-win-back")
    answer = client.post(
        "/v1/journeys/preview",
        json={"document": document, "step": "monthly_report", "customer_id": "C0000001"},
        headers=viewer,
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["channel"] == "email" and body["locale"] == "zh-CN"
    assert body["subject"] == "你的月度报告" and body["text"].startswith("过去 ")
    document["steps"]["monthly_report"]["message"]["text"] = "{{ no_such_field }}"
    bad = client.post(
        "/v1/journeys/preview",
        json={"document": document, "step": "monthly_report", "customer_id": "C0000001"},
        headers=viewer,
    )
    assert bad.status_code == 422 and "no_such_field" in bad.json()["error"]["message"]
    not_send = client.post(
        "/v1/journeys/preview",
        json={"document": document, "step": "coupon", "customer_id": "C0000001"},
        headers=viewer,
    )
    assert not_send.status_code == 422


def test_one_click_unsubscribe_records_the_opt_out_at_once(api: Any) -> None:
    client, _, _, app = api
    settings = app.state.perennial.settings
    token = unsubscribe_token(signing_secret(settings), "C0000007", "email")
    answer = client.post(f"/v1/unsubscribe/{token}")
    assert answer.json() == {"unsubscribed": "email"}
    page = client.get(f"/v1/unsubscribe/{token}")
    assert page.status_code == 200 and "已退订" in page.text
    with app.state.perennial.engine.connect() as connection:
        rows = connection.execute(sa.select(CONSENTS.c.customer_id, CONSENTS.c.status)).all()
    assert rows == [("C0000007", "opted_out")]
    forged = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    assert client.post(f"/v1/unsubscribe/{forged}").status_code == 404
    assert client.post("/v1/unsubscribe/garbage").status_code == 404
