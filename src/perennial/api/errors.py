"""One error body for every failure: ``{"error": {"code", "message", "field"}}``.

Clients branch on ``code`` (stable, snake_case), people read ``message``, and
``field`` is the dotted path of the offending input (``body.events.3.type``) when
there is one. Unexpected exceptions become a bare 500 that leaks nothing.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from perennial.api.responses import JsonResponse
from perennial.errors import PerennialError

__all__ = [
    "ApiError",
    "ErrorBody",
    "ErrorDetail",
    "error_response",
    "field_path",
    "install_error_handlers",
]

_log = logging.getLogger("perennial.api")

_STATUS_CODES = {
    400: "bad_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid_input",
    429: "too_many_requests",
    503: "unavailable",
}


class ErrorDetail(BaseModel):
    code: str
    message: str
    field: str | None = None


class ErrorBody(BaseModel):
    error: ErrorDetail


class ApiError(Exception):
    """Raise from an endpoint to answer with ``status`` and a clear error body."""

    def __init__(self, status: int, code: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.field = field


def field_path(location: tuple[Any, ...] | list[Any]) -> str:
    return ".".join(str(part) for part in location)


def error_response(
    status: int, code: str, message: str, field: str | None = None, **headers: str
) -> JsonResponse:
    body = {"error": {"code": code, "message": message, "field": field}}
    return JsonResponse(body, status_code=status, headers=headers or None)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(PerennialError, _perennial_error)
    app.add_exception_handler(Exception, _unexpected_error)


async def _api_error(_request: Request, error: Exception) -> JsonResponse:
    if not isinstance(error, ApiError):  # registered for this type only
        raise error
    return error_response(error.status, error.code, error.message, error.field)


async def _validation_error(_request: Request, error: Exception) -> JsonResponse:
    if not isinstance(error, RequestValidationError):  # registered for this type only
        raise error
    first = error.errors()[0]
    location = first.get("loc", ())
    kind = first.get("type", "")
    if kind == "json_invalid":
        return error_response(400, "malformed_json", "the request body is not valid JSON")
    message = str(first.get("msg", "invalid value"))
    return error_response(422, "invalid_input", message, field_path(location) or None)


async def _http_error(_request: Request, error: Exception) -> JsonResponse:
    if not isinstance(error, StarletteHTTPException):  # registered for this type only
        raise error
    code = _STATUS_CODES.get(error.status_code, "error")
    headers = dict(error.headers or {})
    return error_response(error.status_code, code, str(error.detail), None, **headers)


async def _perennial_error(_request: Request, error: Exception) -> JsonResponse:
    return error_response(422, "invalid_input", str(error))


async def _unexpected_error(request: Request, error: Exception) -> JsonResponse:
    _log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=error)
    return error_response(500, "internal_error", "internal error; the server log has the details")
