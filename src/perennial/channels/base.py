"""The interface every delivery channel implements (email, webhooks now; SMS, app push and
WeChat adapters next), and the two ways a delivery can fail."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

__all__ = ["Channel", "DeliveryError", "Outgoing"]


@dataclass(frozen=True)
class Outgoing:
    """One message or call, rendered, with the idempotency key its provider should see."""

    effect_key: str
    channel: str
    customer_id: str
    journey: str
    step: str
    payload: Mapping[str, Any]
    """For messages: ``to``, ``subject``, ``text``, ``html``, ``locale``; for webhooks:
    ``url`` and ``body``."""


class DeliveryError(Exception):
    """The provider did not take the message. ``temporary`` failures are retried with
    backoff; permanent ones (a refused address, a 4xx) go to the dead letters at once."""

    def __init__(self, reason: str, *, temporary: bool) -> None:
        self.reason = reason
        self.temporary = temporary
        super().__init__(reason)


class Channel(Protocol):
    def deliver(self, message: Outgoing) -> None:
        """Hand ``message`` to the provider; raise :class:`DeliveryError` if it is not taken."""
        ...

    def close(self) -> None:
        """Release connections (called when the worker stops)."""
        ...
