"""Signing in: the right password opens, failures lock the account, strangers learn nothing."""

from __future__ import annotations

import secrets
import statistics
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from argon2 import PasswordHasher

from perennial.access.audit import query_audit
from perennial.access.passwords import needs_rehash, verify_password
from perennial.access.roles import Principal, Role
from perennial.access.sessions import open_session, resolve_session
from perennial.access.sign_in import SignInFailure, sign_in
from perennial.access.tables import USERS
from perennial.access.users import create_user, set_disabled
from perennial.config import Settings
from perennial.store.operational import create_engine_for, migrate
from tests.access.conftest import audit_actions

NOW = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)
PASSWORD = "a long enough secret"
MAX_FAILURES = 3
LOCKOUT_MINUTES = 10


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        home=tmp_path / "home",
        login_max_failures=MAX_FAILURES,
        login_lockout_minutes=LOCKOUT_MINUTES,
    )


@pytest.fixture
def user_id(engine: sa.Engine) -> str:
    with engine.begin() as connection:
        created = create_user(
            connection,
            username="zhou",
            roles=frozenset({Role.AGENT}),
            actor="tests",
            password=PASSWORD,
        )
    return created.user.user_id


def _try(
    engine: sa.Engine, settings: Settings, password: str, *, at: datetime = NOW, name: str = "zhou"
) -> Principal | SignInFailure:
    with engine.begin() as connection:
        return sign_in(connection, name, password, at, settings, client="10.0.0.7")


def test_the_right_password_gives_the_users_principal(
    engine: sa.Engine, settings: Settings, user_id: str
) -> None:
    principal = _try(engine, settings, PASSWORD)
    assert principal == Principal("user:zhou", frozenset({Role.AGENT}), "session", user_id)
    with engine.connect() as connection:
        (entry,) = query_audit(connection, action="login.succeeded")
    assert (entry["actor"], entry["subject_id"], entry["client"]) == (
        "user:zhou",
        "zhou",
        "10.0.0.7",
    )


def test_a_wrong_password_and_an_unknown_user_fail_with_the_same_words(
    engine: sa.Engine, settings: Settings, user_id: str
) -> None:
    wrong = _try(engine, settings, "not the password")
    unknown = _try(engine, settings, PASSWORD, name="nobody")
    assert isinstance(wrong, SignInFailure) and isinstance(unknown, SignInFailure)
    assert wrong == unknown == SignInFailure("invalid_credentials")
    assert wrong.message == "wrong username or password"
    assert audit_actions(engine, action="login.failed") == ["login.failed", "login.failed"]


def test_n_failures_in_a_row_lock_the_account_even_against_the_right_password(
    engine: sa.Engine, settings: Settings, user_id: str
) -> None:
    outcomes = [
        _try(engine, settings, f"guess {i}", at=NOW + timedelta(seconds=i))
        for i in range(MAX_FAILURES)
    ]
    until = NOW + timedelta(seconds=MAX_FAILURES - 1, minutes=LOCKOUT_MINUTES)
    assert outcomes[:-1] == [SignInFailure("invalid_credentials")] * (MAX_FAILURES - 1)
    assert outcomes[-1] == SignInFailure("locked", until)
    assert _try(engine, settings, PASSWORD, at=until - timedelta(seconds=1)) == SignInFailure(
        "locked", until
    )
    assert isinstance(_try(engine, settings, PASSWORD, at=until), Principal)
    assert audit_actions(engine, subject_id="zhou") == [
        "user.created",
        *["login.failed"] * MAX_FAILURES,
        "login.locked",
        "login.refused_locked",
        "login.succeeded",
    ]
    assert isinstance(outcomes[-1], SignInFailure)
    assert "try again after" in outcomes[-1].message


def test_a_success_resets_the_count_of_failures(
    engine: sa.Engine, settings: Settings, user_id: str
) -> None:
    for _ in range(2):
        for _ in range(MAX_FAILURES - 1):
            assert _try(engine, settings, "guess") == SignInFailure("invalid_credentials")
        assert isinstance(_try(engine, settings, PASSWORD), Principal)


def test_after_a_lock_expires_the_account_gets_n_fresh_attempts(
    engine: sa.Engine, settings: Settings, user_id: str
) -> None:
    for _ in range(MAX_FAILURES):
        _try(engine, settings, "guess")
    later = NOW + timedelta(minutes=LOCKOUT_MINUTES, seconds=1)
    assert _try(engine, settings, "guess", at=later) == SignInFailure("invalid_credentials")
    assert isinstance(_try(engine, settings, PASSWORD, at=later), Principal)


