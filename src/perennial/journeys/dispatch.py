"""Send what the outbox holds: guardrails first, then the channel, then the record.

One batch is three steps:
1. **decide**, in one transaction: claim due rows (``FOR UPDATE SKIP LOCKED`` on
   PostgreSQL, with a per-customer advisory lock so two workers cannot both
   fill a customer's last capped slot), ask the guardrails for each customer's
   rows in priority order (consent and the suppression list read fresh, past
   sends counted from the outbox itself), and record each outcome: suppressed
   with its reason, deferred to the next allowed instant, or ``sending`` under
   a lease;
2. **deliver** the ``sending`` rows through their channels, outside any transaction,
   in chunks of ``record_every``;
3. **record** each chunk, in one transaction: sent, or retried later with
   exponential backoff, or dead-lettered with the reason.
A worker killed between 2 and 3 leaves rows ``sending`` with a lease that runs
out; the next worker delivers them again under the same idempotency key (the
guardrails already counted them), which the provider or receiver uses to drop
the repeat. At most one chunk can be repeated so; nothing is lost, and nothing
is decided twice. (Recording every message alone would close the window to one
message at the cost of a transaction per send.)
"""

from __future__ import annotations

import json
import time
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from perennial.channels.base import Channel, DeliveryError, Outgoing
from perennial.channels.guardrails import (
    ConsentState,
    Decision,
    GuardrailPolicy,
    PastSend,
    SendRequest,
    decide_in_priority_order,
)
from perennial.channels.tables import CONSENTS, SUPPRESSIONS
from perennial.journeys.tables import JOURNEY_LOG, JOURNEY_OUTBOX
from perennial.store.operational import utc

__all__ = ["DispatchReport", "Dispatcher"]

_MAX_BACKOFF = timedelta(hours=1)


@dataclass
class DispatchReport:
    claimed: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)


