"""Scripts and styles, all served by the app itself: the dashboard works with no internet.

The app's own files live in ``web/static`` (packaged with the wheel). plotly.js is
served straight from the installed plotly package rather than copied into the
repository; its URL carries plotly's version, so browsers may cache it for a year
and an upgrade still reaches them.
"""

from __future__ import annotations

from importlib.metadata import version
from importlib.util import find_spec
from pathlib import Path

from fastapi import FastAPI
from starlette.responses import FileResponse
from starlette.staticfiles import StaticFiles

from perennial import __version__

__all__ = ["PLOTLY_JS", "PLOTLY_URL", "STATIC_DIR", "mount_assets", "static_url"]

STATIC_DIR = Path(__file__).with_name("static")


def _plotly_package() -> Path:
    """The installed plotly package folder, found without importing plotly (slow)."""
    spec = find_spec("plotly")
    if spec is None or spec.origin is None:
        raise RuntimeError("plotly is not installed; it is a dependency of perennial")
    return Path(spec.origin).parent


PLOTLY_JS = _plotly_package() / "package_data" / "plotly.min.js"
PLOTLY_URL = f"/vendor/plotly-{version('plotly')}.min.js"
_YEAR = 365 * 24 * 3600
_IMMUTABLE = f"public, max-age={_YEAR}, immutable"


def static_url(name: str) -> str:
    """URL of an app static file; the version in the query string busts caches on upgrade."""
    return f"/static/{name}?v={__version__}"


def mount_assets(app: FastAPI) -> None:
    """``/static/...`` (the app's files) and ``/vendor/plotly-<version>.min.js``."""

    async def plotly_js() -> FileResponse:
        return FileResponse(
            PLOTLY_JS, media_type="text/javascript", headers={"Cache-Control": _IMMUTABLE}
        )

    app.add_api_route(PLOTLY_URL, plotly_js, methods=["GET", "HEAD"], include_in_schema=False)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
