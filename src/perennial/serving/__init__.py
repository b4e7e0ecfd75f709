"""Serving store: indexed copies of analytical results for millisecond lookups by the API.

``refresh_serving`` builds it from the warehouse (one SQLite file, published by
an atomic rename); ``ServingStore`` reads it, one connection per thread.
"""

from perennial.serving.refresh import ServingRefreshError, ServingSummary, refresh_serving
from perennial.serving.store import ServingStore, ServingUnavailableError

__all__ = [
    "ServingRefreshError",
    "ServingStore",
    "ServingSummary",
    "ServingUnavailableError",
    "refresh_serving",
]
