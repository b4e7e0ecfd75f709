"""Move claimed runs through their steps until each waits or ends, in one transaction.

The worker claims due runs and hands them here inside the transaction that
holds their rows. Every effect of a step is written in that same transaction:
an external one (a message, a webhook call) as an outbox row keyed by its
idempotency key, an internal one (a coupon code, a task, a tag) directly. So a
crash anywhere rolls back both the move and the effect, and the restarted
worker redoes them exactly once.

Runs advance in rounds, all runs of a batch one step per round, so that the
runs standing at the same branch are decided by one query for all of them; a
batch never needs more rounds than the journey has steps, because a loop must
pass through a wait (the graph check guarantees it).
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from perennial.channels.guardrails import local_zone
from perennial.channels.templates import TemplateProblem, render_template
from perennial.config import Settings
from perennial.ingest.inbox import InboxEntry, InboxItem, append_entries
from perennial.ingest.records import check_records
from perennial.journeys.customers import CustomerContext
from perennial.journeys.document import (
    BranchStep,
    CouponStep,
    ExitStep,
    Journey,
    LocalizedText,
    SendStep,
    SplitStep,
    Step,
    TagStep,
    TaskStep,
    UpdateAttributeStep,
    WaitForEventStep,
    WaitStep,
    WebhookStep,
)
from perennial.journeys.keys import effect_key, split_variant
from perennial.journeys.tables import COUPON_CODES, JOURNEY_LOG, JOURNEY_OUTBOX, JOURNEY_RUNS
from perennial.journeys.waits import wait_ends
from perennial.schema.tables import TABLES
from perennial.segments.tag_store import CustomerTag, remove_tag, set_tags
from perennial.tasks.creation import NewTask, create_task
from perennial.tasks.errors import TaskError

__all__ = ["ADDRESS_FIELDS", "CONSENT_FIELDS", "AdvanceReport", "Advancer", "RunState"]

ADDRESS_FIELDS = {
    "email": "email",
    "sms": "phone",
    "app_push": "customer_id",
    "wechat_work": "wechat_unionid",
    "wechat_official": "wechat_openid",
    "webhook": "customer_id",
}
"""The profile field that holds a channel's address (app push addresses the customer id;
the push adapter maps it to the customer's devices)."""

CONSENT_FIELDS = {
    "email": "consent_email",
    "sms": "consent_sms",
    "app_push": "consent_push",
    "wechat_work": "consent_wechat",
    "wechat_official": "consent_wechat",
}
"""The customer record's consent flag for each channel (the record's answer at render
time; an unsubscribe recorded since overrides it when the send is decided)."""


_CUSTOMER_COLUMNS = frozenset(TABLES["customers"].column_names)
_FIXED_COLUMNS = frozenset({"customer_id", "created_at", "attributes"})


@dataclass
class RunState:
    """A claimed run, changed in place as it advances."""

    run_id: str
    journey: str
    version: int
    customer_id: str
    occurrence: str
    status: str
    step: str | None
    variant: str | None
    context: dict[str, Any]
    due_at: datetime | None
    wait_event: str | None
    waiting_since: datetime | None

    @classmethod
    def from_row(cls, row: sa.Row[Any]) -> RunState:
        return cls(
            run_id=row.run_id,
            journey=row.journey,
            version=row.version,
            customer_id=row.customer_id,
            occurrence=row.occurrence,
            status=row.status,
            step=row.step,
            variant=row.variant,
            context=json.loads(row.context),
            due_at=row.due_at,
            wait_event=row.wait_event,
            waiting_since=row.waiting_since,
        )

    def visit(self, step: str) -> int:
        """Count a visit of ``step`` (loops pass a step again: a new effect each time)."""
        visits: dict[str, int] = self.context.setdefault("_visits", {})
        visits[step] = visits.get(step, 0) + 1
        return visits[step]


@dataclass
class AdvanceReport:
    runs: int = 0
    queued: int = 0
    finished: Counter[str] = field(default_factory=Counter)


