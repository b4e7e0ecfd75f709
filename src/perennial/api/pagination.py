"""Cursor pagination: an opaque token holding the sort key of the last item served.

Cursors (not offsets) keep pages stable while new events arrive and cost an index
seek rather than a scan of every skipped row.
"""

from __future__ import annotations

import base64
from typing import Any, Generic, TypeVar

import orjson
from pydantic import BaseModel

from perennial.api.errors import ApiError

__all__ = ["MAX_LIMIT", "Page", "decode_cursor", "encode_cursor"]

MAX_LIMIT = 200

T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = None
    """Pass as ``cursor`` to get the next page; ``null`` on the last one."""


def encode_cursor(key: list[Any]) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(key)).decode().rstrip("=")


def decode_cursor(cursor: str, length: int) -> list[Any]:
    """The sort key a cursor holds; a tampered or foreign cursor is a 400 naming ``cursor``."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        key = orjson.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, orjson.JSONDecodeError):
        key = None
    if not isinstance(key, list) or len(key) != length:
        message = "the cursor is not one this endpoint issued"
        raise ApiError(400, "invalid_cursor", message, "cursor")
    return key
