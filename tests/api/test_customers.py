"""``/v1/customers``: the 360, its timeline, lists, search, masking per role and bad input."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from perennial.access.audit import query_audit
from perennial.access.roles import Role
from perennial.access.tables import SERVICE_TASKS
from perennial.api.customer_views import (
    Customer360,
    CustomerListItem,
    CustomerPage,
    SearchResults,
    TimelinePage,
)
from perennial.api.pagination import encode_cursor
from perennial.api.serving import UNAVAILABLE_MESSAGE
from perennial.config import Settings
from tests.api.accounts import add_account, sign_in
from tests.api.conftest import KeyFor
from tests.serving.demo_store import CRM_CUSTOMER, CRM_ID, TRICKY_ID, DemoStore, demo_store


@pytest.fixture(scope="session")
def demo(tmp_path_factory: pytest.TempPathFactory) -> DemoStore:
    return demo_store(tmp_path_factory)


@pytest.fixture
def settings(demo: DemoStore, tmp_path: Path) -> Settings:
    """A fresh operational store, reading the session's demo warehouse and serving store."""
    return demo.settings.model_copy(
        update={
            "home": tmp_path / "home",
            "warehouse_path": demo.settings.warehouse,
            "serving_path": demo.settings.serving_database,
        }
    )


@pytest.fixture
def store(demo: DemoStore) -> Iterator[sqlite3.Connection]:
    """The serving store itself, to compare answers with."""
    connection = sqlite3.connect(demo.settings.serving_database)
    yield connection
    connection.close()


def _contact_customer(store: sqlite3.Connection) -> tuple[str, str, str]:
    """A customer with phone, e-mail and an identify event carrying them (flagged items)."""
    row = store.execute(
        "SELECT c.customer_id, c.phone, c.email FROM customers c "
        "WHERE c.phone IS NOT NULL AND c.email IS NOT NULL AND EXISTS "
        "(SELECT 1 FROM timeline t WHERE t.customer_id = c.customer_id AND t.contact = 1) "
        "ORDER BY c.customer_id LIMIT 1"
    ).fetchone()
    return str(row[0]), str(row[1]), str(row[2])


def _busiest(store: sqlite3.Connection) -> tuple[str, int]:
    row = store.execute(
        "SELECT customer_id, count(*) FROM timeline GROUP BY 1 ORDER BY 2 DESC LIMIT 1"
    ).fetchone()
    return str(row[0]), int(row[1])


def _views(app: FastAPI, expected: int = 0) -> list[dict[str, Any]]:
    """The ``customer.viewed`` entries, newest first, once ``expected`` are written.

    The audit writer's thread may hold entries it took off the queue a moment ago,
    so this polls for a while (and, expecting none, waits out one write interval).
    """
    state = app.state.perennial
    deadline = time.monotonic() + (5.0 if expected else 0.7)
    while True:
        state.audit.flush()
        with state.engine.connect() as connection:
            views = query_audit(connection, action="customer.viewed")
        if (expected and len(views) >= expected) or time.monotonic() > deadline:
            return views
        time.sleep(0.05)


# --- the 360 ---------------------------------------------------------------------------


@pytest.mark.parametrize("role", list(Role))
def test_every_role_reads_a_360_that_matches_its_declared_model(
    client: TestClient, key_for: KeyFor, store: sqlite3.Connection, role: Role
) -> None:
    customer_id, total = _busiest(store)
    response = client.get(f"/v1/customers/{customer_id}", headers=key_for(role))

    assert response.status_code == 200, response.text
    view = Customer360.model_validate(response.json())
    assert view.customer_id == customer_id and view.model == "seed000"
    assert view.as_of == datetime(2025, 12, 31, 16, tzinfo=UTC)
    assert view.stage.label_zh and view.rfm.code and view.value_tier.key
    assert "recency_days" in view.features and "frequency_orders" in view.features
    assert len(view.timeline.items) == 20 < total and view.timeline.next_cursor
    instants = [item.at for item in view.timeline.items]
    assert instants == sorted(instants, reverse=True)


