"""The segments page (人群): saved segments with their size and 30-day trend, and the builder.

The list is the API's own (``GET /v1/segments``, called, not copied). The builder
runs in the browser (``static/segments.js``): rows of conditions chosen from lists
(fields, events, tags and segments from ``GET /v1/segments/fields``) kept in step
with the text form beside them, a live count and sample from
``POST /v1/segments/preview``, and saving through ``POST``/``PUT /v1/segments``.
Everyone may build and count; only operators (and admins) see the save form.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from perennial.access.roles import Role
from perennial.api.routes.segments import SegmentOut, list_all, segment_service
from perennial.api.state import app_state
from perennial.web.formatting import Formatter
from perennial.web.i18n import language_of, translate
from perennial.web.page_auth import Viewer, page_for
from perennial.web.rendering import render_page

__all__ = ["SegmentRow", "router", "segments_page", "sparkline"]

router = APIRouter(include_in_schema=False)
Reader = Annotated[Viewer, Depends(page_for(Role.OPERATOR, Role.AGENT, Role.VIEWER))]
_WIDTH, _HEIGHT = 120, 28


@dataclass(frozen=True, slots=True)
class SegmentRow:
    segment: SegmentOut
    refreshed: str
    trend_points: str
    """SVG polyline points of the size over the last 30 days ("" with fewer than two days)."""
    trend_text: str


def sparkline(values: list[int]) -> str:
    """Polyline points for ``values`` in a small box, highest at the top."""
    if len(values) < 2:
        return ""
    top, bottom = max(values), min(values)
    span = (top - bottom) or 1
    step = _WIDTH / (len(values) - 1)
    return " ".join(
        f"{i * step:.1f},{_HEIGHT - 2 - (v - bottom) / span * (_HEIGHT - 4):.1f}"
        for i, v in enumerate(values)
    )


@router.get("/segments")
def segments_page(request: Request, viewer: Reader) -> Response:
    language = language_of(request)
    t = partial(translate, language)
    fmt = Formatter(language, app_state(request).settings.default_timezone)
    service = segment_service(app_state(request))
    rows = []
    for segment in list_all(viewer.principal, service):
        sizes = [point.members for point in segment.trend]
        rows.append(
            SegmentRow(
                segment,
                fmt.datetime(segment.refreshed_at) if segment.refreshed_at else "—",
                sparkline(sizes),
                t("segments.trend_text", first=f"{sizes[0]:,}", last=f"{sizes[-1]:,}")
                if sizes
                else "—",
            )
        )
    return render_page(
        request,
        "segments.html",
        viewer=viewer,
        title_key="segments.title",
        rows=rows,
        can_save=viewer.principal.has_any(frozenset({Role.OPERATOR})),
        width=_WIDTH,
        height=_HEIGHT,
    )
