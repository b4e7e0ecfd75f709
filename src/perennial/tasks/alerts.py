"""SLA-breach alerts posted to a webhook, through the channels journeys deliver with.

Configure ``channel_webhooks = {task_alerts = "https://..."}`` (and allow its host in
``webhook_hosts``): the worker posts each breach it records once, signed
(``X-Perennial-Signature``) with ``Idempotency-Key: sla-breach:<task id>``. Delivery is one
attempt right after the breach is recorded: a failure is logged and the breach stays in
``GET /v1/tasks/breaches`` and on the Tasks page, where nothing is lost.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from perennial.channels.base import Channel, DeliveryError, Outgoing
from perennial.tasks.breaches import SlaBreach

__all__ = ["ALERT_CHANNEL", "breach_message", "post_breaches"]

ALERT_CHANNEL = "task_alerts"
"""The name to route in ``channel_webhooks``."""

_log = logging.getLogger(__name__)


def breach_message(breach: SlaBreach) -> Outgoing:
    task = breach.task
    return Outgoing(
        effect_key=f"sla-breach:{task.task_id}",
        channel=ALERT_CHANNEL,
        customer_id=task.customer_id,
        journey=task.journey or "",
        step="sla_breach",
        payload={
            "alert": "sla_breach",
            "task_id": task.task_id,
            "title": task.title,
            "team": task.team,
            "priority": task.priority,
            "assignee": task.assignee_name,
            "status": task.status.value,
            "due_at": None if task.due_at is None else task.due_at.isoformat(),
            "recorded_at": breach.recorded_at.isoformat(),
            "source": task.source,
        },
    )


def post_breaches(channel: Channel, breaches: Sequence[SlaBreach]) -> int:
    """Deliver one alert per breach; returns how many the receiver took."""
    delivered = 0
    for breach in breaches:
        try:
            channel.deliver(breach_message(breach))
        except DeliveryError as error:
            _log.warning("SLA alert for task %s not delivered: %s", breach.task.task_id, error)
        else:
            delivered += 1
    return delivered