def test_every_customers_360_and_list_entry_matches_the_declared_models(
    client: TestClient, key_for: KeyFor, store: sqlite3.Connection
) -> None:
    headers = key_for(Role.OPERATOR)
    ids = [row[0] for row in store.execute("SELECT customer_id FROM customers")]
    for customer_id in ids:
        response = client.get(f"/v1/customers/{quote(customer_id, safe='')}", headers=headers)
        assert response.status_code == 200, customer_id
        assert Customer360.model_validate(response.json()).customer_id == customer_id
    listed = client.get("/v1/customers", params={"limit": 200}, headers=headers).json()
    CustomerPage.model_validate(listed)
    assert len(ids) > 200


def test_the_360_shows_the_stage_history_and_since_when(
    client: TestClient, key_for: KeyFor, store: sqlite3.Connection
) -> None:
    customer_id = store.execute(
        "SELECT customer_id FROM transitions GROUP BY customer_id HAVING count(*) >= 2 "
        "ORDER BY customer_id LIMIT 1"
    ).fetchone()[0]
    moves = store.execute(
        "SELECT day, from_stage, to_stage FROM transitions WHERE customer_id = ? ORDER BY day DESC",
        (customer_id,),
    ).fetchall()
    view = Customer360.model_validate(
        client.get(f"/v1/customers/{customer_id}", headers=key_for(Role.VIEWER)).json()
    )
    shown = [
        ((change.day - date(1970, 1, 1)).days, change.from_stage, change.to_stage)
        for change in view.stage_history
    ]
    assert shown == moves
    if view.stage.key == moves[0][2]:
        assert view.stage.since == view.stage_history[0].day
    else:
        assert view.stage.since is None


