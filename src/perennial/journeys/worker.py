"""``perennial worker``: the loop that runs journeys and sends what they queue.

Each pass reads new signals and segment changes, advances one batch of due runs
and dispatches one batch of the outbox, and sleeps only when a pass found
nothing to do. Every piece is its own transaction (see :mod:`.runtime` and
:mod:`.dispatch`), so a worker may be killed at any instant: what it had not
committed is redone by the next pass of any worker.

On SQLite one worker runs at a time (a lock file next to the database says so
clearly instead of letting two writers fight over the database lock); on
PostgreSQL any number run side by side.
"""

from __future__ import annotations

import fcntl
import logging
import os
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import sqlalchemy as sa

from perennial.channels.base import Channel
from perennial.channels.guardrails import GuardrailPolicy
from perennial.channels.setup import build_channels, guardrail_policy
from perennial.config import Settings
from perennial.errors import StoreError
from perennial.journeys.customers import CustomerContext, WarehouseCustomers
from perennial.journeys.dispatch import Dispatcher
from perennial.journeys.runtime import JourneyRuntime
from perennial.store.operational import create_engine_for
from perennial.tasks.alerts import ALERT_CHANNEL, post_breaches
from perennial.tasks.breaches import breach_alerts

__all__ = ["SLA_CHECK_SECONDS", "Worker", "WorkerTotals", "single_sqlite_worker"]

_log = logging.getLogger(__name__)

SLA_CHECK_SECONDS = 30.0
"""How often a worker looks for service tasks that passed their due time."""


@dataclass
class WorkerTotals:
    passes: int = 0
    signals: int = 0
    advanced: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    breaches: int = 0
    """Service tasks found past their due time (SLA breaches recorded)."""


class Worker:
    def __init__(
        self,
        settings: Settings,
        *,
        owner: str | None = None,
        operational: sa.Engine | None = None,
        customers: CustomerContext | None = None,
        channels: dict[str, Channel] | None = None,
        policy: GuardrailPolicy | None = None,
        batch: int = 500,
    ) -> None:
        self.settings = settings
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}"
        self.engine = operational or create_engine_for(settings)
        self.channels = channels if channels is not None else build_channels(settings)
        self.runtime = JourneyRuntime(
            settings,
            self.engine,
            customers or WarehouseCustomers(settings, self.engine),
            owner=self.owner,
            batch=batch,
        )
        self.dispatcher = Dispatcher(
            self.engine,
            self.channels,
            policy or guardrail_policy(settings),
            owner=self.owner,
            batch=batch,
            lease=timedelta(seconds=settings.journey_lease_seconds),
        )
        self.totals = WorkerTotals()
        self._next_sla_check = 0.0

    def run_pass(self) -> bool:
        """One pass over every kind of work; returns whether anything was done."""
        now = self.settings.now()
        signals = self.runtime.read_signals(now) + self.runtime.read_segment_changes(now)
        signals += self.runtime.read_scheduled(now)
        advanced = self.runtime.advance_due(now)
        dispatched = self.dispatcher.dispatch_due(now)
        self._check_sla(now)
        totals = self.totals
        totals.passes += 1
        totals.signals += signals
        totals.advanced += advanced.runs
        totals.outcomes.update(dispatched.outcomes)
        return bool(signals or advanced.runs or dispatched.claimed)

    def _check_sla(self, now: datetime) -> None:
        """Record the tasks that became overdue (each once) and post an alert for each to
        the ``task_alerts`` channel when one is configured; every ``SLA_CHECK_SECONDS``."""
        if time.monotonic() < self._next_sla_check:
            return
        self._next_sla_check = time.monotonic() + SLA_CHECK_SECONDS
        with self.engine.begin() as connection:
            breaches = breach_alerts(connection, now)
        self.totals.breaches += len(breaches)
        channel = self.channels.get(ALERT_CHANNEL)
        if breaches and channel is not None:
            post_breaches(channel, breaches)

    def run(
        self, *, stop: threading.Event | None = None, until_idle: bool = False, poll: float = 1.0
    ) -> WorkerTotals:
        """Work until ``stop`` is set (or, with ``until_idle``, until a pass finds nothing)."""
        stopping = stop or threading.Event()
        while not stopping.is_set():
            try:
                busy = self.run_pass()
            except sa.exc.OperationalError as error:  # database restarting, lock timeouts
                _log.warning("worker %s: pass failed, retrying: %s", self.owner, error)
                busy = False
            if not busy:
                if until_idle:
                    break
                stopping.wait(poll)
        return self.totals

    def close(self) -> None:
        self.dispatcher.close()
        for channel in self.channels.values():
            channel.close()
        self.engine.dispose()


@contextmanager
def single_sqlite_worker(settings: Settings) -> Iterator[None]:
    """Hold the SQLite worker lock (no-op on PostgreSQL); raise if another worker has it."""
    if not settings.operational_database_url.startswith("sqlite"):
        yield
        return
    path = settings.home / "journeys-worker.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise StoreError(
                f"another worker is running on this SQLite store ({path}); SQLite supports one "
                "worker: stop it, or use PostgreSQL (operational_url) to run several"
            ) from None
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
