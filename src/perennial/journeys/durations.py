"""Durations as people write them in journey files: ``30m``, ``24h``, ``7d``, ``1d12h``.

ISO 8601 (``P1DT12H``) is exact but unreadable to the operations teams who write
journeys; a compact unit string is what Braze and Klaviyo users type. The parser
is strict: units in descending order, each once, nothing else.
"""

from __future__ import annotations

import re
from datetime import timedelta

__all__ = ["MAX_DURATION", "format_duration", "parse_duration"]

MAX_DURATION = timedelta(days=3660)
"""Ten years: longer waits are a typo, not a plan."""

_PATTERN = re.compile(r"(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?")
_UNITS = (("w", 604_800), ("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1))


def parse_duration(text: str) -> timedelta:
    """``'1d12h'`` -> 36 hours; raises :class:`ValueError` saying what is accepted."""
    cleaned = text.strip().lower().replace(" ", "")
    match = _PATTERN.fullmatch(cleaned)
    if not cleaned or match is None or not any(match.groups()):
        raise ValueError(
            f"{text!r} is not a duration: write a number and a unit, largest first, "
            "e.g. 30m, 24h, 7d, 1d12h (units w, d, h, m, s)"
        )
    seconds = sum(
        int(amount) * unit
        for amount, (_, unit) in zip(match.groups(), _UNITS, strict=True)
        if amount
    )
    if seconds <= 0:
        raise ValueError(f"{text!r} is not a duration: it must be longer than zero")
    duration = timedelta(seconds=seconds)
    if duration > MAX_DURATION:
        raise ValueError(f"{text!r} is longer than {MAX_DURATION.days} days")
    return duration


def format_duration(duration: timedelta) -> str:
    """The shortest string :func:`parse_duration` reads back as ``duration``."""
    remaining = int(duration.total_seconds())
    parts: list[str] = []
    for name, unit in _UNITS[1:]:
        amount, remaining = divmod(remaining, unit)
        if amount:
            parts.append(f"{amount}{name}")
    return "".join(parts) or "0s"
