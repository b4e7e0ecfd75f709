"""An ingest recorded as a job in the operational store, so a crash is visible later."""

from __future__ import annotations

import uuid
from pathlib import Path

import orjson

from perennial.config import Settings
from perennial.errors import PerennialError
from perennial.ingest.mapping import Mapping
from perennial.ingest.pipeline import Progress, ingest_file
from perennial.ingest.report import IngestReport
from perennial.store.operational import finish_job, migrate, start_job

__all__ = ["ingest_as_job"]


def ingest_as_job(
    path: Path,
    settings: Settings,
    *,
    mapping: Mapping | None = None,
    table: str | None = None,
    progress: Progress | None = None,
) -> IngestReport:
    """:func:`ingest_file` between a 'running' and a 'committed'/'failed' job record."""
    migrate(settings)
    job_id = uuid.uuid4().hex
    start_job(settings, job_id, "ingest", str(path))
    try:
        report = ingest_file(path, settings, mapping=mapping, table=table, progress=progress)
    except PerennialError as error:
        finish_job(settings, job_id, "failed", str(error))
        raise
    except BaseException as error:
        finish_job(settings, job_id, "failed", f"{type(error).__name__}: {error}")
        raise
    detail = {
        "batch_id": report.batch_id,
        "accepted": report.accepted,
        "quarantined": report.quarantined,
    }
    finish_job(settings, job_id, "committed", orjson.dumps(detail).decode())
    return report
