"""``perennial serve``: the REST API and the dashboard on uvicorn."""

from __future__ import annotations

import logging
from typing import Annotated

import typer
import uvicorn

from perennial.config import Settings, load_settings
from perennial.service import create_app

__all__ = ["serve", "serve_command"]


def serve_command(
    host: Annotated[str | None, typer.Option(help="Address to bind (default api_host).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default api_port, 8000).")] = None,
    log_level: Annotated[str, typer.Option(help="debug, info, warning or error.")] = "info",
) -> None:
    """Serve the API (OpenAPI at /docs) and the dashboard; Ctrl-C stops."""
    serve(load_settings(), host=host, port=port, log_level=log_level)


def serve(
    settings: Settings, *, host: str | None = None, port: int | None = None, log_level: str
) -> None:
    """Serve with these settings (``perennial demo run --serve`` passes its pinned clock)."""
    logging.basicConfig(level=log_level.upper(), format="%(message)s")
    app = create_app(settings)
    uvicorn.run(
        app,
        host=host or settings.api_host,
        port=settings.api_port if port is None else port,
        log_level=log_level,
        access_log=False,  # perennial.api.access logs one JSON line per request
        server_header=False,
    )
