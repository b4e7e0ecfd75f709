"""The embedded analytical engine: one configured in-process DuckDB connection.

Every connection is made here so that its limits hold everywhere: bounded
memory with spilling to the store's temp folder, and no extension downloads
(Parquet, JSON and ICU ship inside the wheel; the machine has no network).
"""

from __future__ import annotations

import os
from pathlib import Path

import duckdb

from perennial.config import Settings

__all__ = ["connect", "default_memory_limit"]

_DEFAULT_MEMORY_SHARE = 0.6
"""Of physical memory, for DuckDB when no limit is configured: below DuckDB's own 80 %,
leaving room for the Arrow results, the Python process and the API beside it."""


def default_memory_limit() -> str:
    """60 % of this machine's physical memory, in DuckDB's notation (``"14745MiB"``)."""
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return f"{int(total * _DEFAULT_MEMORY_SHARE) // 2**20}MiB"


def connect(settings: Settings) -> duckdb.DuckDBPyConnection:
    """A fresh in-memory DuckDB connection that spills to ``<home>/tmp``."""
    temp_dir = Path(settings.home) / "tmp"
    temp_dir.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(
        config={
            "memory_limit": settings.duckdb_memory_limit or default_memory_limit(),
            "threads": settings.duckdb_threads,
            "temp_directory": str(temp_dir),
            "autoinstall_known_extensions": False,
            "autoload_known_extensions": False,
            "preserve_insertion_order": False,
        }
    )
    con.execute("SET TimeZone = 'UTC'")
    con.execute("SET enable_progress_bar = false")
    return con
