"""People who sign in to the dashboard: create, list, disable/enable, change roles.

Every change is written to the audit log in the caller's transaction, so a change
without its audit row cannot exist. A new user's password is generated (unless one
is given) and returned once; only its argon2id hash is stored. Signing in (with its
lock-out) lives in :mod:`perennial.access.sign_in`.
"""

from __future__ import annotations

import secrets
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from perennial.access.audit import AuditEntry, record
from perennial.access.passwords import generate_password, hash_password
from perennial.access.roles import Principal, Role, parse_roles
from perennial.access.tables import USERS, WEB_SESSIONS
from perennial.errors import ExitCode, PerennialError

__all__ = [
    "DISPLAY_NAME_MAX_LENGTH",
    "FIRST_ADMIN",
    "USERNAME_MAX_LENGTH",
    "CreatedUser",
    "UnknownUserError",
    "User",
    "UserConflictError",
    "UserError",
    "create_user",
    "ensure_first_admin",
    "find_user",
    "get_user",
    "list_users",
    "reset_password",
    "set_disabled",
    "set_roles",
    "user_from_row",
    "validate_display_name",
    "validate_username",
]

USERNAME_MAX_LENGTH = 64
DISPLAY_NAME_MAX_LENGTH = 128
FIRST_ADMIN = "admin"
"""Username of the admin ``perennial init`` creates when there is no user yet."""


class UserError(PerennialError):
    """A user change that cannot be made (bad name, last admin); nothing was changed."""

    exit_code = ExitCode.INVALID_INPUT


class UnknownUserError(UserError):
    """No user with that id or name."""


class UserConflictError(UserError):
    """The change conflicts with existing users (name taken, last enabled admin)."""


@dataclass(frozen=True, slots=True)
class User:
    """A user as everyone may see it: never the password hash."""

    user_id: str
    username: str
    display_name: str
    roles: frozenset[Role]
    disabled: bool
    failed_logins: int
    locked_until: datetime | None
    created_at: datetime

    def principal(self) -> Principal:
        """What a signed-in request by this user acts as."""
        return Principal(
            subject=f"user:{self.username}",
            roles=self.roles,
            via="session",
            user_id=self.user_id,
        )


@dataclass(frozen=True, slots=True)
class CreatedUser:
    user: User
    password: str | None
    """The generated password, to be shown once; ``None`` when the caller chose one."""


def validate_username(username: str) -> str:
    """Any printable text up to 64 characters, stored verbatim; no surrounding spaces."""
    if not username or len(username) > USERNAME_MAX_LENGTH:
        raise UserError(f"a username has 1 to {USERNAME_MAX_LENGTH} characters")
    if username != username.strip():
        raise UserError("a username cannot start or end with a space")
    _refuse_control_characters(username, "username")
    return username


def validate_display_name(display_name: str) -> str:
    if not display_name.strip() or len(display_name) > DISPLAY_NAME_MAX_LENGTH:
        raise UserError(f"a display name has 1 to {DISPLAY_NAME_MAX_LENGTH} characters")
    _refuse_control_characters(display_name, "display name")
    return display_name


def _refuse_control_characters(text: str, what: str) -> None:
    if any(unicodedata.category(char) in ("Cc", "Cf", "Zl", "Zp") for char in text):
        raise UserError(f"a {what} cannot contain control characters or line breaks")


def user_from_row(row: sa.RowMapping) -> User:
    return User(
        user_id=row["user_id"],
        username=row["username"],
        display_name=row["display_name"],
        roles=parse_roles(row["roles"]),
        disabled=bool(row["disabled"]),
        failed_logins=int(row["failed_logins"]),
        locked_until=_utc_or_none(row["locked_until"]),
        created_at=_utc(row["created_at"]),
    )


def create_user(
    connection: sa.Connection,
    *,
    username: str,
    roles: frozenset[Role],
    actor: str,
    display_name: str | None = None,
    password: str | None = None,
    client: str | None = None,
) -> CreatedUser:
    """Add a user; without ``password`` a strong one is generated and returned once."""
    validate_username(username)
    display_name = validate_display_name(username if display_name is None else display_name)
    if not roles:
        raise UserError("a user needs at least one role")
    _refuse_taken(connection, username)
    generated = generate_password() if password is None else None
    try:
        password_hash = hash_password(password if password is not None else str(generated))
    except ValueError as error:
        raise UserError(str(error)) from None
    row: dict[str, Any] = {
        "user_id": secrets.token_hex(8),
        "username": username,
        "display_name": display_name,
        "password_hash": password_hash,
        "roles": ",".join(sorted(roles)),
        "disabled": False,
        "failed_logins": 0,
        "locked_until": None,
        "created_at": datetime.now(UTC),
    }
    try:
        connection.execute(USERS.insert().values(**row))
    except sa.exc.IntegrityError:  # taken meanwhile by a concurrent request
        raise UserConflictError(f"the username {username!r} is taken") from None
    detail = {"display_name": display_name, "roles": sorted(roles)}
    _audit(connection, actor, "user.created", username, detail, client)
    return CreatedUser(get_user(connection, row["user_id"]), generated)


