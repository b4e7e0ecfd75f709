"""``/customers`` over HTTP: search (one exact hit opens the 360), filters, pages, bad input."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from typing import Any
from urllib.parse import unquote

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from perennial.access.masking import mask_email, mask_phone
from perennial.access.roles import Role
from perennial.api.customer_views import SearchHitView
from perennial.web.customers_page import PAGE_SIZE, customer_url, is_exact
from perennial.web.i18n import LANGUAGE_COOKIE
from tests.serving.demo_store import CRM_CUSTOMER, CRM_ID, TRICKY_ID
from tests.web.callers import api_headers, sign_in_as
from tests.web.demo_home import SCRIPT_CUSTOMER, SCRIPT_NAME, SQL_CUSTOMER, SQL_NAME, WebDemo
from tests.web.html_text import PageText


@pytest.fixture
def store(demo_data: WebDemo) -> Iterator[sqlite3.Connection]:
    connection = sqlite3.connect(demo_data.serving)
    yield connection
    connection.close()


@pytest.fixture
def operator(demo_client: TestClient, demo_app: FastAPI) -> None:
    sign_in_as(demo_client, demo_app, Role.OPERATOR)


def _listed(page: PageText) -> list[str]:
    """Customer ids of the table's rows, in order."""
    return [str(a["data-customer"]) for a in page.attributes if "data-customer" in a]


def _get(client: TestClient, **params: str) -> tuple[Any, PageText]:
    response = client.get("/customers", params=params)
    return response, PageText(response.text)


def _api_ids(client: TestClient, app: FastAPI, **params: str) -> list[str]:
    response = client.get("/v1/customers", params=params, headers=api_headers(app))
    assert response.status_code == 200, response.text
    return [item["customer_id"] for item in response.json()["items"]]


@pytest.mark.usefixtures("operator")
def test_the_list_pages_through_every_customer_fifty_at_a_time(
    demo_client: TestClient, store: sqlite3.Connection
) -> None:
    every = [row[0] for row in store.execute("SELECT customer_id FROM customers ORDER BY 1")]
    seen: list[str] = []
    response, page = _get(demo_client)
    while True:
        assert response.status_code == 200
        rows = _listed(page)
        assert 0 < len(rows) <= PAGE_SIZE
        seen += rows
        following = [link for link in page.links if "cursor=" in link]
        if not following:
            break
        assert "first-page" in page.texts or len(seen) == len(rows)
        response = demo_client.get(following[0])
        page = PageText(response.text)
    assert seen == every


@pytest.mark.usefixtures("operator")
@pytest.mark.parametrize(
    "params",
    [
        {"stage": "mature"},
        {"stage": "churned", "sort": "monetary"},
        {"rfm_segment": "champions", "tier": "top_10"},
        {"tier": "rest", "sort": "last_order"},
        {"rfm_segment": "no_orders"},
    ],
)
def test_filters_and_sorts_list_what_the_api_lists(
    demo_client: TestClient, demo_app: FastAPI, params: dict[str, str]
) -> None:
    response, page = _get(demo_client, **params)
    assert response.status_code == 200
    api = _api_ids(demo_client, demo_app, **params, limit=str(PAGE_SIZE))
    assert _listed(page) == api and api
    selected = [a.get("value") for a in page.attributes if "selected" in a]
    assert set(params.values()) <= set(selected)


@pytest.mark.usefixtures("operator")
def test_a_stage_filter_shows_only_that_stage_with_its_label(demo_client: TestClient) -> None:
    _, page = _get(demo_client, stage="dormant")
    rows = page.texts["customer-list"][0]
    assert rows.count("休眠期") == len(_listed(page)) > 0
    assert "流失期" not in rows


@pytest.mark.usefixtures("operator")
def test_lists_always_mask_contact_details_even_for_operators(
    demo_client: TestClient, store: sqlite3.Connection
) -> None:
    response, page = _get(demo_client)
    first = _listed(page)[:10]
    for customer_id in first:
        phone, email = store.execute(
            "SELECT phone, email FROM customers WHERE customer_id = ?", (customer_id,)
        ).fetchone()
        if phone:
            assert phone not in response.text and mask_phone(phone) in page.texts["list-phone"]
        if email:
            assert email not in response.text and mask_email(email) in page.texts["list-email"]


@pytest.mark.usefixtures("operator")
@pytest.mark.parametrize(
    ("params", "shown"),
    [
        ({"stage": "vip"}, "vip"),
        ({"rfm_segment": "<script>x</script>"}, "<script>x</script>"),
        ({"tier": "top_2"}, "top_2"),
        ({"sort": "name; DROP TABLE customers"}, "name; DROP TABLE customers"),
    ],
)
def test_an_unknown_filter_is_explained_without_a_list(
    demo_client: TestClient, params: dict[str, str], shown: str
) -> None:
    response, page = _get(demo_client, **params)
    assert response.status_code == 422
    assert shown in page.text("customers-error")
    assert _listed(page) == []
    assert "<script>x" not in response.text


