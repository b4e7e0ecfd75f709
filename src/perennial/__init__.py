"""Perennial: customer lifecycle management."""

from importlib.metadata import version

__all__ = ["__version__"]

__version__ = version("perennial")
