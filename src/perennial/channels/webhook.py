"""Webhook delivery: a journey's webhook step, and any channel routed to an HTTP endpoint.

Bodies are signed like segment exports (``X-Perennial-Signature: sha256=<HMAC>``)
and carry the effect's ``Idempotency-Key``, so a receiver can verify the sender
and drop a repeat (a delivery retried after a crash between the provider's
answer and our record of it). Timeouts, connection errors, 408, 429 and 5xx are
temporary (retried with backoff); any other 4xx is a refusal (dead letter).
"""

from __future__ import annotations

from collections.abc import Sequence

import orjson
import urllib3

from perennial.channels.base import DeliveryError, Outgoing
from perennial.segments.export import check_webhook_url, signature

__all__ = ["WebhookChannel"]

_TEMPORARY = {408, 425, 429, 500, 502, 503, 504}


class WebhookChannel:
    """POSTs JSON. ``url`` fixed: a routed channel (the whole message is the body);
    ``url`` ``None``: the webhook step's own URL and body."""

    def __init__(
        self,
        *,
        secret: str,
        allowed_hosts: Sequence[str],
        url: str | None = None,
        timeout: float = 10.0,
    ) -> None:
        self._secret = secret
        self._allowed = list(allowed_hosts)
        self._url = url
        self._pool = urllib3.PoolManager(
            maxsize=16, timeout=urllib3.Timeout(total=timeout), retries=False
        )

    def deliver(self, message: Outgoing) -> None:
        if self._url is None:
            url = str(message.payload["url"])
            document = message.payload.get("body", {})
        else:
            url = self._url
            document = {
                "effect_key": message.effect_key,
                "channel": message.channel,
                "customer_id": message.customer_id,
                "journey": message.journey,
                "step": message.step,
                **message.payload,
            }
        try:
            check_webhook_url(url, self._allowed)
        except Exception as error:
            raise DeliveryError(str(error), temporary=False) from None
        body = orjson.dumps(document)
        headers = {
            "Content-Type": "application/json",
            "Idempotency-Key": message.effect_key,
            "X-Perennial-Signature": signature(self._secret, body),
        }
        try:
            response = self._pool.request(
                "POST", url, body=body, headers=headers, redirect=False, preload_content=True
            )
        except urllib3.exceptions.HTTPError as error:
            raise DeliveryError(f"{type(error).__name__}: {error}", temporary=True) from None
        if response.status >= 300:
            raise DeliveryError(f"HTTP {response.status}", temporary=response.status in _TEMPORARY)

    def close(self) -> None:
        self._pool.clear()
