"""Fault injection: workers killed with SIGKILL again and again during a large run on a real
PostgreSQL, restarted each time; in the end every effect reached the sink, none twice.

Three ``perennial worker`` processes share the run (claiming with SKIP LOCKED). A
kill can land anywhere: inside an advance transaction (rolled back, redone), after
a delivery and before its record (redelivered under the same idempotency key, which
the receiver drops as a repeat, as a provider does). The sink checks the outcome a
customer sees: each expected message exactly once, nothing else.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from perennial.config import Settings
from perennial.journeys.customers import WarehouseCustomers
from perennial.journeys.enrolment import EntryRequest
from perennial.journeys.loading import read_journey_text
from perennial.journeys.repository import publish_latest, save_version
from perennial.journeys.runtime import JourneyRuntime
from perennial.journeys.tables import JOURNEY_OUTBOX, JOURNEY_RUNS
from perennial.store.operational import create_engine_for, migrate
from tests.sinks import webhook_sink

pytestmark = [pytest.mark.integration, pytest.mark.slow]

CUSTOMERS = 3000
WORKERS = 3
JOURNEY = """
journey: kill-test
trigger: {type: manual}
category: transactional
start: first
steps:
  first: {type: send, channel: app_push, message: {text: "first {{ customer_id }}"}, next: pause}
  pause: {type: wait, duration: 1s, next: second}
  second: {type: webhook, url: "SINK", body: {second: "{{ customer_id }}"}, next: done}
  done: {type: exit}
"""


def _fresh_database(server_url: str, name: str) -> str:
    admin = sa.create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}"'))
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return server_url.rsplit("/", 1)[0] + f"/{name}"


def _start(environment: dict[str, str], index: int, logs: Path) -> subprocess.Popen[bytes]:
    command = [
        str(Path(sys.executable).parent / "perennial"),
        "worker",
        "--poll",
        "0.05",
        "--batch",
        "100",
        "--owner",
        f"w{index}",
    ]
    with (logs / f"worker-{index}.log").open("ab") as log:  # the child keeps its own copy
        return subprocess.Popen(command, env=environment, stdout=log, stderr=log)


def _done(engine: sa.Engine) -> tuple[int, int]:
    with engine.connect() as connection:
        finished = connection.execute(
            sa.select(sa.func.count()).where(JOURNEY_RUNS.c.status == "completed")
        ).scalar_one()
        sent = connection.execute(
            sa.select(sa.func.count()).where(JOURNEY_OUTBOX.c.status == "sent")
        ).scalar_one()
    return int(finished), int(sent)


def _stuck_report(engine: sa.Engine, progress: tuple[int, int], logs: Path) -> str:
    """What a run that did not finish was doing: runs and outbox rows by state, and the
    end of each worker's log."""
    runs, outbox = JOURNEY_RUNS.c, JOURNEY_OUTBOX.c
    with engine.connect() as connection:
        by_step = connection.execute(
            sa.select(runs.status, runs.step, sa.func.count()).group_by(runs.status, runs.step)
        ).all()
        by_status = connection.execute(
            sa.select(outbox.status, outbox.claimed_by, sa.func.count()).group_by(
                outbox.status, outbox.claimed_by
            )
        ).all()
    tails = {
        log.name: log.read_text(errors="replace")[-1500:]
        for log in sorted(logs.glob("worker-*.log"))
    }
    return f"not finished: {progress}; runs {by_step}; outbox {by_status}; logs {tails}"


