"""A journey runtime on SQLite over a fixed table of profiles, with real delivery sinks.

``FixedCustomers`` implements the runtime's customer interface over plain dicts
(conditions are Python predicates keyed by their text): it isolates the
runtime's own logic (entries, steps, outbox, guardrails, delivery) from the
warehouse, which the stories' tests exercise on demo data.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import yaml

from perennial.channels.base import Channel
from perennial.channels.email import SmtpChannel, SmtpSettings
from perennial.channels.guardrails import GuardrailPolicy
from perennial.channels.webhook import WebhookChannel
from perennial.config import Settings
from perennial.journeys.coupons import load_codes
from perennial.journeys.dispatch import Dispatcher
from perennial.journeys.enrolment import EntryRequest
from perennial.journeys.loading import parse_journey
from perennial.journeys.repository import publish_latest, save_version
from perennial.journeys.runtime import JourneyRuntime
from perennial.journeys.tables import JOURNEY_LOG, JOURNEY_OUTBOX, JOURNEY_RUNS
from perennial.store.operational import create_engine_for, migrate
from tests.sinks import SmtpSink, WebhookSink, smtp_sink, webhook_sink

START = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)
"""Monday 2 March 2026, 10:00 in Shanghai."""
SECRET = "test-secret"


@dataclass
class FixedCustomers:
    table: dict[str, dict[str, Any]]
    conditions: dict[str, Callable[[Mapping[str, Any]], bool]] = field(default_factory=dict)
    asked: list[tuple[str, int]] = field(default_factory=list)

    def profiles(self, customers: Sequence[str], now: datetime) -> Mapping[str, Mapping[str, Any]]:
        del now
        return {c: self.table[c] for c in customers if c in self.table}

    def holding(self, condition: str, customers: Sequence[str], now: datetime) -> set[str]:
        del now
        self.asked.append((condition, len(customers)))
        test = self.conditions[condition]
        return {c for c in customers if c in self.table and test(self.table[c])}


def profile(customer: str, **fields: Any) -> dict[str, Any]:
    return {
        "customer_id": customer,
        "email": f"{customer.lower()}@example.com",
        "phone": "+8613800000000",
        "consent_email": True,
        "consent_sms": True,
        "consent_push": True,
        "timezone": "Asia/Shanghai",
        "first_name": customer,
        **fields,
    }


@dataclass
class Harness:
    settings: Settings
    engine: sa.Engine
    customers: FixedCustomers
    runtime: JourneyRuntime
    smtp: SmtpSink
    hook: WebhookSink
    channels: dict[str, Channel]

    def publish(self, document: str | dict[str, Any]) -> str:
        raw = yaml.safe_load(document) if isinstance(document, str) else document
        journey = parse_journey(raw, "test")
        with self.engine.begin() as connection:
            save_version(connection, journey, actor="test", now=START)
            publish_latest(connection, journey.journey, actor="test", now=START)
        return journey.journey

    def enroll(self, journey: str, customers: Sequence[str], at: datetime = START) -> Any:
        requests = [EntryRequest(c, f"manual:{c}:{at.isoformat()}", at) for c in customers]
        return self.runtime.enroll(journey, requests, at)

    def coupons(self, pool: str, codes: Sequence[str]) -> None:
        with self.engine.begin() as connection:
            load_codes(connection, pool, codes, START)

    def dispatcher(self, policy: GuardrailPolicy | None = None, **options: Any) -> Dispatcher:
        chosen = policy or GuardrailPolicy(quiet_hours=None, caps=())
        return Dispatcher(self.engine, self.channels, chosen, **options)

    def tick(self, now: datetime, policy: GuardrailPolicy | None = None) -> None:
        self.runtime.run_until_idle(now)
        dispatcher = self.dispatcher(policy)
        try:
            dispatcher.run_until_idle(now)
        finally:
            dispatcher.close()

    def runs(self, journey: str) -> dict[str, Any]:
        with self.engine.connect() as connection:
            rows = connection.execute(
                sa.select(JOURNEY_RUNS).where(JOURNEY_RUNS.c.journey == journey)
            ).all()
        return {row.customer_id: row for row in rows}

    def outbox(self) -> list[Any]:
        with self.engine.connect() as connection:
            return list(connection.execute(sa.select(JOURNEY_OUTBOX)).all())

    def log(self, what: str | None = None) -> list[Any]:
        query = sa.select(JOURNEY_LOG).order_by(JOURNEY_LOG.c.seq)
        if what is not None:
            query = query.where(JOURNEY_LOG.c.what == what)
        with self.engine.connect() as connection:
            return list(connection.execute(query).all())


@contextmanager
def harness(home: Path, table: dict[str, dict[str, Any]], **conditions: Any) -> Iterator[Harness]:
    settings = Settings(home=home, signing_secret=SECRET, clock=START)
    migrate(settings)
    engine = create_engine_for(settings)
    customers = FixedCustomers(table, dict(conditions))
    with smtp_sink() as smtp, webhook_sink() as hook:
        email = SmtpChannel(
            SmtpSettings(host=smtp.host, port=smtp.port), secret=SECRET, public_url="http://t"
        )
        channels: dict[str, Channel] = {
            "email": email,
            "webhook": WebhookChannel(secret=SECRET, allowed_hosts=["127.0.0.1"]),
            "app_push": WebhookChannel(secret=SECRET, allowed_hosts=["127.0.0.1"], url=hook.url),
            "sms": WebhookChannel(secret=SECRET, allowed_hosts=["127.0.0.1"], url=hook.url),
        }
        runtime = JourneyRuntime(settings, engine, customers, batch=50)
        try:
            yield Harness(settings, engine, customers, runtime, smtp, hook, channels)
        finally:
            for channel in channels.values():
                channel.close()
            engine.dispose()
