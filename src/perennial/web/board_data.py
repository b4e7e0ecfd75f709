"""What every dashboard page reads first: the serving store's board, or a page saying it is missing.

Pages read the serving store exactly as the API does (the same cached
:class:`~perennial.serving.board.Board` per published file). Before the first
``perennial serving refresh`` there is none: instead of an error, the page says
so and names the commands that build it.
"""

from __future__ import annotations

from functools import partial

from starlette.requests import Request
from starlette.responses import Response

from perennial.api.errors import ApiError
from perennial.api.serving import read
from perennial.serving.board import Board, load_board
from perennial.serving.store import ServingStore
from perennial.web.i18n import language_of, translate
from perennial.web.page_auth import Viewer
from perennial.web.rendering import render_page
from perennial.web.stage_display import StageStyles, stage_styles

__all__ = ["NO_DATA_STATUS", "board_or_none", "is_unavailable", "no_data_page", "styles_for"]

NO_DATA_STATUS = 503
"""The status of a page whose data is not built yet (as the API answers then)."""


def board_or_none(serving: ServingStore) -> Board | None:
    """The board of the newest published store; ``None`` when there is no usable store."""
    try:
        with read():
            return serving.cached("board", load_board, serving.reading())
    except ApiError:
        return None


def is_unavailable(error: ApiError) -> bool:
    """Whether the API refused for want of a serving store (it may vanish mid-request)."""
    return error.code == "serving_unavailable"


def no_data_page(request: Request, viewer: Viewer, title_key: str) -> Response:
    """The page explaining that the serving store is not built, and how to build it."""
    return render_page(
        request,
        "no_data.html",
        viewer=viewer,
        title_key=title_key,
        status_code=NO_DATA_STATUS,
    )


def styles_for(board: Board, request: Request) -> StageStyles:
    """The board's stages as the viewer's language shows them."""
    language = language_of(request)
    t = partial(translate, language)
    return stage_styles(
        board.stages,
        language,
        new_label=t("stage.new_arrivals"),
        unmatched_label=t("stage.unmatched"),
    )