@dataclass
class Advancer:
    """Advances one batch of runs of known journey versions; used once per transaction."""

    connection: sa.Connection
    customers: CustomerContext
    journeys: Mapping[tuple[str, int], Journey]
    now: datetime
    settings: Settings
    default_locale: str = "zh-CN"
    _profiles: dict[str, Mapping[str, Any]] | None = None
    _batch: list[str] = field(default_factory=list)
    _logs: list[dict[str, Any]] = field(default_factory=list)
    _messages: list[dict[str, Any]] = field(default_factory=list)
    _report: AdvanceReport = field(default_factory=AdvanceReport)

    def advance(self, runs: Sequence[RunState]) -> AdvanceReport:
        """Advance ``runs`` (claimed and due) and write everything they did."""
        self._report.runs += len(runs)
        self._batch = [run.customer_id for run in runs]
        moving = [run for run in runs if self._wake(run)]
        for _round in range(1 + max((len(j.steps) for j in self.journeys.values()), default=0)):
            if not moving:
                break
            moving = self._round(moving)
        for run in moving:  # unreachable when the graph check holds; never loop forever
            self._finish(run, "failed", "too many steps in one go")
        self._store(runs)
        return self._report

    # -- one round -------------------------------------------------------------------

    def _wake(self, run: RunState) -> bool:
        """A due run: a finished wait moves on, a timed-out wait for an event takes its
        timeout exit. Returns whether the run is active."""
        if run.status != "waiting":
            return run.status == "active"
        step = self._step(run)
        if isinstance(step, WaitForEventStep):
            self._log(run, "timeout")
            self._move(run, step.on_timeout)
        elif isinstance(step, WaitStep):
            self._move(run, step.next)
        run.status, run.due_at, run.wait_event, run.waiting_since = "active", None, None, None
        return True

    def _round(self, runs: list[RunState]) -> list[RunState]:
        branches: defaultdict[tuple[str, int, str], list[RunState]] = defaultdict(list)
        for run in runs:
            if isinstance(self._step(run), BranchStep):
                branches[(run.journey, run.version, str(run.step))].append(run)
            else:
                self._execute(run)
        for group in branches.values():
            self._branch(group)
        return [run for run in runs if run.status == "active"]

    def _branch(self, runs: list[RunState]) -> None:
        step = self._step(runs[0])
        if not isinstance(step, BranchStep):  # pragma: no cover - grouped by step type
            raise TypeError(f"step {runs[0].step} is not a branch")
        holding = self.customers.holding(step.condition, [r.customer_id for r in runs], self.now)
        for run in runs:
            outcome = run.customer_id in holding
            self._log(run, "branch", "then" if outcome else "else")
            self._move(run, step.then if outcome else step.otherwise)

    def _execute(self, run: RunState) -> None:  # noqa: C901 - one case per step type
        step = self._step(run)
        match step:
            case ExitStep():
                self._finish(run, "completed")
            case WaitStep():
                until = wait_ends(step, self.now, self._zone(run), self._profile(run))
                if until <= self.now:
                    self._move(run, step.next)
                else:
                    self._wait(run, until)
            case WaitForEventStep():
                self._wait(run, self.now + step.timeout, event=step.event)
            case SplitStep():
                variant = split_variant(run.journey, str(run.step), run.customer_id, step.variants)
                run.variant = variant.name
                self._log(run, "split", variant.name)
                self._move(run, variant.next)
            case SendStep():
                self._queue_message(run, step)
            case WebhookStep():
                self._queue_webhook(run, step)
            case CouponStep():
                self._issue_coupon(run, step)
            case TaskStep():
                self._create_task(run, step)
            case TagStep():
                self._tag(run, step)
            case UpdateAttributeStep():
                self._update_attribute(run, step)

    def render_message(self, step: SendStep, customer_id: str) -> dict[str, Any]:
        """The message ``step`` would send to ``customer_id`` now (for previews); raises
        :class:`TemplateProblem` when a variable is missing."""
        run = RunState(
            "preview",
            "preview",
            0,
            customer_id,
            "preview",
            "active",
            None,
            None,
            {"coupon_code": "PREVIEW-CODE"},
            None,
            None,
            None,
        )
        self._batch = [customer_id]
        variables = self._variables(run)
        return {
            "locale": variables["locale"],
            "subject": None
            if step.message.subject is None
            else self._render(step.message.subject, variables),
            "text": self._render(step.message.text, variables),
            "html": None
            if step.message.html is None
            else self._render(step.message.html, variables, html=True),
        }

    # -- effects ---------------------------------------------------------------------------

    def _queue_message(self, run: RunState, step: SendStep) -> None:
        variables = self._variables(run)
        try:
            rendered = {
                part: self._render(text, variables, html=part == "html")
                for part in ("subject", "text", "html")
                if (text := getattr(step.message, part)) is not None
            }
        except TemplateProblem as problem:
            self._finish(run, "failed", f"step {run.step}: {problem}")
            return
        profile = self._profile(run)
        field_name = ADDRESS_FIELDS[step.channel]
        address = run.customer_id if field_name == "customer_id" else profile.get(field_name)
        consent = profile.get(CONSENT_FIELDS[step.channel])
        payload = {"to": address, "locale": variables["locale"], "consent": consent, **rendered}
        status, reason = ("pending", None) if address else ("suppressed", "no_address")
        self._outbox(run, step.channel, payload, step.transactional, status, reason)
        self._move(run, step.next)

    def _queue_webhook(self, run: RunState, step: WebhookStep) -> None:
        variables = self._variables(run)
        try:
            body = {
                key: self._render(value, variables) if isinstance(value, str) else value
                for key, value in step.body.items()
            }
        except TemplateProblem as problem:
            self._finish(run, "failed", f"step {run.step}: {problem}")
            return
        payload = {"url": str(step.url), "body": body, "customer_id": run.customer_id}
        self._outbox(run, "webhook", payload, True, "pending", None)
        self._move(run, step.next)

    def _outbox(
        self,
        run: RunState,
        channel: str,
        payload: Mapping[str, Any],
        transactional: bool,
        status: str,
        reason: str | None,
    ) -> None:
        step = str(run.step)
        journey = self._journey(run)
        key = effect_key(
            run.journey, run.version, run.customer_id, run.occurrence, step, run.visit(step)
        )
        self._messages.append(
            {
                "effect_key": key,
                "run_id": run.run_id,
                "journey": run.journey,
                "version": run.version,
                "customer_id": run.customer_id,
                "step": step,
                "channel": channel,
                "payload": json.dumps(payload, ensure_ascii=False, default=str),
                "priority": journey.priority,
                "transactional": transactional or journey.category == "transactional",
                "quiet_hours": journey.quiet_hours,
                "timezone": self._profile(run).get("timezone"),
                "status": status,
                "due_at": self.now,
                "attempts": 0,
                "reason": reason,
                "created_at": self.now,
                "done_at": self.now if status != "pending" else None,
            }
        )
        self._report.queued += status == "pending"
        self._log(run, "queued" if status == "pending" else "suppressed", reason)

    def _issue_coupon(self, run: RunState, step: CouponStep) -> None:
        name = str(run.step)
        key = effect_key(
            run.journey, run.version, run.customer_id, run.occurrence, name, run.visit(name)
        )
        code = self._assign_code(step.pool, run.customer_id, key)
        if code is None:
            self._finish(run, "failed", f"coupon pool {step.pool!r} is empty")
            return
        run.context["coupon_code"] = code
        self._log(run, "coupon", code)
        self._move(run, step.next)

    def _assign_code(self, pool: str, customer_id: str, key: str) -> str | None:
        codes = COUPON_CODES.c
        free = (
            sa.select(codes.code)
            .where(codes.pool == pool, codes.assigned_at.is_(None))
            .order_by(codes.code)
            .limit(1)
        )
        if self.connection.dialect.name == "postgresql":
            free = free.with_for_update(skip_locked=True)
        for _attempt in range(5):
            code = self.connection.execute(free).scalar()
            if code is None:
                return None
            taken = self.connection.execute(
                COUPON_CODES.update()
                .where(codes.pool == pool, codes.code == code, codes.assigned_at.is_(None))
                .values(customer_id=customer_id, effect_key=key, assigned_at=self.now)
            )
            if taken.rowcount == 1:
                return str(code)
        return None

    def _create_task(self, run: RunState, step: TaskStep) -> None:
        name = str(run.step)
        key = effect_key(
            run.journey, run.version, run.customer_id, run.occurrence, name, run.visit(name)
        )
        try:
            title = self._render(step.title, self._variables(run))
        except TemplateProblem as problem:
            self._finish(run, "failed", f"step {name}: {problem}")
            return
        task = NewTask(
            task_id=key[:32],
            customer_id=run.customer_id,
            title=title,
            team=step.team,
            priority=step.priority,
            due_at=self.now + step.due_in,
            source=f"journey:{run.journey}",
        )
        try:  # assigned round-robin among the team's agents, in this transaction
            created = create_task(self.connection, task, now=self.now)
        except TaskError as problem:
            self._finish(run, "failed", f"step {name}: {problem}")
            return
        self._log(run, "task", created.task_id)
        self._move(run, step.next)

    def _update_attribute(self, run: RunState, step: UpdateAttributeStep) -> None:
        """Write the value as an identify call would, through the ingest inbox: the drainer
        checks and folds it into the customer's record like any other update."""
        name = str(run.step)
        key = effect_key(
            run.journey, run.version, run.customer_id, run.occurrence, name, run.visit(name)
        )
        value = step.value
        try:
            if isinstance(value, str):
                value = self._render(value, self._variables(run))
        except TemplateProblem as problem:
            self._finish(run, "failed", f"step {name}: {problem}")
            return
        column = step.field in _CUSTOMER_COLUMNS and step.field not in _FIXED_COLUMNS
        record = (
            {"customer_id": run.customer_id, step.field: value}
            if column
            else {"customer_id": run.customer_id, "attributes": {step.field: value}}
        )
        problems = check_records([record], "customers", self.settings, now=self.now)
        if problems:
            self._finish(run, "failed", f"step {name}: {problems[0].reason}")
            return
        entry = InboxEntry(
            endpoint="identify",
            principal=f"journey:{run.journey}",
            answer="{}",
            received_at=self.now,
            items=(InboxItem("customers", 0, json.dumps(record, ensure_ascii=False)),),
            idempotency_key=key,
        )
        append_entries(self.connection, [entry])
        self._log(run, "attribute", f"{step.field}={value}")
        self._move(run, step.next)

    def _tag(self, run: RunState, step: TagStep) -> None:
        if step.add is not None:
            reason = f"journey {run.journey} v{run.version}, step {run.step}"
            tag = CustomerTag(
                run.customer_id,
                step.add,
                None,
                "manual",
                reason,
                self.now,
                f"journey:{run.journey}",
            )
            set_tags(self.connection, [tag])
        if step.remove is not None:
            remove_tag(self.connection, run.customer_id, step.remove)
        self._log(run, "tag", f"+{step.add or ''} -{step.remove or ''}")
        self._move(run, step.next)

    # -- run state -------------------------------------------------------------------------

    def _move(self, run: RunState, step: str) -> None:
        run.step = step
        self._log(run, "entered_step")

    def _wait(self, run: RunState, until: datetime, *, event: str | None = None) -> None:
        run.status, run.due_at = "waiting", until
        run.wait_event, run.waiting_since = event, self.now if event else None
        self._log(run, "waiting", until.isoformat())

    def _finish(self, run: RunState, status: str, detail: str | None = None) -> None:
        run.status, run.due_at, run.wait_event, run.waiting_since = status, None, None, None
        self._report.finished[status] += 1
        self._log(run, status, detail)

    def _log(self, run: RunState, what: str, detail: str | None = None) -> None:
        self._logs.append(
            {
                "journey": run.journey,
                "version": run.version,
                "run_id": run.run_id,
                "customer_id": run.customer_id,
                "step": run.step,
                "what": what,
                "at": self.now,
                "detail": detail,
            }
        )

    def _store(self, runs: Sequence[RunState]) -> None:
        """Write the batch in three statements (executemany), not one per run."""
        if runs:
            self.connection.execute(
                JOURNEY_RUNS.update()
                .where(JOURNEY_RUNS.c.run_id == sa.bindparam("run"))
                .values(
                    status=sa.bindparam("new_status"),
                    step=sa.bindparam("new_step"),
                    variant=sa.bindparam("new_variant"),
                    context=sa.bindparam("new_context"),
                    updated_at=self.now,
                    due_at=sa.bindparam("new_due_at"),
                    wait_event=sa.bindparam("new_wait_event"),
                    waiting_since=sa.bindparam("new_waiting_since"),
                    claimed_by=None,
                    claimed_until=None,
                ),
                [
                    {
                        "run": run.run_id,
                        "new_status": run.status,
                        "new_step": run.step,
                        "new_variant": run.variant,
                        "new_context": json.dumps(run.context, ensure_ascii=False, default=str),
                        "new_due_at": run.due_at,
                        "new_wait_event": run.wait_event,
                        "new_waiting_since": run.waiting_since,
                    }
                    for run in runs
                ],
            )
        if self._messages:
            self.connection.execute(JOURNEY_OUTBOX.insert(), self._messages)
            self._messages.clear()
        if self._logs:
            self.connection.execute(JOURNEY_LOG.insert(), self._logs)
            self._logs.clear()

    # -- lookups ---------------------------------------------------------------------------

    def _journey(self, run: RunState) -> Journey:
        return self.journeys[(run.journey, run.version)]

    def _step(self, run: RunState) -> Step:
        return self._journey(run).steps[str(run.step)]

    def _profile(self, run: RunState) -> Mapping[str, Any]:
        """The customer's profile fields, read for the whole batch the first time a step
        needs one (a batch that only waits or exits reads none)."""
        if self._profiles is None:
            self._profiles = dict(self.customers.profiles(self._batch, self.now))
        return self._profiles.get(run.customer_id, {})

    def _zone(self, run: RunState) -> ZoneInfo:
        return local_zone(self._profile(run).get("timezone"), self.settings.default_timezone)

    def _variables(self, run: RunState) -> dict[str, Any]:
        profile = self._profile(run)
        context = {k: v for k, v in run.context.items() if not k.startswith("_")}
        locale = profile.get("locale") or self.default_locale
        return {
            **profile,
            **context,
            "customer_id": run.customer_id,
            "journey": run.journey,
            "variant": run.variant,
            "locale": locale,
        }

    def _render(
        self, text: LocalizedText, variables: Mapping[str, Any], *, html: bool = False
    ) -> str:
        if isinstance(text, str):
            return render_template(text, variables, html=html)
        locale = variables["locale"]
        chosen = text.get(locale) or next(iter(text.values()))
        return render_template(chosen, variables, html=html)
