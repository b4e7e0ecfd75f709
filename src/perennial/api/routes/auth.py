"""Signing in and out of a web session, and asking who the caller is.

``POST /v1/auth/login`` sets the HttpOnly session cookie and returns the CSRF token
the page must send back with every unsafe request. A failed attempt is audited and
answered 401 ``invalid_credentials`` (never saying whether the user exists) or, once
locked out, 429 ``locked_out`` with ``Retry-After``.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime

from fastapi import APIRouter, Request, Response

from perennial.access.audit import AuditEntry, record
from perennial.access.roles import Principal
from perennial.access.sessions import SESSION_COOKIE, close_session, open_session
from perennial.access.sign_in import SignInFailure, sign_in
from perennial.access.users import get_user
from perennial.api.access_models import LoginRequest, MeOut, SessionOut, UserOut
from perennial.api.errors import ApiError, ErrorBody, error_response
from perennial.api.responses import JsonResponse
from perennial.api.security import (
    Caller,
    clear_session_cookie,
    current_session,
    set_session_cookie,
)
from perennial.api.state import State

__all__ = ["client_address", "login", "logout", "me", "router"]

router = APIRouter(prefix="/v1/auth", tags=["auth"])


def client_address(request: Request) -> str | None:
    return request.client.host if request.client is not None else None


@router.post(
    "/login",
    response_model=SessionOut,
    responses={429: {"model": ErrorBody, "description": "Locked out after repeated failures."}},
)
def login(body: LoginRequest, request: Request, state: State) -> Response:
    """Sign in with username and password; sets the ``perennial_session`` cookie."""
    now = datetime.now(UTC)
    with state.engine.begin() as connection:
        outcome = sign_in(
            connection,
            body.username,
            body.password,
            now,
            state.settings,
            client=client_address(request),
        )
        if isinstance(outcome, Principal) and outcome.user_id is not None:
            opened = open_session(connection, outcome.user_id, now, state.settings)
            user = get_user(connection, outcome.user_id)
    if isinstance(outcome, SignInFailure):
        return _refusal(outcome, now)
    session = SessionOut(
        user=UserOut.of(user),
        roles=sorted(user.roles),
        csrf_token=opened.csrf_token,
        expires_at=opened.expires_at,
    )
    response = JsonResponse(session.model_dump(mode="json"))
    set_session_cookie(response, opened, state.settings)
    return response


def _refusal(failure: SignInFailure, now: datetime) -> Response:
    if failure.reason == "locked" and failure.retry_at is not None:
        seconds = max(1, math.ceil((failure.retry_at - now).total_seconds()))
        headers = {"Retry-After": str(seconds)}
        return error_response(429, "locked_out", failure.message, None, **headers)
    return error_response(401, "invalid_credentials", failure.message)


@router.post("/logout", status_code=204, response_class=Response)
def logout(request: Request, principal: Caller, state: State) -> Response:
    """End the caller's web session (the cookie's; needs its CSRF token)."""
    token = request.cookies.get(SESSION_COOKIE)
    if principal.via != "session" or not token:
        raise ApiError(400, "not_a_session", "only a web session can sign out; revoke keys")
    with state.engine.begin() as connection:
        close_session(connection, token)
        entry = AuditEntry(
            principal.subject,
            "logout",
            "user",
            principal.subject.removeprefix("user:"),
            client=client_address(request),
        )
        record(connection, entry)
    response = Response(status_code=204)
    clear_session_cookie(response, state.settings)
    return response


@router.get("/me", response_model=MeOut)
def me(request: Request, principal: Caller, state: State) -> MeOut:
    """Who the caller is; for a web session also the user and the CSRF token."""
    answer = MeOut(subject=principal.subject, via=principal.via, roles=sorted(principal.roles))
    session = current_session(request, state) if principal.via == "session" else None
    if session is not None:
        answer.user = UserOut.of(session.user)
        answer.csrf_token = session.csrf_token
    return answer
