"""The segments API end to end: validate with positions, preview, save, members, exports,
and live membership from the track API (an event in, an enter in the change log out)."""

from __future__ import annotations

import csv
import hashlib
import hmac
import io
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import orjson
import pytest
from fastapi.testclient import TestClient

from perennial.access.api_keys import create_api_key
from perennial.access.roles import Role
from perennial.service import create_app
from tests.segments.conftest import SegmentStore


def _client(settings: Any) -> Iterator[tuple[TestClient, dict[str, str], dict[str, str]]]:
    app = create_app(settings)
    with app.state.perennial.engine.begin() as connection:
        tokens = {
            role: create_api_key(
                connection, name=str(role), roles=frozenset({role}), created_by="t"
            ).token
            for role in (Role.OPERATOR, Role.VIEWER)
        }
    with TestClient(app) as client:
        yield (
            client,
            {"Authorization": f"Bearer {tokens[Role.OPERATOR]}"},
            {"Authorization": f"Bearer {tokens[Role.VIEWER]}"},
        )


@pytest.fixture
def api(
    segment_store: SegmentStore, tmp_path: Path
) -> Iterator[tuple[TestClient, dict[str, str], dict[str, str]]]:
    yield from _client(segment_store.settings(tmp_path / "home"))


def test_validate_points_at_the_mistake_and_returns_both_forms(api: Any) -> None:
    client, _operator, viewer = api
    bad = client.post(
        "/v1/segments/validate", json={"expression": "recency_days >> 3"}, headers=viewer
    )
    assert bad.status_code == 200
    error = bad.json()["error"]
    assert (bad.json()["valid"], error["line"], error["column"]) == (False, 1, 15)
    assert "expected an operand" in error["message"] and "^" in error["message"]

    good = client.post(
        "/v1/segments/validate",
        json={"expression": "stage == 'dormant' and did login at least 2 times in last 30 days"},
        headers=viewer,
    ).json()
    assert good["valid"] and good["error"] is None
    assert good["expression_json"] == {
        "all": [
            {"field": "stage", "op": "==", "value": "dormant"},
            {
                "event": "login",
                "window": {"last": 30, "unit": "days"},
                "did": True,
                "count": {"op": ">=", "times": 2},
            },
        ]
    }
    from_json = client.post(
        "/v1/segments/validate", json={"expression_json": good["expression_json"]}, headers=viewer
    )
    assert from_json.json()["expression"] == good["expression"]
    wrong_json = client.post(
        "/v1/segments/validate",
        json={"expression_json": {"all": [{"field": "stage", "op": "~"}]}},
        headers=viewer,
    ).json()
    assert wrong_json["valid"] is False and wrong_json["error"]["field"] == "all[0].op"


def test_preview_save_members_and_csv(api: Any) -> None:
    client, operator, viewer = api
    expression = {"expression": "frequency_orders >= 3"}
    preview = client.post("/v1/segments/preview", json=expression, headers=viewer).json()
    assert preview["count"] > 0 and preview["customers"] >= preview["count"]
    assert preview["sample"] == sorted(preview["sample"])

    assert (
        client.post("/v1/segments", json={"name": "x", **expression}, headers=viewer).status_code
        == 403
    )
    created = client.post(
        "/v1/segments", json={"name": "regulars", "title": "常客", **expression}, headers=operator
    )
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["refresh"]["entered"] == preview["count"] == body["segment"]["members"]
    assert body["segment"]["trend"][-1]["members"] == preview["count"]

    pages, after = [], None
    while True:
        params = {"limit": 7, **({"after": after} if after else {})}
        page = client.get("/v1/segments/regulars/members", params=params, headers=viewer).json()
        pages.extend(item["customer_id"] for item in page["items"])
        after = page["next_after"]
        if after is None:
            break
    exported = client.get("/v1/segments/regulars/export", headers=operator)
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert [r["customer_id"] for r in rows] == pages and len(pages) == preview["count"]

    refused = client.post(
        "/v1/segments",
        json={"name": "bad", "expression": "frequency_orders >= 'x'"},
        headers=operator,
    )
    assert refused.status_code == 422 and refused.json()["error"]["code"] == "invalid_expression"
    assert client.get("/v1/segments/bad", headers=viewer).status_code == 404


class _Receiver(BaseHTTPRequestHandler):
    received: ClassVar[list[tuple[dict[str, str], bytes]]] = []
    failures_left = 1

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if _Receiver.failures_left:
            _Receiver.failures_left -= 1
            self.send_response(503)
        else:
            _Receiver.received.append((dict(self.headers), body))
            self.send_response(200)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        del args


def test_webhook_export_sends_signed_batches_and_retries(api: Any) -> None:
    client, operator, _ = api
    client.post(
        "/v1/segments",
        json={"name": "buyers", "expression": "frequency_orders >= 1"},
        headers=operator,
    )
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        answer = client.post(
            "/v1/segments/buyers/export/webhook",
            json={
                "url": f"http://127.0.0.1:{server.server_address[1]}/in",
                "secret": "s3cret",
                "batch_size": 50,
            },
            headers=operator,
        )
    finally:
        server.shutdown()
    assert answer.status_code == 200, answer.text
    result = answer.json()
    assert (
        result["batches"] == len(_Receiver.received) and result["attempts"] == result["batches"] + 1
    )
    members = []
    for headers, body in _Receiver.received:
        expected = "sha256=" + hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
        assert headers["X-Perennial-Signature"] == expected
        members.extend(m["customer_id"] for m in orjson.loads(body)["members"])
    assert len(members) == len(set(members)) == result["members"]

    outside = client.post(
        "/v1/segments/buyers/export/webhook",
        json={"url": "http://example.com/hook"},
        headers=operator,
    )
    assert outside.status_code == 422 and "webhook_hosts" in outside.json()["error"]["message"]


def test_a_tracked_event_moves_the_customer_into_a_live_segment_within_seconds(
    segment_store: SegmentStore, tmp_path: Path
) -> None:
    settings = segment_store.settings(tmp_path / "home", ingest_drain_seconds=0.2)
    for client, operator, viewer in _client(settings):
        saved = client.post(
            "/v1/segments",
            json={
                "name": "fresh_learners",
                "expression": "did course_purchased where course_id == 'CRS-999'",
            },
            headers=operator,
        )
        assert saved.json()["segment"]["members"] == 0
        started = time.monotonic()
        event = {
            "customer_id": "C0000001",
            "event_type": "course_purchased",
            "ts": datetime.now(UTC).isoformat(),
            "properties": {"course_id": "CRS-999"},
        }
        assert client.post("/v1/track", json=event, headers=operator).status_code == 202
        changes: list[dict[str, Any]] = []
        while time.monotonic() - started < 20 and not changes:
            time.sleep(0.05)
            changes = client.get(
                "/v1/segments/changes", params={"name": "fresh_learners"}, headers=viewer
            ).json()["items"]
        latency = time.monotonic() - started
        assert [(c["customer_id"], c["change"], c["trigger"]) for c in changes] == [
            ("C0000001", "enter", "live")
        ]
        assert latency < 10, latency
        segments = client.get("/v1/customers/C0000001/segments", headers=viewer).json()
        assert segments[0] == {
            "segment": "fresh_learners",
            "change": "enter",
            "at": changes[0]["at"],
        }
