"""Exceptions that carry where a problem is and why, and the exit code the CLI uses.

Every error a user can cause derives from :class:`PerennialError`; the CLI and
the API turn it into a message and an exit code or status, never a traceback.
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "ExitCode",
    "IngestError",
    "PerennialError",
    "StoreError",
]

from enum import IntEnum


class ExitCode(IntEnum):
    """Process exit codes; scripts may rely on them."""

    OK = 0
    FAILURE = 1
    USAGE = 2
    INVALID_INPUT = 3
    CONFIG = 4
    STORE = 5
    ROWS_QUARANTINED = 10


class PerennialError(Exception):
    """Base of every expected error: ``str(err)`` is the whole message for a user."""

    exit_code: ExitCode = ExitCode.FAILURE


class ConfigError(PerennialError):
    """A configuration document (mapping, settings) is invalid; nothing of it was applied."""

    exit_code = ExitCode.CONFIG

    def __init__(self, source: str, key_path: str, reason: str) -> None:
        self.source = source
        self.key_path = key_path
        self.reason = reason
        where = f"{source}: {key_path}" if key_path else source
        super().__init__(f"{where}: {reason}")


class IngestError(PerennialError):
    """A whole input cannot be read (wrong encoding, missing column): the batch is rejected."""

    exit_code = ExitCode.INVALID_INPUT

    def __init__(
        self, source: str, reason: str, *, line: int | None = None, column: str | None = None
    ) -> None:
        self.source = source
        self.line = line
        self.column = column
        self.reason = reason
        where = source
        if line is not None:
            where += f", line {line}"
        if column is not None:
            where += f", column {column!r}"
        super().__init__(f"{where}: {reason}")


class StoreError(PerennialError):
    """The store is missing, locked or damaged."""

    exit_code = ExitCode.STORE