def test_the_timeline_pages_walk_every_item_once_newest_first(
    client: TestClient, key_for: KeyFor, store: sqlite3.Connection
) -> None:
    customer_id, total = _busiest(store)
    headers = key_for(Role.AGENT)
    seen: list[tuple[datetime, str]] = []
    cursor: str | None = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 7} | ({"cursor": cursor} if cursor else {})
        response = client.get(
            f"/v1/customers/{customer_id}/timeline", params=params, headers=headers
        )
        assert response.status_code == 200, response.text
        page = TimelinePage.model_validate(response.json())
        seen += [(item.at, item.id) for item in page.items]
        pages += 1
        cursor = page.next_cursor
        if cursor is None:
            break

    expected = store.execute(
        "SELECT at, item_key FROM timeline WHERE customer_id = ? ORDER BY at DESC, item_key DESC",
        (customer_id,),
    ).fetchall()
    assert len(seen) == total == len(expected) and len({item_id for _, item_id in seen}) == total
    assert [item_id for _, item_id in seen] == [key[2:] for _, key in expected]
    assert pages == -(-total // 7)


def test_the_360_first_page_continues_in_the_timeline_endpoint(
    client: TestClient, key_for: KeyFor, store: sqlite3.Connection
) -> None:
    customer_id, _ = _busiest(store)
    headers = key_for(Role.OPERATOR)
    view = client.get(f"/v1/customers/{customer_id}", headers=headers).json()
    following = client.get(
        f"/v1/customers/{customer_id}/timeline",
        params={"cursor": view["timeline"]["next_cursor"], "limit": 5},
        headers=headers,
    ).json()
    newest = client.get(
        f"/v1/customers/{customer_id}/timeline", params={"limit": 25}, headers=headers
    ).json()
    assert [i["id"] for i in view["timeline"]["items"] + following["items"]] == [
        i["id"] for i in newest["items"]
    ]


@pytest.mark.parametrize(
    "cursor",
    [
        "not base64 at all!",
        encode_cursor(["x", "y"]),
        encode_cursor([1]),
        encode_cursor([True, "o:1"]),
        encode_cursor([1, 2]),
    ],
)
def test_a_tampered_timeline_cursor_is_a_400_naming_the_cursor(
    client: TestClient, key_for: KeyFor, cursor: str
) -> None:
    response = client.get(
        "/v1/customers/C0000001/timeline", params={"cursor": cursor}, headers=key_for(Role.VIEWER)
    )
    assert response.status_code == 400
    assert response.json()["error"] == {
        "code": "invalid_cursor",
        "message": "the cursor is not one this endpoint issued",
        "field": "cursor",
    }


# --- masking and audit ------------------------------------------------------------------


def _as_agent_holding(app: FastAPI, client: TestClient, customer_id: str, status: str) -> None:
    """Sign ``client`` in as the agent ``agent1``, who has a service task for ``customer_id``."""
    agent = add_account(app, "agent1", Role.AGENT)
    sign_in(client, agent)
    with app.state.perennial.engine.begin() as connection:
        connection.execute(
            SERVICE_TASKS.insert().values(
                task_id="t-1",
                customer_id=customer_id,
                assignee=agent.user_id,
                status=status,
                title="call back",
                created_at=datetime.now(UTC),
            )
        )


def _assert_masked(view: Customer360, phone: str, email: str) -> None:
    assert view.contact.masked
    assert view.contact.phone != phone and "****" in (view.contact.phone or "")
    assert view.contact.email == email[0] + "***@" + email.split("@")[1]
    shown = {identity.value for identity in view.identities}
    assert phone not in shown and email not in shown
    for item in view.timeline.items:
        properties = getattr(item, "properties", None) or {}
        assert properties.get("email", "***") != email


def _all_items(client: TestClient, customer_id: str, headers: dict[str, str]) -> list[Any]:
    response = client.get(
        f"/v1/customers/{customer_id}/timeline", params={"limit": 200}, headers=headers
    )
    return TimelinePage.model_validate(response.json()).items


@pytest.mark.parametrize("role", [Role.AGENT, Role.VIEWER])
def test_agents_and_viewers_see_phone_and_email_masked_and_nothing_is_audited(
    app: FastAPI, client: TestClient, key_for: KeyFor, store: sqlite3.Connection, role: Role
) -> None:
    customer_id, phone, email = _contact_customer(store)
    headers = key_for(role)
    view = Customer360.model_validate(
        client.get(f"/v1/customers/{customer_id}", headers=headers).json()
    )
    _assert_masked(view, phone, email)
    flagged = [
        i for i in _all_items(client, customer_id, headers) if getattr(i, "properties", None)
    ]
    assert any("email" in (i.properties or {}) for i in flagged)
    for item in flagged:
        assert email not in str(item.properties) and phone[3:] not in str(item.properties)
    assert _views(app) == []


@pytest.mark.parametrize("role", [Role.OPERATOR, Role.ADMIN])
def test_operators_and_admins_see_contacts_and_every_view_is_audited(
    app: FastAPI, client: TestClient, key_for: KeyFor, store: sqlite3.Connection, role: Role
) -> None:
    customer_id, phone, email = _contact_customer(store)
    headers = key_for(role)
    view = Customer360.model_validate(
        client.get(f"/v1/customers/{customer_id}", headers=headers).json()
    )
    assert (view.contact.phone, view.contact.email, view.contact.masked) == (phone, email, False)
    assert {"phone", "email"} <= {identity.type for identity in view.identities}
    assert phone in {identity.value for identity in view.identities}
    _all_items(client, customer_id, headers)

    views = _views(app, expected=2)
    assert [(v["subject_id"], v["detail"]["via"]) for v in reversed(views)] == [
        (customer_id, "customer_360"),
        (customer_id, "timeline"),
    ]
    assert all(v["actor"].startswith("key:") and v["subject_type"] == "customer" for v in views)


def test_an_agent_holding_an_open_task_for_the_customer_sees_contacts_and_is_audited(
    app: FastAPI, client: TestClient, store: sqlite3.Connection
) -> None:
    customer_id, phone, email = _contact_customer(store)
    other = store.execute(
        "SELECT customer_id FROM customers WHERE phone IS NOT NULL AND customer_id <> ? LIMIT 1",
        (customer_id,),
    ).fetchone()[0]
    _as_agent_holding(app, client, customer_id, "open")

    held = Customer360.model_validate(client.get(f"/v1/customers/{customer_id}").json())
    not_held = Customer360.model_validate(client.get(f"/v1/customers/{other}").json())

    assert (held.contact.phone, held.contact.email, held.contact.masked) == (phone, email, False)
    assert not_held.contact.masked
    views = _views(app, expected=1)
    assert [(v["actor"], v["subject_id"]) for v in views] == [("user:agent1", customer_id)]


def test_an_agent_whose_task_is_done_sees_contacts_masked_again(
    app: FastAPI, client: TestClient, store: sqlite3.Connection
) -> None:
    customer_id, phone, email = _contact_customer(store)
    _as_agent_holding(app, client, customer_id, "done")
    view = Customer360.model_validate(client.get(f"/v1/customers/{customer_id}").json())
    _assert_masked(view, phone, email)
    assert _views(app) == []


# --- lists ------------------------------------------------------------------------------


def _walk(client: TestClient, headers: dict[str, str], **params: Any) -> list[CustomerListItem]:
    items: list[CustomerListItem] = []
    cursor: str | None = None
    while True:
        query = params | {"limit": 40} | ({"cursor": cursor} if cursor else {})
        response = client.get("/v1/customers", params=query, headers=headers)
        assert response.status_code == 200, response.text
        body = response.json()
        items += [CustomerListItem.model_validate(item) for item in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            return items


def test_the_list_walks_every_customer_once_by_id(
    client: TestClient, key_for: KeyFor, store: sqlite3.Connection
) -> None:
    items = _walk(client, key_for(Role.VIEWER))
    expected = [row[0] for row in store.execute("SELECT customer_id FROM customers ORDER BY 1")]
    assert [item.customer_id for item in items] == expected


@pytest.mark.parametrize(
    ("filters", "where"),
    [
        ({"stage": "churned"}, "stage = 'churned'"),
        ({"rfm_segment": "champions"}, "rfm_segment = 'champions'"),
        ({"tier": "top_10"}, "value_tier = 'top_10'"),
        ({"stage": "growth", "tier": "rest"}, "stage = 'growth' AND value_tier = 'rest'"),
    ],
)
def test_filters_return_exactly_the_matching_customers(
    client: TestClient,
    key_for: KeyFor,
    store: sqlite3.Connection,
    filters: dict[str, str],
    where: str,
) -> None:
    items = _walk(client, key_for(Role.AGENT), **filters)
    expected = [
        row[0]
        for row in store.execute(f"SELECT customer_id FROM customers WHERE {where} ORDER BY 1")
    ]
    assert expected and [item.customer_id for item in items] == expected


@pytest.mark.parametrize(
    ("sort", "column"), [("monetary", "monetary"), ("last_order", "last_order_key")]
)
def test_sorted_lists_go_largest_first_and_page_without_gaps(
    client: TestClient, key_for: KeyFor, store: sqlite3.Connection, sort: str, column: str
) -> None:
    items = _walk(client, key_for(Role.OPERATOR), sort=sort, stage="churned")
    expected = [
        row[0]
        for row in store.execute(
            f"SELECT customer_id FROM customers WHERE stage = 'churned' "
            f"ORDER BY {column} DESC, customer_id DESC"
        )
    ]
    assert [item.customer_id for item in items] == expected
    if sort == "monetary":
        amounts = [item.monetary for item in items]
        assert amounts == sorted(amounts, reverse=True)


def test_lists_mask_contacts_even_for_operators_and_audit_nothing(
    app: FastAPI, client: TestClient, key_for: KeyFor, store: sqlite3.Connection
) -> None:
    items = client.get("/v1/customers", params={"limit": 100}, headers=key_for(Role.OPERATOR))
    phones = {
        row[0] for row in store.execute("SELECT phone FROM customers WHERE phone IS NOT NULL")
    }
    shown = [item["phone"] for item in items.json()["items"] if item["phone"]]
    assert shown and all("****" in phone and phone not in phones for phone in shown)
    assert _views(app) == []


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"stage": "sleepy"}, "query.stage"),
        ({"rfm_segment": "whales"}, "query.rfm_segment"),
        ({"tier": "top_5"}, "query.tier"),
        ({"sort": "name"}, "query.sort"),
        ({"limit": 0}, "query.limit"),
        ({"limit": 201}, "query.limit"),
        ({"stage": "x" * 65}, "query.stage"),
    ],
)
def test_bad_list_parameters_are_a_422_naming_the_parameter(
    client: TestClient, key_for: KeyFor, params: dict[str, Any], field: str
) -> None:
    response = client.get("/v1/customers", params=params, headers=key_for(Role.VIEWER))
    assert response.status_code == 422
    assert response.json()["error"]["field"] == field


