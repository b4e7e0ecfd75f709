"""Normalise phones and e-mails before identity matching.

Matching compares strings, so every spelling of one identifier must become one
string: "+86 138-1234-5678", "0086 13812345678", "8613812345678" and
"13812345678" are all ``+8613812345678``; " Li.Ming@Example.COM " is
``li.ming@example.com``. A value that is not a valid identifier becomes ``None``
(null in a Series) rather than an error: whether that quarantines the row is the
caller's decision.

The scalar functions are the definition. The Series functions are the fast
versions for millions of rows: polars string expressions handle the
overwhelmingly common shapes, and only the distinct values those do not cover
go through the scalar function, once each, so both always agree.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable

import phonenumbers
import polars as pl

__all__ = [
    "normalize_email",
    "normalize_emails",
    "normalize_phone",
    "normalize_phones",
]

# --- phones ---------------------------------------------------------------------------

_ASCII_WHITESPACE = " \t\n\r\x0b\x0c"
"""Whitespace inside phone numbers; phonenumbers itself rejects tabs and newlines."""

_FAST_SEPARATORS = _ASCII_WHITESPACE + ".()-"
"""Separators the vectorised fast path strips: ASCII only, so polars and Python agree."""

_SEPARATORS = _FAST_SEPARATORS + "\u00a0\u3000"
"""Separators the scalar strips before parsing (adds no-break and ideographic space)."""

_STRIP_SEPARATORS = str.maketrans(dict.fromkeys(_SEPARATORS))
_FAST_SEPARATOR_CLASS = "[" + _FAST_SEPARATORS + "]"  # "-" last, so it is a literal

_CN_MOBILE_PREFIXED = r"^(?:\+86|0086|86)?(1[3-9][0-9]{9})$"
"""Mainland mobile after separators are gone: with the country code, the "00" IDD, or bare."""

_CN_MOBILE_INTERNATIONAL = r"^\+86(1[3-9][0-9]{9})$"
"""With another default region only the "+86" form means mainland China for certain."""

_KNOWN_REGIONS = frozenset(phonenumbers.SUPPORTED_REGIONS) | {phonenumbers.UNKNOWN_REGION}


def _cn_mobile_patterns() -> tuple[str, str]:
    """phonenumbers' own rule for a valid mainland mobile, so the fast path never disagrees.

    A national number matching both the general and the mobile pattern of the CN
    metadata is exactly what ``is_valid_number`` accepts as a mobile; reading the
    patterns from the installed metadata keeps the fast path right as new number
    ranges are allocated (today 140 and 141 are not, for example).
    """
    metadata = phonenumbers.PhoneMetadata.metadata_for_region("CN")
    general_desc = metadata.general_desc if metadata else None
    mobile_desc = metadata.mobile if metadata else None
    general = general_desc.national_number_pattern if general_desc else None
    mobile = mobile_desc.national_number_pattern if mobile_desc else None
    if general is None or mobile is None:
        raise RuntimeError("phonenumbers has no metadata for mainland China mobiles")
    return f"^(?:{general})$", f"^(?:{mobile})$"


_CN_GENERAL, _CN_MOBILE = _cn_mobile_patterns()


def _check_region(default_region: str) -> None:
    """An unknown region is a configuration mistake, not a bad value: say so loudly."""
    if default_region not in _KNOWN_REGIONS:
        raise ValueError(
            f"unknown default region {default_region!r}: use an ISO 3166-1 alpha-2 code "
            f"that phonenumbers supports (such as 'CN'), or 'ZZ' to accept only '+' numbers"
        )


def normalize_phone(raw: str, default_region: str = "CN") -> str | None:
    """The E.164 form of ``raw`` (``+8613812345678``), or ``None`` when it is not valid.

    Numbers without a ``+`` are read as numbers of ``default_region``. A value with
    any letter is rejected outright: phonenumbers would otherwise read letters as
    a keypad spelling ("138abcd5678" -> +8613822235678) and invent a phone that
    could merge two people. ``ValueError`` only for an unknown ``default_region``.
    """
    _check_region(default_region)
    return _normalize_phone(raw, default_region)


def _normalize_phone(raw: str, default_region: str) -> str | None:
    if any(character.isalpha() for character in raw):
        return None
    cleaned = raw.translate(_STRIP_SEPARATORS)
    if not cleaned:
        return None
    try:
        parsed = phonenumbers.parse(cleaned, default_region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(parsed):
        return None
    formatted: str = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    return formatted


def normalize_phones(values: pl.Series, default_region: str = "CN") -> pl.Series:
    """``normalize_phone`` over a Series of strings, fast enough for millions of rows.

    Mainland mobiles are handled by polars expressions; every other value is
    normalised by :func:`normalize_phone` once per distinct value. Nulls stay null;
    the result is a String Series with the input's name.
    """
    _check_region(default_region)
    raw = _as_strings(values)
    shape = _CN_MOBILE_PREFIXED if default_region == "CN" else _CN_MOBILE_INTERNATIONAL
    national = pl.col("raw").str.replace_all(_FAST_SEPARATOR_CLASS, "").str.extract(shape, 1)
    is_valid_mobile = national.str.contains(_CN_GENERAL) & national.str.contains(_CN_MOBILE)
    frame = pl.DataFrame({"raw": raw}).with_columns(
        fast=pl.when(is_valid_mobile).then(pl.lit("+86") + national)
    )
    rest = frame.filter(pl.col("fast").is_null() & pl.col("raw").is_not_null())
    return _fast_or_each_distinct(
        frame, rest, lambda value: _normalize_phone(value, default_region), values.name
    )


# --- e-mails --------------------------------------------------------------------------

_PY_ASCII_WHITESPACE = "".join(chr(code) for code in range(128) if chr(code).isspace())
"""ASCII characters Python's ``str.strip`` removes (includes \\x1c-\\x1f, unlike Rust)."""

