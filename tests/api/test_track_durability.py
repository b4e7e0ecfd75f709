"""A 202 is durable: the real server, killed with SIGKILL the moment it acknowledges,
loses no acknowledged event; restarted on the same home it serves again, and its drainer
(taking back the dead server's claims) stores each acknowledged event exactly once.

The server runs as a user runs it (``perennial serve`` in its own process, its own
home) with a drain every 50 ms, so kills also land in the middle of drains: between a
warehouse commit and the inbox's done mark, in a half-written batch, anywhere.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import duckdb
import httpx
import pytest

from perennial.access.api_keys import create_api_key
from perennial.access.roles import Role
from perennial.config import Settings
from perennial.ingest.inbox import inbox_counts
from perennial.store.operational import create_engine_for, migrate
from perennial.store.warehouse import Warehouse

CYCLES = 3
BATCHES_PER_CYCLE = 4
EVENTS_PER_BATCH = 50
_CLI = "from perennial.cli.app import main; main()"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _environment(home: Path) -> dict[str, str]:
    return {
        **os.environ,
        "PERENNIAL_HOME": str(home),
        "PERENNIAL_INGEST_DRAIN_SECONDS": "0.05",
        "PERENNIAL_INGEST_DRAIN_ITEMS": "120",
    }


def _operator_token(settings: Settings) -> str:
    migrate(settings)
    engine = create_engine_for(settings)
    with engine.begin() as connection:
        issued = create_api_key(
            connection, name="durability", roles=frozenset({Role.OPERATOR}), created_by="tests"
        )
    engine.dispose()
    return issued.token


def _start(home: Path, port: int) -> subprocess.Popen[bytes]:
    log = home.parent / f"server-{port}.log"
    with log.open("wb") as output:
        server = subprocess.Popen(
            [sys.executable, "-c", _CLI, "serve", "--port", str(port), "--log-level", "warning"],
            env=_environment(home),
            stdout=subprocess.DEVNULL,
            stderr=output,
        )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return server
        except httpx.TransportError:
            time.sleep(0.05)
        if server.poll() is not None:
            raise AssertionError(log.read_text())
    server.kill()
    server.wait()
    raise AssertionError("the server did not come up in 60 s")


def _batch(cycle: int, batch: int) -> list[dict[str, object]]:
    """Half the events carry an event_id, half rely on the derived one."""
    events: list[dict[str, object]] = []
    for number in range(EVENTS_PER_BATCH):
        seq = f"{cycle}-{batch}-{number}"
        event: dict[str, object] = {
            "customer_id": f"C{number % 7}",
            "event_type": "page_view",
            "ts": "2025-06-01T00:00:00Z",
            "properties": {"seq": seq},
        }
        if number % 2 == 0:
            event["event_id"] = f"e-{seq}"
        events.append(event)
    return events


def _cycle(home: Path, token: str, cycle: int) -> list[str]:
    """Start, send batches from four clients, SIGKILL at the first 202; the acknowledged seqs."""
    port = _free_port()
    server = _start(home, port)
    headers = {"Authorization": f"Bearer {token}"}

    def send(batch: int) -> list[str]:
        events = _batch(cycle, batch)
        try:
            response = httpx.post(
                f"http://127.0.0.1:{port}/v1/track",
                json={"events": events},
                headers=headers,
                timeout=10,
            )
        except httpx.TransportError:
            return []  # never answered: not acknowledged, may or may not be stored
        if response.status_code != 202:
            return []
        os.kill(server.pid, signal.SIGKILL)  # at once: nothing may be left to flush
        assert response.json() == {"accepted": EVENTS_PER_BATCH, "rejected": []}
        return [str(e["properties"]["seq"]) for e in events]  # type: ignore[index]

    with ThreadPoolExecutor(BATCHES_PER_CYCLE) as pool:
        acknowledged = [seq for seqs in pool.map(send, range(BATCHES_PER_CYCLE)) for seq in seqs]
    server.wait(timeout=10)
    assert server.returncode == -signal.SIGKILL
    return acknowledged


@pytest.mark.integration
def test_every_acknowledged_event_survives_kill_9_and_is_stored_exactly_once(
    tmp_path: Path,
) -> None:
    home = tmp_path / "home"
    token = _operator_token(Settings(home=home))
    acknowledged: list[str] = []
    for cycle in range(CYCLES):  # every start after the first is a restart after a kill
        acknowledged += _cycle(home, token, cycle)

    pending = _drain_by_a_restarted_server(home)

    assert pending == 0
    assert len(acknowledged) >= CYCLES * EVENTS_PER_BATCH
    copies = _stored_copies(home)
    assert [seq for seq in acknowledged if seq not in copies] == []  # nothing acknowledged lost
    assert [seq for seq, n in copies.items() if n != 1] == []  # nothing stored twice


def _drain_by_a_restarted_server(home: Path) -> int:
    """Restart on the killed server's home; its drainer takes back the dead server's claims
    and empties the inbox. Returns what is still pending when it stops."""
    server = _start(home, _free_port())
    engine = create_engine_for(Settings(home=home))
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with engine.connect() as connection:
                pending = inbox_counts(connection)["pending"]
            if pending == 0:
                break
            time.sleep(0.1)
    finally:
        engine.dispose()
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
    return pending


def _stored_copies(home: Path) -> dict[str, int]:
    """How many rows the warehouse holds per event ``seq``."""
    paths = Warehouse(home / "warehouse").snapshot().paths("events")
    if not paths:
        return {}
    rows = duckdb.execute(
        "SELECT json_extract_string(properties, '$.seq') AS seq, count(*) "
        "FROM read_parquet(?) GROUP BY seq",
        [paths],
    ).fetchall()
    return {str(seq): int(count) for seq, count in rows}
