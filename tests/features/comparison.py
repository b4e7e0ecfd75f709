"""Compare two result tables row by row: exact for everything but floats."""

from __future__ import annotations

import math

import pyarrow as pa

__all__ = ["assert_same_rows"]


def assert_same_rows(left: pa.Table, right: pa.Table, *, key: str, tolerance: float = 1e-9) -> None:
    """Same schema, same rows (sorted by ``key``); floats equal within ``tolerance``."""
    assert left.schema == right.schema
    left_rows = left.sort_by(key).to_pylist()
    right_rows = right.sort_by(key).to_pylist()
    assert [r[key] for r in left_rows] == [r[key] for r in right_rows]
    for a, b in zip(left_rows, right_rows, strict=True):
        for name, value in a.items():
            other = b[name]
            if isinstance(value, float) and isinstance(other, float):
                assert math.isclose(value, other, rel_tol=tolerance, abs_tol=tolerance), (
                    a[key],
                    name,
                    value,
                    other,
                )
            else:
                assert value == other, (a[key], name, value, other)
