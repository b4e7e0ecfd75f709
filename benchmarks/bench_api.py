"""Customer-360 API under load, against the framework's floor (issue 4, Performance).

1. **Build** (skipped when ``--work`` already holds it): a work folder with a hard-linked
   copy of the warehouse (data files linked, never written; the source is untouched),
   the profiles as of the last day of its stage history, and the serving store
   (``refresh_serving``, what ``perennial serving refresh`` runs). Both steps are timed.
2. **Serve**: ``perennial serve`` in its own process on loopback (uvicorn; uvloop and
   httptools, which uvicorn picks when installed; ``--log-level warning`` turns the JSON
   access log off), or with ``--workers N`` the same app factory under ``uvicorn
   --workers N``.
3. **Load**, from this process (a separate one from the server, as required), for
   ``--seconds`` per phase at each ``--levels`` of concurrent clients:

   - ``floor``: ``GET /v1/ping``, a constant: what the framework, the middleware and
     the network stack cost;
   - ``360``: ``GET /v1/customers/{id}`` for ids drawn at random from all customers;
   - ``mixed``: each request is either of the two, at random, so both see exactly the
     same load (the fair comparison of their latencies).

Reported per phase: requests/s, p50/p99 latency, errors (any status but 200, or a
transport error), and the CPU that the server and this load generator each spent per
second and per request (from ``/proc``; the generator shares the two cores with the
server, so when it, not the server, is saturated the throughput is the generator's).
``--client raw`` replaces httpx with a minimal keep-alive HTTP/1.1 client on asyncio
streams (a tenth of httpx's CPU per request), to load the server harder.

Targets (issue 4): 360 throughput >= half the floor's; p99 < 50 ms at 20 clients; at
200 clients no errors and p99 within 3x the floor's p99. Results: ``RESULTS.md``.

    .venv/bin/python benchmarks/bench_api.py --work /tmp/bench-api   # builds on first use
    .venv/bin/python benchmarks/bench_api.py --work /tmp/bench-api --client raw --role viewer
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

import httpx
import psutil
import uvloop

from perennial.access.api_keys import create_api_key
from perennial.access.roles import Role
from perennial.config import Settings, load_settings
from perennial.lifecycle.presets import resolve_model_path
from perennial.lifecycle.profiles import (
    PROFILES_TABLE,
    as_of_instant,
    build_profiles,
    store_profiles,
)
from perennial.lifecycle.stage_model import load_stage_model
from perennial.serving import refresh_serving
from perennial.store.backends import open_backend
from perennial.store.operational import create_engine_for, migrate
from perennial.store.warehouse import Warehouse

DEFAULT_WAREHOUSE = Path(__file__).parent / "data/features-f1-1000000c-s7/home/warehouse"
P99_AT_20_MS = 50.0
_CLI = "from perennial.cli.app import main; main()"
_WORKERS = (
    "import sys, uvicorn; sys.path.insert(0, {folder!r}); "
    "uvicorn.run('bench_api:serve_app', factory=True, host='127.0.0.1', port={port}, "
    "workers={workers}, log_level='warning', access_log=False, server_header=False)"
)


def serve_app() -> object:
    """What ``perennial serve`` runs, as a zero-argument factory for ``uvicorn --workers``."""
    from perennial.service import create_app

    return create_app(load_settings())


# --- build -------------------------------------------------------------------------------


def _linked_copy(source: Path, target: Path) -> None:
    """Data files hard-linked (never written in place), manifests copied."""
    shutil.copytree(source, target, copy_function=os.link, ignore=shutil.ignore_patterns("_*"))
    shutil.copytree(source / "_manifests", target / "_manifests")


def _compute_profiles(settings: Settings, model_name: str) -> float:
    """Profiles as of the end of the stored stage history; seconds taken."""
    model = load_stage_model(resolve_model_path(model_name))
    warehouse = Warehouse(settings.warehouse)
    started = time.perf_counter()
    with open_backend(settings) as backend:
        snapshot = warehouse.snapshot()
        last_day = backend.connection.con.sql(
            "SELECT max(day) FROM read_parquet(?)", params=[snapshot.paths("stage_history")]
        ).fetchall()[0][0]
        as_of = as_of_instant(last_day.isoformat(), model.timezone or settings.default_timezone)
        table = backend.to_pyarrow(build_profiles(backend, snapshot, as_of, model))
    store_profiles(warehouse, table, "profiles")
    return time.perf_counter() - started


def build(settings: Settings, source: Path, model_name: str) -> list[str]:
    """The work folder's warehouse copy, profiles and serving store; what was done."""
    done = []
    if not settings.warehouse.exists():
        started = time.perf_counter()
        _linked_copy(source.resolve(), settings.warehouse)
        done.append(f"warehouse linked copy {time.perf_counter() - started:.1f} s")
    if not Warehouse(settings.warehouse).snapshot().paths(PROFILES_TABLE):
        done.append(f"profiles {_compute_profiles(settings, model_name):.1f} s")
    if not settings.serving_database.exists():
        model = load_stage_model(resolve_model_path(model_name))
        summary = refresh_serving(settings, model)
        done.append(
            f"serving store {summary.seconds:.1f} s: {summary.customers:,} customers, "
            f"{summary.timeline_items:,} timeline items, {summary.transitions:,} transitions, "
            f"{summary.bytes / 2**30:.2f} GiB"
        )
    return done