def _refuse_taken(connection: sa.Connection, username: str) -> None:
    """Names differing only in case would be confused on screen and in the audit log.

    Compared in Python: SQLite's ``lower()`` folds ASCII letters only, so ``Ñ`` and ``ñ``
    (or any name with a non-ASCII capital) would slip past a comparison in SQL.
    """
    folded = username.casefold()
    names = connection.execute(sa.select(USERS.c.username)).scalars()
    if any(name.casefold() == folded for name in names):
        raise UserConflictError(f"the username {username!r} is taken")


def list_users(connection: sa.Connection) -> list[User]:
    rows = connection.execute(sa.select(USERS).order_by(USERS.c.username)).mappings()
    return [user_from_row(row) for row in rows]


def get_user(connection: sa.Connection, user_id: str) -> User:
    row = connection.execute(sa.select(USERS).where(USERS.c.user_id == user_id)).mappings().first()
    if row is None:
        raise UnknownUserError("no such user")
    return user_from_row(row)


def find_user(connection: sa.Connection, username: str) -> User | None:
    row = (
        connection.execute(sa.select(USERS).where(USERS.c.username == username)).mappings().first()
    )
    return None if row is None else user_from_row(row)


def set_disabled(
    connection: sa.Connection,
    user_id: str,
    disabled: bool,
    *,
    actor: str,
    client: str | None = None,
) -> User:
    """Disable (their sessions end at once) or enable (which also lifts a lock-out)."""
    user = get_user(connection, user_id)
    if disabled:
        _keep_an_admin(connection, user, user.roles - {Role.ADMIN})
        connection.execute(WEB_SESSIONS.delete().where(WEB_SESSIONS.c.user_id == user_id))
    values: dict[str, Any] = {"disabled": disabled}
    if not disabled:
        values |= {"failed_logins": 0, "locked_until": None}
    connection.execute(USERS.update().where(USERS.c.user_id == user_id).values(**values))
    action = "user.disabled" if disabled else "user.enabled"
    _audit(connection, actor, action, user.username, {}, client)
    return get_user(connection, user_id)


def reset_password(
    connection: sa.Connection, user_id: str, *, actor: str, client: str | None = None
) -> CreatedUser:
    """A new generated password (returned once); lifts a lock-out and ends the user's sessions,
    so whoever knew the old password is signed out."""
    user = get_user(connection, user_id)
    password = generate_password()
    connection.execute(
        USERS.update()
        .where(USERS.c.user_id == user_id)
        .values(password_hash=hash_password(password), failed_logins=0, locked_until=None)
    )
    connection.execute(WEB_SESSIONS.delete().where(WEB_SESSIONS.c.user_id == user_id))
    _audit(connection, actor, "user.password_reset", user.username, {}, client)
    return CreatedUser(get_user(connection, user_id), password)


def set_roles(
    connection: sa.Connection,
    user_id: str,
    roles: frozenset[Role],
    *,
    actor: str,
    client: str | None = None,
) -> User:
    """Replace a user's roles; they apply to open sessions at their next request."""
    if not roles:
        raise UserError("a user needs at least one role")
    user = get_user(connection, user_id)
    _keep_an_admin(connection, user, roles)
    connection.execute(
        USERS.update().where(USERS.c.user_id == user_id).values(roles=",".join(sorted(roles)))
    )
    detail = {"before": sorted(user.roles), "after": sorted(roles)}
    _audit(connection, actor, "user.roles_changed", user.username, detail, client)
    return get_user(connection, user_id)


def _keep_an_admin(connection: sa.Connection, user: User, roles_after: frozenset[Role]) -> None:
    """Refuse a change that would leave no enabled admin (nobody could undo it)."""
    if Role.ADMIN not in user.roles or user.disabled or Role.ADMIN in roles_after:
        return
    others = [
        other
        for other in list_users(connection)
        if other.user_id != user.user_id and Role.ADMIN in other.roles and not other.disabled
    ]
    if not others:
        raise UserConflictError("at least one enabled admin must remain")


def ensure_first_admin(connection: sa.Connection) -> CreatedUser | None:
    """Create the user ``admin`` with a generated password when there is no user at all.

    Returns the credentials to print once, or ``None`` when users already exist: there
    is never a default password.
    """
    if connection.execute(sa.select(USERS.c.user_id).limit(1)).first() is not None:
        return None
    return create_user(
        connection,
        username=FIRST_ADMIN,
        roles=frozenset({Role.ADMIN}),
        actor="system:init",
        display_name="Administrator",
    )


def _audit(
    connection: sa.Connection,
    actor: str,
    action: str,
    username: str,
    detail: dict[str, Any],
    client: str | None,
) -> None:
    entry = AuditEntry(actor, action, "user", username, detail=detail, client=client)
    record(connection, entry)


def _utc(value: datetime) -> datetime:
    """SQLite returns naive datetimes for timezone-aware columns; they were stored in UTC."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _utc_or_none(value: datetime | None) -> datetime | None:
    return None if value is None else _utc(value)
