"""``perennial users add|list|disable|enable`` and ``perennial apikeys create|list|revoke``.

Secrets are printed once, when they are made: a new user's generated password and a
new API key. Changes made here are audited with the actor ``cli:<os user>``.
"""

from __future__ import annotations

import getpass
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Annotated

import sqlalchemy as sa
import typer
from rich.table import Table
from rich.text import Text

from perennial.access.api_keys import list_api_keys
from perennial.access.key_issuance import issue_api_key, withdraw_api_key
from perennial.access.roles import Role, parse_roles
from perennial.access.users import (
    CreatedUser,
    UnknownUserError,
    User,
    create_user,
    ensure_first_admin,
    find_user,
    list_users,
    reset_password,
    set_disabled,
)
from perennial.cli.output import console
from perennial.config import Settings, load_settings
from perennial.errors import PerennialError
from perennial.store.operational import create_engine_for, migrate

__all__ = ["apikeys_app", "create_first_admin", "print_first_admin", "users_app"]

users_app = typer.Typer(help="People who sign in to the dashboard.", no_args_is_help=True)
apikeys_app = typer.Typer(help="API keys for machines.", no_args_is_help=True)


def _roles(value: str) -> frozenset[Role]:
    try:
        return parse_roles(value)
    except ValueError as error:
        raise typer.BadParameter(str(error)) from None


RoleOption = Annotated[
    str,
    typer.Option(
        "--role",
        help="Role, or several separated by commas: admin, operator, agent, viewer.",
    ),
]


def _actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):  # no login name in some containers
        return "cli"


@contextmanager
def _transaction(settings: Settings | None = None) -> Iterator[sa.Connection]:
    settings = settings or load_settings()
    migrate(settings)
    engine = create_engine_for(settings)
    try:
        with engine.begin() as connection:
            yield connection
    finally:
        engine.dispose()


def _user_named(connection: sa.Connection, username: str) -> User:
    user = find_user(connection, username)
    if user is None:
        raise UnknownUserError(f"no user named {username!r}")
    return user


def _say(line: str) -> None:
    """Print text as it is: names may hold brackets (no Rich markup) and secrets must
    stay on one line to be copied whole."""
    console.print(line, markup=False, highlight=False, soft_wrap=True)


def _roles_text(roles: frozenset[Role] | list[Role]) -> str:
    return ",".join(sorted(roles))


@users_app.command("add")
def _add_user(
    username: Annotated[str, typer.Argument(help="Login name (up to 64 characters).")],
    role: RoleOption,
    display_name: Annotated[
        str | None, typer.Option(help="Name shown in the dashboard (default: the username).")
    ] = None,
) -> None:
    """Add a user with a generated password, printed once."""
    roles = _roles(role)
    with _transaction() as connection:
        created = create_user(
            connection,
            username=username,
            roles=roles,
            actor=_actor(),
            display_name=display_name,
        )
    _say(f"user {created.user.username} ({_roles_text(roles)}) created")
    _say(f"password: {created.password}")
    console.print("It is shown only now: store it safely.")


@users_app.command("list")
def _list_users() -> None:
    """Every user with roles and status."""
    with _transaction() as connection:
        users = list_users(connection)
    now = datetime.now(UTC)
    table = Table(title="Users")
    for column in ("username", "display name", "roles", "status", "created (UTC)"):
        table.add_column(column)
    for user in users:
        table.add_row(
            Text(user.username),
            Text(user.display_name),
            _roles_text(user.roles),
            _status(user, now),
            f"{user.created_at:%Y-%m-%d %H:%M}",
        )
    console.print(table)


def _status(user: User, now: datetime) -> str:
    if user.disabled:
        return "disabled"
    if user.locked_until is not None and user.locked_until > now:
        return f"locked until {user.locked_until:%Y-%m-%d %H:%M} UTC"
    return "active"


@users_app.command("reset-password")
def _reset_password(username: Annotated[str, typer.Argument()]) -> None:
    """Give a user a new generated password, printed once (lifts a lock-out, ends sessions)."""
    with _transaction() as connection:
        user = _user_named(connection, username)
        reset = reset_password(connection, user.user_id, actor=_actor())
    _say(f"new password for {username}: {reset.password}")
    console.print("It is shown only now: store it safely.")


@users_app.command("disable")
def _disable_user(username: Annotated[str, typer.Argument()]) -> None:
    """Disable a user: sign-in refused, open sessions end at once."""
    with _transaction() as connection:
        user = _user_named(connection, username)
        set_disabled(connection, user.user_id, True, actor=_actor())
    _say(f"user {username} disabled")


@users_app.command("enable")
def _enable_user(username: Annotated[str, typer.Argument()]) -> None:
    """Enable a user again (also lifts a lock-out)."""
    with _transaction() as connection:
        user = _user_named(connection, username)
        set_disabled(connection, user.user_id, False, actor=_actor())
    _say(f"user {username} enabled")


@apikeys_app.command("create")
def _create_key(
    name: Annotated[str, typer.Argument(help="What the key is for (e.g. 'nightly ETL').")],
    role: RoleOption,
    expires_days: Annotated[
        int | None, typer.Option(min=1, max=3650, help="Days until it stops working.")
    ] = None,
) -> None:
    """Issue an API key, printed once; only its digest is stored."""
    roles = _roles(role)
    expires_at = None if expires_days is None else datetime.now(UTC) + timedelta(expires_days)
    with _transaction() as connection:
        try:
            issued = issue_api_key(
                connection, name=name, roles=roles, actor=_actor(), expires_at=expires_at
            )
        except ValueError as error:
            raise typer.BadParameter(str(error), param_hint="NAME") from None
    console.print(f"key {issued.key_id} ({_roles_text(roles)}) created")
    _say(f"key: {issued.token}")
    console.print("It is shown only now: send it as 'Authorization: Bearer <key>'.")


@apikeys_app.command("list")
def _list_keys() -> None:
    """Every key (never the key itself) with its roles and state."""
    with _transaction() as connection:
        keys = list_api_keys(connection)
    now = datetime.now(UTC)
    table = Table(title="API keys")
    for column in ("key id", "name", "roles", "status", "created by", "expires (UTC)"):
        table.add_column(column)
    for key in keys:
        status = "active"
        if key.revoked_at is not None:
            status = "revoked"
        elif key.expires_at is not None and key.expires_at <= now:
            status = "expired"
        expires = "never" if key.expires_at is None else f"{key.expires_at:%Y-%m-%d %H:%M}"
        table.add_row(
            key.key_id,
            Text(key.name),
            _roles_text(key.roles),
            status,
            Text(key.created_by),
            expires,
        )
    console.print(table)


@apikeys_app.command("revoke")
def _revoke_key(
    key_id: Annotated[str, typer.Argument(help="The id `apikeys list` shows.")],
) -> None:
    """Revoke a key now."""
    with _transaction() as connection:
        if not withdraw_api_key(connection, key_id, actor=_actor()):
            raise PerennialError(f"no live API key with id {key_id!r}")
    _say(f"key {key_id} revoked")


def create_first_admin(settings: Settings) -> CreatedUser | None:
    """The first admin (username ``admin``, generated password) when there is no user yet;
    ``perennial init`` and ``make demo`` call it and print the result once."""
    with _transaction(settings) as connection:
        return ensure_first_admin(connection)


def print_first_admin(created: CreatedUser | None) -> None:
    if created is None:
        return
    console.print("[bold]first admin created[/]: sign in to the dashboard with")
    _say(f"  username: {created.user.username}")
    _say(f"  password: {created.password}")
    console.print("The password is shown only now: store it safely.")