@pytest.mark.usefixtures("operator")
@pytest.mark.parametrize("cursor", ["zzz", "WzEsMiwzXQ", "' OR 1=1 --"])
def test_a_forged_cursor_is_explained(demo_client: TestClient, cursor: str) -> None:
    response, page = _get(demo_client, cursor=cursor)
    assert response.status_code == 422
    assert "第一页" in page.text("customers-error")


@pytest.mark.usefixtures("operator")
@pytest.mark.parametrize(
    "query",
    ["138 0000 1111", "+86 138-0000-1111", "0086 13800001111", "HOSTILE.user@Example.com "],
)
def test_one_exact_hit_by_phone_or_email_opens_the_360(demo_client: TestClient, query: str) -> None:
    response = demo_client.get("/customers", params={"q": query})
    assert response.status_code == 303
    assert response.headers["location"] == customer_url(SCRIPT_CUSTOMER)


@pytest.mark.usefixtures("operator")
@pytest.mark.parametrize(
    ("query", "customer_id"),
    [(TRICKY_ID, TRICKY_ID), (CRM_ID, CRM_CUSTOMER), (f"crm:{CRM_ID}", CRM_CUSTOMER)],
)
def test_ids_and_external_ids_open_the_360(
    demo_client: TestClient, query: str, customer_id: str
) -> None:
    response = demo_client.get("/customers", params={"q": query})
    assert response.status_code == 303
    assert unquote(response.headers["location"]) == f"/customers/{customer_id}"
    assert demo_client.get(response.headers["location"]).status_code == 200


@pytest.mark.usefixtures("operator")
def test_a_name_prefix_lists_the_matches_with_what_they_matched_on(
    demo_client: TestClient, demo_app: FastAPI, store: sqlite3.Connection
) -> None:
    surname = store.execute(
        "SELECT substr(name, 1, 1), count(*) FROM customers WHERE name IS NOT NULL "
        "GROUP BY 1 HAVING count(*) > 1 ORDER BY 2 DESC LIMIT 1"
    ).fetchone()[0]
    response, page = _get(demo_client, q=surname)
    assert response.status_code == 200
    api = demo_client.get(
        "/v1/customers/search", params={"q": surname}, headers=api_headers(demo_app)
    )
    assert _listed(page) == [item["customer_id"] for item in api.json()["items"]]
    assert len(_listed(page)) > 1
    assert "姓名" in page.texts["customer-list"][0]


@pytest.mark.usefixtures("operator")
@pytest.mark.parametrize(
    ("query", "customer_id", "name"),
    [(SCRIPT_NAME, SCRIPT_CUSTOMER, SCRIPT_NAME), ("'; DROP", SQL_CUSTOMER, SQL_NAME)],
)
def test_injection_strings_are_searched_as_text_and_shown_as_text(
    demo_client: TestClient, store: sqlite3.Connection, query: str, customer_id: str, name: str
) -> None:
    response = demo_client.get("/customers", params={"q": query})
    if response.status_code == 303:  # the whole name: straight to the 360
        assert response.headers["location"] == customer_url(customer_id)
        response = demo_client.get(response.headers["location"])
    page = PageText(response.text)
    assert name in response.text.replace("&lt;", "<").replace("&gt;", ">").replace("&#39;", "'")
    assert "<script>alert(1)" not in response.text
    assert page.inline_scripts == []
    assert store.execute("SELECT count(*) FROM customers").fetchone()[0] > 250  # still there


@pytest.mark.usefixtures("operator")
def test_searching_for_nobody_says_so_and_an_overlong_query_is_refused(
    demo_client: TestClient,
) -> None:
    response, page = _get(demo_client, q="no such person anywhere")
    assert response.status_code == 200 and _listed(page) == []
    assert page.text("no-customers") == "没有符合条件的客户。"
    long_response, long_page = _get(demo_client, q="x" * 300)
    assert long_response.status_code == 422
    assert "256" in long_page.text("customers-error")
    assert _get(demo_client, q="   ")[0].status_code == 200  # blank: the list


def test_exact_means_an_identifier_or_the_whole_name() -> None:
    def hit(name: str, *matched_on: str) -> SearchHitView:
        return SearchHitView(
            customer_id="c",
            name=name,
            stage=None,
            stage_label_en=None,
            stage_label_zh=None,
            rfm_segment=None,
            value_tier=None,
            monetary=0.0,
            last_order_at=None,
            phone=None,
            email=None,
            matched_on=list(matched_on),
        )

    assert is_exact(hit("王芳", "phone"), "138")
    assert is_exact(hit("Alice Wong", "name"), " alice wong ")
    assert not is_exact(hit("Alice Wong", "name"), "alice")


def test_the_list_speaks_english(demo_client: TestClient, demo_app: FastAPI) -> None:
    sign_in_as(demo_client, demo_app, Role.AGENT)
    demo_client.cookies.set(LANGUAGE_COOKIE, "en")
    response, page = _get(demo_client, sort="monetary")
    assert "Find a customer" in response.text and "Next page" in response.text
    assert "Total spend" in page.texts["customer-list"][0]
    assert "累计" not in response.text


def test_strangers_are_sent_to_sign_in(demo_client: TestClient) -> None:
    response = demo_client.get("/customers?q=138")
    assert response.status_code == 303
    assert response.headers["location"].startswith("/login?next=")
