"""API keys: shown once, stored hashed, scoped, revocable, expiring."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from perennial.access.api_keys import (
    create_api_key,
    list_api_keys,
    resolve_api_key,
    revoke_api_key,
)
from perennial.access.roles import Role, parse_roles
from perennial.access.tables import API_KEYS
from perennial.config import Settings
from perennial.store.operational import create_engine_for, migrate

NOW = datetime(2026, 6, 1, tzinfo=UTC)


@pytest.fixture
def engine(settings: Settings) -> sa.Engine:
    migrate(settings)
    return create_engine_for(settings)


def test_a_key_resolves_to_its_roles_and_only_its_digest_is_stored(engine: sa.Engine) -> None:
    with engine.begin() as connection:
        issued = create_api_key(
            connection, name="etl", roles=frozenset({Role.OPERATOR}), created_by="admin"
        )
        principal = resolve_api_key(connection, issued.token, NOW)
        stored = connection.execute(sa.select(API_KEYS)).mappings().one()
    assert principal is not None
    assert principal.roles == {Role.OPERATOR}
    assert principal.subject == f"key:{issued.key_id}"
    assert issued.token not in str(dict(stored))


def test_revoked_expired_and_forged_keys_resolve_to_nobody(engine: sa.Engine) -> None:
    with engine.begin() as connection:
        revoked = create_api_key(
            connection, name="a", roles=frozenset({Role.AGENT}), created_by="t"
        )
        expired = create_api_key(
            connection,
            name="b",
            roles=frozenset({Role.AGENT}),
            created_by="t",
            expires_at=NOW - timedelta(seconds=1),
        )
        assert revoke_api_key(connection, revoked.key_id)
        assert not revoke_api_key(connection, revoked.key_id)
        assert resolve_api_key(connection, revoked.token, NOW) is None
        assert resolve_api_key(connection, expired.token, NOW) is None
        assert resolve_api_key(connection, expired.token + "x", NOW) is None
        assert resolve_api_key(connection, "' OR 1=1 --", NOW) is None
        listed = {info.key_id: info for info in list_api_keys(connection)}
    assert listed[revoked.key_id].revoked_at is not None
    assert listed[expired.key_id].expires_at == NOW - timedelta(seconds=1)


def test_roles_parse_by_name_and_unknown_roles_are_named() -> None:
    assert parse_roles("operator, agent") == {Role.OPERATOR, Role.AGENT}
    with pytest.raises(ValueError, match="'boss'"):
        parse_roles("operator,boss")
    with pytest.raises(ValueError, match="at least one role"):
        parse_roles(" , ")