def _token(settings: Settings, role: Role) -> str:
    migrate(settings)
    engine = create_engine_for(settings)
    with engine.begin() as connection:
        issued = create_api_key(
            connection, name=f"bench {role}", roles=frozenset({role}), created_by="bench"
        )
    engine.dispose()
    return issued.token


def _customer_ids(settings: Settings) -> list[str]:
    with sqlite3.connect(settings.serving_database) as connection:
        return [row[0] for row in connection.execute("SELECT customer_id FROM customers")]


def _warm_page_cache(path: Path) -> None:
    """Read the serving store once, as a server that has run a while has it in memory."""
    with path.open("rb") as store:
        while store.read(16 * 2**20):
            pass


# --- server ------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _start_server(home: Path, port: int, workers: int, log: Path) -> subprocess.Popen[bytes]:
    environment = {**os.environ, "PERENNIAL_HOME": str(home)}
    if workers > 1:
        code = _WORKERS.format(folder=str(Path(__file__).parent), port=port, workers=workers)
        command = [sys.executable, "-c", code]
    else:
        command = [sys.executable, "-c", _CLI, "serve", "--port", str(port)]
        command += ["--log-level", "warning"]
    with log.open("wb") as output:
        server = subprocess.Popen(
            command, env=environment, stdout=subprocess.DEVNULL, stderr=output
        )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return server
        except httpx.TransportError:
            time.sleep(0.2)
        if server.poll() is not None:
            raise SystemExit(log.read_text())
    server.kill()
    raise SystemExit("the server did not start within 120 s")


def _cpu_seconds(pid: int) -> float:
    """User + system CPU of the server and its worker processes so far."""
    process = psutil.Process(pid)
    total = 0.0
    for member in [process, *process.children(recursive=True)]:
        times = member.cpu_times()
        total += times.user + times.system
    return total


# --- load --------------------------------------------------------------------------------


@dataclass
class Phase:
    name: str
    clients: int
    seconds: float = 0.0
    latencies_ms: dict[str, list[float]] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)
    server_cpu_s: float = 0.0
    client_cpu_s: float = 0.0

    def requests(self, kind: str | None = None) -> int:
        kinds = [kind] if kind else list(self.latencies_ms)
        return sum(len(self.latencies_ms.get(k, [])) for k in kinds)

    def per_second(self, kind: str | None = None) -> float:
        return self.requests(kind) / self.seconds if self.seconds else 0.0

    def percentile(self, kind: str, share: float) -> float:
        ordered = sorted(self.latencies_ms.get(kind, []))
        if not ordered:
            return float("nan")
        return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


Get = Callable[[str], Awaitable[int]]
"""Send ``GET path`` on this client's connection; the status (0: transport error)."""


class RawClient:
    """One keep-alive HTTP/1.1 connection; GET only, bodies read by Content-Length."""

    def __init__(self, port: int, headers: dict[str, str]) -> None:
        self.port = port
        self.extra = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        self.streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def get(self, path: str) -> int:
        try:
            if self.streams is None:
                self.streams = await asyncio.open_connection("127.0.0.1", self.port)
            reader, writer = self.streams
            request = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{self.extra}\r\n"
            writer.write(request.encode())
            head = await reader.readuntil(b"\r\n\r\n")
            status, length, close = _parse_head(head)
            await reader.readexactly(length)
            if close:
                await self.close()
            return status
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
            await self.close()
            return 0

    async def close(self) -> None:
        if self.streams is not None:
            self.streams[1].close()
            self.streams = None


