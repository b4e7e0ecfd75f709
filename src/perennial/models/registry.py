"""Trained models on disk: versioned, complete or invisible, promoted by name.

Layout under ``settings.home / "models"``: one folder per version, named
``<kind>-<NNNN>`` (``churn-0003``), holding the artifact's files (for churn: the
LightGBM model text and the calibrator JSON) and ``metadata.json``, which lists
every file with its size and SHA-256 besides what the model says of itself
(training window, cut-offs, features, metrics, data checks), ``created_at`` and
``status`` (``candidate`` or ``promoted``).

A version is written into a hidden temporary folder and renamed into place,
so it appears whole or not at all; a folder whose files do not match its
metadata (a crash, a hand edit, a disk fault) is skipped with a warning when
listing and refused when loading. MLflow's registry offers the same stages but
needs a tracking server; a folder per version is all the embedded default needs.
:func:`save_churn_model` and :func:`load_churn_model` define the churn artifact
(``model.txt``, LightGBM's own text format, and ``calibrator.json``); other
kinds store their own files through :meth:`ModelRegistry.save`.
"""

from __future__ import annotations

import builtins
import hashlib
import os
import re
import shutil
import uuid
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from perennial.config import Settings
from perennial.errors import ExitCode, PerennialError

if TYPE_CHECKING:
    from perennial.models.churn_model import ChurnModel

__all__ = [
    "CHURN_KIND",
    "METADATA_FILE",
    "IncompleteModelError",
    "IncompleteModelWarning",
    "ModelRegistry",
    "ModelStatus",
    "ModelVersion",
    "UnknownModelError",
    "load_churn_model",
    "save_churn_model",
]

METADATA_FILE = "metadata.json"
CHURN_KIND = "churn"
"""The kind of churn models: versions ``churn-0001``, ``churn-0002``, ..."""
_MODEL_FILE = "model.txt"
_CALIBRATOR_FILE = "calibrator.json"
_VERSION = re.compile(r"^(?P<kind>[a-z][a-z0-9_]*)-(?P<number>\d{4,})$")
_KIND = re.compile(r"^[a-z][a-z0-9_]*$")
_INCOMING = ".incoming-"


class ModelStatus(StrEnum):
    CANDIDATE = "candidate"
    PROMOTED = "promoted"


class UnknownModelError(PerennialError):
    """No such version in the registry (or no promoted version of a kind)."""

    exit_code = ExitCode.INVALID_INPUT


class IncompleteModelError(PerennialError):
    """A version's files are missing or do not match its metadata: it is never loaded."""

    exit_code = ExitCode.STORE


class IncompleteModelWarning(UserWarning):
    """A folder in the registry that is not a complete version was skipped."""


@dataclass(frozen=True)
class ModelVersion:
    """One complete, verified version: its folder and its metadata."""

    version: str
    kind: str
    path: Path
    metadata: dict[str, Any]

    @property
    def status(self) -> ModelStatus:
        return ModelStatus(self.metadata["status"])

    @property
    def created_at(self) -> datetime:
        return datetime.fromisoformat(self.metadata["created_at"])

    def read(self, name: str) -> bytes:
        """The bytes of artifact file ``name``, checked against the metadata again."""
        entry = self.metadata["files"].get(name)
        if entry is None:
            raise IncompleteModelError(f"{self.version}: the artifact has no file {name!r}")
        data = (self.path / name).read_bytes()
        if hashlib.sha256(data).hexdigest() != entry["sha256"]:
            raise IncompleteModelError(f"{self.version}: {name} changed since it was written")
        return data


