"""Small source files built in code, so each test shows exactly what it feeds in."""

from __future__ import annotations

from pathlib import Path

ORDER_HEADER = "order_id,customer_id,placed_at,amount,currency,status"


def write_text(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


def orders_csv(path: Path, *rows: str, header: str = ORDER_HEADER) -> Path:
    return write_text(path, "\n".join([header, *rows]) + "\n")
