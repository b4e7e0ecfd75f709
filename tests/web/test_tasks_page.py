"""The tasks page (任务): an agent's queue with masked customer cards and the outcome form;
the managers' SLA view; and in Chromium, an agent closing a call-back with its outcome."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from fastapi.testclient import TestClient
from playwright.sync_api import Page, expect

from perennial.access.masking import mask_phone
from perennial.access.roles import Role
from perennial.access.users import create_user
from perennial.store.operational import create_engine_for
from perennial.tasks.breaches import breach_alerts
from perennial.tasks.creation import NewTask, create_task
from perennial.tasks.records import Task
from perennial.tasks.teams import add_member
from perennial.web.i18n import LANGUAGE_COOKIE
from tests.api.accounts import add_account
from tests.web.browsing import Watch, read_api, sign_in
from tests.web.callers import sign_in_as
from tests.web.conftest import screenshot
from tests.web.demo_home import WebDemo
from tests.web.html_text import PageText
from tests.web.live_server import Account, LiveServer


@pytest.fixture
def customers(demo_data: WebDemo) -> Iterator[list[tuple[str, str]]]:
    """(customer id, phone) of demo customers with a phone."""
    connection = sqlite3.connect(demo_data.serving)
    rows = connection.execute(
        "SELECT customer_id, phone FROM customers WHERE phone IS NOT NULL "
        "AND customer_id LIKE 'C%' ORDER BY customer_id LIMIT 3"
    ).fetchall()
    connection.close()
    yield [(str(customer), str(phone)) for customer, phone in rows]


def _task(engine: sa.Engine, customer: str, team: str, due_in: timedelta, **extra: str) -> Task:
    now = datetime.now(UTC)
    new = NewTask(customer, f"回访 {customer}", team, due_at=now + due_in, **extra)
    with engine.begin() as connection:
        return create_task(connection, new, now=now)


def _join(engine: sa.Engine, team: str, user_id: str) -> None:
    with engine.begin() as connection:
        add_member(connection, team, user_id, actor="tests", now=datetime.now(UTC))


def test_an_agent_sees_their_queue_overdue_first_with_masked_customer_cards(
    demo_client: TestClient, demo_app: FastAPI, customers: list[tuple[str, str]]
) -> None:
    engine = demo_app.state.perennial.engine
    agent = sign_in_as(demo_client, demo_app, Role.AGENT, "ann")
    _join(engine, "gold", agent.user_id)
    (first, phone), (second, _), (third, _) = customers
    later = _task(engine, first, "gold", timedelta(hours=5), priority="low")
    overdue = _task(engine, second, "gold", timedelta(hours=-1), priority="urgent")
    unassigned = _task(engine, first, "silver", timedelta(hours=2))
    _join(engine, "silver", agent.user_id)  # joined after: that task waits unassigned
    elsewhere = _task(engine, third, "blue", timedelta(hours=1))
    response = demo_client.get("/tasks")
    assert response.status_code == 200
    page = PageText(response.text)
    listed = [a["data-task-id"] for a in page.attributes if a.get("data-testid") == "task"]
    assert listed == [overdue.task_id, unassigned.task_id, later.task_id]
    assert elsewhere.task_id not in response.text
    assert page.texts["task-overdue"] == ["已逾期"]
    assert mask_phone(phone) in page.texts["task-customer-phone"]
    assert phone not in response.text
    assert len(page.texts["masked"]) == 3
    assert len(page.texts["task-claim"]) == 1  # only the unassigned one
    assert len(page.texts["task-close-form"]) == 3
    assert "task-sla" not in page.texts  # managers only
    assert f"/customers/{first}" in page.links
    assert "/tasks" in page.links  # the navigation offers the page


def test_a_viewer_is_refused_and_not_offered_the_page(
    demo_client: TestClient, demo_app: FastAPI
) -> None:
    sign_in_as(demo_client, demo_app, Role.VIEWER, "vic")
    assert demo_client.get("/tasks").status_code == 403
    assert "/tasks" not in PageText(demo_client.get("/board").text).links


def test_a_manager_sees_the_sla_per_team_the_breaches_and_every_open_task(
    demo_client: TestClient, demo_app: FastAPI, customers: list[tuple[str, str]]
) -> None:
    engine = demo_app.state.perennial.engine
    agent = add_account(demo_app, "ann", Role.AGENT)
    _join(engine, "gold", agent.user_id)
    (first, _), (second, _), _ = customers
    late = _task(engine, first, "gold", timedelta(minutes=-30))
    _task(engine, second, "gold", timedelta(hours=3))
    with engine.begin() as connection:
        breach_alerts(connection, datetime.now(UTC))
    sign_in_as(demo_client, demo_app, Role.OPERATOR, "olga")
    demo_client.cookies.set(LANGUAGE_COOKIE, "en")
    response = demo_client.get("/tasks")
    page = PageText(response.text)
    assert page.text("sla-open") == "2" and page.text("sla-overdue") == "1"
    assert page.text("sla-breach-rate") == "100.0%"
    assert [a["data-task-id"] for a in page.attributes if a.get("data-testid") == "breach"] == [
        late.task_id
    ]
    assert len(page.texts["other-task"]) == 2  # ann's, not in the operator's own queue
    assert page.text("queue-empty") == "Nothing in your queue."


def test_without_customer_data_the_queue_still_shows_its_tasks(
    client: TestClient, app: FastAPI
) -> None:
    engine = app.state.perennial.engine
    agent = sign_in_as(client, app, Role.AGENT, "ann")
    _join(engine, "gold", agent.user_id)
    task = _task(engine, "C404", "gold", timedelta(hours=1))
    page = PageText(client.get("/tasks").text)
    assert task.task_id in str(page.attributes)
    assert "C404" in page.text("task-no-card")


@pytest.mark.integration
def test_an_agent_closes_a_call_back_in_the_browser_and_the_api_reports_the_outcome(
    demo_page: Page, demo_server: LiveServer, demo_data: WebDemo
) -> None:
    connection = sqlite3.connect(demo_data.serving)
    customer, phone = connection.execute(
        "SELECT customer_id, phone FROM customers WHERE phone IS NOT NULL AND name IS NOT NULL "
        "ORDER BY customer_id LIMIT 1"
    ).fetchone()
    connection.close()
    engine = create_engine_for(demo_server.settings)
    try:
        with engine.begin() as transaction:
            created = create_user(
                transaction,
                username="callback.agent",
                roles=frozenset({Role.AGENT}),
                actor="tests",
                display_name="金牌客服小刘",
            )
        assert created.password is not None
        account = Account("callback.agent", created.password, "金牌客服小刘")
        _join(engine, "browser-gold", created.user.user_id)
        task = _task(engine, customer, "browser-gold", timedelta(hours=24), priority="urgent")
    finally:
        engine.dispose()
    assert task.assignee == created.user.user_id

    page = demo_page
    watch = Watch().attach(page)
    sign_in(page, account, "/tasks")
    expect(page.locator("html")).to_have_attribute("data-tasks-ready", "true")
    item = page.locator(f'[data-testid="task"][data-task-id="{task.task_id}"]')
    expect(item.get_by_test_id("task-title")).to_have_text(f"回访 {customer}")
    expect(item.get_by_test_id("task-priority")).to_have_text("紧急")
    expect(item.get_by_test_id("task-customer-phone")).to_have_text(mask_phone(phone))
    expect(item.get_by_test_id("masked")).to_be_visible()
    assert phone not in page.content()

    item.get_by_test_id("task-outcome").select_option("declined")
    item.get_by_test_id("task-close").click()
    expect(item.get_by_test_id("task-error")).to_contain_text("notes")
    item.get_by_test_id("task-outcome").select_option("won_back")
    item.get_by_test_id("task-notes").fill("客户同意续费，已发优惠券")
    item.get_by_test_id("task-close").click()
    expect(item.get_by_test_id("task-closed")).to_have_text("已关闭：已挽回")
    expect(item.get_by_test_id("task-status")).to_have_text("已关闭")
    expect(item.get_by_test_id("task-close-form")).to_have_count(0)
    screenshot(page, "tasks-closed")

    answer = read_api(demo_server, f"/v1/tasks/{task.task_id}", Role.OPERATOR)
    assert (answer["status"], answer["outcome"], answer["assignee"]) == (
        "closed",
        "won_back",
        "callback.agent",
    )
    assert answer["notes"] == "客户同意续费，已发优惠券"
    page.reload()
    expect(page.locator(f'[data-task-id="{task.task_id}"]')).to_have_count(0)
    assert watch.dialogs == []
    assert [problem for problem in watch.problems if "422" not in problem] == []  # declined
