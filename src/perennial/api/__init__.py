"""The REST API: versioned paths (``/v1``), OpenAPI at ``/docs``, one error body."""

from perennial.api.app import create_api

__all__ = ["create_api"]
