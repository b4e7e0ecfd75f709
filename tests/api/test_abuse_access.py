"""Who may call what: every route x every role, CSRF, dead keys, and brute force.

The route list comes from ``app.routes`` (API, pages, docs, assets): a route without a
rule in ``RULES`` fails ``test_every_route_of_the_app_has_an_access_rule``, so a new
endpoint cannot escape the check. Each rule names the roles it admits (admins pass
every check) or ``None`` for public routes, and the status an admitted caller gets.
Every route is then called by nobody, by an API key of each role and by a signed-in
session of each role: API routes answer 401 (nobody), 403 (wrong role) or the rule's
status; pages redirect strangers to sign in, refuse the wrong role with the 403 page
and never open for an API key.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts
from fastapi.testclient import TestClient

from perennial.access.api_keys import create_api_key, revoke_api_key
from perennial.access.roles import ALL_ROLES, Role
from perennial.access.sessions import SESSION_COOKIE
from perennial.api.state import KeyCache
from perennial.config import Settings
from perennial.segments.tag_store import TagKind
from perennial.service import create_app
from tests.api.accounts import Account, add_account, sign_in
from tests.api.hostile import assert_clean_error, snapshot
from tests.serving.demo_store import DemoStore, demo_store

PAGE = {"Accept": "text/html"}
READERS = ALL_ROLES
"""Operators, agents and viewers (and admins): every role reads customers and the board."""
ADMINS: frozenset[Role] = frozenset()
"""Admins only (they pass every check, so no other role needs naming)."""
SENDERS = frozenset({Role.OPERATOR})


@dataclass
class Context:
    """What a probe may need: the app, a user and keys to act on, a counter for names."""

    app: FastAPI
    target_user: str
    names: Iterator[int] = field(default_factory=itertools.count)

    def fresh_key_id(self) -> str:
        with self.app.state.perennial.engine.begin() as connection:
            return create_api_key(
                connection, name="to revoke", roles=frozenset({Role.VIEWER}), created_by="tests"
            ).key_id


Request = Callable[[Context], dict[str, Any]]
"""Builds the keyword arguments of ``client.request`` (path, json, data, params)."""


@dataclass(frozen=True)
class Rule:
    admits: frozenset[Role] | None
    """Roles admitted (admins always); ``None``: anyone, signed in or not."""
    ok: int
    """The status an admitted caller gets."""
    request: Request
    page: bool = False
    key_ok: int | None = None
    """The status an admitted API key gets, when it differs from ``ok``."""
    session_ok: int | None = None
    """The status an admitted signed-in session gets, when it differs from ``ok``."""
    by_caller: dict[str, int] = field(default_factory=dict)
    """The status particular admitted callers get (``key:agent``), when it differs."""


def _at(path: str, **extra: Any) -> Request:
    return lambda _context: {"url": path, **extra}


def _new_user(context: Context) -> dict[str, Any]:
    number = next(context.names)
    return {"url": "/v1/admin/users", "json": {"username": f"made.{number}", "roles": ["viewer"]}}


def _wrong_password(context: Context) -> dict[str, Any]:
    """A new name each time: repeated failures on one name would lock it out."""
    body = {"username": f"nobody.{next(context.names)}", "password": "wrong"}
    return {"url": "/v1/auth/login", "json": body}


def _new_key(context: Context) -> dict[str, Any]:
    return {"url": "/v1/admin/api-keys", "json": {"name": "made", "roles": ["viewer"]}}


def _revoke(context: Context) -> dict[str, Any]:
    return {"url": f"/v1/admin/api-keys/{context.fresh_key_id()}"}


def _user(action: str) -> Request:
    def request(context: Context) -> dict[str, Any]:
        url = f"/v1/admin/users/{context.target_user}/{action}"
        return {"url": url, "json": {"roles": ["viewer"]}} if action == "roles" else {"url": url}

    return request


def _ingest(path: str, body: dict[str, Any]) -> Request:
    return _at(path, json=body)


def _segment(suffix: str = "", **extra: Any) -> Request:
    """A request on the segment ``matrix`` (saved first, so it exists)."""

    def request(context: Context) -> dict[str, Any]:
        context.app.state.perennial.segments.save("matrix", "stage == 'dormant'")
        return {"url": f"/v1/segments/matrix{suffix}", **extra}

    return request


def _new_segment(context: Context) -> dict[str, Any]:
    body = {"name": f"made-{next(context.names)}", "expression": "stage == 'dormant'"}
    return {"url": "/v1/segments", "json": body}


def _archive_segment(context: Context) -> dict[str, Any]:
    name = f"gone-{next(context.names)}"
    context.app.state.perennial.segments.save(name, "stage == 'dormant'")
    return {"url": f"/v1/segments/{name}"}


def _new_tag(context: Context) -> dict[str, Any]:
    body = {"name": f"rule-{next(context.names)}", "expression": "frequency_orders > 3"}
    return {"url": "/v1/tags", "json": body}


def _tagged(context: Context) -> dict[str, Any]:
    tag = f"hand-{next(context.names)}"
    context.app.state.perennial.segments.tag_customers(
        [("C0000001", tag, None)], source=TagKind.MANUAL, reason="test", user="tests"
    )
    return {"url": f"/v1/customers/C0000001/tags/{tag}"}


EXPRESSION = {"expression": "stage == 'dormant' and did login in last 30 days"}
TAGGERS = frozenset({Role.OPERATOR, Role.AGENT})


def _journey_document(name: str) -> dict[str, Any]:
    return {
        "journey": name,
        "trigger": {"type": "manual"},
        "start": "mark",
        "steps": {
            "mark": {"type": "tag", "add": "matrix", "next": "hello"},
            "hello": {
                "type": "send",
                "channel": "email",
                "message": {"subject": "Hi", "text": "Hi {{ customer_id }}"},
                "next": "done",
            },
            "done": {"type": "exit"},
        },
    }


def _journey(
    suffix: str = "", *, status: str = "active", fresh: bool = False, **extra: Any
) -> Request:
    """A request on a journey in ``status`` (a new one per call when ``fresh``)."""

    def request(context: Context) -> dict[str, Any]:
        from perennial.journeys.loading import parse_journey
        from perennial.journeys.service import JourneyService

        name = f"made-{next(context.names)}" if fresh else "matrix"
        state = context.app.state.perennial
        service = JourneyService(state.settings, state.engine)
        journey = parse_journey(_journey_document(name), "matrix")
        if status == "draft":
            service.save_draft(journey, actor="tests")
        else:
            service.publish(journey, actor="tests")
        if status == "paused":
            service.change_status(name, "pause", actor="tests")
        return {"url": f"/v1/journeys/{name}{suffix}", **extra}

    return request


def _new_journey(context: Context) -> dict[str, Any]:
    document = _journey_document(f"made-{next(context.names)}")
    return {"url": "/v1/journeys", "json": {"document": document}}


def _unsubscribe(context: Context) -> dict[str, Any]:
    from perennial.channels.setup import signing_secret
    from perennial.channels.unsubscribe import unsubscribe_token

    secret = signing_secret(context.app.state.perennial.settings)
    return {"url": f"/v1/unsubscribe/{unsubscribe_token(secret, 'C0000001', 'email')}"}


TASKERS = frozenset({Role.OPERATOR, Role.AGENT})
NO_QUEUE = {"key:agent": 403}
"""An API key with the agent role acts for no agent: it has no queue, sees no task."""
TASK = {"customer_id": "C0000001", "team": "matrix", "title": "回访 call back"}


def _task(suffix: str = "", **extra: Any) -> Request:
    """A request on a new task of team ``matrix``, whose only member is the matrix's agent
    (so every task of the team is theirs)."""

    def request(context: Context) -> dict[str, Any]:
        from perennial.access.users import find_user
        from perennial.tasks.creation import NewTask, create_task
        from perennial.tasks.teams import add_member

        now = datetime.now(UTC)
        with context.app.state.perennial.engine.begin() as connection:
            agent = find_user(connection, "matrix.agent")
            assert agent is not None
            add_member(connection, "matrix", agent.user_id, actor="tests", now=now)
            new = NewTask("C0000001", "回访", "matrix", "urgent", now + timedelta(hours=24))
            task = create_task(connection, new, now=now)
        return {"url": f"/v1/tasks/{task.task_id}{suffix}", **extra}

    return request


def _team_member(*, joined: bool) -> Request:
    """A request on a new agent of team ``members`` (already in it when ``joined``)."""

    def request(context: Context) -> dict[str, Any]:
        from perennial.access.users import create_user
        from perennial.tasks.teams import add_member

        with context.app.state.perennial.engine.begin() as connection:
            user = create_user(
                connection,
                username=f"member.{next(context.names)}",
                roles=frozenset({Role.AGENT}),
                actor="tests",
            ).user
            if joined:
                add_member(connection, "members", user.user_id, actor="t", now=datetime.now(UTC))
        return {"url": f"/v1/tasks/teams/members/members/{user.user_id}"}

    return request


TS = "2025-12-01T08:00:00+08:00"
RULES: dict[tuple[str, str], Rule] = {
    ("GET", "/healthz"): Rule(None, 200, _at("/healthz")),
    ("GET", "/readyz"): Rule(None, 200, _at("/readyz")),
    ("GET", "/v1/ping"): Rule(None, 200, _at("/v1/ping")),
    ("GET", "/openapi.json"): Rule(None, 200, _at("/openapi.json")),
    ("GET", "/docs"): Rule(None, 200, _at("/docs")),
    ("GET", "/docs/oauth2-redirect"): Rule(None, 200, _at("/docs/oauth2-redirect")),
    ("GET", "/redoc"): Rule(None, 200, _at("/redoc")),
    ("POST", "/v1/auth/login"): Rule(None, 401, _wrong_password),
    ("POST", "/v1/auth/logout"): Rule(READERS, 204, _at("/v1/auth/logout"), key_ok=400),
    ("GET", "/v1/auth/me"): Rule(READERS, 200, _at("/v1/auth/me")),
    ("GET", "/v1/admin/users"): Rule(ADMINS, 200, _at("/v1/admin/users")),
    ("POST", "/v1/admin/users"): Rule(ADMINS, 201, _new_user),
    ("POST", "/v1/admin/users/{user_id}/disable"): Rule(ADMINS, 200, _user("disable")),
    ("POST", "/v1/admin/users/{user_id}/enable"): Rule(ADMINS, 200, _user("enable")),
    ("PUT", "/v1/admin/users/{user_id}/roles"): Rule(ADMINS, 200, _user("roles")),
    ("GET", "/v1/admin/api-keys"): Rule(ADMINS, 200, _at("/v1/admin/api-keys")),
    ("POST", "/v1/admin/api-keys"): Rule(ADMINS, 201, _new_key),
    ("DELETE", "/v1/admin/api-keys/{key_id}"): Rule(ADMINS, 200, _revoke),
    ("GET", "/v1/admin/audit"): Rule(ADMINS, 200, _at("/v1/admin/audit")),
    ("GET", "/v1/customers"): Rule(READERS, 200, _at("/v1/customers")),
    ("GET", "/v1/customers/search"): Rule(READERS, 200, _at("/v1/customers/search?q=C0")),
    ("GET", "/v1/customers/{customer_id:text}/timeline"): Rule(
        READERS, 200, _at("/v1/customers/C0000001/timeline")
    ),
    ("GET", "/v1/customers/{customer_id:text}"): Rule(READERS, 200, _at("/v1/customers/C0000001")),
    ("GET", "/v1/lifecycle/distribution"): Rule(READERS, 200, _at("/v1/lifecycle/distribution")),
    ("GET", "/v1/lifecycle/flows"): Rule(READERS, 200, _at("/v1/lifecycle/flows")),
    ("GET", "/v1/lifecycle/top-movers"): Rule(READERS, 200, _at("/v1/lifecycle/top-movers")),
    ("GET", "/v1/lifecycle/kpis"): Rule(READERS, 200, _at("/v1/lifecycle/kpis")),
    ("GET", "/v1/lifecycle/rfm-grid"): Rule(READERS, 200, _at("/v1/lifecycle/rfm-grid")),
    ("POST", "/v1/track"): Rule(
        SENDERS,
        202,
        _ingest("/v1/track", {"customer_id": "C1", "event_type": "page_view", "ts": TS}),
    ),
    ("POST", "/v1/identify"): Rule(
        SENDERS, 202, _ingest("/v1/identify", {"customer_id": "C1", "name": "Li"})
    ),
    ("POST", "/v1/orders"): Rule(
        SENDERS,
        202,
        _ingest(
            "/v1/orders",
            {
                "order_id": "O1",
                "customer_id": "C1",
                "amount": 1,
                "currency": "CNY",
                "status": "paid",
                "placed_at": TS,
            },
        ),
    ),
    # Pages: strangers (and API keys, which pages do not take) go to the login page.
    ("GET", "/"): Rule(None, 303, _at("/")),
    ("GET", "/login"): Rule(None, 200, _at("/login"), session_ok=303),
    ("POST", "/login"): Rule(None, 400, _at("/login", data={"username": "x"})),
    ("POST", "/logout"): Rule(None, 303, _at("/logout")),
    ("GET", "/lang/{language}"): Rule(None, 303, _at("/lang/en")),
    ("GET", "/admin"): Rule(ADMINS, 200, _at("/admin"), page=True),
    ("GET", "/v1/predictions/at-risk"): Rule(READERS, 200, _at("/v1/predictions/at-risk")),
    ("GET", "/v1/models"): Rule(READERS, 200, _at("/v1/models")),
    ("GET", "/v1/models/{version}"): Rule(READERS, 404, _at("/v1/models/churn-0001")),
    ("GET", "/at-risk"): Rule(READERS, 200, _at("/at-risk"), page=True),
    ("GET", "/models"): Rule(READERS, 200, _at("/models"), page=True),
    ("GET", "/segments"): Rule(READERS, 200, _at("/segments"), page=True),
    ("GET", "/journeys"): Rule(READERS, 200, _at("/journeys"), page=True),
    ("GET", "/journeys/{name}"): Rule(READERS, 404, _at("/journeys/no-such-journey"), page=True),
    ("GET", "/board"): Rule(READERS, 200, _at("/board"), page=True),
    ("GET", "/customers"): Rule(READERS, 200, _at("/customers"), page=True),
    ("GET", "/customers/{customer_id:path}"): Rule(
        READERS, 200, _at("/customers/C0000001"), page=True
    ),
    ("GET", "/v1/segments"): Rule(READERS, 200, _at("/v1/segments")),
    ("GET", "/v1/segments/fields"): Rule(READERS, 200, _at("/v1/segments/fields")),
    ("POST", "/v1/segments/validate"): Rule(
        READERS, 200, _at("/v1/segments/validate", json=EXPRESSION)
    ),
    ("POST", "/v1/segments/preview"): Rule(
        READERS, 200, _at("/v1/segments/preview", json=EXPRESSION)
    ),
    ("POST", "/v1/segments"): Rule(SENDERS, 201, _new_segment),
    ("PUT", "/v1/segments/{name}"): Rule(SENDERS, 200, _segment(json=EXPRESSION)),
    ("GET", "/v1/segments/changes"): Rule(READERS, 200, _at("/v1/segments/changes")),
    ("GET", "/v1/segments/{name}"): Rule(READERS, 200, _segment()),
    ("GET", "/v1/segments/{name}/versions"): Rule(READERS, 200, _segment("/versions")),
    ("DELETE", "/v1/segments/{name}"): Rule(SENDERS, 200, _archive_segment),
    ("POST", "/v1/segments/{name}/refresh"): Rule(SENDERS, 200, _segment("/refresh")),
    ("GET", "/v1/segments/{name}/members"): Rule(READERS, 200, _segment("/members")),
    ("GET", "/v1/segments/{name}/export"): Rule(SENDERS, 200, _segment("/export")),
    ("POST", "/v1/segments/{name}/export/webhook"): Rule(
        SENDERS,
        502,  # nothing listens there: admitted callers reach the export, which reports it
        _segment("/export/webhook", json={"url": "http://127.0.0.1:9/hook", "retries": 0}),
    ),
    ("GET", "/v1/tags"): Rule(READERS, 200, _at("/v1/tags")),
    ("POST", "/v1/tags"): Rule(SENDERS, 201, _new_tag),
    ("POST", "/v1/tags/refresh"): Rule(SENDERS, 200, _at("/v1/tags/refresh")),
    ("POST", "/v1/tags/{name}/import"): Rule(
        SENDERS, 200, _at("/v1/tags/imported/import", content=b"customer_id\nC0000001\n")
    ),
    ("GET", "/v1/customers/{customer_id:text}/tags"): Rule(
        READERS, 200, _at("/v1/customers/C0000001/tags")
    ),
    ("PUT", "/v1/customers/{customer_id:text}/tags/{tag}"): Rule(
        TAGGERS, 200, _at("/v1/customers/C0000001/tags/vip", json={"value": "gold"})
    ),
    ("DELETE", "/v1/customers/{customer_id:text}/tags/{tag}"): Rule(TAGGERS, 204, _tagged),
    ("GET", "/v1/customers/{customer_id:text}/segments"): Rule(
        READERS, 200, _at("/v1/customers/C0000001/segments")
    ),
    ("GET", "/v1/journeys"): Rule(READERS, 200, _at("/v1/journeys")),
    ("POST", "/v1/journeys/validate"): Rule(
        READERS, 200, _at("/v1/journeys/validate", json={"document": _journey_document("matrix")})
    ),
    ("POST", "/v1/journeys"): Rule(SENDERS, 201, _new_journey),
    ("GET", "/v1/journeys/{name}"): Rule(READERS, 200, _journey()),
    ("POST", "/v1/journeys/{name}/publish"): Rule(
        SENDERS, 200, _journey("/publish", fresh=True, status="draft")
    ),
    ("POST", "/v1/journeys/{name}/pause"): Rule(SENDERS, 200, _journey("/pause", fresh=True)),
    ("POST", "/v1/journeys/{name}/resume"): Rule(
        SENDERS, 200, _journey("/resume", fresh=True, status="paused")
    ),
    ("POST", "/v1/journeys/{name}/archive"): Rule(SENDERS, 200, _journey("/archive", fresh=True)),
    ("POST", "/v1/journeys/{name}/enrol"): Rule(
        SENDERS, 200, _journey("/enrol", json={"customers": ["C0000001"], "occurrence": "matrix"})
    ),
    ("GET", "/v1/journeys/{name}/steps"): Rule(READERS, 200, _journey("/steps")),
    ("GET", "/v1/journeys/{name}/runs"): Rule(READERS, 200, _journey("/runs")),
    ("GET", "/v1/journeys/{name}/sends"): Rule(READERS, 200, _journey("/sends")),
    ("POST", "/v1/journeys/preview"): Rule(
        READERS,
        200,
        _at(
            "/v1/journeys/preview",
            json={
                "document": _journey_document("matrix"),
                "step": "hello",
                "customer_id": "C0000001",
            },
        ),
    ),
    ("POST", "/v1/unsubscribe/{token}"): Rule(None, 200, _unsubscribe),
    ("GET", "/v1/unsubscribe/{token}"): Rule(None, 200, _unsubscribe),
    ("GET", "/v1/tasks"): Rule(TASKERS, 200, _at("/v1/tasks")),
    ("POST", "/v1/tasks"): Rule(SENDERS, 201, _at("/v1/tasks", json=TASK)),
    ("GET", "/v1/tasks/sla"): Rule(SENDERS, 200, _at("/v1/tasks/sla")),
    ("GET", "/v1/tasks/breaches"): Rule(SENDERS, 200, _at("/v1/tasks/breaches")),
    ("GET", "/v1/tasks/teams"): Rule(SENDERS, 200, _at("/v1/tasks/teams")),
    ("PUT", "/v1/tasks/teams/{team}/members/{user_id}"): Rule(
        ADMINS, 200, _team_member(joined=False)
    ),
    ("DELETE", "/v1/tasks/teams/{team}/members/{user_id}"): Rule(
        ADMINS, 200, _team_member(joined=True)
    ),
    ("GET", "/v1/tasks/{task_id}"): Rule(TASKERS, 200, _task(), by_caller=NO_QUEUE),
    # a key is no person: it cannot hold (claim) a task, whatever its role
    ("POST", "/v1/tasks/{task_id}/claim"): Rule(TASKERS, 200, _task("/claim"), key_ok=403),
    ("POST", "/v1/tasks/{task_id}/assign"): Rule(
        SENDERS, 200, _task("/assign", json={"assignee": "matrix.agent"})
    ),
    ("POST", "/v1/tasks/{task_id}/close"): Rule(
        TASKERS, 200, _task("/close", json={"outcome": "won_back"}), by_caller=NO_QUEUE
    ),
    ("POST", "/v1/tasks/{task_id}/cancel"): Rule(SENDERS, 200, _task("/cancel")),
    ("GET", "/tasks"): Rule(TASKERS, 200, _at("/tasks"), page=True),
    ("GET", "/vendor/plotly-7.1.0.min.js"): Rule(None, 200, _at("/vendor/plotly-7.1.0.min.js")),
    ("GET", "/static"): Rule(None, 200, _at("/static/dashboard.css")),
}
"""(method, route path) -> who may call it. POST /logout and POST /login are public: the
first only ends the caller's own session (with its token), the second needs the form's
double-submit token (400 without it, for everyone)."""


def _app_routes(app: FastAPI) -> set[tuple[str, str]]:
    routes = set()
    for context in iter_route_contexts(app.routes):
        methods = (context.methods or {"GET"}) - {"HEAD"}  # HEAD: answered as GET
        routes.update((method, str(context.path)) for method in methods)
    return routes


@dataclass(frozen=True)
class Caller:
    name: str
    role: Role | None
    via: str
    """``nobody``, ``key`` or ``session``."""
    client: TestClient
    headers: dict[str, str]
    csrf: str | None = None


@pytest.fixture(scope="session")
def demo(tmp_path_factory: pytest.TempPathFactory) -> DemoStore:
    return demo_store(tmp_path_factory)


@pytest.fixture(scope="module")
def matrix(
    demo: DemoStore, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Context, list[Caller], dict[Role, Account]]]:
    root = tmp_path_factory.mktemp("access-matrix")
    settings = Settings(
        home=root / "home",
        warehouse_path=demo.settings.warehouse,
        serving_path=demo.settings.serving_database,
        ingest_drain_seconds=0,
    )
    app = create_app(settings)
    accounts = {role: add_account(app, f"matrix.{role}", role) for role in Role}
    target = add_account(app, "matrix.target", Role.VIEWER)
    clients: list[TestClient] = []
    callers = []
    with app.state.perennial.engine.begin() as connection:
        tokens = {
            role: create_api_key(
                connection, name=f"matrix {role}", roles=frozenset({role}), created_by="tests"
            ).token
            for role in Role
        }
    anonymous = TestClient(app, follow_redirects=False, raise_server_exceptions=False)
    clients.append(anonymous.__enter__())
    callers.append(Caller("nobody", None, "nobody", anonymous, {}))
    for role in Role:
        callers.append(
            Caller(
                f"key:{role}", role, "key", anonymous, {"Authorization": f"Bearer {tokens[role]}"}
            )
        )
        browser = TestClient(app, follow_redirects=False, raise_server_exceptions=False)
        clients.append(browser.__enter__())
        csrf = sign_in(browser, accounts[role])
        callers.append(Caller(f"session:{role}", role, "session", browser, {}, csrf))
    try:
        yield Context(app, target.user_id), callers, accounts
    finally:
        for client in clients:
            client.__exit__(None, None, None)


def test_every_route_of_the_app_has_an_access_rule(
    matrix: tuple[Context, list[Caller], dict[Role, Account]],
) -> None:
    context, _callers, _accounts = matrix
    routes = _app_routes(context.app)
    assert routes - set(RULES) == set(), "routes without an access rule here"
    assert set(RULES) - routes == set(), "rules for routes the app no longer has"


def _expected(rule: Rule, caller: Caller) -> int:
    admitted = rule.admits is None or (
        caller.role is not None and (caller.role == Role.ADMIN or caller.role in rule.admits)
    )
    signed_in = caller.via == "session"
    if rule.page:
        if not signed_in:
            return 303
        return rule.ok if admitted else 403
    if rule.admits is not None and caller.via == "nobody":
        return 401
    if not admitted:
        return 403
    if caller.name in rule.by_caller:
        return rule.by_caller[caller.name]
    if caller.via == "key" and rule.key_ok is not None:
        return rule.key_ok
    if signed_in and rule.session_ok is not None:
        return rule.session_ok
    return rule.ok


@pytest.mark.parametrize(("method", "route"), sorted(RULES))
def test_every_caller_gets_what_the_access_rule_says(
    matrix: tuple[Context, list[Caller], dict[Role, Account]], method: str, route: str
) -> None:
    context, callers, accounts = matrix
    rule = RULES[(method, route)]
    for caller in callers:
        client, headers = caller.client, dict(caller.headers)
        if caller.via == "session" and (method, route) in LOGOUTS:
            client = TestClient(context.app, follow_redirects=False)  # a session to end
            assert caller.role is not None
            headers = {"X-CSRF-Token": sign_in(client, accounts[caller.role])}
        elif caller.csrf is not None and method != "GET":
            headers["X-CSRF-Token"] = caller.csrf
        arguments = rule.request(context)
        if method == "POST" and route == "/logout" and "X-CSRF-Token" in headers:
            arguments["data"] = {"csrf_token": headers["X-CSRF-Token"]}
        if rule.page or route in ("/", "/login", "/logout", "/lang/{language}"):
            headers |= PAGE
        response = client.request(method, headers=headers, **arguments)
        expected = _expected(rule, caller)
        assert response.status_code == expected, (
            caller.name,
            response.status_code,
            response.text[:300],
        )
        if expected in (401, 403) and not rule.page and rule.admits is not None:
            assert_clean_error(response)
            code = response.json()["error"]["code"]
            assert code == ("unauthenticated" if expected == 401 else "forbidden"), code
        if rule.page and expected == 303:
            assert response.headers["location"].startswith("/login?next="), caller.name


LOGOUTS = {("POST", "/v1/auth/logout"), ("POST", "/logout")}


# --- CSRF ----------------------------------------------------------------------------------


CSRF_EXEMPT = {
    ("POST", "/v1/auth/login"): "it takes JSON only, which no cross-site form can send "
    "(tests/api/test_auth.py: a form or text/plain post cannot sign in)",
    ("POST", "/v1/unsubscribe/{token}"): "RFC 8058 one-click: mail providers post it from "
    "outside; the signed token in the link is the credential and no session is used",
}


def _unsafe_api_routes() -> list[tuple[str, str]]:
    """Every API route that changes something, but the documented exemptions."""
    return [
        key
        for key in sorted(RULES)
        if key[0] in ("POST", "PUT", "PATCH", "DELETE")
        and key[1].startswith("/v1/")
        and key not in CSRF_EXEMPT
    ]


@pytest.mark.parametrize(("method", "route"), _unsafe_api_routes())
def test_a_cookie_without_the_right_csrf_token_changes_nothing(
    matrix: tuple[Context, list[Caller], dict[Role, Account]], method: str, route: str
) -> None:
    context, callers, _accounts = matrix
    admin = next(c for c in callers if c.via == "session" and c.role == Role.ADMIN)
    arguments = RULES[(method, route)].request(context)
    assert admin.csrf is not None
    for token in (None, "", admin.csrf[:-2] + "xx", admin.csrf.lower() + "A"):
        before = snapshot(context.app.state.perennial.engine)
        headers = {} if token is None else {"X-CSRF-Token": token}
        response = admin.client.request(method, headers=headers, **arguments)
        assert response.status_code == 403, (token, response.text)
        assert response.json()["error"]["code"] == "csrf_failed"
        assert snapshot(context.app.state.perennial.engine) == before


def test_the_page_logout_without_the_sessions_token_keeps_the_session(
    matrix: tuple[Context, list[Caller], dict[Role, Account]],
) -> None:
    context, _callers, accounts = matrix
    with TestClient(context.app, follow_redirects=False) as browser:
        sign_in(browser, accounts[Role.VIEWER])
        for data in ({}, {"csrf_token": "forged"}):
            refused = browser.post("/logout", data=data, headers=PAGE)
            assert refused.status_code == 403
            assert browser.get("/v1/auth/me").status_code == 200


# --- dead keys -----------------------------------------------------------------------------


def test_unknown_malformed_expired_and_revoked_keys_get_one_and_the_same_401(
    matrix: tuple[Context, list[Caller], dict[Role, Account]],
) -> None:
    context, _callers, _accounts = matrix
    engine = context.app.state.perennial.engine
    with engine.begin() as connection:
        expired = create_api_key(
            connection,
            name="old",
            roles=frozenset({Role.ADMIN}),
            created_by="tests",
            expires_at=datetime.now(UTC) - timedelta(seconds=1),
        )
        revoked = create_api_key(
            connection, name="gone", roles=frozenset({Role.ADMIN}), created_by="tests"
        )
        revoke_api_key(connection, revoked.key_id)
    tokens = [
        expired.token,
        revoked.token,
        revoked.token[:-4] + "AAAA",  # a real key id, a forged secret
        "prn_000000000000_" + "A" * 43,
        "prn_",
        "' OR 1=1 --",
        "x" * 5000,
    ]
    with TestClient(context.app) as client:
        answers = set()
        for token in tokens:
            for headers in ({"Authorization": f"Bearer {token}"}, {"X-API-Key": token}):
                for route in ("/v1/admin/users", "/v1/customers/C0000001", "/v1/auth/me"):
                    response = client.get(route, headers=headers)
                    assert response.status_code == 401, (token[:20], route)
                    assert_clean_error(response, secrets=[expired.key_id, revoked.key_id])
                    answers.add(response.text)
    assert len(answers) == 1, answers  # nothing tells a revoked key from one never issued


def test_a_key_expires_on_time_even_while_its_lookup_is_cached(tmp_path: Path) -> None:
    app = create_app(Settings(home=tmp_path / "home"))
    with app.state.perennial.engine.begin() as connection:
        token = create_api_key(
            connection,
            name="brief",
            roles=frozenset({Role.VIEWER}),
            created_by="tests",
            expires_at=datetime.now(UTC) + timedelta(seconds=1),
        ).token
    headers = {"Authorization": f"Bearer {token}"}
    with TestClient(app) as client:
        assert client.get("/v1/auth/me", headers=headers).status_code == 200  # now cached
        time.sleep(1.1)
        assert client.get("/v1/auth/me", headers=headers).status_code == 401


def test_a_key_revoked_elsewhere_stops_within_the_cache_period(tmp_path: Path) -> None:
    """Revoked through this server: at once. By the CLI or another server: within
    ``KEY_CACHE_SECONDS`` (shortened here to keep the test fast)."""
    app = create_app(Settings(home=tmp_path / "home"))
    state = app.state.perennial
    state.keys = KeyCache(seconds=0.5)
    with state.engine.begin() as connection:
        issued = create_api_key(
            connection, name="etl", roles=frozenset({Role.ADMIN}), created_by="tests"
        )
        other = create_api_key(
            connection, name="cli", roles=frozenset({Role.VIEWER}), created_by="tests"
        )
    admin = {"Authorization": f"Bearer {issued.token}"}
    viewer = {"Authorization": f"Bearer {other.token}"}
    with TestClient(app) as client:
        assert client.get("/v1/auth/me", headers=viewer).status_code == 200
        with state.engine.begin() as connection:
            revoke_api_key(connection, other.key_id)  # as `perennial apikeys revoke` does
        assert client.get("/v1/auth/me", headers=viewer).status_code == 200  # still cached
        time.sleep(0.6)
        assert client.get("/v1/auth/me", headers=viewer).status_code == 401
        # and through this server's API: at once, for itself too
        assert (
            client.delete(f"/v1/admin/api-keys/{issued.key_id}", headers=admin).status_code == 200
        )
        assert client.get("/v1/auth/me", headers=admin).status_code == 401


# --- brute force ---------------------------------------------------------------------------


def test_failures_on_the_api_and_the_form_add_up_to_one_lock_out(tmp_path: Path) -> None:
    app = create_app(Settings(home=tmp_path / "home", login_max_failures=4))
    account = add_account(app, "brute.target", Role.OPERATOR)
    with TestClient(app, follow_redirects=False) as client:
        for attempt in range(2):
            api = client.post(
                "/v1/auth/login", json={"username": account.username, "password": f"api-{attempt}"}
            )
            assert api.status_code == 401
            page = client.get("/login", headers=PAGE).text
            token = page.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
            form = client.post(
                "/login",
                data={
                    "username": account.username,
                    "password": f"f-{attempt}",
                    "csrf_token": token,
                },
                headers=PAGE,
            )
            assert form.status_code in (401, 429)
        right = {"username": account.username, "password": account.password}
        locked = client.post("/v1/auth/login", json=right)
        assert locked.status_code == 429
        assert locked.json()["error"]["code"] == "locked_out"
        assert int(locked.headers["retry-after"]) > 0
        assert SESSION_COOKIE not in client.cookies
        assert_clean_error(locked, secrets=[account.password])


def test_a_flood_of_guesses_at_unknown_names_answers_alike_and_stores_no_user(
    tmp_path: Path,
) -> None:
    app = create_app(Settings(home=tmp_path / "home", login_max_failures=3))
    add_account(app, "real.person", Role.VIEWER)
    with TestClient(app) as client:
        answers = [
            client.post("/v1/auth/login", json={"username": name, "password": "guess"})
            for name in ("real.person", "ghost", "real.person", "ghost", "real.person", "ghost")
        ]
        users = [
            u["username"] for u in client.get("/v1/admin/users", headers=_admin_key(app)).json()
        ]
    statuses = [a.status_code for a in answers]
    assert statuses[:4] == [401, 401, 401, 401]
    assert statuses[4:] == [429, 429]  # the third failure locked both names alike
    assert answers[4].json() == answers[5].json()  # a lock-out does not tell who exists
    assert answers[4].json()["error"]["code"] == "locked_out"
    assert answers[0].json() == answers[1].json()
    assert users == ["real.person"]


def _admin_key(app: FastAPI) -> dict[str, str]:
    with app.state.perennial.engine.begin() as connection:
        token = create_api_key(
            connection, name="a", roles=frozenset({Role.ADMIN}), created_by="tests"
        ).token
    return {"Authorization": f"Bearer {token}"}
