"""Build the channels, the signing secret and the guardrail policy from the settings."""

from __future__ import annotations

import secrets
from pathlib import Path

from perennial.channels.base import Channel
from perennial.channels.email import SmtpChannel, SmtpSettings
from perennial.channels.guardrails import GuardrailPolicy
from perennial.channels.policy_document import (
    GuardrailDocument,
    load_guardrail_policy,
    policy_from_document,
)
from perennial.channels.webhook import WebhookChannel
from perennial.config import Settings

__all__ = ["build_channels", "guardrail_policy", "signing_secret"]


def signing_secret(settings: Settings) -> str:
    """The configured secret, else one random key kept in the home folder."""
    if settings.signing_secret:
        return settings.signing_secret
    path = settings.home / "signing.key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        _write_private(path, secrets.token_urlsafe(32))
    return path.read_text(encoding="utf-8").strip()


def guardrail_policy(settings: Settings) -> GuardrailPolicy:
    if settings.guardrails_path is not None:
        return load_guardrail_policy(settings.guardrails_path)
    return policy_from_document(GuardrailDocument(timezone=settings.default_timezone))


def build_channels(settings: Settings) -> dict[str, Channel]:
    """Every channel that can deliver with these settings (a channel left out keeps its
    messages pending, visible in the outbox, until one is configured)."""
    secret = signing_secret(settings)
    channels: dict[str, Channel] = {
        "webhook": WebhookChannel(secret=secret, allowed_hosts=settings.webhook_hosts)
    }
    for name, url in settings.channel_webhooks.items():
        channels[name] = WebhookChannel(
            secret=secret, allowed_hosts=settings.webhook_hosts, url=url
        )
    if settings.smtp_host:
        smtp = SmtpSettings(
            host=settings.smtp_host,
            port=settings.smtp_port,
            sender=settings.smtp_sender,
            username=settings.smtp_username,
            password=settings.smtp_password,
            starttls=settings.smtp_starttls,
        )
        channels["email"] = SmtpChannel(smtp, secret=secret, public_url=settings.public_url)
    return channels


def _write_private(path: Path, text: str) -> None:
    path.touch(mode=0o600)
    path.write_text(text, encoding="utf-8")
