"""Bring columns computed over a narrow table back to the wide one.

Ranks are window functions, and an engine's window operator buffers and sorts
every column of its input: over a wide profile table (seventy columns), one
rank costs more than the join that brings a narrow ranked table back. So RFM
scores and value tiers rank a few columns and join the result here.
"""

from __future__ import annotations

from collections.abc import Iterable

import ibis.expr.types as ir  # type: ignore[import-untyped]

__all__ = ["WIDE_COLUMNS", "is_wide", "join_narrow"]

WIDE_COLUMNS = 16
"""Above this many columns, ranking a narrow copy and joining it back pays for the join."""


def is_wide(table: ir.Table) -> bool:
    """True when ranks over ``table`` are better computed on a narrow copy."""
    return len(table.columns) > WIDE_COLUMNS


def join_narrow(table: ir.Table, computed: ir.Table, key: str, names: Iterable[str]) -> ir.Table:
    """``table`` with the columns ``names`` of ``computed``, joined on ``customer_id == key``.

    ``computed`` has one row per customer. Columns of ``table`` with those names
    are replaced in place; new ones come last.
    """
    names = tuple(names)
    joined = table.left_join(computed, table.customer_id == computed[key])
    kept = [computed[name] if name in names else table[name] for name in table.columns]
    added = [computed[name] for name in names if name not in table.columns]
    return joined.select(*kept, *added)