def test_a_list_cursor_of_another_sort_is_refused(client: TestClient, key_for: KeyFor) -> None:
    headers = key_for(Role.VIEWER)
    by_id = client.get("/v1/customers", params={"limit": 2}, headers=headers).json()
    response = client.get(
        "/v1/customers",
        params={"sort": "monetary", "cursor": by_id["next_cursor"]},
        headers=headers,
    )
    assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_cursor"


# --- search -----------------------------------------------------------------------------


def _search(client: TestClient, headers: dict[str, str], q: str) -> SearchResults:
    response = client.get("/v1/customers/search", params={"q": q}, headers=headers)
    assert response.status_code == 200, response.text
    return SearchResults.model_validate(response.json())


def test_search_finds_a_customer_by_each_identifier(
    client: TestClient, key_for: KeyFor, store: sqlite3.Connection
) -> None:
    customer_id, phone, email = _contact_customer(store)
    national = phone.removeprefix("+86")
    headers = key_for(Role.AGENT)
    queries = {
        customer_id: "customer_id",
        phone: "phone",
        national: "phone",
        f"+86 {national[:3]}-{national[3:7]}-{national[7:]}": "phone",
        f"0086{national}": "phone",
        email.upper(): "email",
        f"  {email}  ": "email",
        CRM_ID: "external_id",
        f"crm:{CRM_ID}": "external_id",
    }
    for query, kind in queries.items():
        results = _search(client, headers, query)
        expected = CRM_CUSTOMER if kind == "external_id" else customer_id
        assert results.items[0].customer_id == expected, query
        assert kind in results.items[0].matched_on, query


