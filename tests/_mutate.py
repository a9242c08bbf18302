"""Shared by property tests: every (container, key) of a JSON document, to replace one value at random."""

from __future__ import annotations

from typing import Any


def slots(doc: Any) -> list[tuple[Any, Any]]:
    """Every place in ``doc`` (a dict key or a list index, with its container) that holds a value."""
    found: list[tuple[Any, Any]] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                found.append((node, k))
                walk(v)
        elif isinstance(node, list):
            for i, v in enumerate(node):
                found.append((node, i))
                walk(v)

    walk(doc)
    return found
