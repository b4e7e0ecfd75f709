"""Rendering a page: the Jinja2 templates and what every page's context holds.

Templates autoescape everything (a customer named ``<script>`` is shown, never
run) and fail loudly on an undefined name. Every page gets ``t`` (the label
catalogue in the viewer's language), ``fmt`` (numbers and times in that language
and the configured zone), the viewer, the navigation and the asset URLs; a page
adds its own values by keyword.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import jinja2
from starlette.requests import Request
from starlette.responses import Response
from starlette.templating import Jinja2Templates

from perennial.access.roles import Role
from perennial.api.state import app_state
from perennial.web.assets import PLOTLY_URL, static_url
from perennial.web.formatting import Formatter
from perennial.web.i18n import LANGUAGES, language_of, translate
from perennial.web.page_auth import Viewer

__all__ = ["NAVIGATION", "TEMPLATES_DIR", "NavItem", "navigation", "render_page", "templates"]

TEMPLATES_DIR = Path(__file__).with_name("templates")

templates = Jinja2Templates(
    env=jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
        autoescape=jinja2.select_autoescape(default=True),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
)
"""Page modules of later issues render their own templates from the same folder."""


@dataclass(frozen=True, slots=True)
class NavItem:
    key: str
    """Label key in the catalogue (``nav.board``)."""
    href: str
    roles: frozenset[Role] | None = None
    """Who sees the link; ``None``: everyone signed in (admins see every link)."""


NAVIGATION = (
    NavItem("nav.board", "/board"),
    NavItem("nav.customers", "/customers"),
    NavItem("nav.at_risk", "/at-risk"),
    NavItem("nav.segments", "/segments"),
    NavItem("nav.journeys", "/journeys"),
    NavItem("nav.models", "/models"),
    NavItem("nav.tasks", "/tasks", frozenset({Role.OPERATOR, Role.AGENT})),
    NavItem("nav.admin", "/admin", frozenset()),
)


def navigation(viewer: Viewer | None, path: str) -> list[dict[str, Any]]:
    """The links ``viewer`` may follow, the current one marked."""
    if viewer is None:
        return []
    return [
        {"key": item.key, "href": item.href, "current": _within(path, item.href)}
        for item in NAVIGATION
        if item.roles is None or viewer.principal.has_any(item.roles)
    ]


def _within(path: str, href: str) -> bool:
    return path == href or path.startswith(href + "/")


def render_page(
    request: Request,
    template: str,
    *,
    viewer: Viewer | None,
    title_key: str,
    status_code: int = 200,
    **values: Any,
) -> Response:
    """``template`` rendered for ``viewer`` in their language, with the shared context."""
    language = language_of(request)
    zone = app_state(request).settings.default_timezone
    query = request.url.query
    context: dict[str, Any] = {
        "language": language,
        "languages": LANGUAGES,
        "t": partial(translate, language),
        "fmt": Formatter(language, zone),
        "viewer": viewer,
        "title": translate(language, title_key),
        "nav": navigation(viewer, request.url.path),
        "here": request.url.path + (f"?{query}" if query else ""),
        "static_url": static_url,
        "plotly_url": PLOTLY_URL,
        **values,
    }
    return templates.TemplateResponse(request, template, context, status_code=status_code)
