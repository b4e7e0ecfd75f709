"""Who is calling: an API key (``Authorization: Bearer prn_...`` or ``X-API-Key``) or a
web session cookie, and whether their roles admit them to an endpoint.

Endpoints declare ``principal: Annotated[Principal, Depends(require(Role.OPERATOR))]``;
an admin passes every check. Unauthenticated -> 401, wrong role -> 403, and the body
never says whether a key exists. A request authenticated by the session cookie that
changes something (POST, PUT, PATCH, DELETE) must also carry the session's CSRF token
in ``X-CSRF-Token`` (403 ``csrf_failed`` otherwise): the cookie is sent by the browser
on its own, the header only by the app's own pages. A presented API key wins over a
cookie and needs no CSRF token (no browser attaches it by itself).
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Depends, Request
from starlette.responses import Response

from perennial.access.api_keys import digest, resolve_api_key
from perennial.access.roles import Principal, Role
from perennial.access.sessions import SESSION_COOKIE, OpenedSession, WebSession, resolve_session
from perennial.api.errors import ApiError
from perennial.api.state import AppState, State, app_state
from perennial.config import Settings

__all__ = [
    "CSRF_HEADER",
    "UNSAFE_METHODS",
    "Caller",
    "admitted_roles",
    "authenticate",
    "clear_session_cookie",
    "csrf_matches",
    "current_session",
    "require",
    "set_session_cookie",
]

CSRF_HEADER = "X-CSRF-Token"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_CALLER = "perennial_caller"
_SESSION = "perennial_session"


def _presented_key(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return request.headers.get("x-api-key") or None


def current_session(request: Request, state: State) -> WebSession | None:
    """The live web session named by the request's cookie, or ``None`` (looked up once)."""
    if hasattr(request.state, _SESSION):
        cached: WebSession | None = getattr(request.state, _SESSION)
        return cached
    token = request.cookies.get(SESSION_COOKIE)
    session = None
    if token:
        with state.engine.connect() as connection:
            session = resolve_session(connection, token, datetime.now(UTC))
    setattr(request.state, _SESSION, session)
    return session


def csrf_matches(presented: str | None, session: WebSession) -> bool:
    """Constant-time comparison of a presented CSRF token with the session's."""
    if not presented:
        return False
    return hmac.compare_digest(presented.encode(), session.csrf_token.encode())


async def authenticate(request: Request, state: State) -> Principal:
    """The caller's principal, or 401; 403 ``csrf_failed`` for a cookie without its token.

    Async so that FastAPI calls it on the event loop rather than in a worker thread; the
    store lookups it makes are single-row index reads (and API keys are cached for
    ``KEY_CACHE_SECONDS``), shorter than a thread hand-off.
    """
    cached = getattr(request.state, _CALLER, None)
    if isinstance(cached, Principal):
        return cached
    token = _presented_key(request)
    principal: Principal | None = None
    if token is not None:
        principal = _api_key_principal(state, token)
    else:
        session = current_session(request, state)
        if session is not None:
            _check_csrf(request, session)
            principal = session.principal
    if principal is None:
        raise ApiError(401, "unauthenticated", "sign in or send a valid API key")
    setattr(request.state, _CALLER, principal)
    request.state.principal = principal  # for the access log
    return principal


def _api_key_principal(state: AppState, token: str) -> Principal | None:
    key_digest = digest(token)
    principal = state.keys.get(key_digest)
    if principal is None:
        with state.engine.connect() as connection:
            principal = resolve_api_key(connection, token, datetime.now(UTC))
        if principal is not None:
            state.keys.put(key_digest, principal, _expiry_deadline(principal))
    return principal


def _expiry_deadline(principal: Principal) -> float | None:
    """The key's expiry on the cache's monotonic clock: a cached key expires on time too."""
    if principal.expires_at is None:
        return None
    remaining = (principal.expires_at - datetime.now(UTC)).total_seconds()
    return time.monotonic() + remaining


def _check_csrf(request: Request, session: WebSession) -> None:
    if request.method in UNSAFE_METHODS and not csrf_matches(
        request.headers.get(CSRF_HEADER), session
    ):
        message = f"send the session's CSRF token in the {CSRF_HEADER} header"
        raise ApiError(403, "csrf_failed", message)


_ADMITTED: dict[Callable[..., Any], frozenset[Role]] = {}
"""The roles each dependency made by :func:`require` admits (admin included)."""


def admitted_roles(dependency: Callable[..., Any]) -> frozenset[Role] | None:
    """The roles ``dependency`` admits when it authenticates the caller (empty: any
    signed-in caller), else ``None`` (for the OpenAPI document)."""
    if dependency is authenticate:
        return frozenset()
    return _ADMITTED.get(dependency)


def require(*roles: Role) -> Callable[..., Awaitable[Principal]]:
    """A dependency admitting callers that hold one of ``roles`` (admins always)."""
    admitted = frozenset(roles)

    async def check(request: Request) -> Principal:
        # authenticate is called, not declared as a sub-dependency: each dependency level
        # costs FastAPI about 10 us per request, a fifth of a constant endpoint's cost
        principal = await authenticate(request, app_state(request))
        if not principal.has_any(admitted):
            needed = ", ".join(sorted(r.value for r in admitted | {Role.ADMIN}))
            raise ApiError(403, "forbidden", f"this needs one of the roles: {needed}")
        return principal

    _ADMITTED[check] = admitted | {Role.ADMIN}
    return check


def set_session_cookie(response: Response, opened: OpenedSession, settings: Settings) -> None:
    """The session cookie: HttpOnly (no script reads it), SameSite=Lax, Secure behind HTTPS."""
    response.set_cookie(
        SESSION_COOKIE,
        opened.token,
        max_age=int(settings.session_hours * 3600),
        path="/",
        secure=settings.secure_cookies,
        httponly=True,
        samesite="lax",
    )


def clear_session_cookie(response: Response, settings: Settings) -> None:
    response.delete_cookie(
        SESSION_COOKIE, path="/", secure=settings.secure_cookies, httponly=True, samesite="lax"
    )


Caller = Annotated[Principal, Depends(authenticate)]
"""Any authenticated caller, whatever their role."""
