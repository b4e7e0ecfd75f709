"""The application factory: one FastAPI app per settings, routers mounted under ``/v1``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from perennial import __version__
from perennial.access.audit import AuditWriter
from perennial.api.errors import ErrorBody, install_error_handlers
from perennial.api.middleware import AccessLog, BodyLimit, SingleQueryValues
from perennial.api.openapi import document_security
from perennial.api.routes import (
    admin,
    auth,
    customer_tags,
    customers,
    health,
    journeys,
    lifecycle,
    models,
    predictions,
    segments,
    tags,
    task_sla,
    task_teams,
    tasks,
    track,
)
from perennial.api.state import AppState
from perennial.config import Settings
from perennial.segments.live import LiveSegments, SegmentClock
from perennial.segments.service import SegmentService
from perennial.store.operational import create_engine_for, migrate

__all__ = ["create_api"]

_ERRORS = {status: {"model": ErrorBody} for status in (400, 401, 403, 404, 413, 422)}


def create_api(settings: Settings) -> FastAPI:
    """The whole service for ``settings``; migrates the operational store first."""
    migrate(settings)
    engine = create_engine_for(settings)
    state = AppState(settings=settings, engine=engine, audit=AuditWriter(engine))
    state.segments = SegmentService(settings, engine)
    live = LiveSegments(state.segments)
    state.services.extend(track.ingest_services(settings, engine, listeners=[live.notify]))
    state.services.extend([live, SegmentClock(state.segments, settings.segment_refresh_seconds)])

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        state.start()
        try:
            yield
        finally:
            state.stop()

    app = FastAPI(
        title="Perennial",
        version=__version__,
        summary="Customer lifecycle management: customers, lifecycle stages and their history.",
        responses=_ERRORS,  # type: ignore[arg-type]
        lifespan=lifespan,
    )
    app.state.perennial = state
    install_error_handlers(app)
    # Routes are matched in the order included: the probes (three cheap routes), then the
    # most requested (a customer 360 used to try every auth and admin route before its
    # own, about 45 us per request).
    app.include_router(health.router)
    app.include_router(customer_tags.router)
    app.include_router(customers.router)
    app.include_router(track.router)
    app.include_router(lifecycle.router)
    app.include_router(models.router)
    app.include_router(predictions.router)
    app.include_router(segments.router)
    app.include_router(tags.router)
    app.include_router(journeys.router)
    app.include_router(journeys.unsubscribe_router)
    app.include_router(task_teams.router)  # before tasks: /v1/tasks/teams is no task id
    app.include_router(task_sla.router)
    app.include_router(tasks.router)
    app.include_router(auth.router)
    app.include_router(admin.router)
    document_security(app)
    app.add_middleware(SingleQueryValues)
    app.add_middleware(BodyLimit, limit=settings.api_max_body_bytes)
    app.add_middleware(AccessLog)
    return app
