"""``/customers/{id}`` over HTTP: the API's 360 and masking, the timeline's pages, hostile data,
and what journeys did to the customer (sends, suppressions with why, failures)."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from perennial.access.audit import query_audit
from perennial.access.masking import mask_email, mask_phone
from perennial.access.roles import Role
from perennial.access.tables import SERVICE_TASKS
from perennial.config import Settings
from perennial.journeys.service import JourneyService
from perennial.journeys.tables import JOURNEY_LOG
from perennial.service import create_app
from perennial.web.customers_page import customer_url
from perennial.web.i18n import LANGUAGE_COOKIE
from tests.segments import conftest as segments_conftest
from tests.segments.conftest import SegmentStore
from tests.serving.demo_store import TRICKY_ID
from tests.web.callers import api_headers, sign_in_as
from tests.web.conftest import PAGE
from tests.web.demo_home import (
    HOSTILE_ATTRIBUTE,
    HOSTILE_EVENT_TYPE,
    HOSTILE_QUERY,
    HOSTILE_REGION,
    SCRIPT_CUSTOMER,
    SCRIPT_EMAIL,
    SCRIPT_NAME,
    SCRIPT_PHONE,
    SQL_CUSTOMER,
    SQL_NAME,
    WebDemo,
)
from tests.web.html_text import PageText
from tests.web.journey_seed import CALL_BACK, EDUCATION, REPLENISHMENT, WIN_BACK, seed_journeys


@pytest.fixture
def store(demo_data: WebDemo) -> Iterator[sqlite3.Connection]:
    connection = sqlite3.connect(demo_data.serving)
    yield connection
    connection.close()


def _busiest(store: sqlite3.Connection) -> tuple[str, str, str, int]:
    """The customer with the longest timeline who has a phone and an e-mail."""
    row = store.execute(
        "SELECT c.customer_id, c.phone, c.email, count(*) FROM customers c JOIN timeline t "
        "USING (customer_id) WHERE c.phone IS NOT NULL AND c.email IS NOT NULL "
        "GROUP BY 1, 2, 3 ORDER BY 4 DESC, 1 LIMIT 1"
    ).fetchone()
    return str(row[0]), str(row[1]), str(row[2]), int(row[3])


def _page(client: TestClient, customer_id: str, **params: str) -> tuple[Any, PageText]:
    response = client.get(customer_url(customer_id), params=params)
    return response, PageText(response.text)


def _views(app: FastAPI, expected: int) -> list[dict[str, Any]]:
    state = app.state.perennial
    deadline = time.monotonic() + (5.0 if expected else 0.7)
    while True:
        state.audit.flush()
        with state.engine.connect() as connection:
            views = query_audit(connection, action="customer.viewed")
        if (expected and len(views) >= expected) or time.monotonic() > deadline:
            return views
        time.sleep(0.05)


def test_the_page_shows_the_apis_360_for_an_operator_unmasked_and_audited(
    demo_client: TestClient, demo_app: FastAPI, store: sqlite3.Connection
) -> None:
    customer_id, phone, email, _ = _busiest(store)
    sign_in_as(demo_client, demo_app, Role.OPERATOR, "ops")
    response, page = _page(demo_client, customer_id)
    assert response.status_code == 200
    api = demo_client.get(
        f"/v1/customers/{customer_id}", headers=api_headers(demo_app, Role.OPERATOR)
    ).json()
    assert page.text("customer-name") == api["name"]
    assert page.text("customer-id") == customer_id
    assert page.text("customer-phone") == phone and page.text("customer-email") == email
    assert "masked" not in page.texts
    assert page.text("customer-stage") == api["stage"]["label_zh"]
    assert page.text("customer-segment") == api["rfm"]["segment_label_zh"]
    assert api["rfm"]["code"] in page.text("lifecycle")
    assert "累计消费" in page.text("key-facts") and "订单数" in page.text("key-facts")
    views = _views(demo_app, 1)
    assert {(v["actor"], v["subject_id"]) for v in views} >= {("user:ops", customer_id)}


def test_an_agent_sees_phone_and_email_masked_exactly_as_the_api_masks_them(
    demo_client: TestClient, demo_app: FastAPI, store: sqlite3.Connection
) -> None:
    customer_id, phone, email, _ = _busiest(store)
    sign_in_as(demo_client, demo_app, Role.AGENT, "agent")
    _, page = _page(demo_client, customer_id)
    assert page.text("customer-phone") == mask_phone(phone)
    assert page.text("customer-email") == mask_email(email)
    assert page.text("masked") == "已脱敏"
    identities = page.text("identities")
    assert phone not in identities and email not in identities
    assert mask_phone(phone) in identities
    api = demo_client.get(f"/v1/customers/{customer_id}", headers=api_headers(demo_app, Role.AGENT))
    assert api.json()["contact"] == {
        "phone": page.text("customer-phone"),
        "email": page.text("customer-email"),
        "masked": True,
    }
    assert _views(demo_app, 0) == []


def test_an_agent_holding_the_customers_open_task_sees_them_unmasked(
    demo_client: TestClient, demo_app: FastAPI, store: sqlite3.Connection
) -> None:
    customer_id, phone, _, _ = _busiest(store)
    agent = sign_in_as(demo_client, demo_app, Role.AGENT, "agent")
    with demo_app.state.perennial.engine.begin() as connection:
        connection.execute(
            SERVICE_TASKS.insert().values(
                task_id="t-web-1",
                customer_id=customer_id,
                assignee=agent.user_id,
                status="open",
                title="call back within 24 h",
                created_at=datetime.now(UTC),
            )
        )
    _, page = _page(demo_client, customer_id)
    assert page.text("customer-phone") == phone
    other_id = store.execute(
        "SELECT customer_id FROM customers WHERE phone IS NOT NULL AND customer_id <> ? LIMIT 1",
        (customer_id,),
    ).fetchone()[0]
    assert "masked" in _page(demo_client, other_id)[1].texts


def test_a_viewer_also_sees_masked_contacts(
    demo_client: TestClient, demo_app: FastAPI, store: sqlite3.Connection
) -> None:
    customer_id, phone, _, _ = _busiest(store)
    sign_in_as(demo_client, demo_app, Role.VIEWER)
    response, page = _page(demo_client, customer_id)
    assert page.text("customer-phone") == mask_phone(phone)
    assert phone not in response.text


def test_the_timeline_pages_newest_first_with_more_links_and_fragments(
    demo_client: TestClient, demo_app: FastAPI, store: sqlite3.Connection
) -> None:
    customer_id, _, _, total = _busiest(store)
    sign_in_as(demo_client, demo_app, Role.OPERATOR)
    _, first = _page(demo_client, customer_id)
    times = [a["datetime"] for a in first.attributes if a.get("datetime")]
    assert len(times) == 20 and times == sorted(times, reverse=True)
    more = [link for link in first.links if "cursor=" in link]
    assert len(more) == 1
    cursor = parse_qs(urlsplit(more[0]).query)["cursor"][0]

    fragment = demo_client.get(
        customer_url(customer_id), params={"cursor": cursor, "part": "timeline"}
    )
    assert fragment.status_code == 200
    assert "<html" not in fragment.text and "data-timeline-item" in fragment.text
    following = [a["datetime"] for a in PageText(fragment.text).attributes if a.get("datetime")]
    assert following and following[0] <= times[-1]
    assert following == sorted(following, reverse=True)

    seen = len(times)
    next_cursor: str | None = cursor
    while next_cursor:
        part = demo_client.get(
            customer_url(customer_id), params={"cursor": next_cursor, "part": "timeline"}
        )
        text = PageText(part.text)
        seen += sum(1 for a in text.attributes if a.get("datetime"))
        links = [link for link in text.links if "cursor=" in link]
        next_cursor = parse_qs(urlsplit(links[0]).query)["cursor"][0] if links else None
    assert seen == total

    whole, older = _page(demo_client, customer_id, cursor=cursor)
    assert whole.status_code == 200 and "customer-name" in older.texts
    assert [a["datetime"] for a in older.attributes if a.get("datetime")][:3] == following[:3]


@pytest.mark.parametrize("cursor", ["zzz", "W10", "' OR 1=1 --", "x" * 600])
def test_a_forged_cursor_shows_the_newest_items_with_a_note_or_a_400_fragment(
    demo_client: TestClient, demo_app: FastAPI, store: sqlite3.Connection, cursor: str
) -> None:
    customer_id, _, _, _ = _busiest(store)
    sign_in_as(demo_client, demo_app, Role.VIEWER)
    response, page = _page(demo_client, customer_id, cursor=cursor)
    assert response.status_code == 200
    assert "已失效" in page.text("customer-error")
    part = demo_client.get(customer_url(customer_id), params={"cursor": cursor, "part": "timeline"})
    assert part.status_code == 400


def test_an_unknown_customer_gets_a_friendly_404_page_with_a_search_box(
    demo_client: TestClient, demo_app: FastAPI
) -> None:
    sign_in_as(demo_client, demo_app, Role.AGENT)
    missing = "<script>alert('x')</script>../../etc/passwd"
    response, page = _page(demo_client, missing)
    assert response.status_code == 404
    assert missing in page.text("missing-text")
    assert "<script>alert('x')" not in response.text
    assert 'action="/customers"' in response.text
    part = demo_client.get(customer_url(missing), params={"cursor": "W10", "part": "timeline"})
    assert part.status_code in (400, 404)


def test_ids_with_slashes_and_url_delimiters_open_their_own_page(
    demo_client: TestClient, demo_app: FastAPI
) -> None:
    sign_in_as(demo_client, demo_app, Role.VIEWER)
    response, page = _page(demo_client, TRICKY_ID)
    assert response.status_code == 200
    assert page.text("customer-id") == TRICKY_ID
    assert demo_client.get("/customers/").headers["location"] == "/customers"


def test_hostile_names_and_attributes_are_shown_as_text_never_as_markup(
    demo_client: TestClient, demo_app: FastAPI
) -> None:
    sign_in_as(demo_client, demo_app, Role.OPERATOR)
    response, page = _page(demo_client, SCRIPT_CUSTOMER)
    assert response.status_code == 200
    assert page.text("customer-name") == SCRIPT_NAME
    assert page.text("customer-id") == SCRIPT_CUSTOMER
    assert page.text("customer-phone") == SCRIPT_PHONE
    assert page.text("customer-email") == SCRIPT_EMAIL
    details = page.text("details")
    assert HOSTILE_REGION in details and HOSTILE_ATTRIBUTE in details
    assert HOSTILE_QUERY in page.text("timeline")
    for raw in (SCRIPT_NAME, HOSTILE_ATTRIBUTE, HOSTILE_QUERY, "<b>1</b>", "onerror=alert(2)>"):
        assert raw not in response.text
    assert page.inline_scripts == []
    assert not any(name.startswith("on") for a in page.attributes for name in a)

    sql_response, sql_page = _page(demo_client, SQL_CUSTOMER)
    assert sql_page.text("customer-name") == SQL_NAME
    assert HOSTILE_EVENT_TYPE in sql_page.text("timeline")
    assert "<img" not in sql_response.text


def test_the_360_speaks_english_with_english_labels(
    demo_client: TestClient, demo_app: FastAPI, store: sqlite3.Connection
) -> None:
    customer_id, _, _, _ = _busiest(store)
    sign_in_as(demo_client, demo_app, Role.OPERATOR)
    demo_client.cookies.set(LANGUAGE_COOKIE, "en")
    response, page = _page(demo_client, customer_id)
    assert "Total spend" in page.text("key-facts")
    assert "Orders and events (newest first)" in response.text
    stage = page.text("customer-stage")
    assert stage in {"Introduction", "Growth", "Mature", "Dormant", "Churned"}


def test_strangers_are_sent_to_sign_in_and_come_back_to_the_customer(
    demo_client: TestClient,
) -> None:
    response = demo_client.get(customer_url(TRICKY_ID))
    assert response.status_code == 303
    location = urlsplit(response.headers["location"])
    assert location.path == "/login"
    assert parse_qs(location.query)["next"] == [customer_url(TRICKY_ID)]


# --- the journeys section, on journeys that ran (tests/web/journey_seed.py) ---

segment_store = segments_conftest.segment_store


@pytest.fixture(scope="module")
def journeys_settings(
    segment_store: SegmentStore, tmp_path_factory: pytest.TempPathFactory
) -> Settings:
    return seed_journeys(segment_store, tmp_path_factory.mktemp("360-journeys") / "home")


@pytest.fixture
def journeys_app(journeys_settings: Settings) -> FastAPI:
    return create_app(journeys_settings)


@pytest.fixture
def journeys_client(journeys_app: FastAPI) -> Iterator[TestClient]:
    with TestClient(journeys_app, follow_redirects=False, headers=PAGE) as client:
        yield client


def _entries(page: PageText) -> list[dict[str, str | None]]:
    return [a for a in page.attributes if a.get("data-testid") == "customer-journey-entry"]


def _win_back_customer(service: JourneyService, *, failed: bool) -> str:
    """A customer whose win-back run failed at the empty coupon pool (or one who got a coupon)."""
    runs = service.runs(WIN_BACK, status="failed" if failed else "waiting", limit=1000)
    return sorted(run.customer_id for run in runs)[0]


def test_the_360_lists_journey_sends_suppressions_and_failures_newest_first(
    journeys_client: TestClient, journeys_app: FastAPI, journeys_settings: Settings
) -> None:
    service = JourneyService(journeys_settings)
    coupon_holder = _win_back_customer(service, failed=False)
    failed = _win_back_customer(service, failed=True)
    sign_in_as(journeys_client, journeys_app, Role.VIEWER, "journeys-viewer")

    _, page = _page(journeys_client, coupon_holder)
    entries = _entries(page)
    timeline = service.timeline(coupon_holder)
    assert [e["data-what"] for e in entries] == [item["what"] for item in timeline]
    assert [e["data-journey"] for e in entries] == [item["journey"] for item in timeline]
    times = [a["datetime"] for a in page.attributes if a.get("datetime")]
    journey_times = times[-len(entries) :]
    assert journey_times == sorted(journey_times, reverse=True)
    sent = [e for e in entries if e["data-what"] == "sent"]
    assert sent and {(e["data-step"], e["data-channel"]) for e in sent} >= {("send_coupon", "sms")}
    assert "短信" in page.text("customer-journeys") and WIN_BACK in page.text("customer-journeys")
    coupon = next(e for e in entries if e["data-what"] == "coupon")
    assert coupon["data-step"] == "coupon" and coupon["data-channel"] == ""

    _, failed_page = _page(journeys_client, failed)
    what = [e["data-what"] for e in _entries(failed_page)]
    assert what[0] == "failed" and "entered" in what
    section = failed_page.text("customer-journeys")
    assert "运行失败" in section and "coupon pool 'win-back-15' is empty" in section
    service.operational.dispose()


def test_a_suppressed_message_shows_its_channel_and_reason_in_words(
    journeys_client: TestClient, journeys_app: FastAPI, journeys_settings: Settings
) -> None:
    service = JourneyService(journeys_settings)
    suppressed = [
        send
        for send in service.sends(WIN_BACK, status="suppressed", limit=1000)
        if send.reason == "unsubscribed"
    ]
    customer = suppressed[0].customer_id
    sign_in_as(journeys_client, journeys_app, Role.AGENT, "journeys-agent")
    journeys_client.cookies.set(LANGUAGE_COOKIE, "en")

    _, page = _page(journeys_client, customer)

    # The customer may also have suppressions of other journeys at the same instant, in
    # either order: look at this journey's.
    rows = [
        e
        for e in _entries(page)
        if e["data-what"] == "suppressed" and e["data-journey"] == WIN_BACK
    ]
    assert rows and rows[0]["data-channel"] == "email"  # from the send step: the log has none
    assert {row["data-step"] for row in rows} == {
        send.step
        for send in service.sends(WIN_BACK, status="suppressed", limit=1000)
        if send.customer_id == customer
    }
    assert "Unsubscribed" in page.texts["customer-journey-detail"]
    assert "Suppressed" in page.text("customer-journeys")
    service.operational.dispose()


def test_an_error_quoting_contacts_is_masked_for_agents_and_whole_for_operators(
    journeys_client: TestClient, journeys_app: FastAPI, journeys_settings: Settings
) -> None:
    service = JourneyService(journeys_settings)
    customer = _win_back_customer(service, failed=False)
    error = "550 5.1.1 <chen.jing@example.com>: no such mailbox; also tried +8613912345678"
    with service.operational.begin() as connection:
        connection.execute(
            JOURNEY_LOG.insert().values(
                journey=WIN_BACK,
                version=1,
                run_id="r-dead-1",
                customer_id=customer,
                step="survey",
                what="dead",
                at=datetime(2026, 1, 20, tzinfo=UTC),
                detail=error,
            )
        )
    service.operational.dispose()
    shown = {}
    for role in (Role.AGENT, Role.OPERATOR):
        journeys_client.cookies.clear()
        sign_in_as(journeys_client, journeys_app, role, f"dead-{role.value}")
        _, page = _page(journeys_client, customer)
        first = _entries(page)[0]
        assert (first["data-what"], first["data-channel"]) == ("dead", "email")
        shown[role] = page.texts["customer-journey-detail"][0]
    assert shown[Role.AGENT] == (
        "550 5.1.1 <c***@example.com>: no such mailbox; also tried +86139****5678"
    )
    assert "chen.jing@example.com" not in shown[Role.AGENT]
    assert shown[Role.OPERATOR] == error


def test_a_customer_no_journey_touched_says_so(
    journeys_client: TestClient, journeys_app: FastAPI, journeys_settings: Settings
) -> None:
    service = JourneyService(journeys_settings)
    touched = {
        run.customer_id
        for name in (WIN_BACK, EDUCATION, CALL_BACK, REPLENISHMENT)
        for run in service.runs(name, limit=1000)
    }
    service.operational.dispose()
    untouched = next(f"C{n:07d}" for n in range(1, 250) if f"C{n:07d}" not in touched)
    sign_in_as(journeys_client, journeys_app, Role.OPERATOR, "journeys-operator")

    response, page = _page(journeys_client, untouched)

    assert response.status_code == 200
    assert page.text("no-journeys") == "还没有进入过任何旅程。"
    assert _entries(page) == []
