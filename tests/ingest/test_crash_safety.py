"""kill -9 at any moment of an ingest leaves the store before or after the batch, never between."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from perennial.config import Settings
from perennial.ingest.pipeline import ingest_file
from perennial.store.warehouse import Warehouse
from tests.conftest import NOW
from tests.ingest.factories import ORDER_HEADER

ROWS = 300_000
_INGEST = (
    "import sys; from pathlib import Path; from perennial.config import Settings;"
    "from perennial.ingest.pipeline import ingest_file;"
    "ingest_file(Path(sys.argv[1]), Settings(home=Path(sys.argv[2])), table='orders')"
)


def _big_orders(path: Path) -> Path:
    with path.open("w") as handle:
        handle.write(ORDER_HEADER + "\n")
        for i in range(ROWS):
            handle.write(
                f"O{i},C{i % 5000},2025-{i % 12 + 1:02d}-01T10:00:00Z,{i % 97}.5,CNY,paid\n"
            )
    return path


@pytest.mark.slow
@pytest.mark.integration
def test_killing_an_ingest_at_any_moment_never_leaves_half_a_batch(tmp_path: Path) -> None:
    source = _big_orders(tmp_path / "orders.csv")
    home = tmp_path / "home"
    outcomes = []
    for delay in (0.3, 0.8, 1.3, 1.8, 2.4, 3.0):
        process = subprocess.Popen([sys.executable, "-c", _INGEST, str(source), str(home)])
        time.sleep(delay)
        if process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
        process.wait()
        rows = Warehouse(home / "warehouse").snapshot().rows("orders")
        assert rows in (0, ROWS), f"after a kill at {delay}s the store holds {rows} rows"
        outcomes.append(rows)

    report = ingest_file(source, Settings(home=home), table="orders", now=NOW)
    assert Warehouse(home / "warehouse").snapshot().rows("orders") == ROWS
    assert report.accepted + report.already_stored == ROWS
    assert 0 in outcomes, "no kill landed before the commit; the test proved nothing"
