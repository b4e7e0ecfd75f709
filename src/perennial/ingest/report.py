"""What one ingest batch did, in numbers a person can check."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["IngestReport"]


@dataclass(frozen=True)
class IngestReport:
    """Counts of one batch: every row read is accepted, quarantined, a skipped duplicate or
    (under ``latest_wins``) superseded by a later version in the same file."""

    batch_id: str
    source_file: str
    table: str
    rows_read: int
    accepted: int
    quarantined: int
    duplicates_in_batch: int
    already_stored: int
    superseded_in_batch: int
    replaced: int
    quarantine_reasons: dict[str, int] = field(default_factory=dict)
    identity_merges: int = 0
    identity_conflicts: int = 0
    seconds: float = 0.0

    @property
    def duplicates_skipped(self) -> int:
        return self.duplicates_in_batch + self.already_stored

    @property
    def balanced(self) -> bool:
        """Nothing lost: every row read is accounted for."""
        return self.rows_read == (
            self.accepted + self.quarantined + self.duplicates_skipped + self.superseded_in_batch
        )
