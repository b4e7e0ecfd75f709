"""Numbers as a Chinese or English board shows them; times in the configured zone."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from perennial.web.formatting import (
    Formatter,
    format_change,
    format_count,
    format_date,
    format_datetime,
    format_money,
    format_percent,
)


@pytest.mark.parametrize(
    ("value", "chinese", "english"),
    [
        (0, "0", "0"),
        (7, "7", "7"),
        (9_999, "9,999", "9,999"),
        (10_000, "1万", "10K"),
        (12_345, "1.23万", "12.35K"),
        (999_999, "100万", "1M"),
        (1_234_567, "123.46万", "1.23M"),
        (99_490_000, "9,949万", "99.49M"),
        (99_500_000, "1亿", "99.5M"),  # 0.995亿 rounds to 1.00亿
        (99_999_999, "1亿", "100M"),
        (123_456_789, "1.23亿", "123.46M"),
        (1_234_567_890_123, "12,345.68亿", "1,234.57B"),
        (-12_345, "-1.23万", "-12.35K"),
        (12.5, "12.5", "12.5"),
    ],
)
def test_counts_use_wan_and_yi_in_chinese_and_k_m_b_in_english(
    value: int | float, chinese: str, english: str
) -> None:
    assert format_count(value, "zh-CN") == chinese
    assert format_count(value, "en") == english


def test_counts_can_be_written_out_in_full() -> None:
    assert format_count(123_456_789, "zh-CN", compact=False) == "123,456,789"
    assert format_count(123_456_789, "en", compact=False) == "123,456,789"


def test_rounding_is_half_up_not_binary_float() -> None:
    assert format_count(12_345, "zh-CN") == "1.23万"
    assert format_count(12_350, "zh-CN") == "1.24万"  # 1.235 -> 1.24 (a float would give 1.23)
    assert format_count(Decimal("1.005"), "en") == "1.01"


@pytest.mark.parametrize(
    ("amount", "currency", "language", "text"),
    [
        (Decimal("12345.6"), "CNY", "zh-CN", "¥1.23万"),
        (Decimal("12345.6"), "CNY", "en", "¥12.35K"),
        (Decimal("9999.5"), "CNY", "zh-CN", "¥9,999.50"),
        (Decimal("123456789"), "USD", "zh-CN", "$1.23亿"),
        (Decimal("-250"), "EUR", "en", "-€250.00"),
        (Decimal("88"), "SGD", "en", "SGD 88.00"),
    ],
)
def test_money_has_its_symbol_and_the_languages_units(
    amount: Decimal, currency: str, language: str, text: str
) -> None:
    assert format_money(amount, currency, language) == text


def test_percentages_and_changes_carry_one_decimal_and_a_sign() -> None:
    assert format_percent(0.1234) == "12.3%"
    assert format_percent(1) == "100.0%"
    assert format_change(0.1234) == "+12.3%"
    assert format_change(-0.04) == "-4.0%"
    assert format_change(0) == "0.0%"


def test_times_are_shown_in_the_configured_zone() -> None:
    instant = datetime(2026, 1, 1, 17, 5, tzinfo=UTC)  # 01:05 next day in Shanghai
    assert format_datetime(instant, "zh-CN", "Asia/Shanghai") == "2026年1月2日 01:05"
    assert format_datetime(instant, "en", "Asia/Shanghai") == "2 Jan 2026 01:05"
    assert format_datetime(instant, "en", "Europe/London") == "1 Jan 2026 17:05"
    assert format_date(instant, "zh-CN", "Asia/Shanghai") == "2026年1月2日"
    assert format_date(date(2026, 12, 31), "en", "UTC") == "31 Dec 2026"


def test_a_naive_datetime_is_refused_rather_than_guessed() -> None:
    with pytest.raises(ValueError, match="naive"):
        format_datetime(datetime(2026, 1, 1, 12, 0), "en", "UTC")


def test_the_formatter_binds_language_and_zone() -> None:
    fmt = Formatter("zh-CN", "Asia/Shanghai")
    assert fmt.count(123_456_789) == "1.23亿"
    assert fmt.money(Decimal("20000")) == "¥2万"
    assert fmt.datetime(datetime(2026, 1, 1, tzinfo=UTC)) == "2026年1月1日 08:00"
    assert fmt.date(date(2026, 3, 8)) == "2026年3月8日"
    assert fmt.percent(0.5) == "50.0%" and fmt.change(0.5) == "+50.0%"


@given(st.integers(min_value=-(10**15), max_value=10**15))
def test_every_integer_formats_to_a_number_and_at_most_one_unit(value: int) -> None:
    for language, units in (("zh-CN", "万亿"), ("en", "KMB")):
        text = format_count(value, language)
        body = text.lstrip("-").rstrip(units)
        assert sum(text.count(unit) for unit in units) <= 1
        assert float(body.replace(",", "")) >= 0
        assert text.startswith("-") == (value < 0)
