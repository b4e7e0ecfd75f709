"""Identifier normalisation: one spelling per phone and per e-mail, Series == scalar."""

from __future__ import annotations

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from perennial.ingest.identifiers import (
    normalize_email,
    normalize_emails,
    normalize_phone,
    normalize_phones,
)

LI_MING = "+8613812345678"
FULLWIDTH_DIGITS = "".join(chr(0xFF10 + digit) for digit in range(10))  # as typed by CJK IMEs


# --- phones: scalar --------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        "+86 138-1234-5678",
        "0086 13812345678",
        "8613812345678",
        "13812345678",
        "+8613812345678",
        "86 138 1234 5678",
        "(+86) 138.1234.5678",
        "138 1234 5678",
        " 13812345678\n",
        "138\t1234\t5678",
        "138\u00a01234\u30005678",
        "+86 (0) 138 1234 5678",
        "013812345678",
        "13812345678".translate(str.maketrans("0123456789", FULLWIDTH_DIGITS)),
    ],
)
def test_every_common_spelling_of_a_mainland_mobile_is_one_e164_number(raw: str) -> None:
    assert normalize_phone(raw) == LI_MING


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("010-12345678", "+861012345678"),
        ("(021) 6123 4567", "+862161234567"),
        ("0755-8888 8888", "+8675588888888"),
        ("+86 10 1234 5678", "+861012345678"),
        ("0086-10-12345678", "+861012345678"),
    ],
)
def test_mainland_landlines_with_an_area_code_are_normalised(raw: str, expected: str) -> None:
    assert normalize_phone(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("+1 650 253 0000", "+16502530000"),
        ("+44 20 7946 0958", "+442079460958"),
        ("+852 2123 4567", "+85221234567"),
        ("+81 3-1234-5678", "+81312345678"),
    ],
)
def test_numbers_of_other_countries_with_a_plus_are_normalised(raw: str, expected: str) -> None:
    assert normalize_phone(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "   ",
        "12345",
        "1381234567",
        "138123456789",
        "abc",
        "138abcd5678",
        "13812345678abc",
        "Tel: 13812345678",
        "6502530000",
        "14012345678",
        "+86-+86-13812345678",
    ],
    ids=[
        "empty",
        "blank",
        "too short",
        "ten digits",
        "twelve digits",
        "letters",
        "letters read as a keypad spelling",
        "trailing letters",
        "a label",
        "a foreign number without plus",
        "an unallocated mobile range",
        "two country codes",
    ],
)
def test_values_that_are_not_valid_phones_are_none(raw: str) -> None:
    assert normalize_phone(raw) is None


def test_numbers_without_plus_are_read_in_the_default_region() -> None:
    assert normalize_phone("(650) 253-0000", default_region="US") == "+16502530000"
    assert normalize_phone("020 7946 0958", default_region="GB") == "+442079460958"
    assert normalize_phone("13812345678", default_region="ZZ") is None
    assert normalize_phone("+86 138 1234 5678", default_region="ZZ") == LI_MING


def test_an_unknown_default_region_is_a_configuration_error_not_a_bad_value() -> None:
    with pytest.raises(ValueError, match="unknown default region 'China'"):
        normalize_phone("13812345678", default_region="China")
    with pytest.raises(ValueError, match="unknown default region"):
        normalize_phones(pl.Series(["13812345678"]), default_region="cn")


# --- phones: Series ---------------------------------------------------------------------


def test_phone_series_keep_nulls_name_and_give_strings() -> None:
    values = pl.Series("mobile", ["+86 138-1234-5678", None, "junk", "010-12345678", None])
    result = normalize_phones(values)
    assert result.name == "mobile"
    assert result.dtype == pl.String
    assert result.to_list() == [LI_MING, None, None, "+861012345678", None]


def test_an_all_null_column_is_all_null_strings() -> None:
    result = normalize_phones(pl.Series("phone", [None, None]))
    assert result.dtype == pl.String
    assert result.to_list() == [None, None]


def test_an_empty_series_gives_an_empty_string_series() -> None:
    result = normalize_phones(pl.Series("phone", [], dtype=pl.String))
    assert result.dtype == pl.String
    assert result.len() == 0


def test_a_phone_column_read_as_numbers_is_refused_since_it_lost_its_plus_or_zeros() -> None:
    with pytest.raises(TypeError, match="expected a String Series"):
        normalize_phones(pl.Series("phone", [13812345678]))


def test_the_polars_fast_path_agrees_with_phonenumbers_on_every_mobile_prefix() -> None:
    # Validity depends on at most five leading digits, so this covers every range
    # the fast path may accept or refuse, in each of its four shapes.
    nationals = [f"{prefix}9876543" for prefix in range(1000, 2000)]
    nationals += [f"{prefix}987654" for prefix in (*range(16100, 16200), *range(17400, 17500))]
    values = [shape + n for n in nationals for shape in ("", "+86", "0086", "86")]
    expected = [normalize_phone(value) for value in values]
    assert normalize_phones(pl.Series(values)).to_list() == expected
    assert "+8613899876543" in expected  # accepted ranges are covered
    assert None in expected  # and refused ones (140, 141, ...)


