"""The serving store as a request dependency, and its absence as a clear 503.

One :class:`~perennial.serving.ServingStore` per app (it holds the per-thread
connections), created on first use. Endpoints call :func:`read` around their
reads, so a missing or foreign store file answers 503 telling the operator what
to run, whichever query noticed it first.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

from fastapi import Depends, Request

from perennial.api.errors import ApiError
from perennial.api.state import app_state
from perennial.serving import ServingStore, ServingUnavailableError

__all__ = ["UNAVAILABLE_MESSAGE", "Serving", "read", "serving_of", "serving_store"]

UNAVAILABLE_MESSAGE = (
    "customer data is not available yet: the serving store is missing or out of date; "
    "an operator must run `perennial serving refresh`"
)
"""What clients read; the log has the file's path and the exact reason."""

_log = logging.getLogger("perennial.api")


async def serving_store(request: Request) -> ServingStore:
    """The app's store (async: FastAPI would run a plain function in a worker thread)."""
    return serving_of(request)


def serving_of(request: Request) -> ServingStore:
    """The app's store, for the hottest endpoints: a plain call costs less than the
    dependency level :data:`Serving` adds (about 10 us a request)."""
    store = getattr(request.app.state, "serving", None)
    if not isinstance(store, ServingStore):
        store = ServingStore(app_state(request).settings.serving_database)
        request.app.state.serving = store
    return store


Serving = Annotated[ServingStore, Depends(serving_store)]
"""Declare ``serving: Serving`` in an endpoint to read the serving store."""


@contextmanager
def read() -> Iterator[None]:
    """Turn a missing, damaged or outdated serving store into 503 ``serving_unavailable``."""
    try:
        yield
    except ServingUnavailableError as error:
        _log.warning("serving store unavailable: %s", error)
        raise ApiError(503, "serving_unavailable", UNAVAILABLE_MESSAGE) from None
