"""Schemathesis against the whole API: every operation of the OpenAPI document, in-process.

The app reads the session's demo warehouse and serving store (250 customers with
profiles, stage history and timelines) and writes to its own operational store. Two
passes: an admin API key, which reaches every operation, and a smaller one as a viewer,
which mostly meets 403s (their bodies and content types are checked too). Each
operation gets schema-valid (positive) and schema-breaking (negative) requests; the
operations with a path parameter get a second round on ids that exist, so the 200
answers of the 360, the timeline and the user and key administration are fuzzed too.

Checks: every built-in check of schemathesis (no 5xx, documented status codes,
response bodies and headers matching their schema, content types, invalid input
refused with a 4xx, unsupported methods refused). ``positive_data_acceptance`` ("a
schema-valid request is accepted") is off only for the operations in
``REFUSES_SOME_VALID_REQUESTS``, each with the reason its schema cannot say.

The ingest endpoints run without the background drainer (it would write the fuzzed
data into the shared demo warehouse); after the passes everything they accepted is
drained into a warehouse of this test's own, which must take every request.

Nothing is excluded. ``POST /v1/auth/logout`` is fuzzed with the API key, which has no
session to end (a documented 400), so the run's own credentials survive it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis.strategies import SearchStrategy
from requests.structures import CaseInsensitiveDict
from schemathesis import CheckContext, GenerationMode, Response
from schemathesis.core.failures import FailureGroup
from schemathesis.python.asgi import shutdown_lifespans
from schemathesis.specs.openapi.checks import negative_data_rejection, positive_data_acceptance

from perennial.access.api_keys import create_api_key
from perennial.access.roles import Role
from perennial.access.users import create_user
from perennial.config import Settings
from perennial.ingest.drain import drain_inbox
from perennial.ingest.inbox import inbox_counts
from perennial.service import create_app
from tests.serving.demo_store import TRICKY_ID, DemoStore, demo_store

REFUSES_SOME_VALID_REQUESTS = {
    "POST /v1/track": "items are judged one by one (a far-future `ts`); one bad item is a 422",
    "POST /v1/identify": "a phone, e-mail, birthday or time zone can be well formed and invalid",
    "POST /v1/orders": "an amount, currency or status can be well formed and invalid",
    "POST /v1/auth/logout": "an API key has no session to end: 400 not_a_session",
    "POST /v1/admin/users": "usernames with surrounding spaces or control characters: 422",
    "POST /v1/admin/api-keys": "a key name of spaces only: 422",
    "GET /v1/admin/audit": "a cursor this endpoint did not issue: 400",
    "GET /v1/customers": "an unknown stage or segment is a 422; a forged cursor a 400",
    "GET /v1/predictions/at-risk": "an unknown stage is a 422; a forged cursor a 400",
    "GET /v1/customers/{customer_id}/timeline": "a forged cursor: 400",
    "GET /v1/lifecycle/distribution": "start after end: 422",
    "GET /v1/lifecycle/flows": "start after end, or days outside the stored history: 422",
    "GET /v1/lifecycle/top-movers": "start after end, or days outside the stored history: 422",
    "POST /v1/segments": "any text is schema-valid; an expression that does not parse, or "
    "names an unknown field or event type: 422 with the column",
    "PUT /v1/segments/{name}": "the same as POST /v1/segments",
    "POST /v1/segments/preview": "the same expressions as POST /v1/segments: 422",
    "POST /v1/segments/validate": "neither or both of expression and expression_json: 422",
    "POST /v1/segments/{name}/export/webhook": "a URL nothing answers at: 502 after the retries",
    "POST /v1/tags": "the same expressions as POST /v1/segments: 422",
    "POST /v1/tags/{name}/import": "a CSV without a customer_id header: 422",
    "POST /v1/journeys": "any object is a schema-valid document; one with problems (its own "
    "schema, the graph, names unknown to the store): 422 listing them",
    "POST /v1/journeys/preview": "the same documents as POST /v1/journeys, a step that is not "
    "a send step, a template missing a variable: 422",
    "GET /v1/tasks": "a cursor this endpoint did not issue: 400",
    "GET /v1/tasks/breaches": "a cursor this endpoint did not issue: 400",
    "POST /v1/tasks": "a due_in that is no duration (`tomorrow`), or a task id the API uses as "
    "a path (`sla`, `teams`, `breaches`): 422",
    "POST /v1/tasks/{task_id}/close": "notes are required when the outcome is declined: 422",
    "POST /v1/tasks/{task_id}/assign": "an assignee who is no enabled user with the agent, "
    "operator or admin role: 422",
    "PUT /v1/tasks/teams/{team}/members/{user_id}": "a user without the agent, operator or "
    "admin role (a viewer) cannot join a team: 422",
}
"""Operations whose schema admits requests they rightly refuse, and why."""

CREDENTIAL_HEADERS = ("Authorization",)
"""Headers the run sets over the generated ones."""

INGEST = frozenset({"POST /v1/track", "POST /v1/identify", "POST /v1/orders"})
"""Batches judged item by item: see :func:`ingest_refuses_invalid_items`."""

OPERATIONS = 30
"""Operations in the OpenAPI document today; a new one is fuzzed without any change here."""


@dataclass(frozen=True)
class Pass:
    role: Role
    examples: int
    """Generated requests per operation, per generation mode."""


_SCALE = float(os.environ.get("PERENNIAL_FUZZ_SCALE", "1"))
"""Multiplies the examples: ``PERENNIAL_FUZZ_SCALE=10`` for a deeper run by hand."""
ADMIN_PASS = Pass(Role.ADMIN, examples=round(30 * _SCALE))
VIEWER_PASS = Pass(Role.VIEWER, examples=round(8 * _SCALE))


@dataclass(frozen=True)
class Target:
    """The app under test, its schema, and ids that exist in it."""

    app: FastAPI
    settings: Settings
    schema: schemathesis.BaseSchema
    path_ids: dict[str, list[str]]
    """Existing values per path parameter name."""

    def token(self, role: Role) -> str:
        with self.app.state.perennial.engine.begin() as connection:
            issued = create_api_key(
                connection, name=f"fuzz {role}", roles=frozenset({role}), created_by="tests"
            )
        return issued.token


@pytest.fixture(scope="session")
def demo(tmp_path_factory: pytest.TempPathFactory) -> DemoStore:
    return demo_store(tmp_path_factory)


@pytest.fixture
def target(demo: DemoStore, tmp_path: Path) -> Iterator[Target]:
    settings = demo.settings.model_copy(
        update={
            "home": tmp_path / "home",
            "warehouse_path": demo.settings.warehouse,
            "serving_path": demo.settings.serving_database,
            "ingest_drain_seconds": 0,
        }
    )
    app = create_app(settings)
    with app.state.perennial.engine.begin() as connection:
        user = create_user(
            connection, username="fuzz.target", roles=frozenset({Role.AGENT}), actor="tests"
        ).user
        key = create_api_key(
            connection, name="fuzz target", roles=frozenset({Role.VIEWER}), created_by="tests"
        )
    path_ids = {
        "customer_id": ["C0000001", "C0000002", TRICKY_ID],
        "user_id": [user.user_id],
        "key_id": [key.key_id],
    }
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    try:
        yield Target(app, settings, schema, path_ids)
    finally:
        shutdown_lifespans()  # schemathesis started the app's lifespan; stop its services


def _label(operation: schemathesis.APIOperation) -> str:
    return f"{operation.method.upper()} {operation.path}"


def _strategies(
    operation: schemathesis.APIOperation, path_ids: dict[str, list[str]]
) -> Iterator[tuple[str, SearchStrategy[schemathesis.Case]]]:
    """Valid requests; invalid ones (where there is a parameter or body to break); then
    valid ones on each existing id of the path."""
    yield "positive", operation.as_strategy(generation_mode=GenerationMode.POSITIVE)
    if any(True for _ in operation.iter_parameters()) or len(operation.body):
        yield "negative", operation.as_strategy(generation_mode=GenerationMode.NEGATIVE)
    names = [p.name for p in operation.path_parameters]
    for name in names:
        for value in path_ids.get(name, []):
            fixed = operation.as_strategy(path_parameters={name: value})
            yield f"{name}={value!r}", fixed


def _fuzz(target: Target, run: Pass) -> list[str]:
    """Every operation under ``run``; the failures, one message per operation and round."""
    headers = {"Authorization": f"Bearer {target.token(run.role)}"}
    operations = [result.ok() for result in target.schema.get_all_operations()]
    assert len(operations) >= OPERATIONS  # the whole document was loaded
    failures = []
    for operation in operations:
        label = _label(operation)
        excluded, added = _checks(label)
        for round_name, strategy in _strategies(operation, target.path_ids):
            try:
                _run(strategy, run.examples, headers, excluded, added)
            except (Exception, FailureGroup) as error:  # all reported together below
                failures.append(f"{label} [{run.role} {round_name}]: {error}")
    return failures


Check = Callable[[CheckContext, Response, schemathesis.Case], bool | None]


def _checks(label: str) -> tuple[list[Check], list[Check]]:
    """The built-in checks to leave out for an operation, and the checks to add."""
    excluded: list[Check] = []
    added: list[Check] = []
    if label in REFUSES_SOME_VALID_REQUESTS:
        excluded.append(positive_data_acceptance)
    excluded.append(negative_data_rejection)
    added.append(ingest_refuses_invalid_items if label in INGEST else refuses_invalid_data_as_sent)
    return excluded, added


def refuses_invalid_data_as_sent(
    ctx: CheckContext, response: Response, case: schemathesis.Case
) -> bool | None:
    """Schemathesis's "invalid data is rejected", judged on the headers that were sent.

    The run's credentials replace the generated ``Authorization`` header, so a negative
    case whose only broken part was that header reaches the app as a valid request; the
    built-in check, reading the generated headers, would call its 200 a failure.
    """
    generated = case.headers
    sent = response.request.headers
    case.headers = CaseInsensitiveDict(
        {**(generated or {}), **{k: sent[k] for k in CREDENTIAL_HEADERS if k in sent}}
    )
    try:
        return negative_data_rejection(ctx, response, case)
    finally:
        case.headers = generated


def ingest_refuses_invalid_items(
    _ctx: CheckContext, response: Response, case: schemathesis.Case
) -> bool | None:
    """The ingest endpoints' form of "invalid data is rejected": a batch is judged item by
    item, so a batch with invalid items may be answered 202, naming each refused item."""
    meta = case.meta
    if meta is None or meta.generation.mode.is_positive or response.status_code != 202:
        return None
    answer = response.json()
    if not answer["rejected"]:
        raise AssertionError(f"invalid data accepted whole: {answer} for {case.body!r}")
    return True


def _run(
    strategy: SearchStrategy[schemathesis.Case],
    examples: int,
    headers: dict[str, str],
    excluded: list[Check],
    added: list[Check],
) -> None:
    @hypothesis_settings(
        max_examples=examples,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy)
    def call(case: schemathesis.Case) -> None:
        case.call_and_validate(headers=headers, excluded_checks=excluded, additional_checks=added)

    call()


def _drain_accepted(target: Target, tmp_path: Path) -> dict[str, int]:
    """Drain what the ingest endpoints accepted into a warehouse of this test's own."""
    settings = target.settings.model_copy(update={"warehouse_path": tmp_path / "warehouse"})
    engine = target.app.state.perennial.engine
    report = drain_inbox(settings, engine)
    with engine.connect() as connection:
        counts = inbox_counts(connection)
    return {"requests": report.requests, **counts}


@pytest.mark.slow
def test_every_operation_answers_as_documented_to_an_admin_and_a_viewer(
    target: Target, tmp_path: Path
) -> None:
    failures = _fuzz(target, ADMIN_PASS) + _fuzz(target, VIEWER_PASS)
    assert not failures, "\n\n".join(failures)
    drained = _drain_accepted(target, tmp_path)
    assert drained["requests"] > 0, "the fuzzing never got an ingest request accepted"
    assert drained["pending"] == drained["failed"] == 0, drained