def test_kill_9_during_a_large_run_loses_nothing_and_sends_nothing_twice(
    postgres_url: str, tmp_path: Path
) -> None:
    url = _fresh_database(postgres_url, "kill_test")
    random_source = random.Random(7)  # noqa: S311 - timing, not secrets
    with webhook_sink() as sink:
        sink.delay = 0.004  # a slow provider: more kills land between delivery and record
        guardrails = tmp_path / "guardrails.yaml"
        guardrails.write_text("quiet_hours: null\ncaps: []\nrequire_opt_in: []\n")
        settings = Settings(
            home=tmp_path / "home", operational_url=url, signing_secret="k", clock=None
        )
        migrate(settings)
        engine = create_engine_for(settings)
        journey = read_journey_text(JOURNEY.replace("SINK", sink.url), "kill-test")
        now = settings.now()
        with engine.begin() as connection:
            save_version(connection, journey, actor="test", now=now)
            publish_latest(connection, journey.journey, actor="test", now=now)
        runtime = JourneyRuntime(settings, engine, WarehouseCustomers(settings, engine))
        requests = [EntryRequest(f"C{i:05d}", "kill-test", now) for i in range(CUSTOMERS)]
        assert runtime.enroll("kill-test", requests, now).entered == CUSTOMERS

        environment = {
            # Nothing of this process's own PERENNIAL_* settings (a pinned clock would
            # freeze the workers' time: no wait would end, no lease expire).
            **{k: v for k, v in os.environ.items() if not k.startswith("PERENNIAL_")},
            "PERENNIAL_HOME": str(tmp_path / "home"),
            "PERENNIAL_OPERATIONAL_URL": url,
            "PERENNIAL_SIGNING_SECRET": "k",
            "PERENNIAL_JOURNEY_LEASE_SECONDS": "15",
            "PERENNIAL_GUARDRAILS_PATH": str(guardrails),
            "PERENNIAL_CHANNEL_WEBHOOKS": json.dumps({"app_push": sink.url}),
        }
        workers = [_start(environment, index, tmp_path) for index in range(WORKERS)]
        started = [time.monotonic()] * WORKERS
        kills, sent_at_last_kill = 0, 0
        deadline = time.monotonic() + 600
        try:
            while (progress := _done(engine)) != (CUSTOMERS, 2 * CUSTOMERS):
                assert time.monotonic() < deadline, _stuck_report(engine, progress, tmp_path)
                time.sleep(random_source.uniform(0.2, 0.6))
                # Kill while work is flowing (after every few hundred sends), and only
                # workers past their start-up, so kills land in claims, advances,
                # deliveries and records rather than in imports.
                working = [i for i in range(WORKERS) if time.monotonic() - started[i] > 6]
                if kills < 10 and working and progress[1] - sent_at_last_kill >= 300:
                    victim = random_source.choice(working)
                    workers[victim].send_signal(signal.SIGKILL)
                    workers[victim].wait()
                    kills, sent_at_last_kill = kills + 1, progress[1]
                    workers[victim] = _start(environment, victim, tmp_path)
                    started[victim] = time.monotonic()
        finally:
            for worker in workers:
                worker.send_signal(signal.SIGKILL)
                worker.wait()
            engine.dispose()  # also when the loop failed: no connection left to the collector

        with engine.connect() as connection:
            keys = set(connection.execute(sa.select(JOURNEY_OUTBOX.c.effect_key)).scalars())
            statuses = set(connection.execute(sa.select(JOURNEY_OUTBOX.c.status)).scalars())
        engine.dispose()
        received = [headers["Idempotency-Key"] for headers, _ in sink.received]
        assert kills >= 8
        assert statuses == {"sent"}
        assert len(keys) == 2 * CUSTOMERS
        assert len(received) == len(set(received)) == 2 * CUSTOMERS  # none lost, none twice
        assert set(received) == keys
        firsts = sorted(body["text"] for body in sink.bodies() if "text" in body)
        seconds = sorted(body["second"] for body in sink.bodies() if "second" in body)
        assert firsts == [f"first C{i:05d}" for i in range(CUSTOMERS)]
        assert seconds == [f"C{i:05d}" for i in range(CUSTOMERS)]
        sys.stderr.write(f"\n{kills} kills; {sink.repeats} repeats dropped by idempotency key\n")
        assert sink.repeats <= kills * 20  # at most one unrecorded chunk per kill
