"""The runtime end to end on SQLite: entries, steps, outbox, guardrails, delivery to a real
SMTP server and a real webhook receiver, retries and dead letters."""

from __future__ import annotations

import hashlib
import hmac
from datetime import timedelta
from pathlib import Path

import sqlalchemy as sa

from perennial.access.tables import SERVICE_TASKS
from perennial.channels.guardrails import FrequencyCap, GuardrailPolicy
from perennial.channels.tables import CONSENTS, SUPPRESSIONS
from perennial.channels.unsubscribe import read_token
from perennial.ingest.inbox import INBOX_ITEMS
from perennial.journeys.dispatch import DispatchReport
from perennial.journeys.repository import change_status
from perennial.journeys.runtime import Signal, record_signals
from perennial.segments.tables import SEGMENT_CHANGES
from perennial.segments.tag_store import tags_of
from tests.journeys.runtime_harness import SECRET, START, harness, profile

WELCOME = """
journey: welcome
trigger: {type: manual}
start: coupon
steps:
  coupon: {type: coupon, pool: first, next: mail}
  mail:
    type: send
    channel: email
    message:
      subject: {zh-CN: "欢迎 {{ first_name }}", en: "Welcome {{ first_name }}"}
      text: {zh-CN: "券码 {{ coupon_code }}", en: "Code {{ coupon_code }}"}
      html: "<p>{{ coupon_code }} for {{ first_name }}</p>"
    next: later
  later: {type: wait, duration: 1d, next: push}
  push:
    type: send
    channel: app_push
    message: {text: "Day two, {{ first_name }}"}
    next: done
  done: {type: exit}
"""


def _three(**extra: object) -> dict[str, dict[str, object]]:
    return {c: profile(c, **extra) for c in ("C1", "C2", "C3")}