class Dispatcher:
    def __init__(
        self,
        operational: sa.Engine,
        channels: Mapping[str, Channel],
        policy: GuardrailPolicy,
        *,
        owner: str = "worker",
        batch: int = 200,
        lease: timedelta = timedelta(minutes=2),
        max_attempts: int = 6,
        first_backoff: timedelta = timedelta(seconds=30),
        record_every: int = 20,
        delivery_threads: int = 8,
    ) -> None:
        self._operational = operational
        self._channels = channels
        self._policy = policy
        self._owner = owner
        self._batch = batch
        self._lease = lease
        self._max_attempts = max_attempts
        self._first_backoff = first_backoff
        self._record_every = record_every
        self._pool = ThreadPoolExecutor(delivery_threads, thread_name_prefix="deliver")

    def dispatch_due(self, now: datetime) -> DispatchReport:
        """Decide, deliver and record one batch of due outbox rows."""
        report = DispatchReport()
        with self._operational.begin() as connection:
            rows = self._claim(connection, now)
            report.claimed = len(rows)
            sending = self._decide(connection, rows, now, report)
        began = time.monotonic()
        for start in range(0, len(sending), self._record_every):
            chunk = sending[start : start + self._record_every]
            if start:
                chunk = self._renew_lease(chunk, now + timedelta(seconds=time.monotonic() - began))
            results = dict(
                zip(
                    (row.effect_key for row in chunk),
                    self._pool.map(self._deliver, chunk),
                    strict=True,
                )
            )
            with self._operational.begin() as connection:
                self._record(connection, chunk, results, now, report)
        return report

    def close(self) -> None:
        self._pool.shutdown()

    def _renew_lease(self, chunk: Sequence[Any], now: datetime) -> list[Any]:
        """Extend the lease on the next chunk before delivering it, and keep only the rows
        still ours: a slow batch must not outlive its lease while another worker takes
        the same rows over and delivers them a second time."""
        outbox = JOURNEY_OUTBOX.c
        keys = [row.effect_key for row in chunk]
        with self._operational.begin() as connection:
            connection.execute(
                JOURNEY_OUTBOX.update()
                .where(
                    outbox.effect_key.in_(keys),
                    outbox.status == "sending",
                    outbox.claimed_by == self._owner,
                )
                .values(claimed_until=now + self._lease)
            )
            ours = set(
                connection.execute(
                    sa.select(outbox.effect_key).where(
                        outbox.effect_key.in_(keys),
                        outbox.status == "sending",
                        outbox.claimed_by == self._owner,
                    )
                ).scalars()
            )
        return [row for row in chunk if row.effect_key in ours]

    def run_until_idle(self, now: datetime, *, max_batches: int = 100_000) -> DispatchReport:
        total = DispatchReport()
        for _batch in range(max_batches):
            report = self.dispatch_due(now)
            if not report.claimed:
                break
            total.claimed += report.claimed
            total.outcomes.update(report.outcomes)
        return total

    # -- 1. decide ---------------------------------------------------------------------

    def _claim(self, connection: sa.Connection, now: datetime) -> list[Any]:
        outbox = JOURNEY_OUTBOX.c
        due = sa.or_(
            sa.and_(outbox.status == "pending", outbox.due_at <= now),
            sa.and_(outbox.status == "sending", outbox.claimed_until < now),
        )
        query = (
            sa.select(JOURNEY_OUTBOX)
            .where(due, outbox.channel.in_(sorted(self._channels)))
            .order_by(outbox.due_at, outbox.priority.desc())
            .limit(self._batch)
        )
        if connection.dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        rows = list(connection.execute(query).all())
        if rows and connection.dialect.name == "postgresql":
            for customer in sorted({row.customer_id for row in rows}):
                connection.execute(
                    sa.select(sa.func.pg_advisory_xact_lock(sa.func.hashtext(customer)))
                )
        return rows

    def _decide(
        self, connection: sa.Connection, rows: Sequence[Any], now: datetime, report: DispatchReport
    ) -> list[Any]:
        retaken = [row for row in rows if row.status == "sending"]  # decided before a crash
        fresh = [row for row in rows if row.status == "pending"]
        by_customer: defaultdict[str, list[Any]] = defaultdict(list)
        for row in fresh:
            by_customer[row.customer_id].append(row)
        customers = sorted(by_customer)
        consent = _consent(connection, customers)
        history = self._history(connection, customers, now)
        sending = list(retaken)
        for customer, customer_rows in by_customer.items():
            requests = [_request(row, now) for row in customer_rows]
            decisions = decide_in_priority_order(
                requests,
                _with_record_consent(consent.get(customer), customer_rows),
                history.get(customer, []),
                self._policy,
            )
            for row, decision in zip(customer_rows, decisions, strict=True):
                if decision.outcome == "send":
                    sending.append(row)
                else:
                    self._not_now(connection, row, decision, now, report)
        if sending:
            connection.execute(
                JOURNEY_OUTBOX.update()
                .where(JOURNEY_OUTBOX.c.effect_key.in_([row.effect_key for row in sending]))
                .values(
                    status="sending",
                    claimed_by=self._owner,
                    claimed_until=now + self._lease,
                    done_at=now,
                    attempts=JOURNEY_OUTBOX.c.attempts + 1,
                )
            )
        return sending

    def _not_now(
        self,
        connection: sa.Connection,
        row: Any,
        decision: Decision,
        now: datetime,
        report: DispatchReport,
    ) -> None:
        detail = json.dumps({"reason": decision.reason, **decision.details}, ensure_ascii=False)
        if decision.outcome == "defer" and decision.send_at is not None:
            values: dict[str, Any] = {"due_at": decision.send_at, "reason": decision.reason}
            what = "deferred"
        else:
            values = {"status": "suppressed", "reason": decision.reason, "done_at": now}
            what = "suppressed"
        connection.execute(
            JOURNEY_OUTBOX.update()
            .where(JOURNEY_OUTBOX.c.effect_key == row.effect_key)
            .values(**values)
        )
        _log(connection, row, what, detail, now)
        report.outcomes[what] += 1

    def _history(
        self, connection: sa.Connection, customers: Sequence[str], now: datetime
    ) -> dict[str, list[PastSend]]:
        days = max((cap.days for cap in self._policy.caps), default=0)
        if not days or not customers:
            return {}
        outbox = JOURNEY_OUTBOX.c
        since = now - timedelta(days=days + 1)
        history: defaultdict[str, list[PastSend]] = defaultdict(list)
        for start in range(0, len(customers), 500):
            rows = connection.execute(
                sa.select(
                    outbox.customer_id, outbox.channel, outbox.done_at, outbox.transactional
                ).where(
                    outbox.customer_id.in_(customers[start : start + 500]),
                    outbox.status.in_(("sent", "sending")),
                    outbox.done_at >= since,
                    outbox.channel != "webhook",
                )
            )
            for row in rows:
                history[row.customer_id].append(
                    PastSend(row.channel, utc(row.done_at), bool(row.transactional))
                )
        return history

    # -- 2. deliver -------------------------------------------------------------------------

    def _deliver(self, row: Any) -> DeliveryError | None:
        message = Outgoing(
            effect_key=row.effect_key,
            channel=row.channel,
            customer_id=row.customer_id,
            journey=row.journey,
            step=row.step,
            payload={**json.loads(row.payload), "transactional": bool(row.transactional)},
        )
        try:
            self._channels[row.channel].deliver(message)
        except DeliveryError as error:
            return error
        return None

    # -- 3. record --------------------------------------------------------------------------

    def _record(
        self,
        connection: sa.Connection,
        rows: Sequence[Any],
        results: Mapping[str, DeliveryError | None],
        now: datetime,
        report: DispatchReport,
    ) -> None:
        outbox = JOURNEY_OUTBOX.c
        sent = [row.effect_key for row in rows if results[row.effect_key] is None]
        if sent:
            connection.execute(
                JOURNEY_OUTBOX.update()
                .where(outbox.effect_key.in_(sent), outbox.status == "sending")
                .values(status="sent", claimed_by=None, claimed_until=None)
            )
        if sent:
            connection.execute(
                JOURNEY_LOG.insert(),
                [
                    _log_row(row, "sent", row.channel, now)
                    for row in rows
                    if results[row.effect_key] is None
                ],
            )
            report.outcomes["sent"] += len(sent)
        for row in rows:
            error = results[row.effect_key]
            if error is None:
                continue
            attempts = int(row.attempts) + 1
            if error.temporary and attempts < self._max_attempts:
                backoff = min(self._first_backoff * 2 ** (attempts - 1), _MAX_BACKOFF)
                values: dict[str, Any] = {"status": "pending", "due_at": now + backoff}
                what = "retry"
            else:
                values = {"status": "dead", "reason": "delivery_failed", "done_at": now}
                what = "dead"
            connection.execute(
                JOURNEY_OUTBOX.update()
                .where(outbox.effect_key == row.effect_key)
                .values(last_error=error.reason, claimed_by=None, claimed_until=None, **values)
            )
            _log(connection, row, what, error.reason, now)
            report.outcomes[what] += 1


