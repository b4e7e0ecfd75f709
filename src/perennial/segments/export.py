"""Send a segment's members out: as CSV, or to a webhook in signed batches.

The webhook receives JSON batches ``{"segment", "version", "batch", "batches",
"members": [{"customer_id", "entered_at"}]}`` with ``X-Perennial-Signature:
sha256=<hex HMAC of the body>`` when a secret is given (the receiver recomputes
it to know the batch is ours and unaltered), and ``Idempotency-Key`` (segment,
version, batch and a digest of its members) so a receiver can drop a batch
re-sent after a timeout. A batch is retried with backoff on a network error, a
timeout, 429 or 5xx; a 4xx other than 429 stops the export (the receiver refuses it).
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import io
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime

import httpx
import orjson

from perennial.errors import ConfigError, PerennialError

__all__ = [
    "WebhookError",
    "WebhookResult",
    "check_webhook_url",
    "csv_lines",
    "post_members",
    "signature",
]

_RETRIED = {429, 500, 502, 503, 504}


class WebhookError(PerennialError):
    """The receiver refused a batch, or kept failing after every retry."""


@dataclass(frozen=True)
class WebhookResult:
    batches: int
    members: int
    attempts: int


def csv_lines(members: Iterable[tuple[str, datetime]]) -> Iterator[str]:
    """A header and one line per member: ``customer_id,entered_at`` (ISO 8601, UTC)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["customer_id", "entered_at"])
    yield buffer.getvalue()
    for customer, entered in members:
        buffer.seek(0)
        buffer.truncate()
        writer.writerow([customer, entered.isoformat()])
        yield buffer.getvalue()


def check_webhook_url(url: str, allowed_hosts: Sequence[str]) -> None:
    """Raise :class:`ConfigError` unless ``url`` is http(s) to an allowed host."""
    parsed = httpx.URL(url)
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise ConfigError("webhook", "url", "an http:// or https:// URL with a host")
    if "*" not in allowed_hosts and parsed.host not in allowed_hosts:
        raise ConfigError(
            "webhook",
            "url",
            f"host {parsed.host!r} is not in the settings' webhook_hosts "
            f"({', '.join(allowed_hosts) or 'none'})",
        )


def signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def post_members(
    url: str,
    *,
    segment: str,
    version: int,
    members: Sequence[tuple[str, datetime]],
    secret: str | None = None,
    batch_size: int = 1000,
    timeout: float = 10.0,
    retries: int = 3,
    backoff: float = 0.5,
) -> WebhookResult:
    """POST ``members`` to ``url`` in batches; raises :class:`WebhookError` on refusal."""
    batches = [members[i : i + batch_size] for i in range(0, len(members), batch_size)] or [[]]
    attempts = 0
    with httpx.Client(timeout=timeout, follow_redirects=False) as client:
        for index, batch in enumerate(batches, start=1):
            body = orjson.dumps(
                {
                    "segment": segment,
                    "version": version,
                    "batch": index,
                    "batches": len(batches),
                    "members": [
                        {"customer_id": customer, "entered_at": entered.isoformat()}
                        for customer, entered in batch
                    ],
                }
            )
            digest = hashlib.sha256(body).hexdigest()[:16]
            headers = {
                "Content-Type": "application/json",
                "Idempotency-Key": f"{segment}:{version}:{index}:{digest}",
            }
            if secret:
                headers["X-Perennial-Signature"] = signature(secret, body)
            attempts += _send(client, url, body, headers, retries, backoff, index)
    return WebhookResult(len(batches), len(members), attempts)


def _send(
    client: httpx.Client,
    url: str,
    body: bytes,
    headers: dict[str, str],
    retries: int,
    backoff: float,
    index: int,
) -> int:
    last = ""
    for attempt in range(1, retries + 2):
        try:
            response = client.post(url, content=body, headers=headers)
        except httpx.HTTPError as error:
            last = f"{type(error).__name__}: {error}"
        else:
            if response.status_code < 300:
                return attempt
            last = f"HTTP {response.status_code}"
            if response.status_code not in _RETRIED:
                raise WebhookError(f"the webhook refused batch {index}: {last}")
        if attempt <= retries:
            time.sleep(backoff * 2 ** (attempt - 1))
    raise WebhookError(f"batch {index} failed after {retries + 1} attempts: {last}")