def test_unknown_usernames_lock_out_exactly_like_real_ones(
    engine: sa.Engine, settings: Settings, user_id: str
) -> None:
    real = [_try(engine, settings, "guess") for _ in range(MAX_FAILURES + 1)]
    ghost = [_try(engine, settings, "guess", name="ghost") for _ in range(MAX_FAILURES + 1)]
    assert real == ghost
    assert ghost[-1] == SignInFailure("locked", NOW + timedelta(minutes=LOCKOUT_MINUTES))
    later = NOW + timedelta(minutes=LOCKOUT_MINUTES, seconds=1)
    assert _try(engine, settings, "guess", at=later, name="ghost") == SignInFailure(
        "invalid_credentials"
    )


def test_a_disabled_user_cannot_sign_in_and_is_told_nothing_more(
    engine: sa.Engine, settings: Settings, user_id: str
) -> None:
    with engine.begin() as connection:
        create_user(connection, username="boss", roles=frozenset({Role.ADMIN}), actor="t")
        set_disabled(connection, user_id, True, actor="user:boss")
    assert _try(engine, settings, PASSWORD) == SignInFailure("invalid_credentials")
    with engine.connect() as connection:
        (entry,) = query_audit(connection, action="login.failed")
    assert entry["detail"] == {"reason": "disabled"}


@pytest.mark.parametrize("name", ["", "x" * 10_000, "' OR '1'='1", "zhou' --"])
def test_odd_usernames_and_passwords_fail_without_raising(
    engine: sa.Engine, settings: Settings, user_id: str, name: str
) -> None:
    assert _try(engine, settings, "' OR '1'='1", name=name) == SignInFailure("invalid_credentials")
    assert _try(engine, settings, "p" * 100_000) == SignInFailure("invalid_credentials")


def test_an_old_hash_is_upgraded_at_the_next_successful_sign_in(
    engine: sa.Engine, settings: Settings, user_id: str
) -> None:
    weak = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1).hash(PASSWORD)
    with engine.begin() as connection:
        connection.execute(USERS.update().values(password_hash=weak))
    assert isinstance(_try(engine, settings, PASSWORD), Principal)
    with engine.connect() as connection:
        stored = connection.execute(sa.select(USERS.c.password_hash)).scalar_one()
    assert stored != weak
    assert not needs_rehash(stored)
    assert verify_password(stored, PASSWORD)


def test_an_unknown_user_costs_about_as_long_as_a_wrong_password(
    engine: sa.Engine, settings: Settings, user_id: str
) -> None:
    relaxed = Settings(home=settings.home, login_max_failures=1000)

    def median_seconds(name: str) -> float:
        times = []
        for _ in range(5):
            started = time.perf_counter()
            _try(engine, relaxed, "wrong password", name=name)
            times.append(time.perf_counter() - started)
        return statistics.median(times)

    known, unknown = median_seconds("zhou"), median_seconds("nobody-here")
    assert unknown > 0.5 * known, (known, unknown)


@pytest.mark.integration
def test_sign_in_lock_out_and_sessions_work_the_same_on_postgresql(
    tmp_path: Path, postgres_url: str
) -> None:
    settings = Settings(home=tmp_path / "home", operational_url=postgres_url, login_max_failures=2)
    migrate(settings)
    engine = create_engine_for(settings)
    name, stranger = f"pg-{secrets.token_hex(4)}", f"ghost-{secrets.token_hex(4)}"
    try:
        with engine.begin() as connection:
            create_user(
                connection,
                username=name,
                roles=frozenset({Role.VIEWER}),
                actor="t",
                password=PASSWORD,
            )
        for who in (name, stranger):
            outcomes = [_try(engine, settings, "guess", name=who) for _ in range(3)]
            assert [getattr(o, "reason", None) for o in outcomes] == [
                "invalid_credentials",
                "locked",
                "locked",
            ]
        later = NOW + timedelta(minutes=settings.login_lockout_minutes, seconds=1)
        principal = _try(engine, settings, PASSWORD, at=later, name=name)
        assert isinstance(principal, Principal) and principal.user_id is not None
        with engine.begin() as connection:
            opened = open_session(connection, principal.user_id, later, settings)
            session = resolve_session(connection, opened.token, later)
        assert session is not None and session.user.username == name
    finally:
        engine.dispose()
