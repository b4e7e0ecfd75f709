"""Who is looking at a page, and where to send them when they may not.

Pages use the same server-side session as the API (the ``perennial_session``
cookie). A page request without a live session is redirected to
``/login?next=<path>``; ``next`` is only ever followed to a path on this site, so a
crafted link cannot bounce a user elsewhere after sign-in (no open redirect). Forms
that change something carry the session's CSRF token in a hidden field.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated
from urllib.parse import quote, urlsplit

from fastapi import Depends, Request

from perennial.access.roles import Principal, Role
from perennial.access.sessions import WebSession
from perennial.access.users import User
from perennial.api.security import csrf_matches, current_session
from perennial.api.state import AppState, State

__all__ = [
    "LoginRequired",
    "MaybeViewer",
    "PageForbidden",
    "SignedIn",
    "Viewer",
    "login_url",
    "optional_viewer",
    "page_for",
    "page_viewer",
    "safe_next",
    "viewer_of",
]

_MAX_NEXT_LENGTH = 2048


@dataclass(frozen=True, slots=True)
class Viewer:
    """The signed-in user a page is rendered for."""

    session: WebSession

    @property
    def user(self) -> User:
        return self.session.user

    @property
    def principal(self) -> Principal:
        return self.session.principal

    @property
    def csrf_token(self) -> str:
        return self.session.csrf_token

    @property
    def is_admin(self) -> bool:
        return Role.ADMIN in self.user.roles

    def csrf_ok(self, presented: str | None) -> bool:
        """Whether a form's hidden ``csrf_token`` is this session's."""
        return csrf_matches(presented, self.session)


class LoginRequired(Exception):
    """Raised by page dependencies; answered with a redirect to the login page."""

    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path


class PageForbidden(Exception):
    """The viewer is signed in but their roles do not admit them to the page."""


def safe_next(value: str | None, default: str = "/") -> str:
    """``value`` if it is a path on this site (``/board?x=1``), else ``default``.

    Refuses absolute URLs, scheme-relative ``//host``, backslashes (browsers read
    ``/\\host`` as ``//host``) and control characters.
    """
    if not value or len(value) > _MAX_NEXT_LENGTH or not value.startswith("/"):
        return default
    if value.startswith("//") or "\\" in value:
        return default
    if any(ord(char) < 0x20 or ord(char) == 0x7F for char in value):
        return default
    parts = urlsplit(value)
    if parts.scheme or parts.netloc:
        return default
    return value


def login_url(next_path: str) -> str:
    return "/login?next=" + quote(safe_next(next_path), safe="")


def _here(request: Request) -> str:
    """The requested path as sent (still percent-encoded: a customer id may hold ``/?#%``)."""
    raw = request.scope.get("raw_path")
    path = raw.decode("latin-1") if isinstance(raw, bytes) else request.url.path
    query = request.url.query
    return path + (f"?{query}" if query else "")


def viewer_of(request: Request, state: AppState) -> Viewer | None:
    session = current_session(request, state)
    if session is None:
        return None
    request.state.principal = session.principal  # for the access log
    return Viewer(session)


def optional_viewer(request: Request, state: State) -> Viewer | None:
    """The signed-in viewer, or ``None`` (for pages anyone may see, like the login page)."""
    return viewer_of(request, state)


def page_viewer(request: Request, state: State) -> Viewer:
    """The signed-in viewer; anyone else is redirected to sign in and come back."""
    viewer = viewer_of(request, state)
    if viewer is None:
        raise LoginRequired(_here(request))
    return viewer


def page_for(*roles: Role) -> Callable[..., Viewer]:
    """A page dependency admitting viewers with one of ``roles`` (admins always)."""
    admitted = frozenset(roles)

    def check(viewer: Annotated[Viewer, Depends(page_viewer)]) -> Viewer:
        if not viewer.principal.has_any(admitted):
            raise PageForbidden
        return viewer

    return check


SignedIn = Annotated[Viewer, Depends(page_viewer)]
"""Declare ``viewer: SignedIn`` in a page handler: any signed-in user."""
MaybeViewer = Annotated[Viewer | None, Depends(optional_viewer)]