_ASCII_ONLY = r"^[\x00-\x7F]*$"
_NOT_W_AT = "[^@" + _PY_ASCII_WHITESPACE + "]"
_NOT_W_AT_DOT = "[^@." + _PY_ASCII_WHITESPACE + "]"
_ASCII_EMAIL = f"^{_NOT_W_AT}+@{_NOT_W_AT_DOT}+(?:\\.{_NOT_W_AT_DOT}+)+$"
"""The validity rule of :func:`normalize_email`, for ASCII text, as one regex."""


def normalize_email(raw: str) -> str | None:
    """``raw`` trimmed, lower-cased and NFC-normalised, or ``None`` when it is not an e-mail.

    Valid means exactly one ``@``, a non-empty local part, a domain with at least
    one dot and no empty label, and no whitespace anywhere. Dots and ``+tags`` in
    the local part are kept: some providers treat them as distinct mailboxes, and
    removing them could merge two people.
    """
    text = unicodedata.normalize("NFC", raw.strip().lower())
    local, at, domain = text.partition("@")
    if not at or not local or "@" in domain:
        return None
    if any(character.isspace() for character in text):
        return None
    labels = domain.split(".")
    if len(labels) < 2 or not all(labels):
        return None
    return text


def normalize_emails(values: pl.Series) -> pl.Series:
    """``normalize_email`` over a Series: ASCII values in polars, the rest once per distinct."""
    raw = _as_strings(values)
    lowered = pl.col("raw").str.strip_chars(_PY_ASCII_WHITESPACE).str.to_lowercase()
    is_ascii = pl.col("raw").str.contains(_ASCII_ONLY)
    frame = pl.DataFrame({"raw": raw}).with_columns(
        is_ascii=is_ascii,
        fast=pl.when(is_ascii & lowered.str.contains(_ASCII_EMAIL)).then(lowered),
    )
    rest = frame.filter(~pl.col("is_ascii"))
    return _fast_or_each_distinct(frame, rest, normalize_email, values.name)


# --- shared ---------------------------------------------------------------------------


def _fast_or_each_distinct(
    frame: pl.DataFrame, rest: pl.DataFrame, normalize: Callable[[str], str | None], name: str
) -> pl.Series:
    """The vectorised ``fast`` column, else ``normalize`` applied once per distinct ``raw``
    value of ``rest`` (the rows the fast path could not decide)."""
    distinct = rest.get_column("raw").unique(maintain_order=True)
    normalised = pl.Series([normalize(v) for v in distinct.to_list()], dtype=pl.String)
    result = frame.select(
        pl.coalesce(
            pl.col("fast"),
            pl.col("raw").replace_strict(
                distinct, normalised, default=None, return_dtype=pl.String
            ),
        ).alias(name)
    )
    return result.to_series()


def _as_strings(values: pl.Series) -> pl.Series:
    """Strings as they are; an all-null column (dtype Null) as strings; anything else refused.

    Refusing numbers is deliberate: a phone read as an integer has already lost its
    leading zeros or "+", so the reader, not this module, must be fixed.
    """
    if values.dtype == pl.String:
        return values
    if values.dtype == pl.Null:
        return values.cast(pl.String)
    raise TypeError(f"expected a String Series, got {values.dtype} for {values.name!r}")
