"""The sign-in page, sign-out, the language switch and the start page.

The sign-in form is protected against login CSRF by a double-submit token: a
random value in a ``SameSite=Strict`` cookie scoped to ``/login`` and the same
value in a hidden field; a cross-site form cannot read the cookie to copy it.
Failures show one message that never says whether the user exists, or the time a
locked account opens again (in the configured zone).
"""

from __future__ import annotations

import hmac
import secrets
from datetime import UTC, datetime
from typing import Annotated

import sqlalchemy as sa
from fastapi import APIRouter, Form, Query, Request
from starlette.responses import RedirectResponse, Response

from perennial.access.audit import AuditEntry, record
from perennial.access.roles import Principal
from perennial.access.sessions import SESSION_COOKIE, close_session, open_session
from perennial.access.sign_in import SignInFailure, sign_in
from perennial.api.routes.auth import client_address
from perennial.api.security import clear_session_cookie, set_session_cookie
from perennial.api.state import State, app_state
from perennial.config import Settings
from perennial.web.formatting import format_datetime
from perennial.web.i18n import LANGUAGE_COOKIE, LANGUAGES, language_of, translate
from perennial.web.page_auth import MaybeViewer, PageForbidden, safe_next
from perennial.web.rendering import render_page

__all__ = [
    "LOGIN_CSRF_COOKIE",
    "login_page",
    "login_submit",
    "logout",
    "router",
    "start",
    "switch_language",
]

LOGIN_CSRF_COOKIE = "perennial_login_csrf"
_START = "/board"
_YEAR = 365 * 24 * 3600

router = APIRouter(include_in_schema=False)
FormText = Annotated[str, Form()]
NextForm = Annotated[str, Form(alias="next")]
NextQuery = Annotated[str, Query(alias="next")]


@router.get("/")
def start(viewer: MaybeViewer) -> RedirectResponse:
    """The board is the start page; strangers sign in first."""
    target = _START if viewer is not None else f"/login?next={_START}"
    return RedirectResponse(target, status_code=303)


@router.get("/login")
def login_page(
    request: Request, viewer: MaybeViewer, next_path: NextQuery = "/", signed_out: bool = False
) -> Response:
    if viewer is not None:
        return RedirectResponse(safe_next(next_path), status_code=303)
    notice = translate(language_of(request), "login.signed_out") if signed_out else None
    return _login_form(request, safe_next(next_path), notice=notice)


def _login_form(
    request: Request,
    next_path: str,
    *,
    username: str = "",
    error: str | None = None,
    notice: str | None = None,
    status_code: int = 200,
) -> Response:
    token = secrets.token_urlsafe(32)
    response = render_page(
        request,
        "login.html",
        viewer=None,
        title_key="login.title",
        status_code=status_code,
        login_csrf=token,
        next_path=next_path,
        username=username,
        error=error,
        notice=notice,
    )
    response.set_cookie(
        LOGIN_CSRF_COOKIE,
        token,
        max_age=3600,
        path="/login",
        secure=_settings(request).secure_cookies,
        httponly=True,
        samesite="strict",
    )
    return response


@router.post("/login")
def login_submit(
    request: Request,
    state: State,
    username: FormText = "",
    password: FormText = "",
    csrf_token: FormText = "",
    next_path: NextForm = "/",
) -> Response:
    next_path = safe_next(next_path)
    language = language_of(request)
    expected = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not expected or not hmac.compare_digest(expected.encode(), csrf_token.encode()):
        error = translate(language, "login.form_expired")
        return _login_form(request, next_path, username=username, error=error, status_code=400)
    now = datetime.now(UTC)
    with state.engine.begin() as connection:
        outcome = sign_in(
            connection, username, password, now, state.settings, client=client_address(request)
        )
        if isinstance(outcome, Principal) and outcome.user_id is not None:
            _end_current_session(request, connection)
            opened = open_session(connection, outcome.user_id, now, state.settings)
    if isinstance(outcome, SignInFailure):
        return _failed(request, outcome, next_path, username)
    response = RedirectResponse(next_path, status_code=303)
    set_session_cookie(response, opened, state.settings)
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/login")
    return response


def _failed(request: Request, failure: SignInFailure, next_path: str, username: str) -> Response:
    language = language_of(request)
    if failure.reason == "locked" and failure.retry_at is not None:
        zone = _settings(request).default_timezone
        until = format_datetime(failure.retry_at, language, zone)
        error = translate(language, "login.locked", time=until)
        return _login_form(request, next_path, username=username, error=error, status_code=429)
    error = translate(language, "login.failed")
    return _login_form(request, next_path, username=username, error=error, status_code=401)


def _end_current_session(request: Request, connection: sa.Connection) -> None:
    """Signing in again replaces the session the browser had (no session fixation)."""
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        close_session(connection, token)


@router.post("/logout")
def logout(
    request: Request, state: State, viewer: MaybeViewer, csrf_token: FormText = ""
) -> Response:
    """Sign out (the form carries the session's CSRF token) and return to the login page."""
    token = request.cookies.get(SESSION_COOKIE)
    if viewer is not None and token:
        if not viewer.csrf_ok(csrf_token):
            raise PageForbidden
        with state.engine.begin() as connection:
            close_session(connection, token)
            username = viewer.user.username
            entry = AuditEntry(
                f"user:{username}", "logout", "user", username, client=client_address(request)
            )
            record(connection, entry)
    response = RedirectResponse("/login?signed_out=1", status_code=303)
    clear_session_cookie(response, state.settings)
    return response


@router.get("/lang/{language}")
def switch_language(request: Request, language: str, next_path: NextQuery = "/") -> Response:
    """Remember the chosen language for a year and go back to the page."""
    response = RedirectResponse(safe_next(next_path), status_code=303)
    if language not in LANGUAGES:
        return response
    response.set_cookie(
        LANGUAGE_COOKIE,
        language,
        max_age=_YEAR,
        path="/",
        secure=_settings(request).secure_cookies,
        httponly=True,
        samesite="lax",
    )
    return response


def _settings(request: Request) -> Settings:
    return app_state(request).settings
