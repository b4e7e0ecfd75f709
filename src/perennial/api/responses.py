"""A JSON response rendered by orjson.

FastAPI deprecated its ``ORJSONResponse`` in favour of response models; handlers
that build bodies themselves (errors, pre-rendered customer documents) still want
orjson's speed and its handling of datetimes, so this keeps the six lines here.
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import Response

__all__ = ["JsonResponse"]


class JsonResponse(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        if isinstance(content, bytes):
            return content
        return orjson.dumps(content, option=orjson.OPT_NON_STR_KEYS)
