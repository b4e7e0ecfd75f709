"""``perennial drain``: the inbox emptied into the store when no server runs."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from perennial.cli.app import app
from perennial.config import Settings
from perennial.ingest.inbox import InboxEntry, InboxItem
from perennial.ingest.inbox_writer import InboxWriter
from perennial.store.operational import migrate
from perennial.store.warehouse import Warehouse


def test_drain_moves_the_waiting_items_and_says_how_many(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    settings = Settings(home=home)
    migrate(settings)
    record = {"customer_id": "C1", "event_type": "login", "ts": "2025-01-01T00:00:00Z"}
    writer = InboxWriter(settings)
    writer.append(
        InboxEntry(
            "track",
            "key:test",
            "{}",
            datetime.now(UTC),
            (
                InboxItem("events", 0, orjson.dumps(record).decode()),
                InboxItem("events", 1, '{"event_type":1}', "event_type", "event_type: bad"),
            ),
        )
    )
    writer.stop()
    monkeypatch.setenv("PERENNIAL_HOME", str(home))
    monkeypatch.chdir(tmp_path)

    first = CliRunner().invoke(app, ["drain"])
    second = CliRunner().invoke(app, ["drain"])

    assert first.exit_code == 0, first.output
    assert "Drained 1 requests (2 items): 1 rows stored, 1 quarantined." in first.output
    assert "Drained 0 requests" in second.output
    snapshot = Warehouse(settings.warehouse).snapshot()
    assert (snapshot.rows("events"), snapshot.rows("quarantine")) == (1, 1)
