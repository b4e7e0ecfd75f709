"""The real-time ingest API: per-item answers, limits, abuse, idempotency, identities.

The app here runs without its background drainer (``ingest_drain_seconds=0``): tests
drain the inbox themselves, so what reached the warehouse is known exactly.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import orjson
import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from fastapi.testclient import TestClient

from perennial.access.api_keys import create_api_key
from perennial.access.roles import Role
from perennial.api.track_models import MAX_DEPTH, MAX_ITEMS, MAX_PROPERTIES, MAX_TEXT_LENGTH
from perennial.config import Settings
from perennial.ingest import inbox_writer as inbox_writer_module
from perennial.ingest.drain import DrainReport, drain_inbox
from perennial.ingest.inbox import INBOX_REQUESTS, inbox_counts
from perennial.ingest.pipeline import ingest_file
from perennial.service import create_app
from perennial.store.warehouse import Warehouse
from tests.api.conftest import KeyFor
from tests.ingest.factories import write_text


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(home=tmp_path / "home", ingest_drain_seconds=0)


@pytest.fixture
def operator(key_for: KeyFor) -> dict[str, str]:
    return key_for(Role.OPERATOR)


def _drain(app: FastAPI) -> DrainReport:
    state = app.state.perennial
    return drain_inbox(state.settings, state.engine)


def _rows(settings: Settings, table: str, columns: str, where: str = "") -> list[tuple[Any, ...]]:
    paths = Warehouse(settings.warehouse).snapshot().paths(table)
    if not paths:
        return []
    query = f"SELECT {columns} FROM read_parquet(?) {where} ORDER BY ALL"
    return duckdb.execute(query, [paths]).fetchall()


def _count(settings: Settings, table: str) -> int:
    paths = Warehouse(settings.warehouse).snapshot().paths(table)
    if not paths:
        return 0
    return int(duckdb.execute("SELECT count(*) FROM read_parquet(?)", [paths]).fetchall()[0][0])


def _pending(app: FastAPI) -> int:
    with app.state.perennial.engine.connect() as connection:
        return inbox_counts(connection)["pending"]


def _requests(app: FastAPI) -> int:
    with app.state.perennial.engine.connect() as connection:
        return int(
            connection.execute(sa.select(sa.func.count()).select_from(INBOX_REQUESTS)).scalar_one()
        )


def _ts(hours_from_now: float) -> str:
    return (datetime.now(UTC) + timedelta(hours=hours_from_now)).isoformat()


# --- answers per item --------------------------------------------------------------------


def test_a_mixed_batch_stores_the_good_events_and_names_each_bad_one_by_index(
    client: TestClient, app: FastAPI, settings: Settings, operator: dict[str, str]
) -> None:
    events = [
        {"event_id": "E0", "customer_id": "C1", "event_type": "login",
         "ts": "2025-03-01T10:00:00+08:00"},
        {"event_id": "E1", "customer_id": "C1", "event_type": 7},
        {"event_id": "E2", "customer_id": "C1", "event_type": "x", "colour": "red"},
        {"event_id": "E3", "event_type": "login"},
        "not an object",
        {"event_id": "E5", "anonymous_id": "dev-9", "event_type": "page_view",
         "properties": {"path": "/pricing"}},
        {"event_id": "E6", "customer_id": "C1", "event_type": "login", "ts": "2025-03-01 10:00"},
        {"event_id": "E7", "customer_id": "C1", "event_type": "login", "properties": ["a"]},
    ]  # fmt: skip

    response = client.post("/v1/track", json={"events": events}, headers=operator)

    assert response.status_code == 202
    assert response.json() == {
        "accepted": 2,
        "rejected": [
            {"index": 1, "field": "event_type", "code": "wrong_type",
             "message": "Input should be a valid string"},
            {"index": 2, "field": "colour", "code": "unknown_field", "message": "unknown field"},
            {"index": 3, "field": "customer_id", "code": "missing_identity",
             "message": "neither customer_id nor anonymous_id"},
            {"index": 4, "field": None, "code": "wrong_type",
             "message": "an item must be a JSON object"},
            {"index": 6, "field": "ts", "code": "timestamp_without_offset",
             "message": "the timestamp needs a UTC offset (+08:00 or Z): without one its "
             "instant is unknown"},
            {"index": 7, "field": "properties", "code": "wrong_type",
             "message": "Input should be a valid dictionary"},
        ],
    }  # fmt: skip
    report = _drain(app)
    assert (report.accepted, report.quarantined) == (2, 6)
    assert _rows(settings, "events", "event_id, event_type, ts, properties") == [
        ("E0", "login", datetime(2025, 3, 1, 2, tzinfo=UTC), None),
        ("E5", "page_view", _rows(settings, "events", "ts", "WHERE event_id = 'E5'")[0][0],
         '{"path":"/pricing"}'),
    ]  # fmt: skip
    quarantined = _rows(settings, "quarantine", "table_name, column_name, reason, raw")
    assert ("events", "colour", "colour: unknown field", orjson.dumps(events[2]).decode()) in (
        quarantined
    )
    assert len(quarantined) == 6


def test_an_event_without_a_timestamp_gets_the_time_the_server_received_it(
    client: TestClient, app: FastAPI, settings: Settings, operator: dict[str, str]
) -> None:
    before = datetime.now(UTC)
    client.post("/v1/track", json={"event_type": "login", "customer_id": "C1"}, headers=operator)
    after = datetime.now(UTC)
    _drain(app)

    (stored,) = _rows(settings, "events", "ts")[0]
    assert before <= stored <= after


def test_a_timestamp_past_the_future_tolerance_is_refused_and_one_inside_it_is_not(
    client: TestClient, app: FastAPI, settings: Settings, operator: dict[str, str]
) -> None:
    tolerance = settings.future_tolerance_hours
    events = [
        {"event_id": "inside", "customer_id": "C1", "event_type": "x", "ts": _ts(tolerance - 1)},
        {"event_id": "beyond", "customer_id": "C1", "event_type": "x", "ts": _ts(tolerance + 1)},
        {"event_id": "1899", "customer_id": "C1", "event_type": "x", "ts": "1899-12-31T00:00:00Z"},
        {"event_id": "nonsense", "customer_id": "C1", "event_type": "x", "ts": "next tuesday"},
    ]

    answer = client.post("/v1/track", json={"events": events}, headers=operator).json()
    _drain(app)

    assert [(r["index"], r["code"]) for r in answer["rejected"]] == [
        (1, "timestamp_in_future"),
        (2, "timestamp_too_old"),
        (3, "invalid_timestamp"),
    ]
    assert _rows(settings, "events", "event_id") == [("inside",)]


def test_a_single_bad_event_is_a_422_with_its_field_and_nothing_is_stored(
    client: TestClient, app: FastAPI, operator: dict[str, str]
) -> None:
    response = client.post(
        "/v1/track", json={"event_type": "login", "customer_id": 12}, headers=operator
    )

    assert response.status_code == 422
    assert response.json() == {
        "error": {
            "code": "wrong_type",
            "message": "Input should be a valid string",
            "field": "body.customer_id",
        }
    }
    assert _requests(app) == 0


def test_a_single_good_event_is_accepted_like_a_batch_of_one(
    client: TestClient, operator: dict[str, str]
) -> None:
    response = client.post(
        "/v1/track", json={"event_type": "login", "customer_id": "C1"}, headers=operator
    )
    assert (response.status_code, response.json()) == (202, {"accepted": 1, "rejected": []})


# --- malformed requests and limits ----------------------------------------------------------


@pytest.mark.parametrize("body", [b"{", b"", b'{"events": [}', b"\xff\xfe", b"NaN"])
def test_malformed_json_is_a_400_and_stores_nothing(
    client: TestClient, app: FastAPI, operator: dict[str, str], body: bytes
) -> None:
    headers = {**operator, "Content-Type": "application/json"}
    response = client.post("/v1/track", content=body, headers=headers)

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "malformed_json"
    assert _requests(app) == 0


@pytest.mark.parametrize(
    ("body", "status", "code", "field"),
    [
        ({"events": [{"event_type": "x", "customer_id": "C"}], "sent_at": "now"}, 422,
         "unknown_field", "body.sent_at"),
        ({"events": {"event_type": "x"}}, 422, "wrong_type", "body.events"),
        ({"events": []}, 422, "empty", "body.events"),
        ([{"event_type": "x"}], 422, "wrong_type", "body"),
        ({"event_type": "x", "customer_id": "C", "colour": "red"}, 422, "unknown_field",
         "body.colour"),
    ],
)  # fmt: skip
def test_a_bad_envelope_is_refused_whole_with_the_path_of_the_offending_field(
    client: TestClient,
    app: FastAPI,
    operator: dict[str, str],
    body: Any,
    status: int,
    code: str,
    field: str,
) -> None:
    response = client.post("/v1/track", json=body, headers=operator)

    assert response.status_code == status
    assert response.json()["error"]["code"] == code
    assert response.json()["error"]["field"] == field
    assert _requests(app) == 0


def test_too_many_events_in_one_request_is_a_422_naming_the_limit(
    client: TestClient, app: FastAPI, operator: dict[str, str]
) -> None:
    events = [{"event_type": "x", "customer_id": "C"}] * (MAX_ITEMS + 1)
    response = client.post("/v1/track", json={"events": events}, headers=operator)

    assert response.status_code == 422
    assert response.json()["error"]["code"] == "too_many_items"
    assert str(MAX_ITEMS) in response.json()["error"]["message"]
    assert client.post(
        "/v1/track", json={"events": events[:MAX_ITEMS]}, headers=operator
    ).json() == {"accepted": MAX_ITEMS, "rejected": []}


def test_an_oversized_body_is_a_413_whether_its_length_is_declared_or_chunked(
    client: TestClient, app: FastAPI, settings: Settings, operator: dict[str, str]
) -> None:
    padding = "x" * 1000
    events = [{"event_type": "x", "customer_id": "C", "properties": {"p": padding}}] * 1000
    body = orjson.dumps({"events": events})
    assert len(body) > settings.api_max_body_bytes

    declared = client.post(
        "/v1/track", content=body, headers={**operator, "Content-Type": "application/json"}
    )

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(body), 64 * 1024):
            yield body[start : start + 64 * 1024]

    chunked = client.post(
        "/v1/track", content=chunks(), headers={**operator, "Content-Type": "application/json"}
    )

    assert declared.status_code == chunked.status_code == 413
    assert chunked.json()["error"]["code"] == "payload_too_large"
    assert _requests(app) == 0


def test_a_body_that_is_not_json_by_its_media_type_is_a_415(
    client: TestClient, operator: dict[str, str]
) -> None:
    response = client.post(
        "/v1/track",
        content=b'{"event_type": "x"}',
        headers={**operator, "Content-Type": "text/plain"},
    )
    assert response.status_code == 415
    assert response.json()["error"]["code"] == "unsupported_media_type"


def _nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {"leaf": 1}
    for _ in range(depth - 1):
        value = {"level": value}
    return value


@pytest.mark.parametrize(
    ("properties", "field", "code"),
    [
        (_nested(MAX_DEPTH + 1), "properties" + ".level" * MAX_DEPTH, "too_deep"),
        ({f"k{i}": i for i in range(MAX_PROPERTIES + 1)}, "properties", "too_many_properties"),
        ({"a": {f"k{i}": i for i in range(MAX_PROPERTIES)}}, "properties.a", "too_many_properties"),
        ({"note": "x" * (MAX_TEXT_LENGTH + 1)}, "properties.note", "too_long"),
        ({"k" * 200: 1}, "properties", "too_long"),
        ({"list": list(range(101))}, "properties.list", "too_many_items"),
    ],
)
def test_properties_beyond_the_limits_refuse_their_event_only(
    client: TestClient,
    operator: dict[str, str],
    properties: dict[str, Any],
    field: str,
    code: str,
) -> None:
    events = [
        {"event_type": "x", "customer_id": "C", "properties": properties},
        {"event_type": "x", "customer_id": "C", "properties": _nested(MAX_DEPTH)},
    ]
    answer = client.post("/v1/track", json={"events": events}, headers=operator).json()

    assert answer["accepted"] == 1
    assert [(r["index"], r["field"], r["code"]) for r in answer["rejected"]] == [(0, field, code)]


def test_strings_longer_than_their_limit_are_refused(
    client: TestClient, operator: dict[str, str]
) -> None:
    events = [
        {"event_type": "x" * 129, "customer_id": "C"},
        {"event_type": "x", "customer_id": "C" * 257},
        {"event_type": "", "customer_id": "C"},
    ]
    answer = client.post("/v1/track", json={"events": events}, headers=operator).json()

    assert [(r["field"], r["code"]) for r in answer["rejected"]] == [
        ("event_type", "too_long"),
        ("customer_id", "too_long"),
        ("event_type", "empty"),
    ]


# --- roles --------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/v1/track", "/v1/identify", "/v1/orders"])
def test_only_operators_and_admins_may_send_data(
    client: TestClient, app: FastAPI, key_for: KeyFor, path: str
) -> None:
    body = {"customer_id": "C1", "event_type": "x"}
    assert client.post(path, json=body).status_code == 401
    assert client.post(path, json=body, headers={"X-API-Key": "prn_nope"}).status_code == 401
    assert client.post(path, json=body, headers=key_for(Role.VIEWER)).status_code == 403
    assert client.post(path, json=body, headers=key_for(Role.AGENT)).status_code == 403
    assert _requests(app) == 0
    assert client.post("/v1/track", json=body, headers=key_for(Role.ADMIN)).status_code == 202


# --- injection --------------------------------------------------------------------------------

HOSTILE = [
    "'; DROP TABLE events; --",
    "Robert'); DELETE FROM customers WHERE ('1'='1",
    '" OR 1=1 --',
    "<script>alert('x')</script>",
    "<img src=x onerror=alert(1)>",
    "{{7*7}} ${7*7} %s %d",
    "../../../../etc/passwd",
    "line\nbreak\ttab \\ back\\slash",
    "李明 👋 \u202eevil",
]


def test_hostile_strings_in_every_text_field_are_stored_verbatim_and_never_run(
    client: TestClient, app: FastAPI, settings: Settings, operator: dict[str, str]
) -> None:
    events = [
        {
            "event_id": f"ev-{n}-{text}",
            "customer_id": text,
            "anonymous_id": text,
            "event_type": text,
            "properties": {text: text, "nested": {"value": text}},
        }
        for n, text in enumerate(HOSTILE)
    ]
    customers = [
        {
            "customer_id": f"cu-{n}-{text}",
            "anonymous_id": f"an-{n}-{text}",
            "name": text,
            "gender": text,
            "region": text,
            "acquisition_channel": text,
            "wechat_openid": f"wx-{n}-{text}",
            "wechat_unionid": f"un-{n}-{text}",
            "external_ids": {text: f"x-{n}-{text}"},
            "attributes": {text: text},
        }
        for n, text in enumerate(HOSTILE)
    ]
    orders = [
        {
            "order_id": f"or-{n}-{text}",
            "customer_id": text,
            "amount": "1",
            "currency": "CNY",
            "status": "paid",
            "coupon_code": text,
            "channel": text,
            "items": [{"item_id": f"it-{n}-{text}", "product_id": text, "category": text,
                       "quantity": 1}],
        }
        for n, text in enumerate(HOSTILE)
    ]  # fmt: skip
    for path, key, items in (
        ("/v1/track", "events", events),
        ("/v1/identify", "customers", customers),
        ("/v1/orders", "orders", orders),
    ):
        answer = client.post(path, json={key: items}, headers=operator).json()
        assert answer == {"accepted": len(HOSTILE), "rejected": []}
    _drain(app)

    tracked = _rows(settings, "events", "event_type, customer_id, anonymous_id, properties",
                    "WHERE event_type <> 'identify'")  # fmt: skip
    assert sorted(tracked) == sorted(
        (
            t,
            t,
            t,
            orjson.dumps({"nested": {"value": t}, t: t}, option=orjson.OPT_SORT_KEYS).decode(),
        )
        for t in HOSTILE
    )
    people = _rows(settings, "customers", "name, gender, region, acquisition_channel, attributes")
    assert sorted(people) == sorted((t, t, t, t, orjson.dumps({t: t}).decode()) for t in HOSTILE)
    sold = _rows(settings, "orders", "customer_id, coupon_code, channel")
    assert sorted(sold) == sorted((t, t, t) for t in HOSTILE)
    lines = _rows(settings, "order_items", "product_id, category")
    assert sorted(lines) == sorted((t, t) for t in HOSTILE)
    external = _rows(settings, "identities", "identity_value",
                     "WHERE identity_type = 'external_id'")  # fmt: skip
    assert sorted(external) == sorted((f"{t}:x-{n}-{t}",) for n, t in enumerate(HOSTILE))


def test_hostile_strings_in_validated_fields_are_refused_and_echoed_only_as_data(
    client: TestClient, app: FastAPI, settings: Settings, operator: dict[str, str]
) -> None:
    text = "<script>alert(1)</script>'; DROP TABLE orders; --"
    short = "<b>';--"  # within the length limits of codes, so the value itself is judged
    customers = [{"customer_id": "C1", "email": text}, {"customer_id": "C2", "phone": text}]
    orders = [
        {
            "order_id": "O1",
            "customer_id": "C1",
            "amount": short,
            "currency": "CNY",
            "status": "paid",
        },
        {"order_id": "O2", "customer_id": "C1", "amount": 1, "currency": short, "status": "paid"},
        {"order_id": "O3", "customer_id": "C1", "amount": 1, "currency": "CNY", "status": short},
        {
            "order_id": "O4",
            "customer_id": "C1",
            "amount": text,
            "currency": "CNY",
            "status": "paid",
        },
    ]

    who = client.post("/v1/identify", json={"customers": customers}, headers=operator)
    what = client.post("/v1/orders", json={"orders": orders}, headers=operator)
    _drain(app)

    assert who.headers["content-type"] == "application/json"
    assert [r["code"] for r in who.json()["rejected"]] == ["invalid_email", "invalid_phone"]
    assert [(r["field"], r["code"]) for r in what.json()["rejected"]] == [
        ("amount", "not_a_number"),
        ("currency", "unknown_currency"),
        ("status", "not_allowed"),
        ("amount", "too_long"),
    ]
    raws = [orjson.loads(r[0]) for r in _rows(settings, "quarantine", "raw")]
    assert len(raws) == 6
    assert all(text in raw.values() or short in raw.values() for raw in raws)
    assert _count(settings, "orders") == 0


# --- duplicates and idempotency ---------------------------------------------------------------


def test_the_same_event_id_sent_twice_is_stored_once(
    client: TestClient, app: FastAPI, settings: Settings, operator: dict[str, str]
) -> None:
    event = {"event_id": "E1", "customer_id": "C1", "event_type": "login", "ts": _ts(-1)}
    client.post("/v1/track", json={"events": [event, event]}, headers=operator)
    _drain(app)
    client.post("/v1/track", json=event, headers=operator)
    resent = _drain(app)
    client.post("/v1/track", json={**event, "event_type": "logout"}, headers=operator)
    report = _drain(app)

    assert _rows(settings, "events", "event_id, event_type") == [("E1", "login")]
    assert (resent.accepted, resent.reports[0].already_stored) == (0, 1)
    assert report.quarantined == 1  # the same id with other values: kept first, shown
    assert "already stored with other values" in _rows(settings, "quarantine", "reason")[0][0]


def test_a_batch_repeated_with_its_idempotency_key_is_stored_once_and_answered_the_same(
    client: TestClient, app: FastAPI, settings: Settings, operator: dict[str, str]
) -> None:
    batch = {
        "events": [
            {"customer_id": "C1", "event_type": "page_view"},  # no id, no ts: not dedupable
            {"customer_id": "C1", "event_type": 5},
        ]
    }
    headers = {**operator, "Idempotency-Key": "batch-0001"}
    first = client.post("/v1/track", json=batch, headers=headers)
    second = client.post("/v1/track", json=batch, headers=headers)
    other_body = client.post("/v1/track", json={"events": batch["events"][:1]}, headers=headers)
    report = _drain(app)

    assert first.status_code == second.status_code == 202
    assert second.json() == first.json()
    assert "idempotent-replayed" not in first.headers
    assert second.headers["idempotent-replayed"] == "true"
    assert other_body.status_code == 422
    assert other_body.json()["error"]["code"] == "idempotency_key_reused"
    assert report.requests == 1
    assert _count(settings, "events") == 1
    assert _count(settings, "quarantine") == 1


def test_idempotency_keys_belong_to_their_caller(
    client: TestClient, app: FastAPI, key_for: KeyFor
) -> None:
    event = {"customer_id": "C1", "event_type": "page_view"}
    one = {**key_for(Role.OPERATOR), "Idempotency-Key": "k"}
    two = {**key_for(Role.OPERATOR), "Idempotency-Key": "k"}
    client.post("/v1/track", json=event, headers=one)
    replay = client.post("/v1/track", json=event, headers=two)

    assert "idempotent-replayed" not in replay.headers
    assert _pending(app) == 2


@pytest.mark.parametrize("key", ["", "x" * 256, "ключ"])
def test_a_malformed_idempotency_key_is_a_400(
    client: TestClient, operator: dict[str, str], key: str
) -> None:
    headers = {**operator, "Content-Type": "application/json"}
    response = client.post(
        "/v1/track",
        content=b'{"event_type": "x", "customer_id": "C"}',
        headers=[*headers.items(), ("Idempotency-Key", key.encode())],
    )
    assert response.status_code == 400
    assert response.json()["error"]["field"] == "header.Idempotency-Key"


def test_an_identical_event_without_an_id_resent_in_another_request_is_stored_once(
    client: TestClient, app: FastAPI, settings: Settings, operator: dict[str, str]
) -> None:
    event = {"customer_id": "C1", "event_type": "page_view", "ts": "2025-05-01T08:00:00Z"}
    client.post("/v1/track", json={"events": [event, event]}, headers=operator)
    client.post("/v1/track", json={"events": [event, event]}, headers=operator)
    _drain(app)
    client.post("/v1/track", json={"events": [event, event]}, headers=operator)
    _drain(app)

    # Two genuine repeats in one request are two events; re-sending that request is not.
    assert _count(settings, "events") == 2


# --- identify and orders --------------------------------------------------------------------------


def test_an_anonymous_visitor_then_a_phone_then_the_customer_are_one_person_as_with_files(
    client: TestClient, app: FastAPI, settings: Settings, operator: dict[str, str], tmp_path: Path
) -> None:
    client.post(
        "/v1/track",
        json={"anonymous_id": "dev-1", "event_type": "page_view", "ts": "2025-05-01T08:00:00Z"},
        headers=operator,
    )
    _drain(app)
    client.post(
        "/v1/identify",
        json={"anonymous_id": "dev-1", "phone": "138 1234 5678", "ts": "2025-05-01T08:05:00Z"},
        headers=operator,
    )
    _drain(app)
    client.post(
        "/v1/identify",
        json={"customer_id": "C1", "phone": "13812345678", "name": "李明",
              "ts": "2025-05-02T09:00:00Z", "created_at": "2025-05-02T09:00:00Z"},
        headers=operator,
    )  # fmt: skip
    _drain(app)

    files = Settings(home=tmp_path / "files")
    events = write_text(
        tmp_path / "events.jsonl",
        '{"anonymous_id":"dev-1","event_type":"page_view","ts":"2025-05-01T08:00:00Z"}\n'
        '{"anonymous_id":"dev-1","event_type":"identify","ts":"2025-05-01T08:05:00Z",'
        '"properties":{"phone":"138 1234 5678"}}\n',
    )
    customers = write_text(
        tmp_path / "customers.csv",
        "customer_id,created_at,phone,name\nC1,2025-05-02T09:00:00Z,13812345678,李明\n",
    )
    ingest_file(events, files, table="events")
    ingest_file(customers, files, table="customers")

    columns = "identity_type, identity_value, cluster_id, customer_id"
    assert (
        _rows(settings, "identities", columns)
        == _rows(files, "identities", columns)
        == [
            ("anonymous_id", "dev-1", "customer_id:C1", "C1"),
            ("customer_id", "C1", "customer_id:C1", "C1"),
            ("phone", "+8613812345678", "customer_id:C1", "C1"),
        ]
    )


def test_identify_updates_a_customer_without_losing_what_earlier_calls_said(
    client: TestClient, app: FastAPI, settings: Settings, operator: dict[str, str]
) -> None:
    client.post(
        "/v1/identify",
        json={"customer_id": "C1", "name": "李明", "phone": "13812345678",
              "consent_sms": True, "attributes": {"tier": "gold"}},
        headers=operator,
    )  # fmt: skip
    _drain(app)
    client.post(
        "/v1/identify",
        json={"customers": [
            {"customer_id": "C1", "email": "li@example.com"},
            {"customer_id": "C1", "attributes": {"city": "杭州"}, "external_ids": {"crm": "7"}},
        ]},
        headers=operator,
    )  # fmt: skip
    _drain(app)

    columns = "customer_id, name, phone, email, consent_sms, attributes"
    assert _rows(settings, "customers", columns) == [
        ("C1", "李明", "+8613812345678", "li@example.com", True, '{"city":"杭州","tier":"gold"}')
    ]
    owners = _rows(settings, "identities", "identity_type, identity_value, customer_id")
    assert ("external_id", "crm:7", "C1") in owners
    assert ("email", "li@example.com", "C1") in owners


def test_an_order_is_stored_with_its_lines_and_a_resent_order_updates_its_status(
    client: TestClient, app: FastAPI, settings: Settings, operator: dict[str, str]
) -> None:
    order = {
        "order_id": "O1",
        "customer_id": "C1",
        "placed_at": "2025-05-01T08:00:00+08:00",
        "amount": 59.9,
        "currency": "cny",
        "status": "paid",
        "items": [
            {"product_id": "P1", "quantity": 2, "unit_price": "19.95", "category": "tea"},
            {"item_id": "L2", "product_id": "P2", "quantity": 1, "unit_price": 20},
        ],
    }
    first = client.post("/v1/orders", json=order, headers=operator)
    _drain(app)
    client.post("/v1/orders", json={**order, "status": "refunded"}, headers=operator)
    _drain(app)

    assert first.json() == {"accepted": 1, "rejected": []}
    assert _rows(settings, "orders", "order_id, placed_at, amount, currency, status") == [
        ("O1", datetime(2025, 5, 1, 0, tzinfo=UTC), Decimal("59.9000"), "CNY", "refunded")
    ]
    lines = _rows(settings, "order_items", "order_id, product_id, quantity, unit_price, placed_at")
    assert [(o, p, q, float(u)) for o, p, q, u, _ in lines] == [
        ("O1", "P1", 2, 19.95),
        ("O1", "P2", 1, 20.0),
    ]
    assert {at for *_, at in lines} == {datetime(2025, 5, 1, 0, tzinfo=UTC)}


def test_a_bad_line_refuses_its_whole_order_and_names_the_line(
    client: TestClient, app: FastAPI, settings: Settings, operator: dict[str, str]
) -> None:
    orders = [
        {"order_id": "O1", "customer_id": "C1", "amount": 5, "currency": "CNY", "status": "paid",
         "items": [{"product_id": "P1", "quantity": 1}, {"product_id": "P2", "quantity": -3}]},
        {"order_id": "O2", "customer_id": "C1", "amount": 5, "currency": "CNY", "status": "paid",
         "items": [{"product_id": "P1", "quantity": "1"}]},
        {"order_id": "O3", "customer_id": "C1", "amount": 5, "currency": "CNY", "status": "paid"},
    ]  # fmt: skip

    answer = client.post("/v1/orders", json={"orders": orders}, headers=operator).json()
    _drain(app)

    assert answer["rejected"] == [
        {"index": 0, "field": "items.1.quantity", "code": "negative_count",
         "message": "negative count '-3'"},
        {"index": 1, "field": "items.0.quantity", "code": "wrong_type",
         "message": "Input should be a valid integer"},
    ]  # fmt: skip
    assert _rows(settings, "orders", "order_id") == [("O3",)]
    assert _count(settings, "order_items") == 0


def test_the_background_drainer_moves_items_into_the_warehouse_within_seconds(
    tmp_path: Path,
) -> None:
    settings = Settings(home=tmp_path / "served", ingest_drain_seconds=0.2)
    served = create_app(settings)
    with TestClient(served) as client:
        with served.state.perennial.engine.begin() as connection:
            key = create_api_key(
                connection, name="t", roles=frozenset({Role.OPERATOR}), created_by="t"
            )
        headers = {"Authorization": f"Bearer {key.token}"}
        client.post("/v1/track", json={"event_type": "x", "customer_id": "C"}, headers=headers)
        deadline = time.monotonic() + 20
        while _pending(served) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _count(settings, "events") == 1
        assert _pending(served) == 0


def test_a_store_that_cannot_write_answers_503_and_keeps_nothing(
    client: TestClient, app: FastAPI, operator: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*_args: object, **_kwargs: object) -> None:
        raise sa.exc.OperationalError("INSERT", {}, Exception("disk I/O error"))

    monkeypatch.setattr(inbox_writer_module, "append_entries", broken)
    response = client.post(
        "/v1/track", json={"event_type": "x", "customer_id": "C"}, headers=operator
    )

    assert response.status_code == 503
    assert response.json()["error"]["code"] == "unavailable"
    assert "disk" not in response.text
    assert _requests(app) == 0
