"""Schemathesis against the sign-in and administration endpoints: no 500s, responses match
the OpenAPI document. Bounded; run as an admin key (the endpoints' widest path) on a fresh
store. The positive-data check is left out: a schema-valid username with a leading space
or a second user with a taken name is correctly refused with 422 or 409."""

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

PREFIXES = ("/v1/auth", "/v1/admin")


@pytest.mark.slow
def test_auth_and_admin_endpoints_never_fail_and_match_their_schema(tmp_path: Path) -> None:
    app = create_app(Settings(home=tmp_path / "home"))
    with app.state.perennial.engine.begin() as connection:
        token = create_api_key(
            connection, name="fuzz", roles=frozenset({Role.ADMIN}), created_by="tests"
        ).token
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    operations = [
        result.ok()
        for result in schema.get_all_operations()
        if result.ok().path.startswith(PREFIXES)
    ]
    assert len(operations) == 12

    for operation in operations:

        @hypothesis_settings(
            max_examples=15,
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
