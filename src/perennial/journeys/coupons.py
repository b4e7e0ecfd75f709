"""Coupon pools: codes loaded ahead, handed out one per coupon step and never twice."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

import sqlalchemy as sa

from perennial.errors import ConfigError
from perennial.journeys.tables import COUPON_CODES

__all__ = ["free_codes", "load_codes"]


def load_codes(connection: sa.Connection, pool: str, codes: Iterable[str], now: datetime) -> int:
    """Add codes to ``pool``; codes already in it are skipped. Returns how many were new.

    A code must be 1-100 printable characters without spaces; a file with one bad code
    loads nothing.
    """
    wanted = list(dict.fromkeys(code.strip() for code in codes if code.strip()))
    for line, code in enumerate(wanted, start=1):
        if len(code) > 100 or not code.isprintable() or " " in code:
            raise ConfigError(f"coupon pool {pool!r}", f"code {line}", f"not a code: {code!r}")
    existing = set(
        connection.execute(
            sa.select(COUPON_CODES.c.code).where(COUPON_CODES.c.pool == pool)
        ).scalars()
    )
    new = [code for code in wanted if code not in existing]
    if new:
        connection.execute(
            COUPON_CODES.insert(),
            [{"pool": pool, "code": code, "loaded_at": now} for code in new],
        )
    return len(new)


def free_codes(connection: sa.Connection, pool: str) -> int:
    query = sa.select(sa.func.count()).where(
        COUPON_CODES.c.pool == pool, COUPON_CODES.c.assigned_at.is_(None)
    )
    return int(connection.execute(query).scalar() or 0)
