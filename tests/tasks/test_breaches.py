"""SLA breaches: recorded once when first seen, listed, and posted to a webhook."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import sqlalchemy as sa

from perennial.channels.webhook import WebhookChannel
from perennial.config import Settings
from perennial.journeys.worker import Worker
from perennial.tasks.alerts import ALERT_CHANNEL, post_breaches
from perennial.tasks.breaches import breach_alerts, list_breaches
from perennial.tasks.outcomes import close_task
from tests.sinks import webhook_sink
from tests.tasks.conftest import MANAGER, NOW, Store, open_store

SECRET = "test-secret"


def test_a_breach_is_recorded_once_however_often_the_check_runs(store: Store) -> None:
    task = store.task(due_in=timedelta(hours=1))
    due = NOW + timedelta(hours=1)
    with store.engine.begin() as connection:
        assert breach_alerts(connection, due) == []  # at the due time: not yet
        first = breach_alerts(connection, due + timedelta(seconds=1))
        again = breach_alerts(connection, due + timedelta(minutes=5))
    assert [breach.task.task_id for breach in first] == [task.task_id]
    assert first[0].recorded_at == due + timedelta(seconds=1)
    assert again == []
    with store.engine.connect() as connection:
        listed = list_breaches(connection)
        count = connection.execute(sa.text("SELECT count(*) FROM task_sla_breaches")).scalar()
    assert [b.task.task_id for b in listed] == [task.task_id] and count == 1


def test_a_task_closed_in_time_or_cancelled_raises_no_alert(store: Store) -> None:
    task = store.task(due_in=timedelta(hours=1))
    with store.engine.begin() as connection:
        close_task(connection, MANAGER, task.task_id, "won_back", now=NOW)
        assert breach_alerts(connection, NOW + timedelta(days=1)) == []


def test_breaches_are_listed_newest_first_by_team_and_page_on(store: Store) -> None:
    tasks = [store.task(f"C{i}", due_in=timedelta(minutes=i + 1)) for i in range(3)]
    silver = store.task("S1", team="silver", due_in=timedelta(minutes=1))
    with store.engine.begin() as connection:
        for minute in range(1, 5):
            breach_alerts(connection, NOW + timedelta(minutes=minute, seconds=1))
        newest = list_breaches(connection, team="gold", limit=2)
        rest = list_breaches(connection, team="gold", after=newest[-1].key)
        every = list_breaches(connection)
    assert [b.task.task_id for b in newest + rest] == [t.task_id for t in reversed(tasks)]
    assert silver.task_id in {b.task.task_id for b in every} and len(every) == 4


def test_breaches_are_posted_signed_with_an_idempotency_key(store: Store) -> None:
    task = store.task(due_in=timedelta(hours=1))
    with store.engine.begin() as connection:
        breaches = breach_alerts(connection, NOW + timedelta(hours=2))
    with webhook_sink() as sink:
        channel = WebhookChannel(secret=SECRET, allowed_hosts=["127.0.0.1"], url=sink.url)
        try:
            assert post_breaches(channel, breaches) == 1
            assert post_breaches(channel, breaches) == 1  # a repeat: dropped by its key
        finally:
            channel.close()
    [(headers, body)] = sink.received
    assert sink.repeats == 1
    assert headers["Idempotency-Key"] == f"sla-breach:{task.task_id}"
    assert (body["alert"], body["task_id"], body["team"]) == ("sla_breach", task.task_id, "gold")
    assert body["channel"] == ALERT_CHANNEL and body["customer_id"] == "C1"
    assert body["due_at"] == (NOW + timedelta(hours=1)).isoformat()


def test_a_refused_alert_is_counted_not_raised(store: Store) -> None:
    store.task(due_in=timedelta(hours=1))
    with store.engine.begin() as connection:
        breaches = breach_alerts(connection, NOW + timedelta(hours=2))
    with webhook_sink() as sink:
        sink.script = [400]
        channel = WebhookChannel(secret=SECRET, allowed_hosts=["127.0.0.1"], url=sink.url)
        try:
            assert post_breaches(channel, breaches) == 0
        finally:
            channel.close()
    assert sink.received == []


def test_the_worker_records_breaches_and_posts_them_to_the_task_alerts_webhook(
    tmp_path: Path,
) -> None:
    with webhook_sink() as sink:
        settings = Settings(
            home=tmp_path / "home",
            clock=NOW + timedelta(hours=2),
            signing_secret=SECRET,
            channel_webhooks={ALERT_CHANNEL: sink.url},
        )
        with open_store(settings) as store:
            task = store.task(due_in=timedelta(hours=1))
            worker = Worker(settings, operational=store.engine, customers=_NoCustomers())
            try:
                worker.run_pass()
                worker.run_pass()  # the next check waits SLA_CHECK_SECONDS; nothing twice
            finally:
                worker.dispatcher.close()
                for channel in worker.channels.values():
                    channel.close()
        assert worker.totals.breaches == 1
        [(headers, body)] = sink.received
    assert body["task_id"] == task.task_id
    assert headers["Idempotency-Key"] == f"sla-breach:{task.task_id}"
    assert headers["X-Perennial-Signature"].startswith("sha256=")


class _NoCustomers:
    def profiles(self, customers: object, now: object) -> dict[str, object]:
        del customers, now
        return {}

    def holding(self, condition: str, customers: object, now: object) -> set[str]:
        del condition, customers, now
        return set()
