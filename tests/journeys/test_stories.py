"""The seeds' stories end to end on demo data: example journeys published, segments saved
(their enters trigger the journeys), the worker's runtime on the warehouse's profiles,
the default guardrails, delivery to a real receiver; who got what, when in local time,
who was suppressed and why, checked against the segments and the customer records.

The clock is the demo's end, 2026-01-01 00:00 in Shanghai: inside the default quiet
hours, so every marketing message waits for 08:00.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import sqlalchemy as sa

from perennial.access.tables import SERVICE_TASKS
from perennial.channels.setup import guardrail_policy
from perennial.channels.webhook import WebhookChannel
from perennial.config import Settings
from perennial.journeys.customers import WarehouseCustomers
from perennial.journeys.dispatch import Dispatcher
from perennial.journeys.loading import load_journey
from perennial.journeys.runtime import JourneyRuntime
from perennial.journeys.service import JourneyService
from perennial.journeys.tables import JOURNEY_OUTBOX, JOURNEY_RUNS
from perennial.segments.documents import PRESETS_FILE, load_segment_document
from perennial.segments.repository import current_members
from perennial.segments.service import SegmentService
from perennial.segments.tag_store import tags_of
from perennial.store.warehouse import Warehouse
from tests.segments import conftest as segments_conftest
from tests.segments.conftest import CLOCK, SegmentStore
from tests.sinks import WebhookSink, webhook_sink

segment_store = segments_conftest.segment_store
EXAMPLES = Path(__file__).parents[2] / "examples" / "journeys"
EIGHT_LOCAL = CLOCK + timedelta(hours=8)
"""2026-01-01 08:00 in Shanghai: the end of the default quiet hours."""


@dataclass
class Story:
    settings: Settings
    engine: sa.Engine
    runtime: JourneyRuntime
    dispatcher: Dispatcher
    sink: WebhookSink
    members: dict[str, set[str]]
    records: dict[str, dict[str, Any]]

    def run(self, now: Any) -> None:
        self.runtime.run_until_idle(now)
        self.dispatcher.run_until_idle(now)

    def outbox(self, journey: str) -> list[Any]:
        with self.engine.connect() as connection:
            query = sa.select(JOURNEY_OUTBOX).where(JOURNEY_OUTBOX.c.journey == journey)
            return list(connection.execute(query))


@contextmanager
def story(segment_store: SegmentStore, home: Path, journeys: list[str]) -> Iterator[Story]:
    """Segments saved and journeys published in the same instant (the demo's pinned
    clock): a deployment setting both up together, so the enters count."""
    settings = segment_store.settings(home, signing_secret="story")
    service = JourneyService.migrated(settings)
    segments = SegmentService(settings, service.operational)
    results = segments.save_many(load_segment_document(PRESETS_FILE).segments, user="test")
    with service.operational.connect() as connection:
        members = {r.name: set(current_members(connection, r.name)) for r in results}
    for name in journeys:
        service.publish(load_journey(EXAMPLES / f"{name}.yaml"), actor="test")
    with webhook_sink() as sink:
        channel = WebhookChannel(secret="story", allowed_hosts=["127.0.0.1"], url=sink.url)
        customers = WarehouseCustomers(settings, service.operational)
        runtime = JourneyRuntime(settings, service.operational, customers)
        dispatcher = Dispatcher(
            service.operational, {"app_push": channel}, guardrail_policy(settings)
        )
        try:
            yield Story(
                settings,
                service.operational,
                runtime,
                dispatcher,
                sink,
                members,
                _records(segment_store),
            )
        finally:
            dispatcher.close()
            channel.close()
            customers.close()


def _records(segment_store: SegmentStore) -> dict[str, dict[str, Any]]:
    snapshot = Warehouse(segment_store.warehouse).snapshot()
    rows = pq.read_table(snapshot.paths("customers")).to_pylist()
    return {row["customer_id"]: row for row in rows}


TEXTS = {
    "education_a": "助教 1 对 1 督学服务已为你开通",
    "education_b": "考前冲刺押题包，限时领取",
    "education_c": "进阶实战课程与就业内推机会",
}


def test_education_dormant_learners_each_get_their_own_message_at_eight(
    segment_store: SegmentStore, tmp_path: Path
) -> None:
    with story(segment_store, tmp_path / "home", ["education-dormant-learners"]) as s:
        dormant = s.members["dormant_learners"]
        assert dormant, "the demo has dormant learners"
        s.run(CLOCK)
        assert s.sink.received == []  # 00:00 local: quiet hours
        deferred = s.outbox("education-dormant-learners")
        assert {row.reason for row in deferred if row.status == "pending"} == {"quiet_hours"}
        s.run(EIGHT_LOCAL - timedelta(minutes=1))
        assert s.sink.received == []
        s.run(EIGHT_LOCAL)

        got = {body["customer_id"]: body["text"] for body in s.sink.bodies()}
        group = {c: g for g in TEXTS for c in s.members[g]}
        assert set(group) == dormant  # the split covers the dormant learners, once each
        for customer, text in got.items():
            assert text == TEXTS[group[customer]], customer
        outcomes = {row.customer_id: row for row in s.outbox("education-dormant-learners")}
        assert set(outcomes) == dormant
        for customer, row in outcomes.items():
            consent = s.records[customer]["consent_push"]
            if consent is True:
                assert row.status == "sent" and customer in got, customer
            else:
                expected = "unsubscribed" if consent is False else "no_opt_in"
                assert (row.status, row.reason) == ("suppressed", expected), customer
                assert customer not in got
        assert got and len(got) < len(dormant)  # some consented, some did not
        assert s.sink.repeats == 0


def test_high_value_at_risk_get_a_call_back_within_24_hours_and_no_sms(
    segment_store: SegmentStore, tmp_path: Path
) -> None:
    with story(segment_store, tmp_path / "home", ["high-value-callback"]) as s:
        at_risk = s.members["high_value_at_risk"]
        assert at_risk
        s.run(CLOCK)
        with s.engine.connect() as connection:
            tasks = connection.execute(sa.select(SERVICE_TASKS)).all()
            runs = connection.execute(sa.select(JOURNEY_RUNS.c.status)).scalars().all()
            tagged = {
                c for c in at_risk if any(t.tag == "called_back" for t in tags_of(connection, c))
            }
        assert {task.customer_id for task in tasks} == at_risk
        assert len(tasks) == len(at_risk)
        for task in tasks:
            assert (task.team, task.priority, task.status) == ("gold-service", "urgent", "open")
            assert task.due_at.replace(tzinfo=None) == (CLOCK + timedelta(hours=24)).replace(
                tzinfo=None
            )
            assert "24 小时内电话回访" in task.title and "%" in task.title
        assert set(runs) == {"completed"}
        assert tagged == at_risk
        assert s.outbox("high-value-callback") == []  # a call, not an SMS
        assert s.sink.received == []
