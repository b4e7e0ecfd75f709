"""A file far larger than a batch is streamed: memory stays bounded by settings, not file size."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pytest

ROWS = 3_300_000  # about 210 MB of CSV
_INGEST_AND_REPORT_PEAK = """
import resource, sys
from pathlib import Path
from perennial.config import Settings
from perennial.ingest.pipeline import ingest_file
report = ingest_file(Path(sys.argv[1]), Settings(home=Path(sys.argv[2])), table="orders")
peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(report.accepted, report.quarantined, int(peak_mb))
"""


def _write_orders(path: Path, rows: int) -> Path:
    rng = np.random.default_rng(11)
    seconds = rng.integers(0, 700 * 86_400, rows).astype("timedelta64[s]")
    placed = np.datetime_as_string(np.datetime64("2024-01-01T00:00:00") + seconds)
    table = pa.table(
        {
            "order_id": pa.array(np.char.add("O", np.arange(rows).astype(str))),
            "customer_id": pa.array(np.char.add("C", rng.integers(0, 400_000, rows).astype(str))),
            "placed_at": pa.array(np.char.add(placed, "Z")),
            "amount": pa.array(np.round(rng.gamma(2.0, 60.0, rows), 2)),
            "currency": pa.array(np.full(rows, "CNY")),
            "status": pa.array(np.full(rows, "paid")),
        }
    )
    pacsv.write_csv(table, path)
    return path


def _ingest_peak_mb(source: Path, home: Path) -> tuple[int, int, int]:
    """Ingest in a fresh process; (accepted, quarantined, peak RSS in MB)."""
    environment = {**os.environ, "PERENNIAL_DUCKDB_MEMORY_LIMIT": "512MB"}
    result = subprocess.run(
        [sys.executable, "-c", _INGEST_AND_REPORT_PEAK, str(source), str(home)],
        capture_output=True,
        text=True,
        env=environment,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    accepted, quarantined, peak_mb = (int(v) for v in result.stdout.split())
    return accepted, quarantined, peak_mb


@pytest.mark.slow
@pytest.mark.integration
def test_a_200_mb_file_needs_no_more_memory_than_a_file_half_its_size(tmp_path: Path) -> None:
    full = _write_orders(tmp_path / "full.csv", ROWS)
    half = tmp_path / "half.csv"
    with full.open("rb") as source, half.open("wb") as target:
        for _ in range(ROWS // 2 + 1):
            target.write(source.readline())
    assert full.stat().st_size > 200_000_000

    full_run = _ingest_peak_mb(full, tmp_path / "full-home")
    half_run = _ingest_peak_mb(half, tmp_path / "half-home")

    assert full_run[:2] == (ROWS, 0)
    assert half_run[:2] == (ROWS // 2, 0)
    # Streaming: doubling the file (+100 MB) must not grow the peak by anything like it.
    assert full_run[2] < half_run[2] * 1.2 + 50, f"peaks {half_run[2]} -> {full_run[2]} MB"


CUSTOMERS = 1_000_000
_IDENTITY_RUN = """
import resource, sys
from pathlib import Path
from perennial.config import Settings
from perennial.ingest.pipeline import ingest_file
settings = Settings(home=Path(sys.argv[2]), duckdb_memory_limit="512MB")
report = ingest_file(Path(sys.argv[1]), settings, table="customers")
peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(report.accepted, report.identity_merges, report.identity_conflicts, int(peak_mb))
"""


def _write_customers(path: Path, rows: int) -> Path:
    """Customers with a phone, an e-mail and a WeChat openid each: three merges a row."""
    numbers = np.arange(rows)
    digits = np.char.zfill((numbers * 7919 % 10**8).astype(str), 8)
    table = pa.table(
        {
            "customer_id": pa.array(np.char.add("C", numbers.astype(str))),
            "created_at": pa.array(np.full(rows, "2025-01-01T00:00:00Z")),
            "phone": pa.array(np.char.add("139", digits)),
            "email": pa.array(np.char.add(np.char.add("u", numbers.astype(str)), "@example.com")),
            "wechat_openid": pa.array(np.char.add("o-", numbers.astype(str))),
        }
    )
    pacsv.write_csv(table, path)
    return path


def _resolve_peak_mb(source: Path, home: Path) -> tuple[int, int, int, int]:
    """Ingest customers in a fresh process; (accepted, merges, conflicts, peak RSS in MB)."""
    result = subprocess.run(
        [sys.executable, "-c", _IDENTITY_RUN, str(source), str(home)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    accepted, merges, conflicts, peak_mb = (int(v) for v in result.stdout.split())
    return accepted, merges, conflicts, peak_mb


@pytest.mark.slow
@pytest.mark.integration
def test_identities_of_a_million_customers_resolve_within_a_512_mb_duckdb_limit(
    tmp_path: Path,
) -> None:
    # Three million links between four million identifiers: about 1 GB of DuckDB work
    # tables (twice the limit, so they spill); the Python graph resolution used before
    # held about 5 GB of objects for this file.
    full = _write_customers(tmp_path / "full.csv", CUSTOMERS)
    half = _write_customers(tmp_path / "half.csv", CUSTOMERS // 2)

    full_run = _resolve_peak_mb(full, tmp_path / "full-home")
    half_run = _resolve_peak_mb(half, tmp_path / "half-home")

    assert full_run[:3] == (CUSTOMERS, 3 * CUSTOMERS, 0)
    assert half_run[:3] == (CUSTOMERS // 2, 3 * CUSTOMERS // 2, 0)
    # Bounded: twice the evidence must not grow the peak by anything like twice.
    assert full_run[3] < half_run[3] * 1.3 + 50, f"peaks {half_run[3]} -> {full_run[3]} MB"
