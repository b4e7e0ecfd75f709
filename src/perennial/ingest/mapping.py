"""Mapping files: how a source's columns become a canonical table's columns.

A mapping is a YAML document, validated whole before any row is read, so a
typo never half-applies. Example (CDNOW's whitespace-separated log)::

    table: orders
    format: text
    delimiter: whitespace
    timezone: America/New_York
    columns:
      customer_id: customer_id
      placed_at: {from: date, format: "%Y%m%d"}
      amount: dollar_value
      item_count: number_of_cds
    constants: {currency: USD, status: paid}

Without a mapping file, a source is read with the identity mapping: every
canonical column present in the source by its own name.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import available_timezones

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator

from perennial.errors import ConfigError
from perennial.schema.tables import TABLES, Table

__all__ = [
    "ColumnMapping",
    "DuplicatePolicy",
    "Mapping",
    "SourceFormat",
    "identity_mapping",
    "load_mapping",
]


class SourceFormat(StrEnum):
    CSV = "csv"
    TEXT = "text"
    PARQUET = "parquet"
    JSONL = "jsonl"


class DuplicatePolicy(StrEnum):
    """What happens when a row's id is already stored with different values."""

    KEEP_FIRST = "keep_first"
    """The stored row stays; the new one is quarantined so the difference is seen."""
    LATEST_WINS = "latest_wins"
    """The new row replaces the stored one (e.g. an order whose status changed)."""


def _shorthand(value: Any) -> Any:
    return {"from": value} if isinstance(value, str) else value


class ColumnMapping(BaseModel):
    """Where one canonical column comes from and how to read it."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    source: str = Field(alias="from", min_length=1)
    format: list[str] | None = Field(
        default=None, description="strptime formats tried in order (timestamps and dates)."
    )
    timezone: str | None = Field(default=None, description="Zone of naive timestamps.")
    values: dict[str, str] | None = Field(
        default=None, description="Source value -> canonical value (e.g. '1' -> 'paid')."
    )
    divide_by: float | None = Field(default=None, gt=0, description="E.g. 100 for cents.")

    @model_validator(mode="before")
    @classmethod
    def _format_as_list(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("format"), str):
            return {**data, "format": [data["format"]]}
        return data


class Mapping(BaseModel):
    """A validated mapping document."""

    model_config = ConfigDict(extra="forbid")

    table: str
    format: SourceFormat | None = None
    encoding: str = "utf-8"
    delimiter: str = ","
    quote: str = '"'
    header: bool = True
    timezone: str | None = None
    columns: dict[str, Annotated[ColumnMapping, BeforeValidator(_shorthand)]] = Field(
        default_factory=dict
    )
    constants: dict[str, str] = Field(default_factory=dict)
    on_duplicate: DuplicatePolicy = DuplicatePolicy.KEEP_FIRST
    missing_keys: Literal["quarantine", "derive"] = Field(
        default="quarantine",
        description="When the key column is mapped but a row leaves it empty: quarantine the "
        "row, or derive its key from its content like a source without a key column.",
    )
    identity: Literal["identity", "explicit"] = "explicit"

    @model_validator(mode="after")
    def _consistent(self) -> Mapping:
        if self.table not in TABLES:
            raise ValueError(f"table: unknown table {self.table!r}; known: {', '.join(TABLES)}")
        target = TABLES[self.table]
        for name in [*self.columns, *self.constants]:
            if name not in target.column_names:
                raise ValueError(
                    f"columns.{name}: {self.table} has no column {name!r}; "
                    f"its columns are {', '.join(target.column_names)}"
                )
        both = set(self.columns) & set(self.constants)
        if both:
            raise ValueError(f"constants.{sorted(both)[0]}: also mapped under columns")
        zones = [("timezone", self.timezone)] + [
            (f"columns.{n}.timezone", c.timezone) for n, c in self.columns.items()
        ]
        for key, zone in zones:
            if zone is not None and zone not in available_timezones():
                raise ValueError(f"{key}: unknown IANA time zone {zone!r}")
        if len(self.delimiter) != 1 and self.delimiter != "whitespace":
            raise ValueError("delimiter: one character, or 'whitespace'")
        try:
            "".encode(self.encoding)
        except LookupError:
            raise ValueError(f"encoding: unknown encoding {self.encoding!r}") from None
        return self

    @property
    def target(self) -> Table:
        return TABLES[self.table]

    def derives_key(self) -> bool:
        """True when ids may come from the row's content: the source has no id column, or
        rows that leave it empty get a derived id (``missing_keys: derive``)."""
        key = self.target.key
        unmapped = key not in self.columns and key not in self.constants
        return unmapped or self.missing_keys == "derive"

    def resolved(self, source_columns: list[str]) -> Mapping:
        """For an identity mapping, bind the canonical columns the source actually has."""
        if self.identity != "identity":
            return self
        present = {
            name: ColumnMapping.model_validate({"from": name})
            for name in self.target.column_names
            if name in source_columns and name not in self.constants
        }
        return self.model_copy(update={"columns": present, "identity": "explicit"})


def identity_mapping(table: str, **options: Any) -> Mapping:
    """A mapping that takes each canonical column from a source column of the same name."""
    try:
        return Mapping.model_validate({"table": table, "identity": "identity", **options})
    except ValidationError as error:
        raise _config_error("mapping options", error) from None


def load_mapping(path: Path) -> Mapping:
    """Read and validate a mapping file; any problem raises :class:`ConfigError` naming the key."""
    try:
        document = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(str(path), "", "mapping file not found") from None
    except yaml.YAMLError as error:
        raise ConfigError(str(path), "", f"not valid YAML: {error}") from None
    if not isinstance(document, dict):
        raise ConfigError(str(path), "", "a mapping must be a YAML object with a 'table' key")
    try:
        return Mapping.model_validate(document)
    except ValidationError as error:
        raise _config_error(str(path), error) from None


def _config_error(source: str, error: ValidationError) -> ConfigError:
    first = error.errors()[0]
    key_path = ".".join(str(part) for part in first["loc"])
    message = first["msg"].removeprefix("Value error, ")
    if not key_path and ": " in message:
        key_path, message = message.split(": ", 1)
    return ConfigError(source, key_path, message)
