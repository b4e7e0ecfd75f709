"""Bad input against every write endpoint, and traversal in every path parameter.

Write endpoints and their text fields are read from the app's OpenAPI document, so a
new endpoint fails ``test_every_write_endpoint_has_a_valid_body_here`` until it gets a
valid base body below, and a new text field is attacked without any change here.

- Hostile text (injection, markup, templates, NUL, CR/LF, RTL and zero-width
  characters, over-long values) in every text field is refused with a clear 4xx (or,
  in an ingest batch, refused item by item naming the field) or stored verbatim and
  returned verbatim: by the admin API, in the warehouse, in the customer 360. Pages
  that show it (login, admin) show it escaped.
- Malformed JSON, wrong media types, wrong types, unknown fields, deep nesting, huge
  numbers and oversized bodies are a 4xx that changes nothing (the whole operational
  store is compared before and after).
- Ids with traversal never read a file. Error bodies leak no stack trace, SQL, path.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

import duckdb
import orjson
import pytest
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts
from fastapi.testclient import TestClient
from markupsafe import escape

from perennial.access.api_keys import create_api_key
from perennial.access.audit import query_audit
from perennial.access.roles import Role
from perennial.access.users import create_user
from perennial.api.serving import serving_store
from perennial.config import Settings
from perennial.ingest.drain import drain_inbox
from perennial.ingest.inbox import inbox_counts
from perennial.lifecycle.presets import resolve_model_path
from perennial.lifecycle.profiles import as_of_instant, build_profiles, store_profiles
from perennial.lifecycle.stage_model import load_stage_model
from perennial.service import create_app
from perennial.serving import refresh_serving
from perennial.store.backends import open_backend
from perennial.store.warehouse import Warehouse
from perennial.web.assets import STATIC_DIR
from tests.api.accounts import add_account, sign_in
from tests.api.hostile import (
    HOSTILE,
    TextField,
    assert_clean_error,
    file_state,
    leaks,
    snapshot,
    text_fields,
    value_at,
    with_value,
)
from tests.serving.demo_store import DemoStore, demo_store

TS = "2025-11-30T08:00:00+08:00"
EVENT = {
    "event_id": "ev",
    "customer_id": "C-abuse",
    "anonymous_id": "anon",
    "event_type": "page_view",
    "ts": TS,
    "properties": {"path": "/home"},
}
IDENTIFY = {
    "customer_id": "C-abuse",
    "anonymous_id": "anon",
    "event_id": "id",
    "ts": TS,
    "created_at": TS,
    "name": "Li Ming",
    "phone": "+8613812345678",
    "email": "li@example.com",
    "birthday": "1990-05-01",
    "gender": "male",
    "region": "Shanghai",
    "acquisition_channel": "search",
    "timezone": "Asia/Shanghai",
    "wechat_openid": "wx-open",
    "wechat_unionid": "wx-union",
    "consent_email": True,
    "external_ids": {"crm": "CRM-1"},
    "attributes": {"plan": "gold"},
}
ORDER = {
    "order_id": "or",
    "customer_id": "C-abuse",
    "placed_at": TS,
    "amount": "19.90",
    "currency": "CNY",
    "status": "paid",
    "item_count": 1,
    "coupon_code": "NEW10",
    "channel": "app",
    "items": [
        {"item_id": "it", "product_id": "P1", "category": "tea", "quantity": 1, "unit_price": 19.9}
    ],
}
HOOK = "http://127.0.0.1:{hook_port}/hook"
"""The segment webhook export's receiver: a local server the target starts (port filled in)."""

