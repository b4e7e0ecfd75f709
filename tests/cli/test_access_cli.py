"""``perennial init|users|apikeys``: secrets printed once, clear errors, exit codes."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from perennial.access.api_keys import resolve_api_key
from perennial.access.audit import query_audit
from perennial.access.roles import Principal, Role
from perennial.access.sign_in import sign_in
from perennial.cli.app import app
from perennial.config import Settings
from perennial.errors import ExitCode, PerennialError
from perennial.store.operational import create_engine_for

PASSWORD = re.compile(r"password: (\S+)")
KEY = re.compile(r"key: (prn_\S+)")


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


def _run(home: Path, *args: str) -> Result:
    return CliRunner().invoke(app, list(args), env={"PERENNIAL_HOME": str(home), "COLUMNS": "200"})


def _exit_code(result: Result) -> int:
    """The code ``perennial`` exits with: ``main()`` maps expected errors to their code."""
    if isinstance(result.exception, PerennialError):
        return int(result.exception.exit_code)
    return result.exit_code


def _signs_in(home: Path, username: str, password: str) -> bool:
    settings = Settings(home=home)
    with create_engine_for(settings).begin() as connection:
        outcome = sign_in(connection, username, password, datetime.now(UTC), settings)
    return isinstance(outcome, Principal)


def test_init_creates_the_first_admin_once_and_prints_the_password_once(home: Path) -> None:
    first = _run(home, "init")
    second = _run(home, "init")
    assert first.exit_code == second.exit_code == 0
    match = PASSWORD.search(first.output)
    assert match is not None
    assert "username: admin" in first.output
    assert "password" not in second.output
    assert _signs_in(home, "admin", match.group(1))
    assert not _signs_in(home, "admin", "admin")


def test_users_add_prints_a_working_password_and_list_shows_the_user(home: Path) -> None:
    added = _run(
        home, "users", "add", "li.na", "--role", "operator,agent", "--display-name", "李娜"
    )
    assert added.exit_code == 0, added.output
    password = PASSWORD.search(added.output)
    assert password is not None
    assert _signs_in(home, "li.na", password.group(1))
    listed = _run(home, "users", "list")
    assert "li.na" in listed.output and "李娜" in listed.output
    assert "agent,operator" in listed.output
    assert password.group(1) not in listed.output


def test_names_with_markup_or_injection_are_printed_verbatim(home: Path) -> None:
    name = "[bold]' OR 1=1 --"
    assert _run(home, "users", "add", name, "--role", "viewer").exit_code == 0
    assert name in _run(home, "users", "list").output


def test_users_disable_and_enable_are_audited_with_the_cli_actor(home: Path) -> None:
    _run(home, "users", "add", "wu", "--role", "agent")
    _run(home, "users", "add", "boss", "--role", "admin")
    assert _run(home, "users", "disable", "wu").exit_code == 0
    assert "disabled" in _run(home, "users", "list").output
    assert _run(home, "users", "enable", "wu").exit_code == 0
    with create_engine_for(Settings(home=home)).connect() as connection:
        entries = query_audit(connection, subject_id="wu")
    assert [e["action"] for e in entries] == ["user.enabled", "user.disabled", "user.created"]
    assert all(e["actor"].startswith("cli") for e in entries)


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (["users", "add", "x", "--role", "boss"], ExitCode.USAGE),
        (["users", "add", "x"], ExitCode.USAGE),
        (["users", "add", " padded", "--role", "viewer"], ExitCode.INVALID_INPUT),
        (["users", "disable", "ghost"], ExitCode.INVALID_INPUT),
        (["apikeys", "create", "etl", "--role", "operator", "--expires-days", "0"], ExitCode.USAGE),
        (["apikeys", "create", "etl", "--role", "root"], ExitCode.USAGE),
    ],
)
def test_bad_arguments_fail_with_a_clear_code(home: Path, args: list[str], code: int) -> None:
    result = _run(home, *args)
    assert _exit_code(result) == code, result.output


def test_a_taken_username_is_refused(home: Path) -> None:
    assert _run(home, "users", "add", "Ma", "--role", "viewer").exit_code == 0
    result = _run(home, "users", "add", "ma", "--role", "viewer")
    assert _exit_code(result) == ExitCode.INVALID_INPUT
    assert "taken" in str(result.exception)


def test_the_last_admin_cannot_be_disabled(home: Path) -> None:
    _run(home, "init")
    result = _run(home, "users", "disable", "admin")
    assert _exit_code(result) == ExitCode.INVALID_INPUT
    assert "admin must remain" in str(result.exception)


def test_apikeys_create_prints_a_working_key_that_revoke_stops(home: Path) -> None:
    created = _run(home, "apikeys", "create", "nightly ETL", "--role", "operator,agent")
    assert created.exit_code == 0, created.output
    token = KEY.search(created.output)
    assert token is not None
    engine = create_engine_for(Settings(home=home))
    with engine.connect() as connection:
        principal = resolve_api_key(connection, token.group(1), datetime.now(UTC))
    assert principal is not None and principal.roles == {Role.OPERATOR, Role.AGENT}
    key_id = principal.subject.removeprefix("key:")
    listed = _run(home, "apikeys", "list").output
    assert key_id in listed and "nightly ETL" in listed and token.group(1) not in listed
    assert _run(home, "apikeys", "revoke", key_id).exit_code == 0
    with engine.connect() as connection:
        assert resolve_api_key(connection, token.group(1), datetime.now(UTC)) is None
    assert "revoked" in _run(home, "apikeys", "list").output
    again = _run(home, "apikeys", "revoke", key_id)
    assert _exit_code(again) == ExitCode.FAILURE


def test_a_key_with_an_expiry_lists_its_date(home: Path) -> None:
    assert (
        _run(home, "apikeys", "create", "temp", "--role", "viewer", "--expires-days", "7").exit_code
        == 0
    )
    listed = _run(home, "apikeys", "list").output
    assert "never" not in listed and "active" in listed


@pytest.mark.parametrize(
    "command",
    [["users"], ["users", "add"], ["users", "list"], ["apikeys"], ["apikeys", "create"]],
)
def test_access_commands_have_help(command: list[str]) -> None:
    result = CliRunner().invoke(app, [*command, "--help"])
    assert result.exit_code == 0
    assert "Usage" in result.output


@pytest.mark.integration
def test_the_installed_command_prints_one_error_line_and_exits_with_its_code(home: Path) -> None:
    environment = {**os.environ, "PERENNIAL_HOME": str(home)}
    command = [sys.executable, "-c", "from perennial.cli.app import main; main()"]
    result = subprocess.run(
        [*command, "users", "disable", "ghost"],
        capture_output=True,
        text=True,
        env=environment,
        check=False,
    )
    assert result.returncode == ExitCode.INVALID_INPUT
    assert result.stderr.strip() == "error: no user named 'ghost'"
    assert "Traceback" not in result.stderr


def test_reset_password_prints_a_new_one_that_works_and_lifts_a_lock_out(home: Path) -> None:
    first = PASSWORD.search(_run(home, "init").output)
    assert first is not None
    for _ in range(Settings(home=home).login_max_failures):
        assert not _signs_in(home, "admin", "wrong password")
    assert not _signs_in(home, "admin", first.group(1))  # locked out

    reset = _run(home, "users", "reset-password", "admin")
    second = re.search(r"new password for admin: (\S+)", reset.output)
    assert reset.exit_code == 0 and second is not None
    assert second.group(1) != first.group(1)
    assert _signs_in(home, "admin", second.group(1))
    assert not _signs_in(home, "admin", first.group(1))
    with create_engine_for(Settings(home=home)).connect() as connection:
        actions = [entry["action"] for entry in query_audit(connection, limit=3)]
    assert "user.password_reset" in actions


def test_reset_password_of_an_unknown_user_fails_clearly(home: Path) -> None:
    _run(home, "init")
    result = _run(home, "users", "reset-password", "nobody")
    assert _exit_code(result) != 0
    assert "nobody" in str(result.exception) + result.output