class ModelRegistry:
    """The versions under ``root``; writes are atomic, reads verify every file."""

    def __init__(self, root: Path) -> None:
        self.root = root

    @classmethod
    def for_settings(cls, settings: Settings) -> ModelRegistry:
        return cls(settings.home / "models")

    def save(
        self, kind: str, files: Mapping[str, bytes], metadata: Mapping[str, Any]
    ) -> ModelVersion:
        """Store a new ``candidate`` version of ``kind``; returns it as read back."""
        if not _KIND.match(kind):
            raise ValueError(f"model kind {kind!r}: lower-case letters, digits and _")
        for name in files:
            if name == METADATA_FILE or "/" in name or name.startswith("."):
                raise ValueError(f"artifact file name {name!r} is not allowed")
        self.root.mkdir(parents=True, exist_ok=True)
        incoming = self.root / f"{_INCOMING}{uuid.uuid4().hex}"
        incoming.mkdir()
        try:
            for name, data in files.items():
                _write_synced(incoming / name, data)
            manifest = {
                **metadata,
                "kind": kind,
                "status": ModelStatus.CANDIDATE.value,
                "created_at": datetime.now(UTC).isoformat(),
                "files": {
                    name: {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
                    for name, data in files.items()
                },
            }
            return self._publish(incoming, kind, manifest)
        finally:
            if incoming.exists():
                shutil.rmtree(incoming, ignore_errors=True)

    def list(self, kind: str | None = None) -> builtins.list[ModelVersion]:
        """Complete versions, oldest first; incomplete folders are skipped with a warning."""
        versions: builtins.list[ModelVersion] = []
        if not self.root.is_dir():
            return versions
        for folder in sorted(self.root.iterdir(), key=_folder_order):
            if not folder.is_dir():
                continue
            try:
                found = _verified(folder)
            except IncompleteModelError as error:
                warnings.warn(f"skipped: {error}", IncompleteModelWarning, stacklevel=2)
                continue
            if kind is None or found.kind == kind:
                versions.append(found)
        return versions

    def get(self, version: str) -> ModelVersion:
        """The version named ``version``, verified; unknown or incomplete raises."""
        folder = self.root / version
        if not _VERSION.match(version) or not folder.is_dir():
            known = ", ".join(v.version for v in self.list()) or "none"
            raise UnknownModelError(f"no model version {version!r} (known: {known})")
        return _verified(folder)

    def promote(self, version: str) -> ModelVersion:
        """Make ``version`` the promoted one of its kind; the previous one becomes a candidate."""
        chosen = self.get(version)
        now = datetime.now(UTC).isoformat()
        promoted = _rewrite_metadata(
            chosen, {"status": ModelStatus.PROMOTED.value, "promoted_at": now}
        )
        for other in self.list(chosen.kind):
            if other.version != version and other.status == ModelStatus.PROMOTED:
                _rewrite_metadata(other, {"status": ModelStatus.CANDIDATE.value})
        return promoted

    def latest_promoted(self, kind: str) -> ModelVersion | None:
        """The promoted version of ``kind`` (the latest promoted, should a crash leave two)."""
        promoted = [v for v in self.list(kind) if v.status == ModelStatus.PROMOTED]
        if not promoted:
            return None
        return max(promoted, key=lambda v: (v.metadata.get("promoted_at", ""), v.version))

    def _publish(self, incoming: Path, kind: str, manifest: dict[str, Any]) -> ModelVersion:
        """Rename ``incoming`` to the next free ``<kind>-NNNN``; a racing writer gets the next."""
        number = self._next_number(kind)
        while True:
            version = f"{kind}-{number:04d}"
            manifest["version"] = version
            _write_synced(incoming / METADATA_FILE, _dumps(manifest))
            try:
                os.rename(incoming, self.root / version)
            except OSError:
                if not (self.root / version).exists():
                    raise
                number += 1
                continue
            return _verified(self.root / version)

    def _next_number(self, kind: str) -> int:
        numbers = [
            int(match["number"])
            for folder in self.root.iterdir()
            if (match := _VERSION.match(folder.name)) and match["kind"] == kind
        ]
        return max(numbers, default=0) + 1


def _verified(folder: Path) -> ModelVersion:
    """The version in ``folder`` if its metadata names it and every file matches."""
    metadata = _manifest(folder)
    name = folder.name
    for file_name, entry in metadata["files"].items():
        path = folder / file_name
        if not path.is_file():
            raise IncompleteModelError(f"{name}: {file_name} is missing")
        size = path.stat().st_size
        if size != entry["bytes"]:
            raise IncompleteModelError(
                f"{name}: {file_name} has {size} bytes, metadata says {entry['bytes']}"
            )
        if hashlib.sha256(path.read_bytes()).hexdigest() != entry["sha256"]:
            raise IncompleteModelError(f"{name}: {file_name} does not match its checksum")
    return ModelVersion(name, str(metadata["kind"]), folder, metadata)


def _manifest(folder: Path) -> dict[str, Any]:
    """``metadata.json`` of a version folder, if it is one and describes it."""
    name = folder.name
    if name.startswith(_INCOMING):
        raise IncompleteModelError(f"{folder}: an unfinished write (or one a crash left)")
    if not _VERSION.match(name):
        raise IncompleteModelError(f"{folder}: not a model version folder (<kind>-NNNN)")
    try:
        metadata = orjson.loads((folder / METADATA_FILE).read_bytes())
    except FileNotFoundError:
        raise IncompleteModelError(f"{name}: no {METADATA_FILE}") from None
    except orjson.JSONDecodeError as error:
        raise IncompleteModelError(f"{name}: {METADATA_FILE} is not JSON ({error})") from None
    if not isinstance(metadata, dict) or metadata.get("version") != name:
        raise IncompleteModelError(f"{name}: {METADATA_FILE} does not describe this version")
    files = metadata.get("files")
    if not isinstance(files, dict) or not files or metadata.get("status") not in set(ModelStatus):
        raise IncompleteModelError(f"{name}: {METADATA_FILE} lacks its file list or status")
    return metadata


def _rewrite_metadata(version: ModelVersion, changes: Mapping[str, Any]) -> ModelVersion:
    """Replace ``metadata.json`` atomically (write beside it, then rename over it)."""
    metadata = {**version.metadata, **changes}
    temporary = version.path / f".{METADATA_FILE}.{uuid.uuid4().hex}"
    _write_synced(temporary, _dumps(metadata))
    os.replace(temporary, version.path / METADATA_FILE)
    return ModelVersion(version.version, version.kind, version.path, metadata)


def _write_synced(path: Path, data: bytes) -> None:
    with path.open("wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def _dumps(metadata: Mapping[str, Any]) -> bytes:
    return orjson.dumps(dict(metadata), option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS)


def _folder_order(folder: Path) -> tuple[str, int, str]:
    match = _VERSION.match(folder.name)
    if match is None:
        return ("~", 0, folder.name)
    return (match["kind"], int(match["number"]), folder.name)


def save_churn_model(registry: ModelRegistry, model: ChurnModel) -> ModelVersion:
    """Store ``model`` as a new candidate version: LightGBM text, calibrator JSON, metadata."""
    files = {
        _MODEL_FILE: model.booster.model_to_string().encode("utf-8"),
        _CALIBRATOR_FILE: model.calibrator.to_json(),
    }
    return registry.save(CHURN_KIND, files, model.metadata)


def load_churn_model(
    registry: ModelRegistry, version: str | None = None
) -> tuple[ChurnModel, ModelVersion]:
    """A stored churn model by version, or the promoted one; incomplete versions raise.

    LightGBM and scikit-learn are imported here, not with the module, so listing and
    promoting (and every CLI command) start without them.
    """
    import lightgbm as lgb

    from perennial.models.churn_config import ChurnConfig
    from perennial.models.churn_model import Calibrator, ChurnModel

    if version is None:
        stored = registry.latest_promoted(CHURN_KIND)
        if stored is None:
            raise UnknownModelError(
                "no promoted churn model: train one (`perennial models train`) and promote it"
            )
    else:
        stored = registry.get(version)
        if stored.kind != CHURN_KIND:
            raise UnknownModelError(f"{version} is a {stored.kind} model, not a churn model")
    metadata = stored.metadata
    booster = lgb.Booster(model_str=stored.read(_MODEL_FILE).decode("utf-8"))
    model = ChurnModel(
        booster,
        Calibrator.from_json(stored.read(_CALIBRATOR_FILE)),
        tuple(metadata["features"]),
        ChurnConfig.model_validate(metadata["config"]),
        {str(k): float(v) for k, v in metadata["references"].items()},
        metadata,
    )
    return model, stored