def _request(row: Any, now: datetime) -> SendRequest:
    return SendRequest(
        customer_id=row.customer_id,
        channel=row.channel,
        at=max(now, utc(row.due_at)),
        timezone=row.timezone,
        transactional=bool(row.transactional),
        quiet_hours=row.quiet_hours,
        priority=int(row.priority),
    )


def _consent(connection: sa.Connection, customers: Sequence[str]) -> dict[str, ConsentState]:
    states: dict[str, ConsentState] = {}
    for start in range(0, len(customers), 500):
        chunk = customers[start : start + 500]
        outs: defaultdict[str, set[str]] = defaultdict(set)
        ins: defaultdict[str, set[str]] = defaultdict(set)
        for row in connection.execute(sa.select(CONSENTS).where(CONSENTS.c.customer_id.in_(chunk))):
            (outs if row.status == "opted_out" else ins)[row.customer_id].add(row.channel)
        suppressed = set(
            connection.execute(
                sa.select(SUPPRESSIONS.c.customer_id).where(SUPPRESSIONS.c.customer_id.in_(chunk))
            ).scalars()
        )
        for customer in chunk:
            states[customer] = ConsentState(
                suppressed=customer in suppressed,
                opted_out=frozenset(outs[customer]),
                opted_in=frozenset(ins[customer]),
            )
    return states


def _with_record_consent(state: ConsentState | None, rows: Sequence[Any]) -> ConsentState:
    """The customer record's flag (as rendered into each row) where no explicit choice
    recorded since (an unsubscribe, an opt-in by API) says otherwise."""
    state = state or ConsentState()
    opted_in, opted_out = set(state.opted_in), set(state.opted_out)
    for row in rows:
        flag = json.loads(row.payload).get("consent")
        explicit = row.channel in opted_in or row.channel in opted_out
        if flag is True and not explicit:
            opted_in.add(row.channel)
        elif flag is False and not explicit:
            opted_out.add(row.channel)
    return ConsentState(state.suppressed, frozenset(opted_out), frozenset(opted_in))


def _log(connection: sa.Connection, row: Any, what: str, detail: str, now: datetime) -> None:
    connection.execute(JOURNEY_LOG.insert().values(**_log_row(row, what, detail, now)))


def _log_row(row: Any, what: str, detail: str, now: datetime) -> dict[str, Any]:
    return {
        "journey": row.journey,
        "version": row.version,
        "run_id": row.run_id,
        "customer_id": row.customer_id,
        "step": row.step,
        "what": what,
        "at": now,
        "detail": detail,
    }
