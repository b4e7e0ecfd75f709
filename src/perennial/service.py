"""The composition root: the REST API and the dashboard in one ASGI app."""

from __future__ import annotations

from fastapi import FastAPI

from perennial.api.app import create_api
from perennial.config import Settings
from perennial.web.shell import mount_web

__all__ = ["create_app"]


def create_app(settings: Settings) -> FastAPI:
    """The whole service for ``settings`` (what ``perennial serve`` runs)."""
    app = create_api(settings)
    mount_web(app)
    return app
