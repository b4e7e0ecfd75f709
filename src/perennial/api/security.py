"""Who is calling: an API key (``Authorization: Bearer prn_...`` or ``X-API-Key``) or a
web session cookie, and whether their roles admit them to an endpoint.

Endpoints declare ``principal: Principal = Depends(require(Role.OPERATOR, ...))``; an
admin passes every check. Unauthenticated -> 401, wrong role -> 403, and the body
never says whether a key exists.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated

from fastapi import Depends, Request

from perennial.access.api_keys import resolve_api_key
from perennial.access.roles import Principal, Role
from perennial.api.errors import ApiError
from perennial.api.state import State

__all__ = ["Caller", "authenticate", "require"]


def _presented_key(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return request.headers.get("x-api-key") or None


def authenticate(request: Request, state: State) -> Principal:
    """The caller's principal, or 401."""
    cached = getattr(request.state, "principal", None)
    if isinstance(cached, Principal):
        return cached
    token = _presented_key(request)
    principal: Principal | None = None
    if token is not None:
        with state.engine.connect() as connection:
            principal = resolve_api_key(connection, token, datetime.now(UTC))
    if principal is None:
        raise ApiError(401, "unauthenticated", "sign in or send a valid API key")
    request.state.principal = principal
    return principal


def require(*roles: Role) -> Callable[..., Principal]:
    """A dependency admitting callers that hold one of ``roles`` (admins always)."""
    admitted = frozenset(roles)

    def check(principal: Annotated[Principal, Depends(authenticate)]) -> Principal:
        if not principal.has_any(admitted):
            needed = ", ".join(sorted(r.value for r in admitted | {Role.ADMIN}))
            raise ApiError(403, "forbidden", f"this needs one of the roles: {needed}")
        return principal

    return check


Caller = Annotated[Principal, Depends(authenticate)]
"""Any authenticated caller, whatever their role."""
