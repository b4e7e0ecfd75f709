"""Server-side web sessions: a random token in a cookie, its SHA-256 in ``web_sessions``.

The browser holds the only copy of the token; the database holds its digest, so a
leaked database backup opens no session. Each session has its own CSRF token,
which pages and scripts send back on every state-changing request. A session ends
when it expires (``settings.session_hours`` after sign-in), at sign-out, or as soon
as its user is disabled; role changes apply at the next request.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from perennial.access.roles import Principal
from perennial.access.tables import USERS, WEB_SESSIONS
from perennial.access.users import User, user_from_row
from perennial.config import Settings

__all__ = [
    "SESSION_COOKIE",
    "OpenedSession",
    "WebSession",
    "close_session",
    "open_session",
    "purge_expired_sessions",
    "resolve_session",
    "session_digest",
]

SESSION_COOKIE = "perennial_session"
_MAX_TOKEN_LENGTH = 128


@dataclass(frozen=True, slots=True)
class OpenedSession:
    token: str
    """Goes into the cookie; never stored."""
    csrf_token: str
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class WebSession:
    """A live session: whose it is and the CSRF token its unsafe requests must carry."""

    user: User
    csrf_token: str
    expires_at: datetime

    @property
    def principal(self) -> Principal:
        return self.user.principal()


def session_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def open_session(
    connection: sa.Connection, user_id: str, now: datetime, settings: Settings
) -> OpenedSession:
    """Start a session for ``user_id`` (who has just signed in) and drop expired ones."""
    purge_expired_sessions(connection, now)
    token = secrets.token_urlsafe(32)
    csrf_token = secrets.token_urlsafe(32)
    expires_at = now.astimezone(UTC) + timedelta(hours=settings.session_hours)
    connection.execute(
        WEB_SESSIONS.insert().values(
            session_hash=session_digest(token),
            user_id=user_id,
            csrf_token=csrf_token,
            created_at=now.astimezone(UTC),
            expires_at=expires_at,
        )
    )
    return OpenedSession(token, csrf_token, expires_at)


def resolve_session(connection: sa.Connection, token: str, now: datetime) -> WebSession | None:
    """The live session of ``token``, or ``None`` (unknown, expired, or its user disabled)."""
    if not token or len(token) > _MAX_TOKEN_LENGTH:
        return None
    query = (
        sa.select(USERS, WEB_SESSIONS.c.csrf_token, WEB_SESSIONS.c.expires_at.label("ends"))
        .join(WEB_SESSIONS, WEB_SESSIONS.c.user_id == USERS.c.user_id)
        .where(WEB_SESSIONS.c.session_hash == session_digest(token))
    )
    row = connection.execute(query).mappings().first()
    if row is None or row["disabled"]:
        return None
    ends = row["ends"] if row["ends"].tzinfo is not None else row["ends"].replace(tzinfo=UTC)
    if ends <= now:
        return None
    return WebSession(user_from_row(row), row["csrf_token"], ends)


def close_session(connection: sa.Connection, token: str) -> bool:
    """Sign out: delete the session; ``False`` if there was none."""
    deleted = connection.execute(
        WEB_SESSIONS.delete().where(WEB_SESSIONS.c.session_hash == session_digest(token))
    )
    return deleted.rowcount == 1


def purge_expired_sessions(connection: sa.Connection, now: datetime) -> int:
    deleted = connection.execute(
        WEB_SESSIONS.delete().where(WEB_SESSIONS.c.expires_at <= now.astimezone(UTC))
    )
    return deleted.rowcount
