"""Request and response bodies of the sign-in and administration endpoints.

Requests forbid unknown fields (a typo is a 422 naming the field, not a silent
no-op) and cap every text's length; responses never carry a password hash or a key
digest, and a password or key appears only in the one response that creates it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from perennial.access.api_keys import ApiKeyInfo
from perennial.access.key_issuance import KEY_NAME_MAX_LENGTH
from perennial.access.passwords import MAX_PASSWORD_LENGTH
from perennial.access.roles import Role
from perennial.access.users import DISPLAY_NAME_MAX_LENGTH, USERNAME_MAX_LENGTH, User
from perennial.api.pagination import Page

__all__ = [
    "ApiKeyOut",
    "AuditEntryOut",
    "AuditPage",
    "CreateApiKeyRequest",
    "CreateUserRequest",
    "CreatedUserOut",
    "IssuedKeyOut",
    "LoginRequest",
    "MeOut",
    "RolesRequest",
    "SessionOut",
    "UserOut",
]

_Roles = Field(min_length=1, max_length=len(Role), description="One or more roles.")


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LoginRequest(_Request):
    username: str = Field(min_length=1, max_length=USERNAME_MAX_LENGTH)
    password: str = Field(min_length=1, max_length=MAX_PASSWORD_LENGTH)


class CreateUserRequest(_Request):
    username: str = Field(min_length=1, max_length=USERNAME_MAX_LENGTH)
    display_name: str | None = Field(default=None, min_length=1, max_length=DISPLAY_NAME_MAX_LENGTH)
    roles: list[Role] = _Roles


class RolesRequest(_Request):
    roles: list[Role] = _Roles


class CreateApiKeyRequest(_Request):
    name: str = Field(min_length=1, max_length=KEY_NAME_MAX_LENGTH)
    roles: list[Role] = _Roles
    expires_days: int | None = Field(
        default=None,
        ge=1,
        le=3650,
        strict=True,  # JSON true is not 1 day
        description="Days until the key stops working; none: never.",
    )


class UserOut(BaseModel):
    user_id: str
    username: str
    display_name: str
    roles: list[Role]
    disabled: bool
    locked_until: datetime | None
    created_at: datetime

    @classmethod
    def of(cls, user: User) -> UserOut:
        return cls(
            user_id=user.user_id,
            username=user.username,
            display_name=user.display_name,
            roles=sorted(user.roles),
            disabled=user.disabled,
            locked_until=user.locked_until,
            created_at=user.created_at,
        )


class CreatedUserOut(BaseModel):
    user: UserOut
    password: str = Field(description="The generated password: shown this once, stored hashed.")


class SessionOut(BaseModel):
    user: UserOut
    roles: list[Role]
    csrf_token: str = Field(
        description="Send it as X-CSRF-Token with every POST, PUT, PATCH and DELETE."
    )
    expires_at: datetime


class MeOut(BaseModel):
    subject: str
    via: Literal["session", "api_key"]
    roles: list[Role]
    user: UserOut | None = None
    csrf_token: str | None = Field(default=None, description="Only for a web session.")


class ApiKeyOut(BaseModel):
    key_id: str
    name: str
    roles: list[Role]
    created_by: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    status: Literal["active", "expired", "revoked"]

    @classmethod
    def of(cls, key: ApiKeyInfo, now: datetime) -> ApiKeyOut:
        status: Literal["active", "expired", "revoked"] = "active"
        if key.revoked_at is not None:
            status = "revoked"
        elif key.expires_at is not None and key.expires_at <= now:
            status = "expired"
        return cls(
            key_id=key.key_id,
            name=key.name,
            roles=sorted(key.roles),
            created_by=key.created_by,
            created_at=key.created_at,
            expires_at=key.expires_at,
            revoked_at=key.revoked_at,
            status=status,
        )


class IssuedKeyOut(BaseModel):
    key: ApiKeyOut
    token: str = Field(description="The whole key: shown this once, stored as a digest.")


class AuditEntryOut(BaseModel):
    audit_id: int
    at: datetime
    actor: str
    action: str
    subject_type: str
    subject_id: str
    detail: dict[str, Any]
    client: str | None


def _audit_page_model() -> type[Page[AuditEntryOut]]:
    """``Page[AuditEntryOut]``, parametrized inside a function: pydantic registers a generic
    parametrized at module level as a module global named ``Page[AuditEntryOut]``."""
    return Page[AuditEntryOut]


AuditPage = _audit_page_model()
"""A page of audit entries, newest first."""
