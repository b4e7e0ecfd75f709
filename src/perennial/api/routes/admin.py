"""Administration (admins only): users, API keys and the audit log.

A created user's password and a created key's token appear once, in the response
that creates them. Every change is audited with the admin as actor, in the same
transaction as the change.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Annotated

import sqlalchemy as sa
from fastapi import APIRouter, Depends, Path, Query, Request

from perennial.access.api_keys import ApiKeyInfo, list_api_keys
from perennial.access.audit import query_audit
from perennial.access.key_issuance import issue_api_key, withdraw_api_key
from perennial.access.roles import Principal
from perennial.access.users import (
    UnknownUserError,
    UserConflictError,
    UserError,
    create_user,
    list_users,
    set_disabled,
    set_roles,
)
from perennial.api.access_models import (
    ApiKeyOut,
    AuditEntryOut,
    AuditPage,
    CreateApiKeyRequest,
    CreatedUserOut,
    CreateUserRequest,
    IssuedKeyOut,
    RolesRequest,
    UserOut,
)
from perennial.api.errors import ApiError, ErrorBody
from perennial.api.pagination import MAX_LIMIT, Page, decode_cursor, encode_cursor
from perennial.api.routes.auth import client_address
from perennial.api.security import require
from perennial.api.state import State

__all__ = [
    "api_keys",
    "audit",
    "create_key",
    "create_user_endpoint",
    "disable_user",
    "enable_user",
    "replace_roles",
    "revoke_key",
    "router",
    "users",
]

Admin = Annotated[Principal, Depends(require())]
UserId = Annotated[str, Path(min_length=1, max_length=32)]
KeyId = Annotated[str, Path(min_length=1, max_length=16)]
AuditFilter = Annotated[str | None, Query(min_length=1, max_length=160)]

router = APIRouter(
    prefix="/v1/admin",
    tags=["admin"],
    responses={409: {"model": ErrorBody}},
)


@router.get("/users", response_model=list[UserOut])
def users(_admin: Admin, state: State) -> list[UserOut]:
    with state.engine.connect() as connection:
        return [UserOut.of(user) for user in list_users(connection)]


@router.post("/users", response_model=CreatedUserOut, status_code=201)
def create_user_endpoint(
    body: CreateUserRequest, request: Request, admin: Admin, state: State
) -> CreatedUserOut:
    """Add a user; the response holds their generated password, shown this once."""
    with _user_errors(), state.engine.begin() as connection:
        created = create_user(
            connection,
            username=body.username,
            display_name=body.display_name,
            roles=frozenset(body.roles),
            actor=admin.subject,
            client=client_address(request),
        )
    return CreatedUserOut(user=UserOut.of(created.user), password=str(created.password))


@router.post("/users/{user_id}/disable", response_model=UserOut)
def disable_user(user_id: UserId, request: Request, admin: Admin, state: State) -> UserOut:
    """Disable a user; their open sessions stop working at once."""
    return _set_disabled(user_id, True, request, admin, state)


@router.post("/users/{user_id}/enable", response_model=UserOut)
def enable_user(user_id: UserId, request: Request, admin: Admin, state: State) -> UserOut:
    """Enable a user again; also lifts a lock-out."""
    return _set_disabled(user_id, False, request, admin, state)


def _set_disabled(
    user_id: str, disabled: bool, request: Request, admin: Principal, state: State
) -> UserOut:
    with _user_errors(), state.engine.begin() as connection:
        user = set_disabled(
            connection, user_id, disabled, actor=admin.subject, client=client_address(request)
        )
    return UserOut.of(user)


@router.put("/users/{user_id}/roles", response_model=UserOut)
def replace_roles(
    user_id: UserId, body: RolesRequest, request: Request, admin: Admin, state: State
) -> UserOut:
    with _user_errors(), state.engine.begin() as connection:
        user = set_roles(
            connection,
            user_id,
            frozenset(body.roles),
            actor=admin.subject,
            client=client_address(request),
        )
    return UserOut.of(user)


@contextmanager
def _user_errors() -> Iterator[None]:
    """Turn domain errors about users into 404, 409 or 422 error bodies."""
    try:
        yield
    except UnknownUserError as error:
        raise ApiError(404, "not_found", str(error)) from None
    except UserConflictError as error:
        raise ApiError(409, "conflict", str(error)) from None
    except UserError as error:
        raise ApiError(422, "invalid_input", str(error)) from None


@router.get("/api-keys", response_model=list[ApiKeyOut])
def api_keys(_admin: Admin, state: State) -> list[ApiKeyOut]:
    now = datetime.now(UTC)
    with state.engine.connect() as connection:
        return [ApiKeyOut.of(key, now) for key in list_api_keys(connection)]


@router.post("/api-keys", response_model=IssuedKeyOut, status_code=201)
def create_key(
    body: CreateApiKeyRequest, request: Request, admin: Admin, state: State
) -> IssuedKeyOut:
    """Issue a key; the response holds the key itself, shown this once."""
    now = datetime.now(UTC)
    expires_at = None if body.expires_days is None else now + timedelta(days=body.expires_days)
    with state.engine.begin() as connection:
        try:
            issued = issue_api_key(
                connection,
                name=body.name,
                roles=frozenset(body.roles),
                actor=admin.subject,
                expires_at=expires_at,
                client=client_address(request),
            )
        except ValueError as error:
            raise ApiError(422, "invalid_input", str(error), "body.name") from None
        key = _key(connection, issued.key_id)
    return IssuedKeyOut(key=ApiKeyOut.of(key, now), token=issued.token)


@router.delete("/api-keys/{key_id}", response_model=ApiKeyOut)
def revoke_key(key_id: KeyId, request: Request, admin: Admin, state: State) -> ApiKeyOut:
    """Revoke a key now; 404 when there is no such live key."""
    with state.engine.begin() as connection:
        revoked = withdraw_api_key(
            connection, key_id, actor=admin.subject, client=client_address(request)
        )
        if not revoked:
            raise ApiError(404, "not_found", "no live API key with this id")
        key = _key(connection, key_id)
    state.keys.clear()
    return ApiKeyOut.of(key, datetime.now(UTC))


def _key(connection: sa.Connection, key_id: str) -> ApiKeyInfo:
    return next(key for key in list_api_keys(connection) if key.key_id == key_id)


@router.get("/audit", response_model=AuditPage)
def audit(
    _admin: Admin,
    state: State,
    actor: AuditFilter = None,
    action: AuditFilter = None,
    subject_type: AuditFilter = None,
    subject_id: AuditFilter = None,
    cursor: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 50,
) -> Page[AuditEntryOut]:
    """The audit log, newest first, filtered by exact actor, action and subject."""
    before_id = None
    if cursor is not None:
        (before_id,) = decode_cursor(cursor, 1)
        if not isinstance(before_id, int):
            message = "the cursor is not one this endpoint issued"
            raise ApiError(400, "invalid_cursor", message, "cursor")
    with state.engine.connect() as connection:
        rows = query_audit(
            connection,
            actor=actor,
            action=action,
            subject_type=subject_type,
            subject_id=subject_id,
            before_id=before_id,
            limit=limit + 1,
        )
    items = [AuditEntryOut.model_validate(row) for row in rows[:limit]]
    next_cursor = encode_cursor([items[-1].audit_id]) if len(rows) > limit else None
    return AuditPage(items=items, next_cursor=next_cursor)
