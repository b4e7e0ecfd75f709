"""Numbers, money, percentages and times as a morning-meeting board shows them.

Chinese readers count in 万 (10^4) and 亿 (10^8): 12,345 is "1.23万" and 123,456,789
is "1.23亿"; English readers get thousands separators and K / M / B. Amounts are
rounded half-up with :class:`~decimal.Decimal` (no binary-float surprises on money).
Instants are stored in UTC and shown in the configured zone
(``settings.default_timezone``).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from zoneinfo import ZoneInfo

__all__ = [
    "Formatter",
    "format_change",
    "format_count",
    "format_date",
    "format_datetime",
    "format_money",
    "format_percent",
]

Number = int | float | Decimal

_ZH_UNITS = ((Decimal(10) ** 8, "亿"), (Decimal(10) ** 4, "万"))
_EN_UNITS = ((Decimal(10) ** 9, "B"), (Decimal(10) ** 6, "M"), (Decimal(10) ** 3, "K"))
_COMPACT_FROM = Decimal(10_000)
"""Below this a count is written out in full (9,999), in either language."""
_CURRENCY_SYMBOLS = {"CNY": "¥", "USD": "$", "EUR": "€", "GBP": "£", "JPY": "JP¥", "HKD": "HK$"}
_EN_MONTHS = "Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split()


def _decimal(value: Number) -> Decimal:
    return value if isinstance(value, Decimal) else Decimal(str(value))


def _round(value: Decimal, places: int) -> Decimal:
    return value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)


def _plain(value: Decimal, places: int) -> str:
    """Grouped with commas, at most ``places`` decimals, trailing zeros dropped."""
    text = f"{_round(value, places):,.{places}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def format_count(value: Number, language: str, *, compact: bool = True, places: int = 2) -> str:
    """``12345`` -> ``1.23万`` (zh-CN) or ``12.35K`` (en); below 10,000: ``9,999``."""
    amount = _decimal(value)
    if not compact or abs(amount) < _COMPACT_FROM:
        return _plain(amount, 0 if amount == amount.to_integral_value() else places)
    units = _ZH_UNITS if language == "zh-CN" else _EN_UNITS
    for size, suffix in units:
        # the largest unit in which the rounded amount is at least 1: 99,999,999 -> 1亿
        scaled = _round(amount / size, places)
        if abs(scaled) >= 1:
            return _plain(scaled, places) + suffix
    return _plain(amount, places)


def format_money(
    value: Number, currency: str, language: str, *, compact: bool = True, places: int = 2
) -> str:
    """``Decimal("12345.6"), "CNY"`` -> ``¥1.23万`` (zh-CN) or ``¥12.35K`` (en); exact
    amounts below 10,000 keep two decimals (``¥9,999.50``)."""
    amount = _decimal(value)
    symbol = _CURRENCY_SYMBOLS.get(currency.upper(), f"{currency.upper()} ")
    sign = "-" if amount < 0 else ""
    if compact and abs(amount) >= _COMPACT_FROM:
        return f"{sign}{symbol}{format_count(abs(amount), language, places=places)}"
    return f"{sign}{symbol}{_round(abs(amount), 2):,.2f}"


def format_percent(ratio: Number, *, places: int = 1) -> str:
    """``0.1234`` -> ``12.3%`` (the same in both languages)."""
    return f"{_round(_decimal(ratio) * 100, places):.{places}f}%"


def format_change(ratio: Number, *, places: int = 1) -> str:
    """A change against the previous period with its sign: ``+12.3%``, ``-4.0%``, ``0.0%``."""
    text = format_percent(ratio, places=places)
    return text if text.startswith("-") or _decimal(ratio) == 0 else f"+{text}"


def _local(instant: dt.datetime, zone: str) -> dt.datetime:
    if instant.tzinfo is None:
        raise ValueError("a naive datetime has no instant to show: give it a time zone")
    return instant.astimezone(ZoneInfo(zone))


def format_date(day: dt.date | dt.datetime, language: str, zone: str) -> str:
    """``2026年1月2日`` (zh-CN) or ``2 Jan 2026`` (en); a datetime is first moved to ``zone``."""
    if isinstance(day, dt.datetime):
        day = _local(day, zone).date()
    if language == "zh-CN":
        return f"{day.year}年{day.month}月{day.day}日"
    return f"{day.day} {_EN_MONTHS[day.month - 1]} {day.year}"


def format_datetime(instant: dt.datetime, language: str, zone: str) -> str:
    """The instant in ``zone``: ``2026年1月2日 08:05`` or ``2 Jan 2026 08:05``."""
    local = _local(instant, zone)
    return f"{format_date(local.date(), language, zone)} {local:%H:%M}"


@dataclass(frozen=True, slots=True)
class Formatter:
    """The formatting functions bound to one page's language and zone (``fmt`` in templates)."""

    language: str
    zone: str

    def count(self, value: Number, compact: bool = True) -> str:
        return format_count(value, self.language, compact=compact)

    def money(self, value: Number, currency: str = "CNY", compact: bool = True) -> str:
        return format_money(value, currency, self.language, compact=compact)

    def percent(self, ratio: Number, places: int = 1) -> str:
        return format_percent(ratio, places=places)

    def change(self, ratio: Number, places: int = 1) -> str:
        return format_change(ratio, places=places)

    def date(self, day: dt.date | dt.datetime) -> str:
        return format_date(day, self.language, self.zone)

    def datetime(self, instant: dt.datetime) -> str:
        return format_datetime(instant, self.language, self.zone)