def test_search_by_name_prefix_finds_everyone_with_that_name_start(
    client: TestClient, key_for: KeyFor, store: sqlite3.Connection
) -> None:
    name = store.execute("SELECT name FROM customers WHERE name IS NOT NULL LIMIT 1").fetchone()[0]
    prefix = name[:1]
    expected = {
        row[0]
        for row in store.execute(
            "SELECT customer_id FROM customers WHERE substr(name, 1, 1) = ?", (prefix,)
        )
    }
    results = _search(client, key_for(Role.VIEWER), prefix)
    found = {item.customer_id for item in results.items if "name" in item.matched_on}
    assert found == set(sorted(expected)[:20]) or (found <= expected and len(found) == 20)
    assert all((item.name or "").startswith(prefix) for item in results.items)


def test_search_results_mask_contacts_and_say_nothing_for_no_match(
    client: TestClient, key_for: KeyFor, store: sqlite3.Connection
) -> None:
    customer_id, phone, email = _contact_customer(store)
    hit = _search(client, key_for(Role.OPERATOR), phone).items[0]
    assert hit.customer_id == customer_id and hit.phone != phone and hit.email != email
    assert _search(client, key_for(Role.OPERATOR), "no such person 12345").items == []
    assert _search(client, key_for(Role.OPERATOR), "' OR 1=1 --").items == []
    assert _search(client, key_for(Role.OPERATOR), "   ").items == []


