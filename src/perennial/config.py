"""One settings object says where everything lives.

Values come, in rising priority, from defaults, ``perennial.toml`` in the
working directory (or the file named by ``PERENNIAL_CONFIG``) and ``PERENNIAL_*``
environment variables. The default needs no server: an embedded DuckDB over
Parquet files and a SQLite file under ``./.perennial/``.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import available_timezones

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from perennial.errors import ConfigError

__all__ = ["Settings", "load_settings"]


class Settings(BaseSettings):
    """Where data lives and the defaults every module shares."""

    model_config = SettingsConfigDict(env_prefix="PERENNIAL_", extra="forbid")

    home: Path = Field(default=Path(".perennial"), description="Root folder of the local stores.")
    warehouse_path: Path | None = Field(
        default=None, description="Analytical store (Parquet tables); default <home>/warehouse."
    )
    operational_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL of the operational store; default <home>/perennial.db.",
    )
    default_timezone: str = Field(
        default="Asia/Shanghai", description="Zone assumed for customers and sources without one."
    )
    default_phone_region: str = Field(default="CN", description="Region for phones without +.")
    future_tolerance_hours: float = Field(
        default=24.0, ge=0, description="Timestamps later than now + this are rejected at ingest."
    )
    ingest_drain_seconds: float = Field(
        default=1.0,
        ge=0,
        description="The server moves track-API items from the inbox into the warehouse this "
        "often; 0 leaves it to `perennial drain`.",
    )
    ingest_drain_items: int = Field(
        default=5000, ge=1, description="At most this many inbox items per drained micro-batch."
    )
    duckdb_memory_limit: str | None = Field(
        default=None,
        description="DuckDB spills beyond this (e.g. 4GB); default 60 % of physical memory.",
    )
    duckdb_threads: int = Field(default=2, ge=1)
    feature_buckets: int | None = Field(
        default=None,
        ge=1,
        description="Compute features in this many customer-hash buckets (bounded memory); "
        "default: enough for the DuckDB memory limit, one on Spark.",
    )
    spark_master: str = Field(
        default="local[2]",
        description="Spark master URL for --engine spark: local[N], spark://host:7077, yarn, k8s://...",
    )
    spark_conf: dict[str, str] = Field(
        default_factory=dict, description="Extra Spark settings (spark.executor.memory, ...)."
    )

    api_host: str = Field(default="127.0.0.1", description="Address `perennial serve` binds.")
    api_port: int = Field(default=8000, ge=0, le=65535)
    api_max_body_bytes: int = Field(
        default=1_048_576, ge=1024, description="Larger request bodies are refused with 413."
    )
    session_hours: float = Field(default=12.0, gt=0, description="Web sign-in lifetime.")
    login_max_failures: int = Field(
        default=5, ge=1, description="Failed sign-ins in a row before the account locks."
    )
    login_lockout_minutes: float = Field(default=15.0, gt=0)
    secure_cookies: bool = Field(
        default=False,
        description="Mark session cookies Secure: true behind HTTPS, false for loopback HTTP.",
    )
    clock: datetime | None = Field(
        default=None,
        description="Pin 'now' for segments and tags (e.g. 2026-01-01T00:00:00+08:00 to "
        "replay demo or historical data); default the wall clock.",
    )
    segment_refresh_seconds: float = Field(
        default=300.0,
        gt=0,
        description="The server re-evaluates segments with time-relative conditions at least "
        "this often (and at the next instant one of them can change, when known).",
    )
    webhook_hosts: list[str] = Field(
        default_factory=lambda: ["127.0.0.1", "localhost", "::1"],
        description="Hosts that segment exports (and journeys) may POST to; '*' allows any. "
        "Loopback only by default, so no one can make the server call an arbitrary address.",
    )
    serving_path: Path | None = Field(
        default=None,
        description="Serving store (SQLite, rebuilt by `perennial serving refresh`); "
        "default <home>/serving.db.",
    )
    public_url: str = Field(
        default="http://127.0.0.1:8000",
        description="Where customers reach this server (unsubscribe links in messages).",
    )
    signing_secret: str | None = Field(
        default=None,
        description="Key for webhook signatures and unsubscribe links; default a random key "
        "kept in <home>/signing.key (give one value to every worker of a deployment).",
    )
    smtp_host: str | None = Field(default=None, description="SMTP server for e-mail sends.")
    smtp_port: int = Field(default=25, ge=1, le=65535)
    smtp_starttls: bool = Field(default=False, description="Upgrade with STARTTLS first.")
    smtp_username: str | None = None
    smtp_password: str | None = None
    smtp_sender: str = Field(default="Perennial <no-reply@localhost>")
    channel_webhooks: dict[str, str] = Field(
        default_factory=dict,
        description="Channels without a native adapter delivered by POSTing the rendered "
        "message to a URL, e.g. {sms = 'http://127.0.0.1:9000/sms'}.",
    )
    journey_lease_seconds: float = Field(
        default=120.0,
        gt=0,
        description="How long a worker holds messages it is delivering; a worker that dies "
        "holding them releases them when this runs out.",
    )
    guardrails_path: Path | None = Field(
        default=None,
        description="Guardrail policy (quiet hours, caps, opt-in) as YAML; default the "
        "built-in policy (22:00-08:00, 2 marketing messages a week, 1 SMS a day).",
    )

    @field_validator("default_timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        if value not in available_timezones():
            raise ValueError(f"unknown IANA time zone {value!r}")
        return value

    @field_validator("clock")
    @classmethod
    def _aware_clock(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("clock needs a UTC offset, e.g. 2026-01-01T00:00:00+08:00")
        return value

    def now(self) -> datetime:
        """The instant segments and tags take as now: ``clock`` when pinned, else the wall clock."""
        return self.clock.astimezone(UTC) if self.clock is not None else datetime.now(UTC)

    @property
    def warehouse(self) -> Path:
        return self.warehouse_path or self.home / "warehouse"

    @property
    def operational_database_url(self) -> str:
        return self.operational_url or f"sqlite:///{self.home / 'perennial.db'}"

    @property
    def serving_database(self) -> Path:
        return self.serving_path or self.home / "serving.db"

    @property
    def future_tolerance(self) -> timedelta:
        return timedelta(hours=self.future_tolerance_hours)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        del dotenv_settings, file_secret_settings  # not used: one file and the environment
        toml_file = Path(os.environ.get("PERENNIAL_CONFIG", "perennial.toml"))
        return (
            init_settings,
            env_settings,
            TomlConfigSettingsSource(settings_cls, toml_file=toml_file),
        )


def load_settings(**overrides: Any) -> Settings:
    """Settings from file and environment, with explicit overrides on top.

    An invalid value raises :class:`ConfigError` naming the key, never a traceback.
    """
    try:
        return Settings(**overrides)
    except ValidationError as error:
        first = error.errors()[0]
        key = ".".join(str(part) for part in first["loc"])
        source = os.environ.get("PERENNIAL_CONFIG", "perennial.toml") + " / PERENNIAL_* environment"
        raise ConfigError(source, key, first["msg"].removeprefix("Value error, ")) from None
