"""Record consent choices: an opt-out is effective for the very next send decision."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from perennial.channels.tables import CONSENTS

__all__ = ["record_consent", "record_opt_out"]


def record_consent(
    connection: sa.Connection,
    customer_id: str,
    channel: str,
    status: str,
    *,
    at: datetime,
    source: str,
) -> None:
    """Set the customer's choice for a channel (``opted_in`` or ``opted_out``), replacing any."""
    if status not in ("opted_in", "opted_out"):
        raise ValueError(f"consent is opted_in or opted_out, not {status!r}")
    connection.execute(
        CONSENTS.delete().where(
            CONSENTS.c.customer_id == customer_id, CONSENTS.c.channel == channel
        )
    )
    connection.execute(
        CONSENTS.insert().values(
            customer_id=customer_id, channel=channel, status=status, updated_at=at, source=source
        )
    )


def record_opt_out(
    connection: sa.Connection, customer_id: str, channel: str, *, at: datetime, source: str
) -> None:
    record_consent(connection, customer_id, channel, "opted_out", at=at, source=source)