JOURNEY = {
    "journey": "abuse",
    "trigger": {"type": "manual"},
    "start": "hello",
    "steps": {
        "hello": {"type": "send", "channel": "email", "message": {"text": "Hi"}, "next": "done"},
        "done": {"type": "exit"},
    },
}
BODIES: dict[str, dict[str, Any]] = {
    "POST /v1/auth/login": {"username": "nobody", "password": "not the password"},
    "POST /v1/admin/users": {"username": "someone", "display_name": "Someone", "roles": ["viewer"]},
    "PUT /v1/admin/users/{user_id}/roles": {"roles": ["viewer"]},
    "POST /v1/admin/api-keys": {"name": "etl", "roles": ["viewer"], "expires_days": 30},
    "POST /v1/track": EVENT,
    "POST /v1/identify": IDENTIFY,
    "POST /v1/orders": ORDER,
    "POST /v1/segments/validate": {"expression": "customer_id is not null"},
    "POST /v1/segments/preview": {"expression": "customer_id is not null"},
    "POST /v1/segments": {"name": "abuse", "expression": "customer_id is not null"},
    "PUT /v1/segments/{name}": {"expression": "customer_id is not null", "title": "Abuse"},
    "POST /v1/segments/{name}/export/webhook": {"url": HOOK, "retries": 0},
    "POST /v1/tags": {"name": "abuse", "expression": "customer_id is not null"},
    "PUT /v1/customers/{customer_id}/tags/{tag}": {"value": "gold", "reason": "abuse"},
    "POST /v1/journeys/validate": {"document": JOURNEY},
    "POST /v1/journeys": {"document": JOURNEY},
    "POST /v1/journeys/{name}/enrol": {"customers": ["C0000001"], "occurrence": "abuse"},
    "POST /v1/journeys/preview": {"document": JOURNEY, "step": "hello", "customer_id": "C0000001"},
    # in this order: the task is made, sent back to its team's queue, then closed
    "POST /v1/tasks": {
        "task_id": "abuse-task",
        "customer_id": "C0000001",
        "team": "abuse",
        "title": "回访 call back",
        "priority": "urgent",
        "due_in": "24h",
    },
    "POST /v1/tasks/{task_id}/assign": {"assignee": None},
    "POST /v1/tasks/{task_id}/close": {"outcome": "declined", "notes": "moved abroad"},
}
"""A valid body for every write endpoint that takes one."""
INGEST = {"POST /v1/track": "events", "POST /v1/identify": "customers", "POST /v1/orders": "orders"}
ITEM_IDS = ("event_id", "order_id")
"""Ids that make each item of a batch its own (else identical items collapse)."""
JSON_TEXT = frozenset({"properties", "attributes"})


@dataclass(frozen=True)
class Target:
    app: FastAPI
    client: TestClient
    settings: Settings
    admin: dict[str, str]
    operator: dict[str, str]
    user_id: str
    hook_port: int

    def path(self, label: str) -> str:
        path = label.split(" ", 1)[1].replace("{user_id}", self.user_id)
        return (
            path.replace("{name}", "abuse")
            .replace("{customer_id}", "C0000001")
            .replace("{tag}", "vip")
            .replace("{task_id}", "abuse-task")
        )

    def send(self, label: str, body: Any, **headers: str) -> Any:
        method = label.split(" ", 1)[0]
        auth = self.operator if label in INGEST else self.admin
        if isinstance(body, dict) and isinstance(body.get("url"), str):
            body = {**body, "url": body["url"].replace("{hook_port}", str(self.hook_port))}
        return self.client.request(method, self.path(label), json=body, headers={**auth, **headers})

    def stores(self) -> tuple[Any, ...]:
        """The whole operational store and the warehouse's files (audited views written)."""
        state = self.app.state.perennial
        state.audit.flush()
        return snapshot(state.engine), file_state(self.settings.warehouse)


@pytest.fixture(scope="session")
def demo(tmp_path_factory: pytest.TempPathFactory) -> DemoStore:
    return demo_store(tmp_path_factory)


