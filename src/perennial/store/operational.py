"""The operational store: transactional state (jobs now; journeys, sends, users later).

SQLite (WAL) by default, PostgreSQL by URL; the schema is owned by Alembic
migrations shipped inside the package, applied by ``perennial init`` and on
first use, so every deployment runs the same DDL.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Engine

from perennial.config import Settings

__all__ = [
    "JOBS",
    "METADATA",
    "UtcTimestamp",
    "create_engine_for",
    "finish_job",
    "migrate",
    "recent_jobs",
    "start_job",
    "utc",
]

METADATA = sa.MetaData()


class UtcTimestamp(sa.types.TypeDecorator[datetime]):
    """An instant, written as UTC on every backend.

    SQLite keeps no offset: an aware local time (a wait until 09:00 in Shanghai) written
    as it is reads back as 09:00 UTC, eight hours off, and compares wrongly with UTC
    values in queries. Converting every bound value (inserts and comparisons alike) makes
    the store's one convention hold whatever zone a caller computed in. Naive values are
    taken as UTC already, the store's convention.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        del dialect
        if value is None or value.tzinfo is None:
            return value
        return value.astimezone(UTC)


def utc(value: datetime) -> datetime:
    """A time read back from the store, as an aware UTC datetime.

    SQLite keeps no offset (SQLAlchemy writes UTC and reads naive); PostgreSQL's
    ``timestamptz`` comes back aware in the session's zone.
    """
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


JOBS = sa.Table(
    "jobs",
    METADATA,
    sa.Column("job_id", sa.String(64), primary_key=True),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("subject", sa.Text, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("started_at", UtcTimestamp(), nullable=False),
    sa.Column("finished_at", UtcTimestamp()),
    sa.Column("detail", sa.Text),
    sa.Index("ix_jobs_started_at", "started_at"),
)
"""Long-running work (ingests, later backfills and trainings): a crash leaves 'running'."""

_MIGRATIONS = Path(__file__).with_name("migrations")


def create_engine_for(settings: Settings) -> Engine:
    url = settings.operational_database_url
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(url)
    if engine.dialect.name == "sqlite":
        sa.event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def _sqlite_pragmas(dbapi_connection: object, _record: object) -> None:
    cursor = dbapi_connection.cursor()  # type: ignore[attr-defined]
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


def migrate(settings: Settings) -> None:
    """Bring the operational schema to the newest migration (idempotent)."""
    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    config.set_main_option("sqlalchemy.url", settings.operational_database_url)
    engine = create_engine_for(settings)
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
    engine.dispose()


@contextmanager
def _connection(settings: Settings) -> Iterator[sa.Connection]:
    engine = create_engine_for(settings)
    try:
        with engine.begin() as connection:
            yield connection
    finally:
        engine.dispose()


def start_job(settings: Settings, job_id: str, kind: str, subject: str) -> None:
    with _connection(settings) as connection:
        connection.execute(
            JOBS.insert().values(
                job_id=job_id,
                kind=kind,
                subject=subject,
                status="running",
                started_at=datetime.now(UTC),
            )
        )


def finish_job(settings: Settings, job_id: str, status: str, detail: str) -> None:
    with _connection(settings) as connection:
        connection.execute(
            JOBS.update()
            .where(JOBS.c.job_id == job_id)
            .values(status=status, finished_at=datetime.now(UTC), detail=detail)
        )


def recent_jobs(settings: Settings, limit: int = 20) -> list[sa.Row[tuple[object, ...]]]:
    with _connection(settings) as connection:
        result = connection.execute(sa.select(JOBS).order_by(JOBS.c.started_at.desc()).limit(limit))
        return list(result)
