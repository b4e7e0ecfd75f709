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
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pyarrow.parquet as pq
import sqlalchemy as sa

from perennial.access.tables import SERVICE_TASKS
from perennial.channels.email import SmtpChannel, SmtpSettings
from perennial.channels.setup import guardrail_policy
from perennial.channels.webhook import WebhookChannel
from perennial.config import Settings
from perennial.journeys.coupons import load_codes
from perennial.journeys.customers import WarehouseCustomers
from perennial.journeys.dispatch import Dispatcher
from perennial.journeys.enrolment import EntryRequest
from perennial.journeys.keys import in_holdout
from perennial.journeys.loading import load_journey
from perennial.journeys.runtime import JourneyRuntime, Signal, record_signals
from perennial.journeys.service import JourneyService
from perennial.journeys.tables import COUPON_CODES, JOURNEY_OUTBOX, JOURNEY_RUNS
from perennial.segments.documents import PRESETS_FILE, load_segment_document
from perennial.segments.repository import current_members
from perennial.segments.service import SegmentService
from perennial.segments.tag_store import tags_of
from perennial.store.warehouse import Warehouse
from tests.segments import conftest as segments_conftest
from tests.segments.conftest import CLOCK, TODAY, SegmentStore
from tests.sinks import SmtpSink, WebhookSink, smtp_sink, webhook_sink

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
    """Receives app pushes and SMS (an SMS provider is a webhook here)."""
    mail: SmtpSink
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
    with service.operational.begin() as connection:
        for pool in ("first-order-20", "win-back-15", "birthday-30"):
            load_codes(connection, pool, [f"{pool}-{i:04d}" for i in range(400)], CLOCK)
    with webhook_sink() as sink, smtp_sink() as mail:
        channel = WebhookChannel(secret="story", allowed_hosts=["127.0.0.1"], url=sink.url)
        smtp = SmtpChannel(
            SmtpSettings(host=mail.host, port=mail.port),
            secret="story",
            public_url="http://perennial.test",
        )
        customers = WarehouseCustomers(settings, service.operational)
        runtime = JourneyRuntime(settings, service.operational, customers)
        dispatcher = Dispatcher(
            service.operational,
            {"app_push": channel, "sms": channel, "email": smtp},
            guardrail_policy(settings),
        )
        try:
            yield Story(
                settings,
                service.operational,
                runtime,
                dispatcher,
                sink,
                mail,
                members,
                _records(segment_store),
            )
        finally:
            dispatcher.close()
            channel.close()
            smtp.close()
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


SHANGHAI = ZoneInfo("Asia/Shanghai")


def _local(day: int, hour: int, minute: int = 0) -> datetime:
    """A January 2026 instant in Shanghai (the demo's zone), in UTC as the worker's clock
    gives it (``Settings.now``)."""
    return datetime(2026, 1, day, hour, minute, tzinfo=SHANGHAI).astimezone(UTC)


def _utc_plus_8(record: dict[str, Any]) -> bool:
    zone = ZoneInfo(record["timezone"] or "Asia/Shanghai")
    return datetime(2026, 1, 1, tzinfo=zone).utcoffset() == timedelta(hours=8)


def _expected(record: dict[str, Any], channel: str) -> tuple[str, str | None]:
    """What the default guardrails make of a marketing send: no address, then the
    customer record's consent flag."""
    address = {"email": "email", "sms": "phone"}.get(channel)
    if address is not None and not record[address]:
        return "suppressed", "no_address"
    flag = record[f"consent_{'push' if channel == 'app_push' else channel}"]
    if flag is True:
        return "sent", None
    return "suppressed", "unsubscribed" if flag is False else "no_opt_in"


