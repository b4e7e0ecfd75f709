"""API keys for machines: shown once, stored as a SHA-256 digest, scoped to roles.

A key is 32 random bytes, so a fast digest is the right tool (as GitHub and Stripe
do): argon2's deliberate slowness protects guessable passwords and would only add
milliseconds to every API call here.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa

from perennial.access.roles import Principal, Role, parse_roles
from perennial.access.tables import API_KEYS

__all__ = [
    "ApiKeyInfo",
    "IssuedKey",
    "create_api_key",
    "digest",
    "list_api_keys",
    "resolve_api_key",
    "revoke_api_key",
]

_PREFIX = "prn"


@dataclass(frozen=True, slots=True)
class IssuedKey:
    key_id: str
    token: str
    """The whole key: printed once, never stored."""


@dataclass(frozen=True, slots=True)
class ApiKeyInfo:
    key_id: str
    name: str
    roles: frozenset[Role]
    created_by: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_api_key(
    connection: sa.Connection,
    *,
    name: str,
    roles: frozenset[Role],
    created_by: str,
    expires_at: datetime | None = None,
) -> IssuedKey:
    """Store a new key's digest and return the key itself (the only time it exists)."""
    if not roles:
        raise ValueError("an API key needs at least one role")
    if not name.strip():
        raise ValueError("an API key needs a name")
    key_id = secrets.token_hex(6)
    token = f"{_PREFIX}_{key_id}_{secrets.token_urlsafe(32)}"
    connection.execute(
        API_KEYS.insert().values(
            key_id=key_id,
            key_hash=digest(token),
            name=name.strip(),
            roles=",".join(sorted(roles)),
            created_by=created_by,
            created_at=datetime.now(UTC),
            expires_at=expires_at,
            revoked_at=None,
        )
    )
    return IssuedKey(key_id, token)


def revoke_api_key(connection: sa.Connection, key_id: str) -> bool:
    """Revoke now; ``False`` if there is no such live key."""
    result = connection.execute(
        API_KEYS.update()
        .where(API_KEYS.c.key_id == key_id, API_KEYS.c.revoked_at.is_(None))
        .values(revoked_at=datetime.now(UTC))
    )
    return result.rowcount == 1


def list_api_keys(connection: sa.Connection) -> list[ApiKeyInfo]:
    rows = connection.execute(sa.select(API_KEYS).order_by(API_KEYS.c.created_at)).mappings()
    return [
        ApiKeyInfo(
            key_id=row["key_id"],
            name=row["name"],
            roles=parse_roles(row["roles"]),
            created_by=row["created_by"],
            created_at=_utc(row["created_at"]),
            expires_at=_utc_or_none(row["expires_at"]),
            revoked_at=_utc_or_none(row["revoked_at"]),
        )
        for row in rows
    ]


def resolve_api_key(connection: sa.Connection, token: str, now: datetime) -> Principal | None:
    """The principal of a live key, or ``None`` (unknown, malformed, revoked or expired)."""
    if not token.startswith(f"{_PREFIX}_") or len(token) > 128:
        return None
    row = (
        connection.execute(sa.select(API_KEYS).where(API_KEYS.c.key_hash == digest(token)))
        .mappings()
        .first()
    )
    if row is None or row["revoked_at"] is not None:
        return None
    expires = _utc_or_none(row["expires_at"])
    if expires is not None and expires <= now:
        return None
    return Principal(
        subject=f"key:{row['key_id']}",
        roles=parse_roles(row["roles"]),
        via="api_key",
        expires_at=expires,
    )


def _utc(value: datetime) -> datetime:
    """SQLite returns naive datetimes for timezone-aware columns; they were stored in UTC."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _utc_or_none(value: datetime | None) -> datetime | None:
    return None if value is None else _utc(value)
