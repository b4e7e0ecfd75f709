"""Vectorised conversion of one source column into one canonical column.

Each converter returns the converted values and, per row, why the value could
not be converted (null when it could). A value that is missing in the source
is not an error here: whether a column may be empty is the validator's call.
Polars does the work so that ten million rows convert in seconds.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from zoneinfo import available_timezones

import orjson
import polars as pl
import pycountry

from perennial.config import Settings
from perennial.ingest.identifiers import normalize_emails, normalize_phones
from perennial.ingest.mapping import ColumnMapping
from perennial.schema.tables import Column, Kind

__all__ = ["ConversionContext", "Converted", "convert_column", "nulls"]

_DATETIME = pl.Datetime("us", "UTC")
_DECIMAL = pl.Decimal(18, 4)
# Whole-second forms come first: parsing them is several times faster than with ``%.f``,
# which is only tried on the rows still unparsed.
_NAIVE_FORMATS = (
    "%Y-%m-%dT%H:%M:%S",
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%dT%H:%M:%S%.f",
    "%Y-%m-%d %H:%M:%S%.f",
    "%Y-%m-%dT%H:%M",
    "%Y-%m-%d %H:%M",
    "%Y-%m-%d",
    "%Y/%m/%d %H:%M:%S",
    "%Y/%m/%d %H:%M",
    "%Y/%m/%d",
    "%Y%m%d%H%M%S",
    "%Y%m%d",
    "%d.%m.%Y %H:%M:%S",
    "%d.%m.%Y",
)
_ZONED_FORMATS = (
    "%Y-%m-%dT%H:%M:%S%z",
    "%Y-%m-%dT%H:%M:%S%.f%z",
    "%Y-%m-%d %H:%M:%S%.f%z",
    "%Y-%m-%dT%H:%M%z",
)
_TRUE = ("true", "t", "yes", "y", "1")
_FALSE = ("false", "f", "no", "n", "0")
_EARLIEST = datetime(1900, 1, 1)


@dataclass(frozen=True)
class ConversionContext:
    """What conversions need to know beyond the value: zones, the clock, the phone region."""

    timezone: str
    now: datetime
    future_tolerance: timedelta
    phone_region: str

    @classmethod
    def from_settings(
        cls, settings: Settings, *, now: datetime, timezone: str | None = None
    ) -> ConversionContext:
        """The context an ingest at ``now`` runs in; ``timezone`` overrides the default zone."""
        return cls(
            timezone=timezone or settings.default_timezone,
            now=now,
            future_tolerance=settings.future_tolerance,
            phone_region=settings.default_phone_region,
        )


@dataclass(frozen=True)
class Converted:
    values: pl.Series
    errors: pl.Series  # String: reason per row, null where the value converted (or was missing)


def convert_column(
    raw: pl.Series, column: Column, spec: ColumnMapping | None, context: ConversionContext
) -> Converted:
    """Convert ``raw`` (as read from the source) into ``column``'s canonical type."""
    if raw.dtype == pl.String:
        raw = _blank_as_null(raw.str.strip_chars())
    if spec is not None and spec.values:
        raw = raw.cast(pl.String).replace(spec.values)
    return _CONVERTERS[column.kind](raw, column, spec, context)


def _blank_as_null(text: pl.Series) -> pl.Series:
    return pl.select(pl.when(pl.lit(text) != "").then(pl.lit(text)).alias(text.name)).to_series()


def _no_errors(raw: pl.Series) -> pl.Series:
    return nulls(raw.name, len(raw), pl.String)


def nulls(name: str, length: int, dtype: pl.DataType | type[pl.DataType]) -> pl.Series:
    """A Series of ``length`` nulls, built without a Python list."""
    return pl.repeat(None, length, dtype=dtype, eager=True).alias(name)


def _error_where(failed: pl.Series, raw: pl.Series, reason: str) -> pl.Series:
    """``reason 'value'`` on failed rows, null elsewhere."""
    if not failed.any():
        return _no_errors(raw)
    shown = pl.lit(raw.cast(pl.String).str.slice(0, 60))
    message = pl.concat_str([pl.lit(f"{reason} '"), shown, pl.lit("'")])
    return pl.select(
        pl.when(pl.lit(failed).fill_null(False)).then(message).otherwise(None).alias(raw.name)
    ).to_series()