_PLAIN_SEPARATORS = [" ", "-", ".", "(", ")"]
_SEPARATORS = [*_PLAIN_SEPARATORS, "\t", "\n", "\u00a0", "\u3000", "/", "\uff0d", "\uff08", "+"]
_MOBILE = st.builds(
    lambda second, rest: f"1{second}{rest}",
    st.sampled_from("0123456789"),
    st.text("0123456789", min_size=9, max_size=9),
)
_LANDLINE = st.builds(
    lambda area, rest: f"0{area}{rest}",
    st.sampled_from(["10", "20", "21", "22", "28", "311", "371", "512", "571", "755", "769"]),
    st.text("0123456789", min_size=7, max_size=8),
)
_FOREIGN = st.builds(
    lambda plus, code, rest: f"{plus}{code}{rest}",
    st.sampled_from(["+", "", "00"]),
    st.sampled_from(["1", "44", "33", "49", "81", "82", "852", "853", "886", "65", "61"]),
    st.text("0123456789", min_size=6, max_size=11),
)
_PREFIXES = ["", "+86", "0086", "86", "+86 ", "0", "+86 (0)", "(+86)", "+ 86", "+", "8686", "086"]
_JUNK = st.text(st.sampled_from([*"0123456789+-(). abcxX@#*", "\t", "\u00a0", "\uff11", "\uff18"]))


@st.composite
def messy_phones(draw: st.DrawFn) -> str:
    """A valid or nearly valid number with the noise real exports carry."""
    kind = draw(st.sampled_from(["mobile", "mobile", "mobile", "landline", "foreign", "junk"]))
    if kind == "junk":
        return draw(_JUNK)
    core = draw({"mobile": _MOBILE, "landline": _LANDLINE, "foreign": _FOREIGN}[kind])
    if kind == "mobile":
        core = draw(st.sampled_from(_PREFIXES)) + core
    if draw(st.booleans()):
        separators = draw(st.sampled_from([_PLAIN_SEPARATORS, _SEPARATORS]))
        noise = st.sampled_from(separators) | st.just("")
        gaps = draw(st.lists(noise, min_size=len(core) + 1, max_size=len(core) + 1))
        core = "".join(gap + character for gap, character in zip(gaps, core, strict=False))
        core += gaps[-1]
    if draw(st.integers(0, 9)) == 0:
        core = core.translate(str.maketrans("0123456789", FULLWIDTH_DIGITS))
    return core


@settings(max_examples=300, deadline=None)
@given(
    values=st.lists(messy_phones() | st.none(), max_size=25),
    region=st.sampled_from(["CN", "CN", "CN", "US", "GB", "HK", "ZZ"]),
)
def test_the_series_version_agrees_with_the_scalar_on_any_input(
    values: list[str | None], region: str
) -> None:
    expected = [None if v is None else normalize_phone(v, region) for v in values]
    result = normalize_phones(pl.Series("phone", values, dtype=pl.String), region)
    assert result.to_list() == expected


@settings(max_examples=200, deadline=None)
@given(values=st.lists(messy_phones(), max_size=10))
def test_a_normalised_phone_normalises_to_itself(values: list[str]) -> None:
    for value in values:
        once = normalize_phone(value)
        if once is not None:
            assert normalize_phone(once) == once
            assert normalize_phone(once, default_region="ZZ") == once


# --- e-mails ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (" Li.Ming@Example.COM ", "li.ming@example.com"),
        ("li.ming+shop@example.com", "li.ming+shop@example.com"),
        ("LIMING@MAIL.EXAMPLE.CN\n", "liming@mail.example.cn"),
        ("\u3000ZHANG@qq.com\u00a0", "zhang@qq.com"),
        ("E\u0301lodie@Example.fr", "\u00e9lodie@example.fr"),
        ("用户@例子.中国", "用户@例子.中国"),
    ],
)
def test_emails_are_trimmed_lower_cased_and_composed(raw: str, expected: str) -> None:
    assert normalize_email(raw) == expected


def test_dots_and_plus_tags_are_kept_so_distinct_mailboxes_stay_distinct() -> None:
    assert normalize_email("li.ming@example.com") != normalize_email("liming@example.com")
    assert normalize_email("liming+a@example.com") != normalize_email("liming@example.com")


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "   ",
        "liming",
        "liming@example",
        "@example.com",
        "li@ming@example.com",
        "li ming@example.com",
        "liming@exa mple.com",
        "liming@.com",
        "liming@example.",
        "liming@example..com",
        "liming\uff20example.com",
    ],
)
def test_values_that_are_not_emails_are_none(raw: str) -> None:
    assert normalize_email(raw) is None


def test_email_series_keep_nulls_name_and_give_strings() -> None:
    values = pl.Series("mail", [" A@B.CO ", None, "nope", "Ä@B.CO", None])
    result = normalize_emails(values)
    assert result.name == "mail"
    assert result.dtype == pl.String
    assert result.to_list() == ["a@b.co", None, None, "ä@b.co", None]
    assert normalize_emails(pl.Series("mail", [None])).to_list() == [None]


_EMAIL_ALPHABET = st.sampled_from(
    [
        *"aZ09.+_-@@@.. ",
        "\t",
        "\x1c",
        "\u00a0",
        "\u3000",
        "Ä",
        "İ",
        "Σ",
        "ß",
        "\u0301",
        "\uff20",
        "\uff45",
    ]
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(_EMAIL_ALPHABET, max_size=20) | st.none(), max_size=25))
def test_the_email_series_version_agrees_with_the_scalar_on_any_input(
    values: list[str | None],
) -> None:
    expected = [None if v is None else normalize_email(v) for v in values]
    assert normalize_emails(pl.Series("email", values, dtype=pl.String)).to_list() == expected


@settings(max_examples=300, deadline=None)
@given(st.text(_EMAIL_ALPHABET, max_size=20))
def test_a_normalised_email_normalises_to_itself(raw: str) -> None:
    once = normalize_email(raw)
    if once is not None:
        assert normalize_email(once) == once
