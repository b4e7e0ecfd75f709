"""The dashboard's shell mounted on the API app: pages, assets, error pages, headers.

Later page modules (board, customers) add their routers here, next to the login
and admin pages.
"""

from __future__ import annotations

from fastapi import FastAPI

from perennial.web import (
    admin_page,
    at_risk_page,
    board_page,
    customer_page,
    customers_page,
    journeys_page,
    login,
    models_page,
    segments_page,
    tasks_page,
)
from perennial.web.assets import mount_assets
from perennial.web.error_pages import install_error_pages
from perennial.web.headers import SecurityHeaders

__all__ = ["mount_web"]


def mount_web(app: FastAPI) -> None:
    """Add the dashboard to ``app`` (the API built by ``create_api``)."""
    app.include_router(login.router)
    app.include_router(admin_page.router)
    app.include_router(board_page.router)
    app.include_router(customers_page.router)
    app.include_router(customer_page.router)
    app.include_router(at_risk_page.router)
    app.include_router(models_page.router)
    app.include_router(segments_page.router)
    app.include_router(tasks_page.router)
    app.include_router(journeys_page.router)
    mount_assets(app)
    install_error_pages(app)
    app.add_middleware(SecurityHeaders)
