"""Segment definitions as a YAML document: what ``perennial segments load`` reads.

A document is a list of segments (name, expression, optional title, description,
live). It is validated whole: a wrong key or type is an error naming its path
(``segments[3].expression``), and the service then checks every expression
before saving any, so a file with one mistake changes nothing.
"""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from perennial.errors import ConfigError

__all__ = ["PRESETS_FILE", "SegmentDocument", "SegmentSpec", "load_segment_document"]

PRESETS_FILE = Path(__file__).parent / "presets.yaml"
"""The shipped presets (``examples/segments/presets.yaml`` links here)."""


class SegmentSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(max_length=100)
    expression: str = Field(min_length=1, max_length=8000)
    title: str = Field(default="", max_length=200)
    description: str = Field(default="", max_length=4000)
    live: bool = True


class SegmentDocument(BaseModel):
    model_config = ConfigDict(extra="forbid")
    segments: list[SegmentSpec] = Field(min_length=1)


def load_segment_document(path: Path) -> SegmentDocument:
    """Read and validate ``path``; raises :class:`ConfigError` naming the key."""
    source = str(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise ConfigError(source, "", f"cannot read the file: {error.strerror}") from None
    except yaml.YAMLError as error:
        raise ConfigError(source, "", f"not valid YAML: {error}") from None
    try:
        document = SegmentDocument.model_validate(raw)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(
            f"[{part}]" if isinstance(part, int) else str(part) for part in first["loc"]
        ).replace(".[", "[")
        raise ConfigError(source, where, first["msg"]) from None
    names = [spec.name for spec in document.segments]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ConfigError(source, "segments", f"repeated names: {', '.join(repeated)}")
    return document