def _timestamps(
    raw: pl.Series, _column: Column, spec: ColumnMapping | None, context: ConversionContext
) -> Converted:
    zone = (spec.timezone if spec else None) or context.timezone
    if raw.dtype == pl.Date:
        values = raw.cast(pl.Datetime("us")).dt.replace_time_zone(zone).dt.convert_time_zone("UTC")
    elif isinstance(raw.dtype, pl.Datetime):
        if raw.dtype.time_zone is None:
            raw = raw.dt.replace_time_zone(zone, ambiguous="earliest", non_existent="null")
        values = raw.dt.convert_time_zone("UTC").dt.cast_time_unit("us")
    else:
        values = _parse_timestamps(raw.cast(pl.String), spec.format if spec else None, zone)
    errors = _error_where(raw.is_not_null() & values.is_null(), raw, "unparsable timestamp")
    too_late = values > (context.now + context.future_tolerance)
    too_early = values < _EARLIEST.replace(tzinfo=context.now.tzinfo)
    errors = _merge(errors, _error_where(too_late, raw, "timestamp in the future"))
    errors = _merge(errors, _error_where(too_early, raw, "timestamp before 1900"))
    return Converted(values, errors)


def _parse_timestamps(text: pl.Series, formats: list[str] | None, zone: str) -> pl.Series:
    """Try each format on the rows still unparsed; naive results are local time in ``zone``.

    Values ending in ``Z`` (UTC, the commonest machine format) take a fast path: the
    ``Z`` is dropped and the rest parsed as naive UTC, several times faster than ``%z``.
    """
    zulu = text.str.ends_with("Z").fill_null(False)
    if not zulu.any():
        return _parse_in_zone(text, formats or [*_ZONED_FORMATS, *_NAIVE_FORMATS], zone)
    utc = _parse_in_zone(text.str.strip_suffix("Z"), formats or list(_NAIVE_FORMATS), "UTC")
    if zulu.all():
        return utc
    local = _parse_in_zone(text, formats or [*_ZONED_FORMATS, *_NAIVE_FORMATS], zone)
    return utc.zip_with(zulu, local)


def _parse_in_zone(text: pl.Series, formats: list[str], zone: str) -> pl.Series:
    result = nulls(text.name, len(text), _DATETIME)
    for fmt in formats:
        pending = result.is_null() & text.is_not_null()
        if not pending.any():
            break
        parsed = text.str.strptime(pl.Datetime("us"), format=fmt, strict=False, exact=True)
        if "%z" not in fmt:
            parsed = parsed.dt.replace_time_zone(zone, ambiguous="earliest", non_existent="null")
        result = result.zip_with(result.is_not_null(), parsed.dt.convert_time_zone("UTC"))
    return result


def _dates(raw: pl.Series, spec: ColumnMapping | None) -> Converted:
    if raw.dtype == pl.Date:
        return Converted(raw, _no_errors(raw))
    if isinstance(raw.dtype, pl.Datetime):
        return Converted(raw.dt.date(), _no_errors(raw))
    text = raw.cast(pl.String)
    formats = (spec.format if spec else None) or ["%Y-%m-%d", "%Y/%m/%d", "%Y%m%d", "%d.%m.%Y"]
    values = nulls(text.name, len(text), pl.Date)
    for fmt in formats:
        parsed = text.str.strptime(pl.Date, format=fmt, strict=False, exact=True)
        values = values.zip_with(values.is_not_null(), parsed)
    errors = _error_where(text.is_not_null() & values.is_null(), text, "unparsable date")
    return Converted(values, errors)


def _decimals(raw: pl.Series, column: Column, spec: ColumnMapping | None) -> Converted:
    numbers = raw if raw.dtype.is_numeric() else _without_thousands_separators(raw)
    values = numbers.cast(_DECIMAL, strict=False)
    if spec is not None and spec.divide_by:
        values = (values.cast(pl.Float64) / spec.divide_by).round(4).cast(_DECIMAL)
    errors = _error_where(raw.is_not_null() & values.is_null(), raw, "not a number")
    if column.non_negative:
        errors = _merge(errors, _error_where(values < 0, raw, "negative amount"))
    return Converted(values, errors)


def _without_thousands_separators(raw: pl.Series) -> pl.Series:
    """``1,234.50`` -> ``1234.50``; any other comma (``12,50``) stays and fails as not a number."""
    text = raw.cast(pl.String)
    grouped = text.str.contains(r"^[-+]?\d{1,3}(,\d{3})+(\.\d*)?$")
    return text.zip_with(~grouped.fill_null(False), text.str.replace_all(",", ""))


