"""Serving store: indexed copies of analytical results for millisecond lookups by the API."""
