"""Liveness, readiness and the framework's floor.

``/healthz`` answers while the process runs; ``/readyz`` only when the operational
store answers too (a load balancer stops routing before requests would fail).
``/v1/ping`` returns a constant: the benchmarks' measure of what the framework
itself costs, against which every real endpoint is compared.
"""

from __future__ import annotations

import sqlalchemy as sa
from fastapi import APIRouter
from pydantic import BaseModel

from perennial.api.errors import ApiError, ErrorBody
from perennial.api.state import State

__all__ = ["Health", "healthz", "ping", "readyz", "router"]

router = APIRouter(tags=["health"])


class Health(BaseModel):
    status: str


_OK = Health(status="ok")


@router.get("/healthz", response_model=Health)
def healthz() -> Health:
    return _OK


@router.get("/readyz", response_model=Health, responses={503: {"model": ErrorBody}})
def readyz(state: State) -> Health:
    try:
        with state.engine.connect() as connection:
            connection.execute(sa.text("SELECT 1"))
    except sa.exc.SQLAlchemyError:
        raise ApiError(503, "unavailable", "the operational store does not answer") from None
    return _OK


@router.get("/v1/ping", response_model=Health)
async def ping() -> Health:
    return _OK
