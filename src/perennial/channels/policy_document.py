"""The guardrail policy as a document (``guardrails.yaml``): quiet hours, caps, opt-in.

Config is data (rule 5 of the design): the policy is validated whole, and a
mistake names its key (``caps[1].days``) before anything changes.
"""

from __future__ import annotations

from datetime import time
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from perennial.channels.guardrails import FrequencyCap, GuardrailPolicy, QuietHours
from perennial.errors import ConfigError

__all__ = ["GuardrailDocument", "load_guardrail_policy", "policy_from_document"]

_CHANNELS = ("email", "sms", "app_push", "wechat_work", "wechat_official", "webhook")


class _QuietHoursSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    start: time = time(22, 0)
    end: time = time(8, 0)


class _CapSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    channel: str | None = Field(default=None, description="Absent: every channel together.")
    max: int = Field(ge=0, le=1000)
    days: int = Field(ge=1, le=366)

    @field_validator("channel")
    @classmethod
    def _known_channel(cls, value: str | None) -> str | None:
        if value is not None and value not in _CHANNELS:
            raise ValueError(f"unknown channel {value!r}; known: {', '.join(_CHANNELS)}")
        return value


class GuardrailDocument(BaseModel):
    model_config = ConfigDict(extra="forbid")
    timezone: str = "Asia/Shanghai"
    quiet_hours: _QuietHoursSpec | None = _QuietHoursSpec()
    caps: list[_CapSpec] = Field(
        default_factory=lambda: [_CapSpec(max=2, days=7), _CapSpec(channel="sms", max=1, days=1)]
    )
    transactional_exempt: bool = True
    require_opt_in: list[str] = Field(
        default_factory=lambda: ["email", "sms", "app_push", "wechat_work", "wechat_official"],
        description="Channels where marketing needs the customer's yes (the customer record's "
        "consent flag; unknown counts as no, as the schema says).",
    )

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r} (use an IANA name)") from None
        return value


def policy_from_document(document: GuardrailDocument) -> GuardrailPolicy:
    quiet = document.quiet_hours
    return GuardrailPolicy(
        quiet_hours=None if quiet is None else QuietHours(quiet.start, quiet.end),
        caps=tuple(FrequencyCap(cap.max, cap.days, cap.channel) for cap in document.caps),
        transactional_exempt=document.transactional_exempt,
        require_opt_in=frozenset(document.require_opt_in),
        default_timezone=document.timezone,
    )


def load_guardrail_policy(path: Path) -> GuardrailPolicy:
    """Read and check ``path``; raises :class:`ConfigError` naming the key."""
    source = str(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(source, "", f"cannot read the file: {error}") from None
    except yaml.YAMLError as error:
        raise ConfigError(source, "", f"not valid YAML: {error}") from None
    try:
        document = GuardrailDocument.model_validate(raw or {})
    except ValidationError as error:
        first = error.errors()[0]
        where = "".join(
            f"[{part}]" if isinstance(part, int) else f".{part}" for part in first["loc"]
        ).lstrip(".")
        raise ConfigError(source, where, first["msg"].removeprefix("Value error, ")) from None
    return policy_from_document(document)