@pytest.fixture(scope="module")
def target(demo: DemoStore, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    """A fresh home and warehouse (written), reading the demo's serving store (read only)."""
    root = tmp_path_factory.mktemp("abuse")
    settings = Settings(
        home=root / "home",
        warehouse_path=root / "warehouse",
        serving_path=demo.settings.serving_database,
        ingest_drain_seconds=0,
    )
    settings.warehouse.mkdir(parents=True)
    app = create_app(settings)
    with app.state.perennial.engine.begin() as connection:
        keys = {
            role: create_api_key(
                connection, name=f"abuse {role}", roles=frozenset({role}), created_by="tests"
            ).token
            for role in (Role.ADMIN, Role.OPERATOR)
        }
        user = create_user(
            connection, username="target", roles=frozenset({Role.VIEWER}), actor="tests"
        ).user
    hook = _hook_server()
    try:
        with TestClient(app, raise_server_exceptions=False, follow_redirects=False) as client:
            yield Target(
                app,
                client,
                settings,
                admin={"Authorization": f"Bearer {keys[Role.ADMIN]}"},
                operator={"Authorization": f"Bearer {keys[Role.OPERATOR]}"},
                user_id=user.user_id,
                hook_port=hook.server_address[1],
            )
    finally:
        hook.shutdown()


class _Hook(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.send_response(204)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        del format, args


def _hook_server() -> ThreadingHTTPServer:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def _write_operations(app: FastAPI) -> dict[str, dict[str, Any]]:
    """Every operation that takes a JSON body -> the schema of one body (or one item)."""
    found = {}
    for path, operations in app.openapi()["paths"].items():
        for method, operation in operations.items():
            content = operation.get("requestBody", {}).get("content", {})
            if "application/json" in content:
                schema = content["application/json"]["schema"]
                found[f"{method.upper()} {path}"] = schema.get("oneOf", [schema])[-1]
    return found


def _fields(app: FastAPI, label: str) -> list[TextField]:
    components = app.openapi()["components"]["schemas"]
    return text_fields(_write_operations(app)[label], components)


def test_every_write_endpoint_has_a_valid_body_here(target: Target) -> None:
    assert set(_write_operations(target.app)) == set(BODIES)
    for label, body in BODIES.items():
        response = target.send(label, body)
        assert response.status_code in (200, 201, 202, 401), (label, response.text)
        if label in INGEST:
            assert response.json() == {"accepted": 1, "rejected": []}, label
    assert [f.name for f in _fields(target.app, "POST /v1/admin/users")] == [
        "username",
        "display_name",
    ]


# --- hostile text ---------------------------------------------------------------------------


def _probes(field: TextField) -> list[tuple[str, str]]:
    """(name, value): every hostile string, and values just at and past the length limit."""
    probes = list(HOSTILE.items())
    if field.max_length is not None:
        probes += [
            ("at_limit", "长" * field.max_length),
            ("past_limit", "长" * field.max_length + "x"),
        ]
    return probes


def _unique(value: str, field: TextField, number: int, max_length: int | None) -> str:
    """The value with a marker naming the probe, so each stored value is found as itself."""
    marked = f"{value}~{field.name}~{number}"
    return value if max_length is not None and len(marked) > max_length else marked


@pytest.mark.parametrize(
    "label", ["POST /v1/auth/login", "POST /v1/admin/users", "POST /v1/admin/api-keys"]
)
def test_hostile_text_in_every_field_is_refused_clearly_or_kept_verbatim(
    target: Target, label: str
) -> None:
    kept: list[str] = []
    for field in _fields(target.app, label):
        for number, (name, raw) in enumerate(_probes(field)):
            value = _unique(raw, field, number, field.max_length)
            body = with_value(_fresh(BODIES[label], number, field), field, value)
            response = target.send(label, body)
            status = response.status_code
            if status in (200, 201) or (status == 401 and field.name == "username"):
                kept.append(value)  # stored, or (a tried username) in the audit log
            if status not in (200, 201):
                assert status in (401, 409, 422), (field.name, name, response.text)
                assert not (name == "at_limit" and status == 422), (field.name, response.text)
                assert_clean_error(response, sent=[value])
    stored = _stored_admin_text(target, label)
    missing = [value for value in kept if value not in stored]
    assert not missing, missing
    assert kept, "no hostile value was kept: the test would prove nothing"
    if label != "POST /v1/auth/login":
        _admin_page_shows_escaped(target, kept)


def _fresh(body: dict[str, Any], number: int, field: TextField) -> dict[str, Any]:
    """``body`` with its unique names made unique per probe (the probed field then overrides)."""
    unique = dict(body)
    for key in ("username", "name"):
        if key in unique and key != "password":
            unique[key] = f"{unique[key]}-{field.name}-{number}"
    return unique


def _stored_admin_text(target: Target, label: str) -> set[str]:
    if label == "POST /v1/admin/users":
        users = target.client.get("/v1/admin/users", headers=target.admin).json()
        return {user[key] for user in users for key in ("username", "display_name")}
    if label == "POST /v1/admin/api-keys":
        keys = target.client.get("/v1/admin/api-keys", headers=target.admin).json()
        return {key["name"] for key in keys}
    with target.app.state.perennial.engine.connect() as connection:
        failures = query_audit(connection, action="login.failed", limit=10_000)
    return {entry["subject_id"] for entry in failures}


def _admin_page_shows_escaped(target: Target, values: list[str]) -> None:
    """The admin page lists users and keys: each value escaped, never as markup."""
    with TestClient(target.app, follow_redirects=False) as browser:
        account = add_account(
            target.app, f"page.admin.{len(values)}.{datetime.now(UTC):%f}", Role.ADMIN
        )
        sign_in(browser, account)
        page = browser.get("/admin", headers={"Accept": "text/html"}).text
    for value in values:
        assert str(escape(value)) in page, value
        if escape(value) != value:
            assert value not in page, value


@pytest.mark.parametrize("label", sorted(INGEST))
def test_hostile_text_in_every_ingest_field_is_refused_by_name_or_stored_verbatim(
    target: Target, label: str
) -> None:
    kept: list[str] = []
    for field in _fields(target.app, label):
        probes = _probes(field)
        items = []
        for number, (_name, raw) in enumerate(probes):
            item = _distinct(BODIES[label], f"{field.name}-{number}")
            items.append(with_value(item, field, _unique(raw, field, number, field.max_length)))
        answer = target.send(label, {INGEST[label]: items}).json()
        refused = {r["index"]: r for r in answer["rejected"]}
        assert answer["accepted"] + len(refused) == len(items), answer
        for index, (name, _raw) in enumerate(probes):
            value = value_at(items[index], field)
            if index not in refused:
                kept.extend([value] if isinstance(value, str) else list(value))
                continue
            refusal = refused[index]
            assert not (name == "at_limit" and refusal["code"] == "too_long"), refusal
            assert str(refusal["field"]).split(".")[0] == str(field.path[0]), (field.name, refusal)
            assert refusal["code"] and refusal["message"], refusal
            assert not leaks(refusal["message"], sent=[value]), refusal
    assert any(HOSTILE["script"] in value for value in kept), "nothing hostile was accepted"
    report = drain_inbox(target.settings, target.app.state.perennial.engine)
    assert report.requests > 0
    stored = _warehouse_text(target.settings)
    missing = [value for value in kept if not any(value in text for text in stored)]
    assert not missing, missing


def _distinct(body: dict[str, Any], suffix: str) -> dict[str, Any]:
    item = orjson.loads(orjson.dumps(body))
    for key in ITEM_IDS:
        if key in item:
            item[key] = f"{item[key]}-{suffix}"
    for line in item.get("items", []):
        line["item_id"] = f"{line['item_id']}-{suffix}"
    return dict(item)


def _warehouse_text(settings: Settings) -> list[str]:
    """Every text cell of the customer tables, and every key and text inside JSON cells."""
    snapshot_ = Warehouse(settings.warehouse).snapshot()
    texts: list[str] = []
    for table in ("events", "customers", "orders", "order_items", "identities"):
        paths = snapshot_.paths(table)
        if not paths:
            continue
        relation = duckdb.sql("SELECT * FROM read_parquet(?)", params=[paths])
        columns = relation.columns
        for row in relation.fetchall():
            for column, cell in zip(columns, row, strict=True):
                if isinstance(cell, str):
                    texts.append(cell)
                    if column in JSON_TEXT:
                        texts.extend(_json_texts(orjson.loads(cell)))
    return texts


def _json_texts(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from _json_texts(item)
    elif isinstance(value, list):
        for item in value:
            yield from _json_texts(item)
    elif isinstance(value, str):
        yield value


def test_hostile_usernames_typed_on_the_login_form_are_shown_back_escaped(target: Target) -> None:
    with TestClient(target.app, follow_redirects=False) as browser:
        for value in HOSTILE.values():
            form = browser.get("/login", headers={"Accept": "text/html"})
            token = form.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
            answer = browser.post(
                "/login",
                data={"username": value, "password": "wrong", "csrf_token": token, "next": value},
                headers={"Accept": "text/html"},
            )
            assert answer.status_code in (401, 429), answer.status_code
            if escape(value) != value:
                assert value not in answer.text, value
            assert "<script>alert(1)" not in answer.text


# --- malformed requests ---------------------------------------------------------------------


def _deep(depth: int) -> bytes:
    return b'{"a":' * depth + b"1" + b"}" * depth


MALFORMED: dict[str, tuple[bytes, str]] = {
    "truncated": (b'{"a": ', "application/json"),
    "not_json": (b"hello", "application/json"),
    "bad_utf8": (b'{"name": "\xff\xfe"}', "application/json"),
    "trailing_garbage": (b"{} {}", "application/json"),
    "empty": (b"", "application/json"),
    "array": (b"[1, 2]", "application/json"),
    "string": (b'"text"', "application/json"),
    "null": (b"null", "application/json"),
    "nan": (b'{"a": NaN}', "application/json"),
    "deep_object": (_deep(100_000), "application/json"),
    "deep_array": (b"[" * 100_000 + b"]" * 100_000, "application/json"),
    "huge_integer": (b'{"a": ' + b"9" * 5000 + b"}", "application/json"),
    "text_plain": (b'{"username": "a", "password": "b"}', "text/plain"),
    "form": (b"username=a&password=b&roles=admin", "application/x-www-form-urlencoded"),
    "no_content_type": (b'{"username": "a"}', ""),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
@pytest.mark.parametrize("label", sorted(BODIES))
def test_malformed_bodies_are_a_clear_4xx_and_change_nothing(
    target: Target, label: str, case: str
) -> None:
    content, media_type = MALFORMED[case]
    method = label.split(" ", 1)[0]
    auth = target.operator if label in INGEST else target.admin
    headers = {**auth, "Content-Type": media_type} if media_type else auth
    before = target.stores()
    response = target.client.request(method, target.path(label), content=content, headers=headers)
    assert response.status_code in (400, 415, 422), (response.status_code, response.text)
    assert_clean_error(response)
    assert target.stores() == before


_JSON_TYPES = {str: "string", int: "integer", float: "number", bool: "boolean"}
_JSON_TYPES |= {type(None): "null", list: "array", dict: "object"}


def _wrong_types(schema: dict[str, Any], components: dict[str, Any]) -> list[Any]:
    """JSON values of a type the property's schema does not allow."""
    if "$ref" in schema:
        schema = components[schema["$ref"].rsplit("/", 1)[1]]
    allowed = {option.get("type") for option in schema.get("anyOf", [schema])}
    if None in allowed:
        return []  # a property of any type
    if "number" in allowed:
        allowed.add("integer")
    values = ["text", 12, 1.5, True, None, [], {}]
    return [value for value in values if _JSON_TYPES[type(value)] not in allowed]


@pytest.mark.parametrize("label", sorted(BODIES))
def test_every_field_of_the_wrong_type_is_a_422_naming_it(target: Target, label: str) -> None:
    """A single item, so ingest refuses it whole with the field, like the other endpoints."""
    base = BODIES[label]
    components = target.app.openapi()["components"]["schemas"]
    properties = _object_schema(target.app, label)["properties"]
    for name in base:
        for wrong in _wrong_types(properties[name], components):
            before = target.stores()
            response = target.send(label, {**base, name: wrong})
            assert response.status_code == 422, (name, wrong, response.text)
            assert_clean_error(response)
            assert str(response.json()["error"]["field"]).startswith(f"body.{name}"), response.text
            assert target.stores() == before


def _object_schema(app: FastAPI, label: str) -> dict[str, Any]:
    schema = _write_operations(app)[label]
    components = app.openapi()["components"]["schemas"]
    if "$ref" in schema:
        schema = components[schema["$ref"].rsplit("/", 1)[1]]
    return schema


@pytest.mark.parametrize("label", sorted(BODIES))
def test_unknown_fields_are_a_422_naming_them(target: Target, label: str) -> None:
    before = target.stores()
    response = target.send(label, {**BODIES[label], "is_admin": True})
    assert response.status_code == 422
    assert response.json()["error"]["field"] == "body.is_admin"
    assert target.stores() == before


HUGE_NUMBERS = [2**63 - 1, 2**63, 2**64, -(2**63) - 1, 1e308, -1e308, 1e-320]


@pytest.mark.parametrize(
    ("label", "field"),
    [
        ("POST /v1/admin/api-keys", "expires_days"),
        ("POST /v1/orders", "amount"),
        ("POST /v1/orders", "item_count"),
    ],
)
def test_huge_numbers_are_refused_or_stored_never_a_server_error(
    target: Target, label: str, field: str
) -> None:
    for number, huge in enumerate(HUGE_NUMBERS):
        body = _distinct(BODIES[label], f"huge-{field}-{number}")
        body[field] = huge
        response = target.send(label, body)
        assert response.status_code in (201, 202, 400, 422), (huge, response.text)
        if response.status_code >= 400:
            assert_clean_error(response)
    if label in INGEST:
        drain_inbox(target.settings, target.app.state.perennial.engine)
        with target.app.state.perennial.engine.connect() as connection:
            assert inbox_counts(connection)["failed"] == 0


def test_huge_line_quantities_in_an_order_never_break_the_drain(target: Target) -> None:
    orders = []
    for number, huge in enumerate(HUGE_NUMBERS[:4]):
        order = _distinct(ORDER, f"qty-{number}")
        order["items"][0]["quantity"] = huge
        orders.append(order)
    response = target.send("POST /v1/orders", {"orders": orders})
    assert response.status_code in (202, 400), response.text
    drain_inbox(target.settings, target.app.state.perennial.engine)
    with target.app.state.perennial.engine.connect() as connection:
        counts = inbox_counts(connection)
    assert (counts["failed"], counts["pending"]) == (0, 0), counts


def _unsafe_routes(app: FastAPI) -> list[tuple[str, str, bool]]:
    """(method, path, reads a body) of every route that changes something, API and pages."""
    found = []
    for context in iter_route_contexts(app.routes):
        for method in sorted(context.methods or ()):
            if method in ("POST", "PUT", "PATCH", "DELETE"):
                label = f"{method} {context.path}"
                reads = label in BODIES or getattr(context, "body_field", None) is not None
                found.append((method, str(context.path), reads))
    return found


_FORM = "application/x-www-form-urlencoded"


def test_oversized_bodies_are_a_413_on_every_route_that_changes_something(
    target: Target,
) -> None:
    limit = target.settings.api_max_body_bytes
    body = b'{"a": "' + b"x" * limit + b'"}'
    routes = _unsafe_routes(target.app)
    assert len(routes) >= 12
    before = target.stores()
    for method, path, reads_body in routes:
        url = path.replace("{user_id}", target.user_id).replace("{key_id}", "abcdef012345")
        media_type = "application/json" if url.startswith("/v1/") else _FORM
        headers = {**target.admin, "Content-Type": media_type}
        declared = target.client.request(method, url, content=body, headers=headers)
        assert declared.status_code == 413, (method, path, declared.status_code)
        assert_clean_error(declared)
        if reads_body:  # streamed without a length: the limit is met while reading it
            chunked = target.client.request(
                method, url, content=iter([body[:1000], body[1000:]]), headers=headers
            )
            assert chunked.status_code == 413, (method, path, chunked.status_code)
            assert_clean_error(chunked)
    assert target.stores() == before


# --- traversal ------------------------------------------------------------------------------

TRAVERSALS = [
    "..%2F..%2F..%2F..%2Fetc%2Fpasswd",
    "%2e%2e%2f%2e%2e%2f%2e%2e%2fetc%2fpasswd",
    "%2e%2e/%2e%2e/%2e%2e/etc/passwd",
    "..%5C..%5C..%5Cwindows%5Cwin.ini",
    "%2Fetc%2Fpasswd",
    "%252e%252e%252fetc%252fpasswd",
    "C0000001%00.json",
    "..%2F" * 12 + "{secret}",
]


def _parametrized_paths(app: FastAPI) -> list[tuple[str, str]]:
    """(method, path template) of every route with a path parameter, and the static mount."""
    found = []
    for context in iter_route_contexts(app.routes):
        path = str(context.path)
        if "{" in path:
            found.extend((method, path) for method in sorted(context.methods or ()))
        elif not context.methods:
            found.append(("GET", path + "/{path}"))
    return found


def test_traversal_in_any_path_parameter_never_reads_a_file(target: Target, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-SENTINEL")
    routes = _parametrized_paths(target.app)
    assert len(routes) >= 8, routes
    relative = quote(str(secret).lstrip("/"), safe="")
    static_depth = "..%2F" * (len(STATIC_DIR.parts) + 2)
    probes = [*TRAVERSALS, static_depth + relative]
    with TestClient(target.app, follow_redirects=False) as browser:
        sign_in(browser, add_account(target.app, "traversal.admin", Role.ADMIN))
        before = target.stores()
        for method, template in routes:
            for probe in probes:
                value = probe.replace("{secret}", relative)
                url = _fill(template, value)
                if url.startswith("/v1/"):
                    response = target.client.request(method, url, headers=target.admin)
                else:  # pages take the session cookie, not a key
                    response = browser.request(method, url, headers={"Accept": "text/html"})
                _refused_without_reading(response, template, url, tmp_path)
    assert target.stores() == before


def _refused_without_reading(response: Any, template: str, url: str, tmp_path: Path) -> None:
    text = response.text
    assert "TOP-SECRET-SENTINEL" not in text and "root:x:0:0" not in text, url
    if template.startswith("/lang/") and response.status_code == 303:
        assert "set-cookie" not in response.headers, url  # no language was chosen
        return
    assert response.status_code in (400, 404, 422), (url, response.status_code)
    if response.headers["content-type"].startswith("application/json"):
        assert_clean_error(response, secrets=[str(tmp_path)], sent=[unquote(url), url])
    # A page may echo the path it was asked for (in its language links), escaped.


def _fill(template: str, value: str) -> str:
    head, _, tail = template.partition("{")
    return head + value + tail.partition("}")[2]


# --- nothing half, nothing leaked -----------------------------------------------------------


def test_a_write_whose_audit_fails_stores_nothing_and_says_nothing(
    target: Target, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The audit row is written in the change's transaction: if it fails, the change is gone."""
    import perennial.access.users as users

    def broken_record(*_args: Any, **_kwargs: Any) -> None:
        raise RuntimeError("INSERT INTO audit_log failed at /srv/secret/perennial.db")

    monkeypatch.setattr(users, "record", broken_record)
    before = target.stores()
    response = target.send("POST /v1/admin/users", {"username": "half.made", "roles": ["viewer"]})
    assert response.status_code == 500
    assert response.json()["error"]["code"] == "internal_error"
    assert_clean_error(response, secrets=["/srv/secret", "audit_log"])
    assert target.stores() == before


@pytest.mark.parametrize(
    ("label", "body", "status"),
    [
        ("POST /v1/admin/users", {"username": "Target", "roles": ["viewer"]}, 409),
        ("POST /v1/admin/users", {"username": "x", "roles": ["viewer", "boss"]}, 422),
        ("POST /v1/admin/api-keys", {"name": "k", "roles": [], "expires_days": 1}, 422),
        ("PUT /v1/admin/users/{user_id}/roles", {"roles": ["owner"]}, 422),
        ("POST /v1/track", {"events": [EVENT] * 1001}, 422),
        ("POST /v1/track", {"events": [EVENT], "sent_at": "now"}, 422),
        ("POST /v1/track", {**EVENT, "ts": "2999-01-01T00:00:00Z"}, 422),
        ("POST /v1/orders", {**ORDER, "items": [{"product_id": "P"}]}, 422),
        ("POST /v1/identify", {**IDENTIFY, "email": "not an e-mail"}, 422),
    ],
)
def test_a_refused_request_leaves_every_store_as_it_was(
    target: Target, label: str, body: Any, status: int
) -> None:
    before = target.stores()
    response = target.send(label, body)
    assert response.status_code == status, response.text
    assert_clean_error(response)
    assert target.stores() == before


def test_a_username_differing_only_in_a_non_ascii_capital_is_taken_not_a_crash(
    target: Target,
) -> None:
    """SQLite's lower() folds ASCII only; found by the fuzz test as a 500."""
    first = target.send("POST /v1/admin/users", {"username": "Ñandú", "roles": ["viewer"]})
    assert first.status_code == 201
    for spelling in ("Ñandú", "ñandú", "ÑANDÚ"):
        again = target.send("POST /v1/admin/users", {"username": spelling, "roles": ["viewer"]})
        assert again.status_code == 409, (spelling, again.text)
        assert again.json()["error"]["code"] == "conflict"


def test_a_damaged_serving_store_is_a_503_that_names_no_file(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home")
    settings.serving_database.parent.mkdir(parents=True)
    settings.serving_database.write_bytes(b"SQLite format 3\x00" + b"\x00garbage" * 512)
    app = create_app(settings)
    with app.state.perennial.engine.begin() as connection:
        token = create_api_key(
            connection, name="t", roles=frozenset({Role.VIEWER}), created_by="tests"
        ).token
    with TestClient(app, raise_server_exceptions=False) as client:
        for path in ("/v1/customers/C1", "/v1/customers", "/v1/lifecycle/kpis"):
            response = client.get(path, headers={"Authorization": f"Bearer {token}"})
            assert response.status_code == 503, (path, response.text)
            assert response.json()["error"]["code"] == "serving_unavailable"
            assert_clean_error(response, secrets=[str(tmp_path), "serving.db"])


def test_an_unknown_customer_answer_holds_no_other_customers_data(target: Target) -> None:
    known = target.client.get("/v1/customers/C0000001", headers=target.admin).json()
    private = [known["name"], known["contact"]["phone"], known["contact"]["email"]]
    for probe in ("C0000001x", "C000000", "c0000001", "C0000001 ", "%43%30000001%25"):
        response = target.client.get(f"/v1/customers/{probe}", headers=target.admin)
        assert response.status_code == 404, probe
        assert_clean_error(response, secrets=[p for p in private if p])


def test_an_unexpected_error_is_a_bare_500(target: Target) -> None:
    async def exploding() -> None:
        raise RuntimeError("SELECT * FROM users WHERE password_hash = '$argon2id$' -- /root/x.py")

    target.app.dependency_overrides[serving_store] = exploding
    try:
        response = target.client.get("/v1/customers", headers=target.admin)
    finally:
        target.app.dependency_overrides.clear()
    assert response.status_code == 500
    assert response.json()["error"] == {
        "code": "internal_error",
        "message": "internal error; the server log has the details",
        "field": None,
    }
    assert_clean_error(response)


def test_single_items_past_their_limits_store_nothing(target: Target) -> None:
    before = target.stores()
    long_properties = {"k": "x" * 5000}
    for body in (
        {**EVENT, "properties": long_properties},
        {**EVENT, "event_type": "x" * 129},
        {**IDENTIFY, "external_ids": {f"s{i}": "v" for i in range(21)}},
        {**ORDER, "items": [ORDER["items"][0]] * 201},
    ):
        label = (
            "POST /v1/track"
            if "event_type" in body
            else ("POST /v1/orders" if "order_id" in body else "POST /v1/identify")
        )
        response = target.send(label, body)
        assert response.status_code == 422, (label, response.text)
        assert_clean_error(response)
    assert target.stores() == before


# --- round trip -----------------------------------------------------------------------------


def test_hostile_text_sent_to_the_ingest_api_comes_back_verbatim_in_the_360(
    tmp_path: Path,
) -> None:
    """Through the inbox, the drainer, the warehouse, profiles and the serving store."""
    settings = Settings(home=tmp_path / "home", ingest_drain_seconds=0)
    app = create_app(settings)
    with app.state.perennial.engine.begin() as connection:
        token = create_api_key(
            connection, name="t", roles=frozenset({Role.OPERATOR}), created_by="tests"
        ).token
    operator = {"Authorization": f"Bearer {token}"}
    customer_id = "".join(HOSTILE[k] for k in ("sql", "script", "template", "nul", "rtl"))
    hostile = dict(HOSTILE)
    sent = {
        "/v1/identify": {**IDENTIFY, "customer_id": customer_id, "name": HOSTILE["script"],
                         "region": HOSTILE["crlf"], "attributes": hostile},
        "/v1/track": {**EVENT, "customer_id": customer_id, "event_type": HOSTILE["template"],
                      "properties": hostile},
        "/v1/orders": {**ORDER, "customer_id": customer_id, "coupon_code": HOSTILE["sql"],
                       "channel": HOSTILE["zero_width"],
                       "items": [{"item_id": "i1", "product_id": HOSTILE["jndi"],
                                  "category": HOSTILE["emoji"], "quantity": 1}]},
    }  # fmt: skip
    with TestClient(app) as client:
        for path, body in sent.items():
            assert client.post(path, json=body, headers=operator).json()["rejected"] == []
        drain_inbox(settings, app.state.perennial.engine)
        _profiles_and_serving(settings)
        answer = client.get(f"/v1/customers/{quote(customer_id, safe='')}", headers=operator)
        found = client.get("/v1/customers/search", params={"q": customer_id}, headers=operator)
    assert answer.status_code == 200, answer.text
    document = answer.json()
    assert document["customer_id"] == customer_id
    assert document["name"] == HOSTILE["script"]
    assert document["details"]["region"] == HOSTILE["crlf"]
    assert document["attributes"] == hostile
    items = {item["kind"]: item for item in document["timeline"]["items"] if item["id"] != "id"}
    assert items["event"]["type"] == HOSTILE["template"]
    assert items["event"]["properties"] == hostile
    assert (items["order"]["coupon_code"], items["order"]["channel"]) == (
        HOSTILE["sql"],
        HOSTILE["zero_width"],
    )
    line = items["order"]["lines"][0]
    assert (line["product_id"], line["category"]) == (HOSTILE["jndi"], HOSTILE["emoji"])
    assert [hit["customer_id"] for hit in found.json()["items"]] == [customer_id]


def _profiles_and_serving(settings: Settings) -> None:
    model = load_stage_model(resolve_model_path("seed000"))
    zone = model.timezone or settings.default_timezone
    warehouse = Warehouse(settings.warehouse)
    with open_backend(settings) as backend:
        expression = build_profiles(
            backend, warehouse.snapshot(), as_of_instant(None, zone), model, timezone=zone
        )
        store_profiles(warehouse, backend.to_pyarrow(expression), "profiles")
    refresh_serving(settings, model)
