"""Web sessions: the token's digest in the database, a CSRF token, expiry, sign-out, disabling."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from perennial.access.roles import Role
from perennial.access.sessions import (
    close_session,
    open_session,
    purge_expired_sessions,
    resolve_session,
    session_digest,
)
from perennial.access.tables import USERS, WEB_SESSIONS
from perennial.access.users import User, create_user, set_roles
from perennial.config import Settings

NOW = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
def user(engine: sa.Engine) -> User:
    with engine.begin() as connection:
        return create_user(
            connection, username="sun", roles=frozenset({Role.AGENT}), actor="tests"
        ).user


def test_only_the_tokens_digest_is_stored_and_the_session_resolves_to_its_user(
    engine: sa.Engine, settings: Settings, user: User
) -> None:
    with engine.begin() as connection:
        opened = open_session(connection, user.user_id, NOW, settings)
        row = connection.execute(sa.select(WEB_SESSIONS)).mappings().one()
        session = resolve_session(connection, opened.token, NOW)
    assert opened.token not in str(dict(row))
    assert row["session_hash"] == session_digest(opened.token)
    assert session is not None
    assert session.csrf_token == opened.csrf_token != opened.token
    assert session.principal.user_id == user.user_id
    assert session.principal.subject == "user:sun"
    assert session.principal.via == "session"
    assert opened.expires_at == NOW + timedelta(hours=settings.session_hours)


def test_every_session_has_its_own_tokens(
    engine: sa.Engine, settings: Settings, user: User
) -> None:
    with engine.begin() as connection:
        sessions = [open_session(connection, user.user_id, NOW, settings) for _ in range(20)]
    assert len({s.token for s in sessions}) == len({s.csrf_token for s in sessions}) == 20


def test_a_session_ends_when_it_expires(engine: sa.Engine, settings: Settings, user: User) -> None:
    with engine.begin() as connection:
        opened = open_session(connection, user.user_id, NOW, settings)
        last_moment = opened.expires_at - timedelta(microseconds=1)
        assert resolve_session(connection, opened.token, last_moment) is not None
        assert resolve_session(connection, opened.token, opened.expires_at) is None
        assert purge_expired_sessions(connection, opened.expires_at) == 1


def test_sign_out_deletes_the_session(engine: sa.Engine, settings: Settings, user: User) -> None:
    with engine.begin() as connection:
        opened = open_session(connection, user.user_id, NOW, settings)
        assert close_session(connection, opened.token)
        assert not close_session(connection, opened.token)
        assert resolve_session(connection, opened.token, NOW) is None


def test_a_disabled_users_session_stops_working_at_once(
    engine: sa.Engine, settings: Settings, user: User
) -> None:
    with engine.begin() as connection:
        opened = open_session(connection, user.user_id, NOW, settings)
        # flag flipped directly: even a session row that survived is refused
        connection.execute(USERS.update().values(disabled=True))
        assert resolve_session(connection, opened.token, NOW) is None


def test_role_changes_apply_to_an_open_session(
    engine: sa.Engine, settings: Settings, user: User
) -> None:
    with engine.begin() as connection:
        opened = open_session(connection, user.user_id, NOW, settings)
        set_roles(connection, user.user_id, frozenset({Role.VIEWER}), actor="user:admin")
        session = resolve_session(connection, opened.token, NOW)
    assert session is not None
    assert session.principal.roles == {Role.VIEWER}


@pytest.mark.parametrize("token", ["", "x" * 1000, "' OR 1=1 --", session_digest("abc")])
def test_forged_tokens_resolve_to_nobody(
    engine: sa.Engine, settings: Settings, user: User, token: str
) -> None:
    with engine.begin() as connection:
        opened = open_session(connection, user.user_id, NOW, settings)
        assert resolve_session(connection, token, NOW) is None
        assert resolve_session(connection, session_digest(opened.token), NOW) is None


def test_opening_a_session_drops_expired_ones(
    engine: sa.Engine, settings: Settings, user: User
) -> None:
    with engine.begin() as connection:
        open_session(connection, user.user_id, NOW, settings)
        later = NOW + timedelta(hours=settings.session_hours, seconds=1)
        open_session(connection, user.user_id, later, settings)
        count = connection.execute(sa.select(sa.func.count()).select_from(WEB_SESSIONS))
        assert count.scalar() == 1
