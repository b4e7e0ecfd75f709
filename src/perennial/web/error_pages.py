"""Error pages for people, error bodies for programs.

The API answers every failure with its JSON error body. A browser asking for a
page (``Accept: text/html``, outside ``/v1``) gets the same status with a page in
its language instead: 403 for a role that may not look, 404 for a missing page,
and a plain "could not be completed" for anything else, never a traceback. A page
request without a session is redirected to the login page.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import RedirectResponse, Response

from perennial.api.state import app_state
from perennial.web.page_auth import LoginRequired, PageForbidden, login_url, viewer_of
from perennial.web.rendering import render_page

__all__ = ["install_error_pages", "render_error", "wants_page"]

Handler = Callable[[Request, Any], Response | Awaitable[Response]]
_PROGRAM_PATHS = ("/v1/", "/healthz", "/readyz", "/openapi.json", "/docs", "/redoc")


def wants_page(request: Request) -> bool:
    """Whether the request is a browser's page request (not an API or tool call)."""
    if request.url.path.startswith(_PROGRAM_PATHS):
        return False
    return "text/html" in request.headers.get("accept", "")


def render_error(request: Request, status_code: int) -> Response:
    """The error page for ``status_code``, with the navigation when someone is signed in."""
    kind = str(status_code) if status_code in (403, 404) else "other"
    try:
        viewer = viewer_of(request, app_state(request))
    except Exception:  # the error page must render even when the store is down
        viewer = None
    return render_page(
        request,
        "error.html",
        viewer=viewer,
        title_key=f"error.{kind}.title",
        status_code=status_code,
        kind=kind,
    )


def install_error_pages(app: FastAPI) -> None:
    """Wrap the API's handlers: pages for browsers, the JSON body for everything else."""
    for error_class in (StarletteHTTPException, Exception):
        original = app.exception_handlers.get(error_class)
        if original is not None:
            app.add_exception_handler(error_class, _page_or(original))
    app.add_exception_handler(LoginRequired, _to_login)
    app.add_exception_handler(PageForbidden, _forbidden)


def _page_or(original: Handler) -> Handler:
    async def handle(request: Request, error: Exception) -> Response:
        answer = original(request, error)
        response = await answer if inspect.isawaitable(answer) else answer
        if not wants_page(request):
            return response
        return render_error(request, response.status_code)

    return handle


async def _to_login(request: Request, error: Exception) -> Response:
    next_path = error.next_path if isinstance(error, LoginRequired) else request.url.path
    return RedirectResponse(login_url(next_path), status_code=303)


async def _forbidden(request: Request, _error: Exception) -> Response:
    return render_error(request, 403)