def _integers(raw: pl.Series, column: Column) -> Converted:
    values = raw.cast(pl.Int64, strict=False)
    errors = _error_where(raw.is_not_null() & values.is_null(), raw, "not a whole number")
    if column.non_negative:
        errors = _merge(errors, _error_where(values < 0, raw, "negative count"))
    return Converted(values, errors)


def _booleans(raw: pl.Series) -> Converted:
    if raw.dtype == pl.Boolean:
        return Converted(raw, _no_errors(raw))
    text = raw.cast(pl.String).str.to_lowercase()
    values = (
        pl.select(pl.when(text.is_in(_TRUE)).then(True).when(text.is_in(_FALSE)).then(False))
        .to_series()
        .alias(raw.name)
    )
    errors = _error_where(text.is_not_null() & values.is_null(), raw, "not true or false")
    return Converted(values, errors)


def _json_objects(raw: pl.Series) -> Converted:
    """JSON objects, re-serialised with sorted keys so equal objects compare equal."""
    canonical: list[str | None] = []
    errors: list[str | None] = []
    for value in raw.cast(pl.String).to_list():
        if value is None:
            canonical.append(None)
            errors.append(None)
            continue
        try:
            parsed = orjson.loads(value)
        except orjson.JSONDecodeError as error:
            canonical.append(None)
            errors.append(f"malformed JSON ({error.msg} at char {error.pos})")
            continue
        if not isinstance(parsed, dict):
            canonical.append(None)
            errors.append("JSON is not an object")
            continue
        canonical.append(orjson.dumps(parsed, option=orjson.OPT_SORT_KEYS).decode())
        errors.append(None)
    return Converted(
        pl.Series(raw.name, canonical, pl.String), pl.Series(raw.name, errors, pl.String)
    )


def _checked(values: pl.Series, allowed: frozenset[str], reason: str) -> Converted:
    failed = values.is_not_null() & ~values.is_in(list(allowed))
    kept = pl.select(pl.when(~pl.lit(failed)).then(pl.lit(values)).alias(values.name)).to_series()
    return Converted(kept, _error_where(failed, values, reason))


def _normalised(raw: pl.Series, values: pl.Series, reason: str) -> Converted:
    return Converted(values, _error_where(raw.is_not_null() & values.is_null(), raw, reason))


def _merge(first: pl.Series, second: pl.Series) -> pl.Series:
    return first.zip_with(first.is_not_null(), second)


def _currency(raw: pl.Series, *_: object) -> Converted:
    return _checked(raw.cast(pl.String).str.to_uppercase(), _currencies(), "unknown currency")


def _enum(raw: pl.Series, column: Column, *_: object) -> Converted:
    allowed = frozenset(column.choices)
    reason = f"not one of {', '.join(column.choices)}"
    return _checked(raw.cast(pl.String).str.to_lowercase(), allowed, reason)


def _timezone(raw: pl.Series, *_: object) -> Converted:
    return _checked(raw.cast(pl.String), frozenset(available_timezones()), "unknown IANA time zone")


def _phone(
    raw: pl.Series, _column: Column, _spec: ColumnMapping | None, context: ConversionContext
) -> Converted:
    text = raw.cast(pl.String)
    return _normalised(text, normalize_phones(text, context.phone_region), "invalid phone")


def _email(raw: pl.Series, *_: object) -> Converted:
    text = raw.cast(pl.String)
    return _normalised(text, normalize_emails(text), "invalid e-mail address")


def _string(raw: pl.Series, *_: object) -> Converted:
    return Converted(raw.cast(pl.String), _no_errors(raw))


_Converter = Callable[[pl.Series, Column, ColumnMapping | None, ConversionContext], Converted]
_CONVERTERS: dict[Kind, _Converter] = {
    Kind.TIMESTAMP: _timestamps,
    Kind.DATE: lambda raw, _column, spec, _context: _dates(raw, spec),
    Kind.DECIMAL: lambda raw, column, spec, _context: _decimals(raw, column, spec),
    Kind.INTEGER: lambda raw, column, _spec, _context: _integers(raw, column),
    Kind.BOOLEAN: lambda raw, *_: _booleans(raw),
    Kind.JSON: lambda raw, *_: _json_objects(raw),
    Kind.CURRENCY: _currency,
    Kind.ENUM: _enum,
    Kind.TIMEZONE: _timezone,
    Kind.PHONE: _phone,
    Kind.EMAIL: _email,
    Kind.STRING: _string,
}
"""One converter per kind; a test checks that every Kind has one."""


@cache
def _currencies() -> frozenset[str]:
    return frozenset(c.alpha_3 for c in pycountry.currencies)
