"""Users: created with a password shown once, listed, disabled, re-roled; every change audited."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from perennial.access.audit import query_audit
from perennial.access.passwords import verify_password
from perennial.access.roles import Role
from perennial.access.sessions import open_session, resolve_session
from perennial.access.tables import AUDIT_LOG, USERS, WEB_SESSIONS
from perennial.access.users import (
    FIRST_ADMIN,
    CreatedUser,
    UnknownUserError,
    UserConflictError,
    UserError,
    create_user,
    ensure_first_admin,
    find_user,
    get_user,
    list_users,
    set_disabled,
    set_roles,
)
from perennial.config import Settings
from perennial.store.operational import create_engine_for, migrate
from tests.access.conftest import audit_actions

OPERATOR = frozenset({Role.OPERATOR})
ADMIN = frozenset({Role.ADMIN})
INJECTIONS = [
    "' OR 1=1 --",
    "Robert'); DROP TABLE users;--",
    "<script>alert('x')</script>",
    '"><img src=x onerror=alert(1)>',
    "{{ 7*7 }}",
    "张三 & 李四",
]


def _add(
    engine: sa.Engine, username: str, roles: frozenset[Role] = OPERATOR, **extra: str
) -> CreatedUser:
    with engine.begin() as connection:
        return create_user(connection, username=username, roles=roles, actor="tests", **extra)


def test_a_new_user_gets_a_generated_password_once_and_only_its_hash_is_stored(
    engine: sa.Engine,
) -> None:
    created = _add(engine, "li.lei", display_name="李雷")
    assert created.password is not None and len(created.password) == 20
    with engine.connect() as connection:
        row = connection.execute(sa.select(USERS)).mappings().one()
    assert created.password not in str(dict(row))
    assert verify_password(row["password_hash"], created.password)
    assert created.user.display_name == "李雷"
    assert created.user.roles == OPERATOR
    assert not created.user.disabled
    assert "password" not in repr(created.user)


def test_a_chosen_password_is_not_echoed_back_and_must_meet_the_policy(engine: sa.Engine) -> None:
    created = _add(engine, "han.meimei", password="a long enough secret")
    assert created.password is None
    with pytest.raises(UserError, match="at least 12"):
        _add(engine, "short.pw", password="short")
    with engine.connect() as connection:
        assert find_user(connection, "short.pw") is None


@pytest.mark.parametrize("name", INJECTIONS)
def test_injection_strings_are_stored_verbatim_as_usernames_and_display_names(
    engine: sa.Engine, name: str
) -> None:
    created = _add(engine, name, display_name=name)
    with engine.connect() as connection:
        found = find_user(connection, name)
        assert [user.username for user in list_users(connection)] == [name]
        assert connection.execute(sa.select(sa.func.count()).select_from(USERS)).scalar() == 1
    assert found is not None
    assert found.user_id == created.user.user_id
    assert found.display_name == name


@pytest.mark.parametrize(
    "username", ["", " padded", "padded ", "x" * 65, "line\nbreak", "nul\x00", "bidi\u202e"]
)
def test_malformed_usernames_are_refused_and_nothing_is_stored(
    engine: sa.Engine, username: str
) -> None:
    with pytest.raises(UserError):
        _add(engine, username)
    with engine.connect() as connection:
        assert list_users(connection) == []
        assert query_audit(connection) == []


def test_display_names_have_a_length_limit_and_default_to_the_username(engine: sa.Engine) -> None:
    assert _add(engine, "wang").user.display_name == "wang"
    with pytest.raises(UserError):
        _add(engine, "zhao", display_name="x" * 129)
    with pytest.raises(UserError):
        _add(engine, "qian", display_name="   ")


def test_usernames_differing_only_in_case_are_taken(engine: sa.Engine) -> None:
    _add(engine, "Alice")
    with pytest.raises(UserConflictError, match="taken"):
        _add(engine, "alice")
    with pytest.raises(UserError, match="at least one role"):
        _add(engine, "bob", roles=frozenset())
    assert audit_actions(engine) == ["user.created"]


def test_creation_is_audited_in_the_same_transaction(engine: sa.Engine) -> None:
    with pytest.raises(RuntimeError), engine.begin() as connection:
        create_user(connection, username="ghost", roles=OPERATOR, actor="user:admin")
        raise RuntimeError("the caller fails after the change")
    assert audit_actions(engine) == []
    _add(engine, "kept")
    with engine.connect() as connection:
        (entry,) = query_audit(connection)
    assert (entry["actor"], entry["action"], entry["subject_id"]) == (
        "tests",
        "user.created",
        "kept",
    )
    assert entry["detail"] == {"display_name": "kept", "roles": ["operator"]}


def test_disabling_ends_sessions_and_enabling_lifts_a_lock_out(
    engine: sa.Engine, settings: Settings
) -> None:
    user = _add(engine, "agent.wu", frozenset({Role.AGENT})).user
    now = datetime.now(UTC)
    with engine.begin() as connection:
        opened = open_session(connection, user.user_id, now, settings)
        disabled = set_disabled(connection, user.user_id, True, actor="user:admin")
        assert resolve_session(connection, opened.token, now) is None
        assert connection.execute(sa.select(WEB_SESSIONS)).first() is None
        connection.execute(
            USERS.update().values(failed_logins=3, locked_until=now + timedelta(minutes=5))
        )
        enabled = set_disabled(connection, user.user_id, False, actor="user:admin")
    assert disabled.disabled
    assert not enabled.disabled
    assert (enabled.failed_logins, enabled.locked_until) == (0, None)
    assert audit_actions(engine) == ["user.created", "user.disabled", "user.enabled"]


def test_roles_change_with_before_and_after_in_the_audit_log(engine: sa.Engine) -> None:
    user = _add(engine, "ops").user
    with engine.begin() as connection:
        changed = set_roles(
            connection, user.user_id, frozenset({Role.AGENT, Role.VIEWER}), actor="user:root"
        )
        entry = query_audit(connection, action="user.roles_changed")[0]
        with pytest.raises(UserError):
            set_roles(connection, user.user_id, frozenset(), actor="user:root")
    assert changed.roles == {Role.AGENT, Role.VIEWER}
    assert entry["detail"] == {"before": ["operator"], "after": ["agent", "viewer"]}
    assert entry["actor"] == "user:root"


def test_the_last_enabled_admin_can_be_neither_disabled_nor_demoted(engine: sa.Engine) -> None:
    first = _add(engine, "root", ADMIN).user
    with engine.begin() as connection:
        with pytest.raises(UserConflictError, match="admin must remain"):
            set_disabled(connection, first.user_id, True, actor="user:root")
        with pytest.raises(UserConflictError):
            set_roles(connection, first.user_id, OPERATOR, actor="user:root")
    second = _add(engine, "root2", ADMIN).user
    with engine.begin() as connection:
        set_roles(connection, first.user_id, OPERATOR, actor="user:root2")
        with pytest.raises(UserConflictError):
            set_disabled(connection, second.user_id, True, actor="user:root2")
        assert get_user(connection, first.user_id).roles == OPERATOR


def test_unknown_user_ids_raise_a_clear_error(engine: sa.Engine) -> None:
    with engine.begin() as connection:
        with pytest.raises(UnknownUserError):
            get_user(connection, "nope")
        with pytest.raises(UnknownUserError):
            set_disabled(connection, "../../etc/passwd", True, actor="tests")
        assert connection.execute(sa.select(AUDIT_LOG)).first() is None


def test_the_first_admin_is_created_once_with_a_fresh_generated_password(
    engine: sa.Engine, tmp_path: Path
) -> None:
    with engine.begin() as connection:
        created = ensure_first_admin(connection)
        again = ensure_first_admin(connection)
    assert again is None
    assert created is not None and created.password is not None
    assert created.user.username == FIRST_ADMIN
    assert created.user.roles == ADMIN
    other = Settings(home=tmp_path / "other")
    migrate(other)
    with create_engine_for(other).begin() as connection:
        elsewhere = ensure_first_admin(connection)
    assert elsewhere is not None
    assert elsewhere.password != created.password  # no default password anywhere


def test_no_first_admin_is_added_when_any_user_exists(engine: sa.Engine) -> None:
    _add(engine, "viewer.only", frozenset({Role.VIEWER}))
    with engine.begin() as connection:
        assert ensure_first_admin(connection) is None
        assert [user.username for user in list_users(connection)] == ["viewer.only"]
