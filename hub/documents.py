"""Helpers for customer documents: dotted paths and JSON merge patch."""

from __future__ import annotations

import copy
from typing import Any

_MISSING = object()


def get_path(document: dict[str, Any], path: str, default: Any = None) -> Any:
    """Return the value at a dotted path, or `default` when any step is absent."""
    node: Any = document
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return default
        node = node[part]
    return node


def set_path(document: dict[str, Any], path: str, value: Any) -> None:
    """Set the value at a dotted path, creating objects on the way."""
    *parents, leaf = path.split(".")
    node = document
    for part in parents:
        child = node.get(part)
        if not isinstance(child, dict):
            child = node[part] = {}
        node = child
    node[leaf] = value


def merge_patch(target: Any, patch: Any) -> Any:
    """Apply an RFC 7396 JSON merge patch and return the result.

    Objects merge key by key at any depth, null removes a key, and anything
    else (lists included) replaces the target value whole.
    """
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key, _MISSING), value)
    return result
