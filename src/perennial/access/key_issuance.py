"""Issuing and revoking API keys as an administrative change: validated and audited.

:mod:`perennial.access.api_keys` stores and resolves keys; this module is what the
admin API and the CLI call, so both write the same audit entries in the same
transaction as the change.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from perennial.access.api_keys import IssuedKey, create_api_key, revoke_api_key
from perennial.access.audit import AuditEntry, record
from perennial.access.roles import Role

__all__ = ["KEY_NAME_MAX_LENGTH", "issue_api_key", "withdraw_api_key"]

KEY_NAME_MAX_LENGTH = 128


def issue_api_key(
    connection: sa.Connection,
    *,
    name: str,
    roles: frozenset[Role],
    actor: str,
    expires_at: datetime | None = None,
    client: str | None = None,
) -> IssuedKey:
    """A new key (its token is returned once); raises ``ValueError`` for a bad name or roles."""
    if len(name) > KEY_NAME_MAX_LENGTH:
        raise ValueError(f"a key name has at most {KEY_NAME_MAX_LENGTH} characters")
    issued = create_api_key(
        connection, name=name, roles=roles, created_by=actor, expires_at=expires_at
    )
    detail: dict[str, object] = {"name": name.strip(), "roles": sorted(roles)}
    if expires_at is not None:
        detail["expires_at"] = expires_at.isoformat()
    record(
        connection,
        AuditEntry(actor, "api_key.created", "api_key", issued.key_id, detail, client),
    )
    return issued


def withdraw_api_key(
    connection: sa.Connection, key_id: str, *, actor: str, client: str | None = None
) -> bool:
    """Revoke a live key now; ``False`` (and nothing audited) when there is none."""
    if not revoke_api_key(connection, key_id):
        return False
    record(connection, AuditEntry(actor, "api_key.revoked", "api_key", key_id, {}, client))
    return True