def _parse_head(head: bytes) -> tuple[int, int, bool]:
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    length, close = 0, False
    for line in lines[1:]:
        name, _, value = line.partition(":")
        name = name.strip().lower()
        if name == "content-length":
            length = int(value)
        elif name == "connection" and value.strip().lower() == "close":
            close = True
    return status, length, close


Choose = Callable[[random.Random], tuple[str, str]]
"""Pick the next request: (kind, path)."""


async def _run_phase(
    phase: Phase, choose: Choose, port: int, headers: dict[str, str], client_kind: str
) -> None:
    base = f"http://127.0.0.1:{port}"
    limits = httpx.Limits(max_connections=phase.clients, max_keepalive_connections=phase.clients)
    async with httpx.AsyncClient(base_url=base, headers=headers, limits=limits, timeout=30) as hx:

        async def httpx_get(path: str) -> int:
            try:
                return (await hx.get(path)).status_code
            except httpx.TransportError:
                return 0

        deadline = time.perf_counter() + phase.seconds

        async def worker(number: int) -> None:
            draw = random.Random(number)  # noqa: S311 (load, not secrets)
            raw = RawClient(port, headers)
            get: Get = raw.get if client_kind == "raw" else httpx_get
            while time.perf_counter() < deadline:
                kind, path = choose(draw)
                started = time.perf_counter()
                status = await get(path)
                elapsed = (time.perf_counter() - started) * 1000
                if status == 200:
                    phase.latencies_ms.setdefault(kind, []).append(elapsed)
                else:
                    phase.errors[kind] = phase.errors.get(kind, 0) + 1
            await raw.close()

        started = time.perf_counter()
        await asyncio.gather(*(worker(n) for n in range(phase.clients)))
        phase.seconds = time.perf_counter() - started


def _timed(phase: Phase, choose: Choose, server_pid: int, args: argparse.Namespace) -> Phase:
    server_before, client_before = _cpu_seconds(server_pid), time.process_time()
    uvloop.run(_run_phase(phase, choose, args.port, args.headers, args.client))
    phase.server_cpu_s = _cpu_seconds(server_pid) - server_before
    phase.client_cpu_s = time.process_time() - client_before
    return phase


def _choosers(ids: list[str]) -> dict[str, Choose]:
    paths = [f"/v1/customers/{quote(customer_id, safe='')}" for customer_id in ids]

    def floor(_draw: random.Random) -> tuple[str, str]:
        return "floor", "/v1/ping"

    def customer(draw: random.Random) -> tuple[str, str]:
        return "360", paths[draw.randrange(len(paths))]

    def mixed(draw: random.Random) -> tuple[str, str]:
        return floor(draw) if draw.random() < 0.5 else customer(draw)

    return {"floor": floor, "360": customer, "mixed": mixed}


def measure(args: argparse.Namespace, server_pid: int, ids: list[str]) -> list[Phase]:
    choosers = _choosers(ids)
    _timed(Phase("warm-up", 8, args.warm_up), choosers["mixed"], server_pid, args)
    phases = []
    for clients in args.levels:
        for name in ("floor", "360", "mixed"):
            phases.append(
                _timed(Phase(name, clients, args.seconds), choosers[name], server_pid, args)
            )
    return phases


# --- report ------------------------------------------------------------------------------


def _git_sha() -> str:
    result = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
    )
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=no"],
        capture_output=True,
        text=True,
        check=False,
    )
    sha = result.stdout.strip() or "unknown"
    return sha + (" (+ uncommitted changes)" if dirty.stdout else "")


def _rows(phases: list[Phase]) -> list[str]:
    rows = []
    for phase in phases:
        server_ms = phase.server_cpu_s / max(1, phase.requests()) * 1000
        for kind in sorted(phase.latencies_ms, key=lambda k: k != "floor"):
            rows.append(
                f"| {phase.clients} | {phase.name} | {kind} | {phase.requests(kind):,} | "
                f"{phase.per_second(kind):,.0f} | {phase.percentile(kind, 0.5):.1f} | "
                f"{phase.percentile(kind, 0.99):.1f} | {phase.errors.get(kind, 0)} | "
                f"{phase.server_cpu_s / phase.seconds:.2f} | "
                f"{phase.client_cpu_s / phase.seconds:.2f} | {server_ms:.2f} |"
            )
    return rows


