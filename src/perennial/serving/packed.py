"""Numeric arrays stored whole in the serving store, for questions over arbitrary ranges.

"How did customers move between 3 March and 9 May?" and "how many of this
month's buyers bought twice?" have an answer for every pair of days, too many
to precompute. Both are a pass over a few million small integers, which numpy
does in milliseconds once the arrays are in memory; an SQL scan of the same
rows in SQLite takes seconds. So the refresh stores the arrays as raw bytes and
a reader loads each once per store file.
"""

from __future__ import annotations

import sqlite3
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["read_arrays", "write_array"]


def write_array(connection: sqlite3.Connection, name: str, values: npt.NDArray[np.generic]) -> None:
    """Store ``values`` (one dimension, native byte order) under ``name``."""
    contiguous = np.ascontiguousarray(values)
    connection.execute(
        "INSERT OR REPLACE INTO packed VALUES (?, ?, ?)",
        (name, contiguous.dtype.str, contiguous.tobytes()),
    )


def read_arrays(connection: sqlite3.Connection, prefix: str) -> dict[str, npt.NDArray[Any]]:
    """Every stored array whose name starts with ``prefix``, by name (read-only arrays)."""
    rows = connection.execute(
        "SELECT name, dtype, data FROM packed WHERE substr(name, 1, ?) = ?", (len(prefix), prefix)
    ).fetchall()
    return {name: np.frombuffer(data, dtype=np.dtype(dtype)) for name, dtype, data in rows}
