"""Reading a stage model's YAML, and saying in words where a validation error is.

Kept apart from the model itself: this is about people editing files. YAML
quietly keeps the last of two equal keys (a second ``rule:`` would silently
win), so duplicates are rejected here. Pydantic locations such as
``('stages', 3, 'rule')`` become ``stages[3] (dormant).rule``: the stage's key
is what the person sees in the file, its index what a tool counts.
"""

from __future__ import annotations

from collections.abc import Collection, Hashable
from pathlib import Path
from typing import Any

import yaml
from pydantic_core import ErrorDetails

from perennial.errors import ConfigError
from perennial.lifecycle.rule_errors import did_you_mean

__all__ = ["describe_validation_error", "read_yaml_document", "stage_key_path"]

_PLAIN_MESSAGES = {
    "missing": "required key is missing",
    "string_too_short": "must not be empty",
    "string_type": "must be text (quote it: YAML reads yes, no, on, off and numbers otherwise)",
    "tuple_type": "must be a list of stages",
    "model_type": "must be a mapping of keys (key, label_en, label_zh, rule, ...)",
    "model_attributes_type": "must be a mapping of keys (key, label_en, label_zh, rule, ...)",
}


class _UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing a mapping that repeats a key."""


def _construct_unique_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: set[Hashable] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)
        if isinstance(key, Hashable):
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark
                )
            seen.add(key)
    return loader.construct_mapping(node)


_UniqueKeyLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_unique_mapping
)


def read_yaml_document(path: Path, *, what: str) -> object:
    """The parsed YAML at ``path``; a missing, unreadable or malformed file is a ConfigError."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(str(path), "", f"{what} file not found") from None
    except UnicodeDecodeError as error:
        raise ConfigError(str(path), "", f"not UTF-8 text ({error.reason})") from None
    loader = _UniqueKeyLoader(text)
    try:
        return loader.get_single_data()
    except yaml.YAMLError as error:
        raise ConfigError(str(path), "", f"not valid YAML: {error}") from None
    finally:
        loader.dispose()


def stage_key_path(index: int, key: object) -> str:
    """``stages[3] (dormant)``, or ``stages[3]`` when the stage has no usable key."""
    label = f" ({key})" if isinstance(key, str) and key else ""
    return f"stages[{index}]{label}"


def describe_validation_error(
    error: ErrorDetails,
    document: dict[str, Any],
    *,
    model_keys: Collection[str],
    stage_keys: Collection[str],
) -> tuple[str, str]:
    """The key path and the reason for one pydantic error on a stage model ``document``.

    A cross-stage check (in a model validator, which has no location) writes its
    own path before the first ``": "`` of its message.
    """
    location = error["loc"]
    reason = error["msg"].removeprefix("Value error, ")
    if not location:
        path, _, rest = reason.partition(": ")
        return (path, rest) if rest else ("", reason)
    path = _key_path(location, document)
    if error["type"] == "extra_forbidden":
        allowed = stage_keys if _in_a_stage(location) else model_keys
        unknown = str(location[-1])
        hint = did_you_mean(unknown, allowed) or f" (allowed: {', '.join(allowed)})"
        return path, f"unknown key{hint}"
    return path, _PLAIN_MESSAGES.get(error["type"], reason)


def _in_a_stage(location: tuple[int | str, ...]) -> bool:
    return len(location) >= 3 and location[0] == "stages" and isinstance(location[1], int)


def _key_path(location: tuple[int | str, ...], document: dict[str, Any]) -> str:
    parts: list[str] = []
    for position, part in enumerate(location):
        if isinstance(part, int):
            stages = document.get("stages") if location[:position] == ("stages",) else None
            stage = stages[part] if isinstance(stages, list) and part < len(stages) else None
            key = stage.get("key") if isinstance(stage, dict) else None
            parts.append(
                stage_key_path(part, key).removeprefix("stages") if stages else f"[{part}]"
            )
        else:
            parts.append(f".{part}" if parts else part)
    return "".join(parts)