def test_welcome_journey_sends_email_then_push_a_day_later(tmp_path: Path) -> None:
    table = _three()
    table["C3"]["locale"] = "en"
    table["C3"]["first_name"] = "<Bo>"
    with harness(tmp_path, table) as h:
        h.coupons("first", ["A-1", "A-2", "A-3", "A-4"])
        name = h.publish(WELCOME)
        assert h.enroll(name, ["C1", "C2", "C3"]).entered == 3
        h.tick(START)
        mails = {m["To"]: m for m in h.smtp.messages}
        assert set(mails) == {"c1@example.com", "c2@example.com", "c3@example.com"}
        codes = {m.get_body(("plain",)).get_content().split()[-1] for m in mails.values()}  # type: ignore[union-attr]
        assert codes == {"A-1", "A-2", "A-3"}
        assert mails["c1@example.com"]["Subject"] == "欢迎 C1"
        english = mails["c3@example.com"]
        assert english["Subject"] == "Welcome <Bo>"
        html = english.get_body(("html",)).get_content()  # type: ignore[union-attr]
        assert "for &lt;Bo&gt;" in html
        assert english["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        token = english["List-Unsubscribe"].strip("<>").rsplit("/", 1)[1]
        assert read_token(SECRET, token) == ("C3", "email")
        assert h.hook.received == []  # the push waits a day

        h.tick(START + timedelta(hours=23))
        assert h.hook.received == []
        h.tick(START + timedelta(days=1))
        pushes = sorted(body["text"] for body in h.hook.bodies())
        assert pushes == ["Day two, <Bo>", "Day two, C1", "Day two, C2"]
        headers = h.hook.received[0][0]
        body = sorted(h.hook.received, key=lambda r: r[1]["customer_id"])[0]
        assert body[1]["channel"] == "app_push" and body[1]["to"] == "C1"
        assert headers["Idempotency-Key"] == h.hook.received[0][1]["effect_key"]
        assert {run.status for run in h.runs(name).values()} == {"completed"}
        assert h.smtp.repeats == 0 and h.hook.repeats == 0


def test_webhook_signature_verifies(tmp_path: Path) -> None:
    document = """
journey: hook
trigger: {type: manual}
start: call
steps:
  call: {type: webhook, url: "URL", body: {who: "{{ customer_id }}", n: 3}, next: done}
  done: {type: exit}
"""
    with harness(tmp_path, _three()) as h:
        name = h.publish(document.replace("URL", h.hook.url))
        h.enroll(name, ["C1"])
        h.tick(START)
        [(headers, body)] = h.hook.received
        assert body == {"who": "C1", "n": 3}
        import orjson

        expected = hmac.new(SECRET.encode(), orjson.dumps(body), hashlib.sha256).hexdigest()
        assert headers["X-Perennial-Signature"] == f"sha256={expected}"


# -- entry rules ------------------------------------------------------------

ONE_STEP = """
journey: once
trigger: {type: manual}
entry: ENTRY
start: wait
steps:
  wait: {type: wait, duration: 2d, next: done}
  done: {type: exit}
"""


def _entry(tmp_path: Path, entry: str) -> list[tuple[int, dict[str, int]]]:
    """Entries of C1 at day 0 (twice: the same occurrence), day 1, day 3, day 10."""
    with harness(tmp_path, _three()) as h:
        name = h.publish(ONE_STEP.replace("ENTRY", entry))
        outcomes = []
        for days in (0, 0, 1, 3, 10):
            at = START + timedelta(days=days)
            h.runtime.run_until_idle(at)
            counts = h.enroll(name, ["C1"], at)
            h.runtime.run_until_idle(at)  # the new run starts its wait now
            outcomes.append((counts.entered, dict(counts.refused)))
        return outcomes


def test_re_entry_never(tmp_path: Path) -> None:
    assert _entry(tmp_path, "{re_entry: never}") == [
        (1, {}),
        (0, {"same_occurrence": 1}),
        (0, {"in_journey": 1}),
        (0, {"entered_before": 1}),
        (0, {"entered_before": 1}),
    ]


def test_re_entry_after_exit(tmp_path: Path) -> None:
    # The run ends on day 2: refused on day 1, let in again on day 3 and day 10 (that run
    # started on day 3 has ended by day 10).
    assert [entered for entered, _ in _entry(tmp_path, "{re_entry: after_exit}")] == [1, 0, 0, 1, 1]


def test_re_entry_after_days(tmp_path: Path) -> None:
    outcomes = _entry(tmp_path, "{re_entry: after_days, re_entry_days: 5}")
    assert [entered for entered, _ in outcomes] == [1, 0, 0, 0, 1]
    assert outcomes[3][1] == {"entered_recently": 1}


def test_re_entry_every_up_to_max_concurrent(tmp_path: Path) -> None:
    outcomes = _entry(tmp_path, "{re_entry: every, max_concurrent: 2}")
    # day 0: 1st run; day 1: 2nd run; day 3: both ended, 3rd; day 10: 4th.
    assert [entered for entered, _ in outcomes] == [1, 0, 1, 1, 1]


def test_enrolment_limit_and_paused_journey(tmp_path: Path) -> None:
    with harness(tmp_path, _three()) as h:
        name = h.publish(ONE_STEP.replace("ENTRY", "{limit: 2}"))
        counts = h.enroll(name, ["C1", "C2", "C3"])
        assert (counts.entered, dict(counts.refused)) == (2, {"enrolment_limit": 1})
        h.runtime.run_until_idle(START)
        with h.engine.begin() as connection:
            change_status(connection, name, "pause", actor="t", now=START)
        assert dict(h.enroll(name, ["C3"]).refused) == {"journey_not_active": 1}
        # Paused: its runs are held, even when due.
        h.runtime.run_until_idle(START + timedelta(days=5))
        assert {r.status for r in h.runs(name).values()} == {"waiting"}
        with h.engine.begin() as connection:
            change_status(connection, name, "resume", actor="t", now=START)
        h.runtime.run_until_idle(START + timedelta(days=5))
        assert {r.status for r in h.runs(name).values()} == {"completed"}


def test_holdout_is_deterministic_sticky_and_near_its_share(tmp_path: Path) -> None:
    table = {f"C{i:04d}": profile(f"C{i:04d}") for i in range(2000)}
    document = ONE_STEP.replace("ENTRY", "{re_entry: every, max_concurrent: 5}").replace(
        "journey: once", "journey: once\nholdout_percent: 10"
    )
    with harness(tmp_path, table) as h:
        name = h.publish(document)
        first = h.enroll(name, list(table))
        assert 160 <= first.holdout <= 240 and first.entered + first.holdout == 2000
        held = {c for c, run in h.runs(name).items() if run.status == "holdout"}
        again = h.enroll(name, list(table), START + timedelta(hours=1))
        assert again.holdout == first.holdout
        assert len(h.log("holdout")) == 2 * len(held)
        assert all(run.step is None for c, run in h.runs(name).items() if c in held)


SPLIT = """
journey: ab
trigger: {type: manual}
entry: {re_entry: every, max_concurrent: 3}
start: arms
steps:
  arms:
    type: split
    variants:
      - {name: a, weight: 1, next: done}
      - {name: b, weight: 3, next: done}
  done: {type: exit}
"""


def test_split_follows_weights_and_is_sticky_on_re_entry(tmp_path: Path) -> None:
    table = {f"C{i:04d}": profile(f"C{i:04d}") for i in range(1000)}
    with harness(tmp_path, table) as h:
        name = h.publish(SPLIT)
        h.enroll(name, list(table))
        h.runtime.run_until_idle(START)
        first = {c: run.variant for c, run in h.runs(name).items()}
        share_b = sum(v == "b" for v in first.values()) / len(first)
        assert 0.70 <= share_b <= 0.80
        h.enroll(name, list(table), START + timedelta(minutes=1))
        h.runtime.run_until_idle(START + timedelta(minutes=1))
        with h.engine.connect() as connection:
            from perennial.journeys.tables import JOURNEY_RUNS

            rows = connection.execute(sa.select(JOURNEY_RUNS.c.customer_id, JOURNEY_RUNS.c.variant))
            for customer, variant in rows:
                assert variant == first[customer]


# -- waits for events, goals, branches ------------------------------------------------------------

WIN_BACK = """
journey: win-back
trigger: {type: manual}
goal: {event: order_placed}
start: report
steps:
  report: {type: send, channel: sms, message: {text: "report"}, next: wait}
  wait:
    type: wait_for_event
    event: page_view
    where: "path starts with '/sale'"
    timeout: 7d
    on_event: clicked
    on_timeout: check
  clicked: {type: tag, add: came_back, next: done}
  check: {type: branch, condition: "vip", then: vip_mail, else: done}
  vip_mail: {type: send, channel: email, message: {subject: s, text: "vip"}, next: done}
  done: {type: exit}
"""


def test_wait_for_event_with_filter_goal_and_branch(tmp_path: Path) -> None:
    table = _three()
    table["C3"]["vip"] = True
    with harness(tmp_path, table, vip=lambda p: bool(p.get("vip"))) as h:
        name = h.publish(WIN_BACK)
        h.enroll(name, ["C1", "C2", "C3"])
        h.tick(START)
        assert len(h.hook.received) == 3
        later = START + timedelta(days=1)
        with h.engine.begin() as connection:
            record_signals(
                connection,
                [
                    Signal("C1", "page_view", later, {"path": "/home"}),  # filtered out
                    Signal("C1", "page_view", later, {"path": "/sale/shoes"}),
                    Signal("C2", "order_placed", later, {"amount": 30}),
                    Signal("C3", "page_view", START - timedelta(days=1), {"path": "/sale"}),
                ],
            )
        h.tick(later)
        runs = h.runs(name)
        assert runs["C1"].status == "completed"
        assert [t.tag for t in tags_of(h.engine.connect(), "C1")] == ["came_back"]
        assert runs["C2"].status == "converted"
        assert runs["C3"].status == "waiting"  # its page view came before the wait began
        h.tick(START + timedelta(days=7))
        assert h.runs(name)["C3"].status == "completed"
        assert [m["To"] for m in h.smtp.messages] == ["c3@example.com"]
        assert h.customers.asked == [("vip", 1)]
        assert [row.customer_id for row in h.log("converted")] == ["C2"]


def test_segment_enter_trigger_reads_the_change_log_once(tmp_path: Path) -> None:
    document = """
journey: seg
trigger: {type: segment_enter, segment: dormant}
start: push
steps:
  push: {type: send, channel: app_push, message: {text: "hi"}, next: done}
  done: {type: exit}
"""
    with harness(tmp_path, _three()) as h:
        h.publish(document)
        with h.engine.begin() as connection:
            connection.execute(
                SEGMENT_CHANGES.insert(),
                [
                    {
                        "name": "dormant",
                        "customer_id": c,
                        "change": change,
                        "at": START,
                        "version": 1,
                        "trigger": "refresh",
                    }
                    for c, change in (("C1", "enter"), ("C2", "exit"), ("C3", "enter"))
                ]
                + [
                    {
                        "name": "other",
                        "customer_id": "C2",
                        "change": "enter",
                        "at": START,
                        "version": 1,
                        "trigger": "refresh",
                    }
                ],
            )
        h.tick(START)
        h.tick(START + timedelta(minutes=5))
        assert sorted(b["customer_id"] for b in h.hook.bodies()) == ["C1", "C3"]


# -- effects ------------------------------------------------------------


def test_task_tag_and_attribute_actions(tmp_path: Path) -> None:
    document = """
journey: vip-care
trigger: {type: manual}
start: call
steps:
  call:
    type: task
    team: gold
    title: "Call {{ first_name }} within 24 h"
    priority: urgent
    due_in: 24h
    next: mark
  mark: {type: tag, add: called, next: note}
  note: {type: update_attribute, field: care_level, value: "gold-{{ customer_id }}", next: done}
  done: {type: exit}
"""
    with harness(tmp_path, _three()) as h:
        name = h.publish(document)
        h.enroll(name, ["C1"])
        h.tick(START)
        h.tick(START + timedelta(minutes=1))  # nothing happens twice
        with h.engine.connect() as connection:
            tasks = connection.execute(sa.select(SERVICE_TASKS)).all()
            items = connection.execute(
                sa.select(INBOX_ITEMS.c.table_name, INBOX_ITEMS.c.record)
            ).all()
        [task] = tasks
        assert (task.title, task.team, task.priority, task.status) == (
            "Call C1 within 24 h",
            "gold",
            "urgent",
            "open",
        )
        assert task.due_at.replace(tzinfo=None) == (START + timedelta(hours=24)).replace(
            tzinfo=None
        )
        assert items == [
            ("customers", '{"customer_id": "C1", "attributes": {"care_level": "gold-C1"}}')
        ]
        assert h.runs(name)["C1"].status == "completed"


def test_an_empty_coupon_pool_fails_the_run_with_a_reason(tmp_path: Path) -> None:
    with harness(tmp_path, _three()) as h:
        h.coupons("first", ["ONLY-ONE"])
        name = h.publish(WELCOME)
        h.enroll(name, ["C1", "C2"])
        h.tick(START)
        statuses = {c: r.status for c, r in h.runs(name).items()}
        assert sorted(statuses.values()) == ["failed", "waiting"]
        [failure] = h.log("failed")
        assert failure.detail == "coupon pool 'first' is empty"
        assert len(h.smtp.messages) == 1


def test_a_template_that_cannot_render_fails_the_run_and_sends_nothing(tmp_path: Path) -> None:
    table = _three()
    del table["C2"]["first_name"]
    with harness(tmp_path, table) as h:
        h.coupons("first", ["X1", "X2", "X3"])
        name = h.publish(WELCOME)
        h.enroll(name, ["C1", "C2"])
        h.tick(START)
        assert h.runs(name)["C2"].status == "failed"
        assert "'first_name' is undefined" in h.log("failed")[0].detail
        assert [m["To"] for m in h.smtp.messages] == ["c1@example.com"]


# -- guardrails in the dispatch ------------------------------------------------------------

PUSH_NOW = """
journey: promo
trigger: {type: manual}
priority: PRIORITY
start: push
steps:
  push: {type: send, channel: sms, message: {text: "promo {{ journey }}"}, next: done}
  done: {type: exit}
"""


def test_quiet_hours_defer_to_eight_local_and_consent_is_honoured(tmp_path: Path) -> None:
    table = _three()
    table["C2"]["consent_sms"] = False
    table["C3"]["consent_sms"] = None
    policy = GuardrailPolicy(caps=(), require_opt_in=frozenset({"sms"}))
    night = START.replace(hour=14, minute=0)  # 22:00 in Shanghai
    with harness(tmp_path, table) as h:
        name = h.publish(PUSH_NOW.replace("PRIORITY", "50"))
        h.enroll(name, ["C1", "C2", "C3"], night)
        h.runtime.run_until_idle(night)
        h.dispatcher(policy).run_until_idle(night)
        assert h.hook.received == []
        reasons = {row.customer_id: (row.status, row.reason) for row in h.outbox()}
        assert reasons == {
            "C1": ("pending", "quiet_hours"),
            "C2": ("suppressed", "unsubscribed"),
            "C3": ("suppressed", "no_opt_in"),
        }
        h.dispatcher(policy).run_until_idle(night + timedelta(hours=9, minutes=59))
        assert h.hook.received == []
        h.dispatcher(policy).run_until_idle(night + timedelta(hours=10))  # 08:00 local
        assert [b["customer_id"] for b in h.hook.bodies()] == ["C1"]


def test_an_unsubscribe_recorded_after_queueing_stops_the_send(tmp_path: Path) -> None:
    with harness(tmp_path, _three()) as h:
        name = h.publish(PUSH_NOW.replace("PRIORITY", "50"))
        h.enroll(name, ["C1", "C2", "C3"])
        h.runtime.run_until_idle(START)
        with h.engine.begin() as connection:
            connection.execute(
                CONSENTS.insert().values(
                    customer_id="C1",
                    channel="sms",
                    status="opted_out",
                    updated_at=START,
                    source="t",
                )
            )
            connection.execute(
                SUPPRESSIONS.insert().values(
                    customer_id="C2", reason="complaint", at=START, source="t"
                )
            )
        h.dispatcher().run_until_idle(START)
        assert [b["customer_id"] for b in h.hook.bodies()] == ["C3"]
        reasons = {row.customer_id: row.reason for row in h.outbox()}
        assert reasons == {"C1": "unsubscribed", "C2": "suppression_list", "C3": None}


def test_the_higher_priority_journey_wins_the_capped_sms(tmp_path: Path) -> None:
    policy = GuardrailPolicy(quiet_hours=None, caps=(FrequencyCap(1, 1, "sms"),))
    with harness(tmp_path, _three()) as h:
        low = h.publish(PUSH_NOW.replace("PRIORITY", "10"))
        high = h.publish(
            PUSH_NOW.replace("PRIORITY", "90").replace("journey: promo", "journey: rescue")
        )
        h.enroll(low, ["C1"])
        h.enroll(high, ["C1"])
        h.runtime.run_until_idle(START)
        h.dispatcher(policy).run_until_idle(START)
        assert [b["text"] for b in h.hook.bodies()] == ["promo rescue"]
        [capped] = [row for row in h.outbox() if row.status == "suppressed"]
        assert (capped.journey, capped.reason) == (low, "frequency_cap")
        # The next local day the cap has room again.
        h.enroll(low, ["C1"], START + timedelta(days=1))
        h.tick(START + timedelta(days=1), policy)
        assert [b["text"] for b in h.hook.bodies()] == ["promo rescue", "promo promo"]


# -- delivery failures ------------------------------------------------------------


def test_temporary_failures_retry_with_backoff_and_refusals_dead_letter(tmp_path: Path) -> None:
    with harness(tmp_path, _three()) as h:
        name = h.publish(PUSH_NOW.replace("PRIORITY", "50"))
        h.hook.script = [503, 400]
        h.enroll(name, ["C1", "C2"])
        h.runtime.run_until_idle(START)
        dispatcher = h.dispatcher(first_backoff=timedelta(seconds=30), max_attempts=3)
        report = dispatcher.run_until_idle(START)
        assert dict(report.outcomes) == {"retry": 1, "dead": 1}
        dead = [row for row in h.outbox() if row.status == "dead"]
        assert [(row.reason, row.last_error) for row in dead] == [("delivery_failed", "HTTP 400")]
        assert dispatcher.run_until_idle(START + timedelta(seconds=29)).claimed == 0
        assert dict(dispatcher.run_until_idle(START + timedelta(seconds=30)).outcomes) == {
            "sent": 1
        }
        assert len(h.hook.received) == 1


def test_smtp_temporary_refusal_is_retried_and_permanent_is_dead(tmp_path: Path) -> None:
    with harness(tmp_path, _three()) as h:
        h.coupons("first", ["K1", "K2"])
        name = h.publish(WELCOME)
        h.smtp.refuse = ["451 4.3.0 try later", "550 5.1.1 no such user"]
        h.enroll(name, ["C1", "C2"])
        h.runtime.run_until_idle(START)
        report = h.dispatcher(first_backoff=timedelta(seconds=10)).run_until_idle(START)
        assert dict(report.outcomes) == {"retry": 1, "dead": 1}
        h.dispatcher().run_until_idle(START + timedelta(seconds=10))
        assert len(h.smtp.messages) == 1


def test_a_crash_after_delivery_redelivers_under_the_same_key_once(tmp_path: Path) -> None:
    with harness(tmp_path, _three()) as h:
        name = h.publish(PUSH_NOW.replace("PRIORITY", "50"))
        h.enroll(name, ["C1"])
        h.runtime.run_until_idle(START)
        dispatcher = h.dispatcher(lease=timedelta(minutes=2))
        # Decide and deliver, then "crash" before recording (the record step never runs).
        with h.engine.begin() as connection:
            rows = dispatcher._claim(connection, START)
            sending = dispatcher._decide(connection, rows, START, DispatchReport())
        assert dispatcher._deliver(sending[0]) is None
        assert [row.status for row in h.outbox()] == ["sending"]
        assert dispatcher.run_until_idle(START + timedelta(minutes=1)).claimed == 0  # leased
        report = dispatcher.run_until_idle(START + timedelta(minutes=3))
        assert dict(report.outcomes) == {"sent": 1}
        assert (len(h.hook.received), h.hook.repeats) == (1, 1)
        assert [row.attempts for row in h.outbox()] == [2]


def test_triggers_before_the_version_went_live_enrol_no_one(tmp_path: Path) -> None:
    document = """
journey: late
trigger: {type: segment_enter, segment: dormant}
start: push
steps:
  push: {type: send, channel: app_push, message: {text: "hi"}, next: done}
  done: {type: exit}
"""
    with harness(tmp_path, _three()) as h:
        h.publish(document)  # published at START
        with h.engine.begin() as connection:
            connection.execute(
                SEGMENT_CHANGES.insert(),
                [
                    {
                        "name": "dormant",
                        "customer_id": c,
                        "change": "enter",
                        "at": at,
                        "version": 1,
                        "trigger": "refresh",
                    }
                    for c, at in (("C1", START - timedelta(days=30)), ("C2", START))
                ],
            )
            record_signals(connection, [Signal("C3", "login", START - timedelta(days=1))])
        h.tick(START)
        assert [b["customer_id"] for b in h.hook.bodies()] == ["C2"]
