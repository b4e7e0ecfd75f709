"""The shipped stage models and RFM config, findable by name from any working directory.

``seed000`` and ``seed002`` implement the seed documents' lifecycle models
(``docs/lifecycle.md``), ``rfm`` the default RFM grid. ``examples/lifecycle/``
links to these files so a user copies one from there and edits thresholds.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["PRESETS_DIR", "preset_names", "resolve_model_path"]

PRESETS_DIR = Path(__file__).parent
"""The folder of the shipped YAML documents."""


def preset_names() -> list[str]:
    """The names of the shipped stage models (the RFM config is not one)."""
    return sorted(p.stem for p in PRESETS_DIR.glob("*.yaml") if p.stem != "rfm")


def resolve_model_path(model: str | Path) -> Path:
    """A stage model's file: an existing path as given, else the shipped preset of that name.

    A name that is neither is returned as a path, so reading it reports the file
    as not found under the name the user gave.
    """
    path = Path(model)
    if path.exists() or str(model) not in preset_names():
        return path
    return PRESETS_DIR / f"{model}.yaml"
