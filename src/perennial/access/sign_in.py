"""Signing in with a username and password, with lock-out after repeated failures.

After ``settings.login_max_failures`` failures in a row an account is locked for
``settings.login_lockout_minutes``; while locked even the right password fails. The
answer never says whether a username exists: an unknown name costs one argon2
verification against a dummy hash (as long as a wrong password) and is locked out
after the same number of failures, counted from the audit log (it has no row to
count in). Every attempt, good or bad, is audited in the caller's transaction, so
the caller must commit after a failure too.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import sqlalchemy as sa

from perennial.access.audit import AuditEntry, record
from perennial.access.passwords import (
    dummy_hash,
    hash_password,
    needs_rehash,
    verify_password,
)
from perennial.access.roles import Principal
from perennial.access.tables import AUDIT_LOG, USERS
from perennial.access.users import USERNAME_MAX_LENGTH, User, user_from_row
from perennial.config import Settings

__all__ = ["SignInFailure", "sign_in"]

_FAILED = "login.failed"
_LOCKED = "login.locked"
_REFUSED = "login.refused_locked"
_SUCCEEDED = "login.succeeded"


@dataclass(frozen=True, slots=True)
class SignInFailure:
    """Why a sign-in failed, in words that never reveal whether the user exists."""

    reason: Literal["invalid_credentials", "locked"]
    retry_at: datetime | None = None
    """When a locked account accepts attempts again."""

    @property
    def message(self) -> str:
        if self.reason == "locked" and self.retry_at is not None:
            return (
                "too many failed sign-ins: try again after "
                f"{self.retry_at.astimezone(UTC):%Y-%m-%d %H:%M} UTC"
            )
        return "wrong username or password"


def sign_in(
    connection: sa.Connection,
    username: str,
    password: str,
    now: datetime,
    settings: Settings,
    *,
    client: str | None = None,
) -> Principal | SignInFailure:
    """The principal of a correct, enabled, unlocked account, or why not."""
    now = now.astimezone(UTC)
    row = None
    if 0 < len(username) <= USERNAME_MAX_LENGTH:
        query = sa.select(USERS).where(USERS.c.username == username)
        row = connection.execute(query).mappings().first()
    attempt = _Attempt(connection, username, now, settings, client)
    if row is None:
        return attempt.unknown_user(password)
    user = user_from_row(row)
    if user.locked_until is not None and user.locked_until > now:
        verify_password(dummy_hash(), password)
        return attempt.refused(user.locked_until)
    if not verify_password(row["password_hash"], password):
        return attempt.failed_for(user, "wrong_password")
    if user.disabled:
        return attempt.failed_for(user, "disabled")
    return attempt.succeeded(user, password, row["password_hash"])


@dataclass(slots=True)
class _Attempt:
    connection: sa.Connection
    username: str
    now: datetime
    settings: Settings
    client: str | None

    def unknown_user(self, password: str) -> SignInFailure:
        verify_password(dummy_hash(), password)
        locked_at = self._last_lock()
        if locked_at is not None and locked_at + self._lockout > self.now:
            return self.refused(locked_at + self._lockout)
        self._audit(_FAILED, {"reason": "unknown_user"})
        if self._failures_since(locked_at) >= self.settings.login_max_failures:
            return self._lock()
        return SignInFailure("invalid_credentials")

    def failed_for(self, user: User, reason: str) -> SignInFailure:
        self._audit(_FAILED, {"reason": reason})
        where = USERS.c.user_id == user.user_id
        self.connection.execute(
            USERS.update().where(where).values(failed_logins=USERS.c.failed_logins + 1)
        )
        failures = self.connection.execute(sa.select(USERS.c.failed_logins).where(where))
        if failures.scalar_one() < self.settings.login_max_failures:
            return SignInFailure("invalid_credentials")
        until = self.now + self._lockout
        self.connection.execute(
            USERS.update().where(where).values(failed_logins=0, locked_until=until)
        )
        return self._lock()

    def refused(self, until: datetime) -> SignInFailure:
        self._audit(_REFUSED, {"locked_until": until.isoformat()})
        return SignInFailure("locked", until)

    def succeeded(self, user: User, password: str, stored_hash: str) -> Principal:
        values: dict[str, Any] = {"failed_logins": 0, "locked_until": None}
        if needs_rehash(stored_hash):
            values["password_hash"] = hash_password(password)
        self.connection.execute(
            USERS.update().where(USERS.c.user_id == user.user_id).values(**values)
        )
        self._audit(_SUCCEEDED, {}, actor=f"user:{user.username}")
        return user.principal()

    @property
    def _lockout(self) -> timedelta:
        return timedelta(minutes=self.settings.login_lockout_minutes)

    def _lock(self) -> SignInFailure:
        minutes = self.settings.login_lockout_minutes
        self._audit(_LOCKED, {"failures": self.settings.login_max_failures, "minutes": minutes})
        return SignInFailure("locked", self.now + self._lockout)

    def _last_lock(self) -> datetime | None:
        query = (
            sa.select(sa.func.max(AUDIT_LOG.c.at))
            .where(*self._about_this_name())
            .where(AUDIT_LOG.c.action == _LOCKED)
        )
        at = self.connection.execute(query).scalar_one_or_none()
        return None if at is None else (at if at.tzinfo else at.replace(tzinfo=UTC))

    def _failures_since(self, locked_at: datetime | None) -> int:
        failures = (
            sa.select(AUDIT_LOG.c.audit_id)
            .where(*self._about_this_name())
            .where(AUDIT_LOG.c.action == _FAILED)
            .limit(self.settings.login_max_failures)
        )
        if locked_at is not None:
            failures = failures.where(AUDIT_LOG.c.at > locked_at)
        counted = sa.select(sa.func.count()).select_from(failures.subquery())
        return int(self.connection.execute(counted).scalar_one())

    def _about_this_name(self) -> tuple[sa.ColumnElement[bool], ...]:
        return (
            AUDIT_LOG.c.subject_type == "user",
            AUDIT_LOG.c.subject_id == self.username[:256],
        )

    def _audit(self, action: str, detail: dict[str, Any], actor: str = "anonymous") -> None:
        entry = AuditEntry(
            actor, action, "user", self.username, detail=detail, client=self.client, at=self.now
        )
        record(self.connection, entry)
