"""``/v1/tasks``: roles, the agent's scope, transitions and their errors, paging, teams, SLA."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from perennial.access.audit import query_audit
from perennial.access.roles import Role
from perennial.config import Settings
from perennial.tasks.breaches import breach_alerts
from tests.api.accounts import Account, add_account, sign_in
from tests.api.conftest import KeyFor

TASK = {"customer_id": "C0000001", "team": "gold", "title": "回访", "priority": "urgent"}


@pytest.fixture
def settings(tmp_path: Any) -> Settings:
    return Settings(home=tmp_path / "home", ingest_drain_seconds=0)


def _session(app: FastAPI, account: Account) -> TestClient:
    client = TestClient(app)
    client.__enter__()
    client.headers["X-CSRF-Token"] = sign_in(client, account)
    return client


def _team(client: TestClient, admin: dict[str, str], team: str, *accounts: Account) -> None:
    for account in accounts:
        answer = client.put(f"/v1/tasks/teams/{team}/members/{account.user_id}", headers=admin)
        assert answer.status_code == 200, answer.text


def test_an_operator_creates_tasks_that_go_round_robin(
    app: FastAPI, client: TestClient, key_for: KeyFor
) -> None:
    admin, operator = key_for(Role.ADMIN), key_for(Role.OPERATOR)
    agents = [add_account(app, name, Role.AGENT) for name in ("ann", "bob")]
    _team(client, admin, "gold", *agents)
    made = [client.post("/v1/tasks", json=TASK, headers=operator) for _ in range(3)]
    assert [answer.status_code for answer in made] == [201, 201, 201]
    assert [answer.json()["assignee"] for answer in made] == ["ann", "bob", "ann"]
    first = made[0].json()
    assert (first["status"], first["priority"], first["overdue"]) == ("open", "urgent", False)
    assert first["source"].startswith("api:key:")
    due = first["due_at"]
    assert due > first["created_at"]  # 24 h by default
    teams = client.get("/v1/tasks/teams", headers=operator).json()
    assert teams == [
        {
            "team": "gold",
            "members": [
                {**_member(agents[0]), "position": 1, "available": True},
                {**_member(agents[1]), "position": 2, "available": True},
            ],
            "next": "bob",
        }
    ]


def _member(account: Account) -> dict[str, Any]:
    return {
        "user_id": account.user_id,
        "username": account.username,
        "display_name": account.username,
    }


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({**TASK, "due_in": "tomorrow"}, "body.due_in"),
        ({**TASK, "task_id": "sla"}, "body.task_id"),
        ({**TASK, "team": "Gold Team"}, "body.team"),
        ({**TASK, "priority": "asap"}, "body.priority"),
        ({**TASK, "title": ""}, "body.title"),
    ],
)
def test_a_task_that_cannot_be_made_is_a_422_naming_the_field(
    client: TestClient, key_for: KeyFor, body: dict[str, Any], field: str
) -> None:
    answer = client.post("/v1/tasks", json=body, headers=key_for(Role.OPERATOR))
    assert answer.status_code == 422, answer.text
    assert answer.json()["error"]["field"] == field
    assert client.get("/v1/tasks", headers=key_for(Role.OPERATOR)).json()["items"] == []


def test_a_chosen_id_makes_a_retried_create_a_conflict(client: TestClient, key_for: KeyFor) -> None:
    operator = key_for(Role.OPERATOR)
    body = {**TASK, "task_id": "rule-42"}
    assert client.post("/v1/tasks", json=body, headers=operator).status_code == 201
    again = client.post("/v1/tasks", json=body, headers=operator)
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "conflict"
    assert len(client.get("/v1/tasks", headers=operator).json()["items"]) == 1


def test_an_agent_works_their_queue_and_nothing_else(
    app: FastAPI, client: TestClient, key_for: KeyFor
) -> None:
    admin, operator = key_for(Role.ADMIN), key_for(Role.OPERATOR)
    ann, eve = add_account(app, "ann", Role.AGENT), add_account(app, "eve", Role.AGENT)
    _team(client, admin, "gold", ann)
    _team(client, admin, "blue", eve)
    mine = client.post("/v1/tasks", json=TASK, headers=operator).json()
    blue = client.post("/v1/tasks", json={**TASK, "team": "blue"}, headers=operator).json()
    agent = _session(app, ann)
    try:
        listed = agent.get("/v1/tasks").json()["items"]
        assert [task["task_id"] for task in listed] == [mine["task_id"]]
        refused = agent.get(f"/v1/tasks/{blue['task_id']}")
        assert (refused.status_code, refused.json()["error"]["code"]) == (403, "forbidden")
        won = {"outcome": "won_back"}
        assert agent.post(f"/v1/tasks/{blue['task_id']}/close", json=won).status_code == 403
        claimed = agent.post(f"/v1/tasks/{mine['task_id']}/claim")
        assert (claimed.status_code, claimed.json()["status"]) == (200, "in_progress")
        no_notes = agent.post(f"/v1/tasks/{mine['task_id']}/close", json={"outcome": "declined"})
        assert (no_notes.status_code, no_notes.json()["error"]["field"]) == (422, "body.notes")
        closed = agent.post(
            f"/v1/tasks/{mine['task_id']}/close",
            json={"outcome": "declined", "notes": "已在别家购买"},
        )
        assert closed.status_code == 200, closed.text
        assert (closed.json()["outcome"], closed.json()["notes"]) == ("declined", "已在别家购买")
        again = agent.post(f"/v1/tasks/{mine['task_id']}/close", json={"outcome": "won_back"})
        assert (again.status_code, again.json()["error"]["code"]) == (409, "conflict")
        unknown = agent.get("/v1/tasks/no-such-task")
        assert (unknown.status_code, unknown.json()["error"]["code"]) == (404, "task_not_found")
        assert agent.get("/v1/tasks/sla").status_code == 403
        assert agent.post("/v1/tasks", json=TASK).status_code == 403
    finally:
        agent.__exit__(None, None, None)
    with app.state.perennial.engine.connect() as connection:
        [entry] = query_audit(connection, action="task.closed")
    assert (entry["actor"], entry["detail"]["outcome"]) == ("user:ann", "declined")


def test_viewers_have_no_access_and_agent_keys_no_queue(
    app: FastAPI, client: TestClient, key_for: KeyFor
) -> None:
    operator = key_for(Role.OPERATOR)
    task = client.post("/v1/tasks", json={**TASK, "team": "silver"}, headers=operator).json()
    viewer, agent_key = key_for(Role.VIEWER), key_for(Role.AGENT)
    for path in ("/v1/tasks", f"/v1/tasks/{task['task_id']}", "/v1/tasks/sla"):
        assert client.get(path, headers=viewer).status_code == 403, path
    assert client.get("/v1/tasks", headers=agent_key).json() == {"items": [], "next_cursor": None}
    assert client.get(f"/v1/tasks/{task['task_id']}", headers=agent_key).status_code == 403
    claim = client.post(f"/v1/tasks/{task['task_id']}/claim", headers=operator)
    assert claim.status_code == 403
    assert "acts for no person" in claim.json()["error"]["message"]
    closed = client.post(
        f"/v1/tasks/{task['task_id']}/close", json={"outcome": "won_back"}, headers=operator
    )
    assert (closed.status_code, closed.json()["assignee"]) == (200, None)


def test_operators_assign_and_cancel(app: FastAPI, client: TestClient, key_for: KeyFor) -> None:
    operator = key_for(Role.OPERATOR)
    add_account(app, "ann", Role.AGENT)
    add_account(app, "vic", Role.VIEWER)
    task = client.post("/v1/tasks", json=TASK, headers=operator).json()
    path = f"/v1/tasks/{task['task_id']}"
    given = client.post(f"{path}/assign", json={"assignee": "ann"}, headers=operator)
    assert (given.json()["assignee"], given.json()["status"]) == ("ann", "open")
    refused = client.post(f"{path}/assign", json={"assignee": "vic"}, headers=operator)
    assert (refused.status_code, refused.json()["error"]["field"]) == (422, "body.assignee")
    cancelled = client.post(f"{path}/cancel", headers=operator)
    assert cancelled.json()["status"] == "cancelled"
    assert client.post(f"{path}/cancel", headers=operator).status_code == 409


def test_pages_follow_the_cursor_and_a_forged_one_is_a_400(
    client: TestClient, key_for: KeyFor
) -> None:
    operator = key_for(Role.OPERATOR)
    made = [client.post("/v1/tasks", json=TASK, headers=operator).json() for _ in range(5)]
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = client.get("/v1/tasks", params=params, headers=operator).json()
        seen += [task["task_id"] for task in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert sorted(seen) == sorted(task["task_id"] for task in made) and len(seen) == 5
    forged = client.get("/v1/tasks", params={"cursor": "WzEsMiwzXQ"}, headers=operator)
    assert (forged.status_code, forged.json()["error"]["code"]) == (400, "invalid_cursor")


def test_team_membership_is_for_admins_and_only_for_people_who_work_tasks(
    app: FastAPI, client: TestClient, key_for: KeyFor
) -> None:
    admin, operator = key_for(Role.ADMIN), key_for(Role.OPERATOR)
    ann, vic = add_account(app, "ann", Role.AGENT), add_account(app, "vic", Role.VIEWER)
    path = f"/v1/tasks/teams/gold/members/{ann.user_id}"
    assert client.put(path, headers=operator).status_code == 403
    assert client.put(path, headers=admin).status_code == 200
    viewer = client.put(f"/v1/tasks/teams/gold/members/{vic.user_id}", headers=admin)
    assert (viewer.status_code, viewer.json()["error"]["field"]) == (422, "path.user_id")
    assert client.put("/v1/tasks/teams/gold/members/nobody", headers=admin).status_code == 404
    removed = client.delete(path, headers=admin)
    assert (removed.status_code, removed.json()["members"]) == (200, [])
    assert client.delete(path, headers=admin).status_code == 404


def test_the_sla_view_and_the_breaches(app: FastAPI, client: TestClient, key_for: KeyFor) -> None:
    operator = key_for(Role.OPERATOR)
    late = client.post("/v1/tasks", json={**TASK, "due_in": "1m"}, headers=operator).json()
    client.post("/v1/tasks", json=TASK, headers=operator)
    state = app.state.perennial
    with state.engine.begin() as connection:
        breach_alerts(connection, state.settings.now() + timedelta(minutes=2))
    sla = client.get("/v1/tasks/sla", headers=operator).json()
    [gold] = sla["teams"]
    assert (gold["team"], gold["open"], gold["overdue"]) == ("gold", 2, 0)  # not yet, by the clock
    breaches = client.get("/v1/tasks/breaches", headers=operator).json()
    assert [item["task"]["task_id"] for item in breaches["items"]] == [late["task_id"]]
    assert client.get("/v1/tasks/breaches?team=blue", headers=operator).json()["items"] == []