def _by_customer(rows: list[Any]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for row in rows:
        found.setdefault(row.customer_id, {})[row.step] = row
    return found


def _local_done(row: Any) -> str:
    done = row.done_at if row.done_at.tzinfo else row.done_at.replace(tzinfo=UTC)
    return done.astimezone(SHANGHAI).strftime("%m-%d %H:%M")


def _check(row: Any, expected: tuple[str, str | None], local_time: str) -> None:
    """A sent row went out at ``local_time`` (a send due in quiet hours keeps the reason it
    waited for: "quiet_hours", the morning's 08:00); a suppressed one has the reason."""
    where = (row.customer_id, row.step)
    if expected[0] == "sent":
        assert row.status == "sent", where
        assert _local_done(row) == local_time, where
        assert row.reason == ("quiet_hours" if local_time.endswith("08:00") else None), where
    else:
        assert (row.status, row.reason) == expected, where


def _signal(s: Story, customers: list[str], event: str, at: datetime) -> None:
    with s.engine.begin() as connection:
        record_signals(
            connection, [Signal(c, event, at, key=f"{event}:{c}:{at}") for c in customers]
        )


def test_new_customers_get_a_coupon_then_next_day_content_then_member_day(
    segment_store: SegmentStore, tmp_path: Path
) -> None:
    with story(segment_store, tmp_path / "home", ["new-customer-welcome"]) as s:
        newcomers = sorted(c for c, r in s.records.items() if _utc_plus_8(r))[:16]
        buyer = newcomers[0]
        _signal(s, newcomers, "identify", CLOCK)
        s.run(CLOCK)
        assert s.mail.messages == []  # registered at midnight: the coupon waits for 08:00
        s.run(_local(1, 8))
        _signal(s, [buyer], "order_placed", _local(1, 12))  # the goal: out of the journey
        s.run(_local(1, 12))
        s.run(_local(2, 10))
        s.run(_local(4, 10))  # two days after the content: now wait for Friday ten
        s.run(_local(9, 9, 59))
        assert not any(row.step == "member_day" for row in s.outbox("new-customer-welcome"))
        s.run(_local(9, 10))

        rows = _by_customer(s.outbox("new-customer-welcome"))
        assert set(rows) == set(newcomers)
        assert set(rows[buyer]) == {"send_coupon"}
        plan = {
            "send_coupon": "01-01 08:00",
            "send_content": "01-02 10:00",
            "member_day": "01-09 10:00",
        }
        channels = {"send_coupon": "email", "send_content": "app_push", "member_day": "email"}
        for customer in newcomers[1:]:
            assert set(rows[customer]) == set(plan), customer
            for step, row in rows[customer].items():
                _check(row, _expected(s.records[customer], channels[step]), plan[step])
        mailed = {str(m["To"]): m for m in s.mail.messages}
        coupon_mails = [
            m for m in mailed.values() if "first-order-20-" in m.get_body(("plain",)).get_content()
        ]
        assert coupon_mails, "some newcomers consented to email"
        codes = [
            m.get_body(("plain",)).get_content().split("first-order-20-")[1][:4]
            for m in coupon_mails
        ]
        assert len(set(codes)) == len(codes)  # one code each
        assert all(m["List-Unsubscribe"] for m in s.mail.messages)
        assert s.sink.repeats == s.mail.repeats == 0


def test_dormant_customers_get_a_report_then_a_coupon_then_the_survey(
    segment_store: SegmentStore, tmp_path: Path
) -> None:
    with story(segment_store, tmp_path / "home", ["dormant-win-back"]) as s:
        dormant = sorted(c for c in s.members["dormant"] if _utc_plus_8(s.records[c]))
        assert len(dormant) >= 6, "the demo has dormant customers"
        s.run(CLOCK)
        s.run(_local(1, 8))
        returners = dormant[: len(dormant) // 3]
        _signal(s, returners, "order_placed", _local(3, 12))
        s.run(_local(3, 12))
        s.run(_local(8, 0))  # seven days without an order: the coupon SMS, after quiet hours
        s.run(_local(8, 8))
        s.run(_local(15, 0))
        s.run(_local(15, 8))

        rows = _by_customer(s.outbox("dormant-win-back"))
        plan = {
            "monthly_report": "01-01 08:00",
            "send_coupon": "01-08 08:00",
            "survey": "01-15 08:00",
        }
        channels = {"monthly_report": "email", "send_coupon": "sms", "survey": "email"}
        for customer in dormant:
            expected_steps = {"monthly_report"} if customer in returners else set(plan)
            assert set(rows[customer]) == expected_steps, customer
            for step, row in rows[customer].items():
                _check(row, _expected(s.records[customer], channels[step]), plan[step])
        sms = [body for body in s.sink.bodies() if "win-back-15-" in str(body.get("text", ""))]
        texted = {body["customer_id"] for body in sms}
        assert texted == {
            c for c in dormant if c not in returners and s.records[c]["consent_sms"] is True
        }
        with s.engine.connect() as connection:
            runs = {
                row.customer_id: row.status
                for row in connection.execute(
                    sa.select(JOURNEY_RUNS).where(JOURNEY_RUNS.c.journey == "dormant-win-back")
                )
            }
        assert {runs[c] for c in returners} == {"converted"}
        assert {runs[c] for c in dormant if c not in returners} == {"completed"}


def test_replenishment_reminders_go_two_days_before_the_window_naming_the_category(
    segment_store: SegmentStore, tmp_path: Path
) -> None:
    with story(segment_store, tmp_path / "home", ["replenishment-reminder"]) as s:
        due = s.members["replenishment_due"]
        snapshot = Warehouse(segment_store.warehouse).snapshot()
        opens = {
            row["customer_id"]: row["replenishment_opens_on"]
            for row in pq.read_table(snapshot.paths("predictions")).to_pylist()
        }
        assert due == {
            c for c, day in opens.items() if day is not None and 0 <= (day - TODAY).days <= 2
        }
        assert due
        s.run(CLOCK)
        s.run(EIGHT_LOCAL)
        profiles = WarehouseCustomers(s.settings, s.engine).profiles(sorted(due), CLOCK)
        pushed = {body["customer_id"]: body["text"] for body in s.sink.bodies()}
        for customer in due:
            status, _ = _expected(s.records[customer], "app_push")
            if status != "sent":
                assert customer not in pushed
                continue
            category = profiles[customer].get("favourite_category") or "常用商品"
            assert str(category) in pushed[customer], customer
        assert set(pushed) <= due and pushed


def test_a_ten_percent_holdout_gets_nothing_and_stays_out_on_every_entry(
    segment_store: SegmentStore, tmp_path: Path
) -> None:
    with story(segment_store, tmp_path / "home", ["birthday-with-holdout"]) as s:
        everyone = sorted(s.records)
        counts = s.runtime.enroll(
            "birthday-with-holdout",
            [EntryRequest(c, "manual:everyone", CLOCK) for c in everyone],
            CLOCK,
        )
        held = {c for c in everyone if in_holdout("birthday-with-holdout", c, 10)}
        assert 0.05 * len(everyone) < len(held) < 0.15 * len(everyone)
        s.run(CLOCK)
        s.run(_local(1, 9))
        with s.engine.connect() as connection:
            runs = connection.execute(
                sa.select(JOURNEY_RUNS).where(JOURNEY_RUNS.c.journey == "birthday-with-holdout")
            ).all()
            coupons = connection.execute(sa.select(COUPON_CODES.c.customer_id)).scalars().all()
        assert counts.holdout + counts.entered + sum(counts.refused.values()) == len(everyone)
        for customer in {run.customer_id for run in runs}:
            statuses = {run.status for run in runs if run.customer_id == customer}
            assert ("holdout" in statuses) == (customer in held), customer
        greeted = {row.customer_id for row in s.outbox("birthday-with-holdout")}
        assert greeted and not greeted & held
        assert not set(coupons) & held
        for message in s.mail.messages:
            assert "birthday-30-" in message.get_body(("plain",)).get_content()
        # Entering again (a new occurrence) keeps the same side of the split.
        again = s.runtime.enroll(
            "birthday-with-holdout",
            [EntryRequest(c, "manual:again", CLOCK) for c in sorted(held)],
            CLOCK,
        )
        assert again.entered == 0
