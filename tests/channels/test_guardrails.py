"""The guardrails at their edges: 21:59 against 22:00 local, the cap's boundary day across
time zones, consent and suppression, priorities for a capped slot."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from perennial.channels.guardrails import (
    ConsentState,
    FrequencyCap,
    GuardrailPolicy,
    PastSend,
    QuietHours,
    SendRequest,
    decide,
    decide_in_priority_order,
)
from perennial.channels.policy_document import load_guardrail_policy
from perennial.errors import ConfigError

SHANGHAI = ZoneInfo("Asia/Shanghai")
NEW_YORK = ZoneInfo("America/New_York")
POLICY = GuardrailPolicy()
NOBODY = ConsentState()


def _local(zone: ZoneInfo, *parts: int) -> datetime:
    return datetime(*parts, tzinfo=zone).astimezone(UTC)  # type: ignore[misc]


def _request(at: datetime, channel: str = "email", **changes: object) -> SendRequest:
    return SendRequest("c1", channel, at, timezone="Asia/Shanghai", **changes)  # type: ignore[arg-type]


# -- quiet hours ------------------------------------------------------------


def test_2159_local_is_sent_and_2200_is_deferred_to_0800_next_day() -> None:
    assert (
        decide(_request(_local(SHANGHAI, 2026, 12, 7, 21, 59)), NOBODY, [], POLICY).outcome
        == "send"
    )
    decision = decide(_request(_local(SHANGHAI, 2026, 12, 7, 22, 0)), NOBODY, [], POLICY)
    assert (decision.outcome, decision.reason) == ("defer", "quiet_hours")
    assert decision.send_at == _local(SHANGHAI, 2026, 12, 8, 8, 0)


def test_after_midnight_defers_to_0800_the_same_day_and_0800_is_allowed() -> None:
    decision = decide(_request(_local(SHANGHAI, 2026, 12, 8, 7, 59)), NOBODY, [], POLICY)
    assert decision.send_at == _local(SHANGHAI, 2026, 12, 8, 8, 0)
    assert (
        decide(_request(_local(SHANGHAI, 2026, 12, 8, 8, 0)), NOBODY, [], POLICY).outcome == "send"
    )


def test_quiet_hours_follow_the_customer_zone_not_utc() -> None:
    at = datetime(2026, 12, 7, 14, 30, tzinfo=UTC)  # 22:30 in Shanghai, 09:30 in New York
    assert decide(_request(at), NOBODY, [], POLICY).outcome == "defer"
    in_new_york = SendRequest("c1", "email", at, timezone="America/New_York")
    assert decide(in_new_york, NOBODY, [], POLICY).outcome == "send"


def test_an_unknown_zone_falls_back_to_the_default() -> None:
    at = _local(SHANGHAI, 2026, 12, 7, 23, 0)
    request = SendRequest("c1", "email", at, timezone="Mars/Olympus")
    assert decide(request, NOBODY, [], POLICY).outcome == "defer"


def test_drop_instead_of_defer_when_the_journey_says_so() -> None:
    decision = decide(
        _request(_local(SHANGHAI, 2026, 12, 7, 23, 0), quiet_hours="drop"), NOBODY, [], POLICY
    )
    assert (decision.outcome, decision.reason) == ("suppress", "quiet_hours")
    assert decision.details["local_time"].startswith("2026-12-07 23:00")


def test_quiet_hours_that_do_not_wrap_and_none() -> None:
    lunch = QuietHours(datetime(1, 1, 1, 12).time(), datetime(1, 1, 1, 14).time())
    assert lunch.contains(datetime(1, 1, 1, 12).time()) and not lunch.contains(
        datetime(1, 1, 1, 14).time()
    )
    policy = GuardrailPolicy(quiet_hours=None)
    assert (
        decide(_request(_local(SHANGHAI, 2026, 12, 7, 3, 0)), NOBODY, [], policy).outcome == "send"
    )


# -- frequency caps ------------------------------------------------------------


def test_one_sms_a_day_counts_the_customer_local_day() -> None:
    policy = GuardrailPolicy(quiet_hours=None)  # transactional-like hours, to reach midnight
    sent = [PastSend("sms", _local(SHANGHAI, 2026, 12, 6, 23, 30))]  # 15:30 UTC on the 6th
    same_local_day = _request(_local(SHANGHAI, 2026, 12, 6, 23, 59), "sms")
    decision = decide(same_local_day, NOBODY, sent, policy)
    assert (decision.outcome, decision.reason) == ("suppress", "frequency_cap")
    assert decision.details == {"cap": "1 per 1 day on sms", "counted": "1"}
    # 00:00 local on the 7th is still the 6th in UTC (16:00 UTC): a new local day, allowed.
    next_local_day = _request(_local(SHANGHAI, 2026, 12, 7, 0, 0), "sms")
    assert next_local_day.at.astimezone(UTC).date() == sent[0].at.astimezone(UTC).date()
    assert decide(next_local_day, NOBODY, sent, policy).outcome == "send"


def test_the_same_instants_count_differently_for_a_customer_in_new_york() -> None:
    # 23:30 and 00:30 New York time: two local days, though one UTC day.
    first = datetime(2026, 12, 7, 4, 30, tzinfo=UTC)
    second = datetime(2026, 12, 7, 5, 30, tzinfo=UTC)
    policy = GuardrailPolicy(quiet_hours=None)
    in_new_york = SendRequest("c1", "sms", second, timezone="America/New_York")
    assert decide(in_new_york, NOBODY, [PastSend("sms", first)], policy).outcome == "send"
    in_shanghai = SendRequest("c1", "sms", second, timezone="Asia/Shanghai")
    assert decide(in_shanghai, NOBODY, [PastSend("sms", first)], policy).outcome == "suppress"


def test_two_a_week_across_channels_counts_seven_local_days() -> None:
    now = _local(SHANGHAI, 2026, 12, 13, 10, 0)
    six_days_ago = _local(SHANGHAI, 2026, 12, 7, 0, 5)
    seven_days_ago = _local(SHANGHAI, 2026, 12, 6, 23, 55)
    inside = [PastSend("email", six_days_ago), PastSend("app_push", now - timedelta(hours=1))]
    assert decide(_request(now), NOBODY, inside, POLICY).reason == "frequency_cap"
    outside = [PastSend("email", seven_days_ago), PastSend("app_push", now - timedelta(hours=1))]
    assert decide(_request(now), NOBODY, outside, POLICY).outcome == "send"


def test_transactional_sends_are_exempt_and_do_not_count() -> None:
    now = _local(SHANGHAI, 2026, 12, 7, 23, 0)
    busy = [PastSend("sms", now - timedelta(hours=2))] * 3
    receipt = _request(now, "sms", transactional=True)
    assert decide(receipt, NOBODY, busy, POLICY).outcome == "send"
    receipts = [PastSend("email", now - timedelta(hours=h), transactional=True) for h in (1, 2, 3)]
    assert decide(_request(now - timedelta(hours=10)), NOBODY, receipts, POLICY).outcome == "send"
    strict = GuardrailPolicy(transactional_exempt=False)
    assert decide(receipt, NOBODY, busy, strict).outcome == "defer"


@given(
    offsets=st.lists(st.integers(min_value=0, max_value=20 * 24 * 60), max_size=12),
    at_minutes=st.integers(min_value=0, max_value=20 * 24 * 60),
    zone=st.sampled_from(["Asia/Shanghai", "America/New_York", "Pacific/Kiritimati", "UTC"]),
)
def test_a_send_is_let_through_only_under_every_cap(
    offsets: list[int], at_minutes: int, zone: str
) -> None:
    start = datetime(2026, 3, 1, tzinfo=UTC)
    policy = GuardrailPolicy(quiet_hours=None, caps=(FrequencyCap(3, 7), FrequencyCap(1, 1, "sms")))
    at = start + timedelta(minutes=at_minutes)
    history = [PastSend("sms" if m % 2 else "email", start + timedelta(minutes=m)) for m in offsets]
    history = [send for send in history if send.at <= at]
    local_day = at.astimezone(ZoneInfo(zone)).date()

    def days_back(send: PastSend) -> int:
        return (local_day - send.at.astimezone(ZoneInfo(zone)).date()).days

    week = sum(1 for send in history if 0 <= days_back(send) < 7)
    today_sms = sum(1 for send in history if send.channel == "sms" and days_back(send) == 0)
    decision = decide(SendRequest("c", "sms", at, timezone=zone), NOBODY, history, policy)
    assert (decision.outcome == "send") == (week < 3 and today_sms < 1)


# -- consent, suppression, priority ------------------------------------------------------------


def test_suppression_list_stops_everything_even_transactional() -> None:
    now = _local(SHANGHAI, 2026, 12, 7, 12, 0)
    listed = ConsentState(suppressed=True)
    assert (
        decide(_request(now, transactional=True), listed, [], POLICY).reason == "suppression_list"
    )


def test_unsubscribe_is_per_channel_and_spares_transactional() -> None:
    now = _local(SHANGHAI, 2026, 12, 7, 12, 0)
    unsubscribed = ConsentState(opted_out=frozenset({"email"}))
    decision = decide(_request(now), unsubscribed, [], POLICY)
    assert (decision.outcome, decision.reason, decision.details) == (
        "suppress",
        "unsubscribed",
        {"channel": "email"},
    )
    assert decide(_request(now, "sms"), unsubscribed, [], POLICY).outcome == "send"
    assert decide(_request(now, transactional=True), unsubscribed, [], POLICY).outcome == "send"


def test_opt_in_channels_need_an_explicit_yes() -> None:
    now = _local(SHANGHAI, 2026, 12, 7, 12, 0)
    policy = GuardrailPolicy(require_opt_in=frozenset({"sms"}))
    assert decide(_request(now, "sms"), NOBODY, [], policy).reason == "no_opt_in"
    agreed = ConsentState(opted_in=frozenset({"sms"}))
    assert decide(_request(now, "sms"), agreed, [], policy).outcome == "send"


def test_the_higher_priority_journey_wins_the_last_capped_slot() -> None:
    now = _local(SHANGHAI, 2026, 12, 7, 12, 0)
    history = [PastSend("email", now - timedelta(days=2))]  # one of two weekly slots left
    promotion = _request(now, priority=20)
    win_back = _request(now, "app_push", priority=90)
    decisions = decide_in_priority_order([promotion, win_back], NOBODY, history, POLICY)
    assert [d.outcome for d in decisions] == ["suppress", "send"]
    assert decisions[0].reason == "frequency_cap"
    same = decide_in_priority_order([win_back, promotion], NOBODY, history, POLICY)
    assert [d.outcome for d in same] == ["send", "suppress"]


# -- the policy document ------------------------------------------------------------


def test_policy_document_reads_caps_and_quiet_hours(tmp_path: Path) -> None:
    path = tmp_path / "guardrails.yaml"
    path.write_text(
        "timezone: Europe/Berlin\nquiet_hours: {start: '21:00', end: '09:00'}\n"
        "caps:\n  - {max: 3, days: 7}\n  - {channel: sms, max: 1, days: 2}\n"
        "require_opt_in: [sms]\n",
        encoding="utf-8",
    )
    policy = load_guardrail_policy(path)
    assert policy.default_timezone == "Europe/Berlin"
    assert policy.caps == (FrequencyCap(3, 7), FrequencyCap(1, 2, "sms"))
    assert policy.quiet_hours == QuietHours(
        datetime(1, 1, 1, 21).time(), datetime(1, 1, 1, 9).time()
    )
    assert policy.require_opt_in == {"sms"}


@pytest.mark.parametrize(
    ("text", "key", "words"),
    [
        ("caps:\n  - {max: 3}\n", "caps[0].days", "Field required"),
        (
            "caps:\n  - {channel: fax, max: 1, days: 1}\n",
            "caps[0].channel",
            "unknown channel 'fax'",
        ),
        ("timezone: Mars/Olympus\n", "timezone", "unknown time zone"),
        ("quiet_hours: {start: '25:00'}\n", "quiet_hours.start", "time"),
        ("quiethours: {}\n", "quiethours", "Extra inputs"),
    ],
)
def test_policy_document_errors_name_the_key(
    tmp_path: Path, text: str, key: str, words: str
) -> None:
    path = tmp_path / "guardrails.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_guardrail_policy(path)
    assert caught.value.key_path == key and words in caught.value.reason
