"""Schemathesis against the customer and lifecycle endpoints: no 500s, responses match OpenAPI.

Bounded (a few dozen generated requests per operation) and run against the demo
serving store as an agent. The positive-data check is left out on purpose: a
schema-valid but unknown stage or a forged cursor is correctly refused with 422 or
400, which that check would count as a failure.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from perennial.access.api_keys import create_api_key
from perennial.access.roles import Role
from perennial.config import Settings
from perennial.service import create_app
from tests.serving.demo_store import DemoStore, demo_store

PREFIXES = ("/v1/customers", "/v1/lifecycle")


@pytest.fixture(scope="session")
def demo(tmp_path_factory: pytest.TempPathFactory) -> DemoStore:
    return demo_store(tmp_path_factory)


@pytest.mark.slow
def test_customer_and_lifecycle_endpoints_never_fail_and_match_their_schema(
    demo: DemoStore, tmp_path: Path
) -> None:
    settings: Settings = demo.settings.model_copy(
        update={
            "home": tmp_path / "home",
            "warehouse_path": demo.settings.warehouse,
            "serving_path": demo.settings.serving_database,
        }
    )
    app = create_app(settings)
    with app.state.perennial.engine.begin() as connection:
        token = create_api_key(
            connection, name="fuzz", roles=frozenset({Role.AGENT}), created_by="tests"
        ).token
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    operations = [
        result.ok()
        for result in schema.get_all_operations()
        if result.ok().path.startswith(PREFIXES)
    ]
    assert len(operations) == 9

    for operation in operations:

        @hypothesis_settings(
            max_examples=30,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy())
        def call(case: schemathesis.Case) -> None:
            case.call_and_validate(
                headers={"Authorization": f"Bearer {token}"},
                excluded_checks=[positive_data_acceptance],
            )

        call()
