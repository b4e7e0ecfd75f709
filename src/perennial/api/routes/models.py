"""``/v1/models``: the stored model versions and what training measured of each.

Answers come from the model registry under ``settings.home / "models"`` (see
:mod:`perennial.models.registry`): each version's metadata, its files verified
against their checksums, so a half-written version is never listed (the
registry skips it with a warning). Nothing here loads a model. The handlers are
plain functions because they read files: FastAPI runs them in a worker thread.
Every role may read.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request

from perennial.access.roles import Principal, Role
from perennial.api.errors import ApiError, ErrorBody
from perennial.api.model_views import (
    ModelDetail,
    ModelList,
    ModelMetadataError,
    ModelSummary,
    model_detail_view,
    model_summary,
)
from perennial.api.security import require
from perennial.api.state import app_state
from perennial.models.registry import (
    IncompleteModelError,
    ModelRegistry,
    ModelStatus,
    ModelVersion,
    UnknownModelError,
)

__all__ = ["list_models", "model_detail", "router"]

router = APIRouter(prefix="/v1/models", tags=["models"])

Reader = Annotated[Principal, Depends(require(Role.OPERATOR, Role.AGENT, Role.VIEWER))]
Version = Annotated[str, Path(max_length=64, description="A model version, e.g. ``churn-0001``.")]


@router.get("", response_model=ModelList, summary="Every stored model version")
def list_models(_principal: Reader, request: Request) -> ModelList:
    registry = _registry(request)
    versions = registry.list()
    items = [_summary(stored) for stored in versions]
    promoted = {}
    for kind in sorted({v.kind for v in versions if v.status == ModelStatus.PROMOTED}):
        chosen = registry.latest_promoted(kind)
        if chosen is not None:
            promoted[kind] = chosen.version
    return ModelList(items=items, promoted=promoted)


@router.get(
    "/{version}",
    response_model=ModelDetail,
    summary="One model version: metrics, features, cut-offs, checks, calibration",
    responses={404: {"model": ErrorBody, "description": "No such complete version."}},
)
def model_detail(_principal: Reader, request: Request, version: Version) -> ModelDetail:
    try:
        stored = _registry(request).get(version)
    except UnknownModelError as error:
        raise ApiError(404, "not_found", str(error), "path.version") from None
    except IncompleteModelError as error:
        raise ApiError(404, "model_incomplete", str(error), "path.version") from None
    try:
        return model_detail_view(stored)
    except ModelMetadataError as error:
        raise _metadata_error(error) from None


def _registry(request: Request) -> ModelRegistry:
    return ModelRegistry.for_settings(app_state(request).settings)


def _summary(stored: ModelVersion) -> ModelSummary:
    try:
        return model_summary(stored)
    except ModelMetadataError as error:
        raise _metadata_error(error) from None


def _metadata_error(error: ModelMetadataError) -> ApiError:
    """A stored version the API cannot describe: the server's data is at fault, not the call."""
    return ApiError(500, "invalid_model_metadata", str(error))