def _verdicts(phases: list[Phase]) -> list[str]:
    found = {(p.clients, p.name): p for p in phases}
    lines = []
    for clients in sorted({p.clients for p in phases}):
        floor, customer, mixed = (found[(clients, n)] for n in ("floor", "360", "mixed"))
        share = customer.per_second("360") / floor.per_second("floor")
        cpu_floor = floor.server_cpu_s / max(1, floor.requests())
        cpu_360 = customer.server_cpu_s / max(1, customer.requests())
        p99_ratio = mixed.percentile("360", 0.99) / mixed.percentile("floor", 0.99)
        errors = sum(customer.errors.values()) + sum(mixed.errors.values())
        lines.append(
            f"- {clients} clients: 360 req/s = {share:.0%} of the floor's (target >= 50 %: "
            f"{'MET' if share >= 0.5 else 'NOT MET'}); server CPU per request 360 "
            f"{cpu_360 * 1000:.2f} ms vs floor {cpu_floor * 1000:.2f} ms "
            f"(capacity ratio {cpu_floor / cpu_360:.0%}); under the same load (mixed) 360 p99 "
            f"{mixed.percentile('360', 0.99):.1f} ms = {p99_ratio:.1f}x the floor's; "
            f"360 errors {errors}"
        )
        if clients <= 20:
            p99 = customer.percentile("360", 0.99)
            met = "MET" if p99 < P99_AT_20_MS else "NOT MET"
            lines.append(f"  - 360 p99 {p99:.1f} ms (target < {P99_AT_20_MS:.0f} ms): {met}")
        else:
            met = "MET" if errors == 0 and p99_ratio <= 3 else "NOT MET"
            lines.append(f"  - no errors and p99 within 3x the floor's: {met}")
    return lines


def report(args: argparse.Namespace, built: list[str], phases: list[Phase]) -> None:
    print(f"# bench_api  {datetime.now(UTC):%Y-%m-%d %H:%M} UTC  git {_git_sha()}")
    print(
        f"{len(args.ids):,} customers; role {args.role}; client {args.client}; "
        f"server workers {args.workers}; {args.seconds:.0f} s per phase"
    )
    print(f"build: {'; '.join(built) or 'reused from ' + str(args.work)}")
    print(f"load average before {args.load_before}, after {_load()}")
    print()
    print(
        "| clients | phase | endpoint | requests | req/s | p50 ms | p99 ms | errors "
        "| server CPU s/s | client CPU s/s | server CPU ms/request |"
    )
    print("|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    print("\n".join(_rows(phases)))
    print()
    print("\n".join(_verdicts(phases)))


def _load() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--warehouse", type=Path, default=DEFAULT_WAREHOUSE)
    parser.add_argument("--work", type=Path, required=True, help="Work folder, reused if built.")
    parser.add_argument("--model", default="seed000")
    parser.add_argument("--role", choices=[r.value for r in Role], default="agent")
    parser.add_argument("--client", choices=["httpx", "raw"], default="httpx")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--levels", type=lambda text: [int(v) for v in text.split(",")])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--warm-up", type=float, default=5.0)
    parser.add_argument("--build-only", action="store_true", help="Build, then stop.")
    parser.set_defaults(levels=[20, 200])
    args = parser.parse_args()
    args.load_before = _load()
    settings = Settings(home=args.work / "home")
    built = build(settings, args.warehouse, args.model)
    if args.build_only:
        print(f"build: {'; '.join(built) or 'already built'}; load average {_load()}")
        return
    args.ids = _customer_ids(settings)
    args.headers = {"Authorization": f"Bearer {_token(settings, Role(args.role))}"}
    _warm_page_cache(settings.serving_database)
    args.port = _free_port()
    server = _start_server(settings.home, args.port, args.workers, args.work / "server.log")
    try:
        phases = measure(args, server.pid, args.ids)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)
    report(args, built, phases)


if __name__ == "__main__":
    main()
