"""Channels: message templates, the guardrails every send passes, and the delivery adapters
(email over SMTP, signed webhooks; SMS, app push and WeChat behind the same interface)."""
