"""The operational store migrates and records jobs on SQLite and on a real PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from perennial.config import Settings
from perennial.store.operational import (
    create_engine_for,
    finish_job,
    migrate,
    recent_jobs,
    start_job,
)


def _record_a_job(settings: Settings) -> None:
    migrate(settings)
    migrate(settings)  # idempotent
    start_job(settings, "j1", "ingest", "orders.csv")
    start_job(settings, "j2", "ingest", "events.jsonl")
    finish_job(settings, "j1", "committed", '{"accepted": 3}')


def _statuses(settings: Settings) -> dict[str, str]:
    return {row.job_id: row.status for row in recent_jobs(settings)}


def test_sqlite_is_the_default_and_keeps_job_history(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home")
    _record_a_job(settings)
    assert _statuses(settings) == {"j1": "committed", "j2": "running"}
    engine = create_engine_for(settings)
    with engine.connect() as connection:
        mode = connection.execute(sa.text("PRAGMA journal_mode")).scalar()
        version = connection.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()
    engine.dispose()
    assert (mode, version) == ("wal", _head_revision())


@pytest.mark.integration
def test_postgresql_by_url_runs_the_same_migrations(tmp_path: Path, postgres_url: str) -> None:
    settings = Settings(home=tmp_path / "home", operational_url=postgres_url)
    _record_a_job(settings)
    assert _statuses(settings) == {"j1": "committed", "j2": "running"}
    engine = create_engine_for(settings)
    with engine.connect() as connection:
        version = connection.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()
        started = connection.execute(sa.text("SELECT started_at FROM jobs LIMIT 1")).scalar()
    engine.dispose()
    assert version == _head_revision()
    assert started is not None and started.tzinfo is not None


def _head_revision() -> str:
    """The newest migration shipped in the package (every migrate() must reach it)."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from perennial.store import operational

    config = Config()
    config.set_main_option("script_location", str(operational._MIGRATIONS))
    head = ScriptDirectory.from_config(config).get_current_head()
    assert head is not None
    return head


def test_the_migrations_build_exactly_the_tables_the_code_declares(tmp_path: Path) -> None:
    """Each table module and its migration agree (a column added to one only fails here)."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    import perennial.access.tables
    import perennial.channels.tables
    import perennial.ingest.event_feed
    import perennial.ingest.inbox
    import perennial.journeys.tables
    import perennial.segments.tables
    import perennial.tasks.tables  # noqa: F401  (each import registers its tables)
    from perennial.store.operational import METADATA

    settings = Settings(home=tmp_path / "home")
    migrate(settings)
    engine = create_engine_for(settings)
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": False})
        differences = compare_metadata(context, METADATA)
    engine.dispose()
    assert differences == []