@pytest.mark.parametrize("q", ["", "x" * 257])
def test_an_empty_or_oversized_search_is_a_422(client: TestClient, key_for: KeyFor, q: str) -> None:
    response = client.get("/v1/customers/search", params={"q": q}, headers=key_for(Role.VIEWER))
    assert response.status_code == 422
    assert response.json()["error"]["field"] == "query.q"


# --- ids, access and availability ------------------------------------------------------


def test_a_customer_id_with_slashes_spaces_and_chinese_is_found_percent_encoded(
    client: TestClient, key_for: KeyFor
) -> None:
    path = "/v1/customers/" + quote(TRICKY_ID, safe="")
    response = client.get(path, headers=key_for(Role.VIEWER))
    assert response.status_code == 200, response.text
    assert response.json()["customer_id"] == TRICKY_ID
    timeline = client.get(path + "/timeline", headers=key_for(Role.VIEWER)).json()
    assert [item["id"] for item in timeline["items"]] == ["T2", "T1"]


@pytest.mark.parametrize(
    "path",
    [
        "/v1/customers/..%2F..%2Fetc%2Fpasswd",
        "/v1/customers/%2E%2E%2F%2E%2E%2Fetc%2Fpasswd",
        "/v1/customers/../../etc/passwd",
        "/v1/customers/%E6%97%A0%E6%AD%A4%E4%BA%BA",
        "/v1/customers/C%00001",
        "/v1/customers/%2Fetc%2Fpasswd/timeline",
        "/v1/customers/C0000001%20OR%201%3D1",
    ],
)
def test_traversal_and_unknown_ids_are_a_clean_404(
    client: TestClient, key_for: KeyFor, path: str
) -> None:
    response = client.get(path, headers=key_for(Role.VIEWER))
    assert response.status_code == 404
    assert response.json()["error"]["code"] in {"customer_not_found", "not_found"}


@pytest.mark.parametrize("suffix", ["", "/timeline"])
def test_an_overlong_id_is_a_422_naming_it(
    client: TestClient, key_for: KeyFor, suffix: str
) -> None:
    response = client.get(f"/v1/customers/{'x' * 257}{suffix}", headers=key_for(Role.VIEWER))
    assert response.status_code == 422
    assert response.json()["error"]["field"] == "path.customer_id"


@pytest.mark.parametrize(
    "path", ["/v1/customers", "/v1/customers/C0000001", "/v1/customers/search?q=a"]
)
def test_customers_need_a_caller(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 401


@pytest.mark.parametrize(
    "path",
    [
        "/v1/customers",
        "/v1/customers/C0000001",
        "/v1/customers/C1/timeline",
        "/v1/customers/search?q=a",
    ],
)
def test_without_a_serving_store_customers_answer_503_naming_the_command(
    tmp_path: Path, path: str
) -> None:
    from perennial.access.api_keys import create_api_key
    from perennial.service import create_app

    app = create_app(Settings(home=tmp_path / "empty-home"))
    with TestClient(app) as client:
        with app.state.perennial.engine.begin() as connection:
            token = create_api_key(
                connection, name="t", roles=frozenset({Role.VIEWER}), created_by="tests"
            ).token
        response = client.get(path, headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 503
    assert response.json()["error"] == {
        "code": "serving_unavailable",
        "message": UNAVAILABLE_MESSAGE,
        "field": None,
    }
    assert "perennial serving refresh" in UNAVAILABLE_MESSAGE
    assert str(tmp_path) not in response.text


@pytest.mark.parametrize("customer_id", ["\n", "a\nb", "\r\n", "x\n"])
def test_an_id_with_newlines_is_looked_up_as_it_is_not_cut_short(
    client: TestClient, key_for: KeyFor, customer_id: str
) -> None:
    path = quote(customer_id, safe="")
    for url in (f"/v1/customers/{path}", f"/v1/customers/{path}/timeline"):
        response = client.get(url, headers=key_for(Role.VIEWER))
        assert response.status_code == 404, (url, response.text)
        assert response.json()["error"]["code"] == "customer_not_found"
