"""Reading JSON of unknown shape from a server or a sender: an object or a list of objects, or empty."""

from __future__ import annotations

from typing import Any

from fhir_safetyplan.errors import JSON


def obj(value: Any) -> JSON:
    """``value`` if it is a JSON object, else an empty one."""
    return value if isinstance(value, dict) else {}


def objs(value: Any) -> list[JSON]:
    """The JSON objects in ``value`` if it is a list, else none."""
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def items_by_link(resource: Any, max_depth: int = 50) -> dict[str, tuple[JSON, str | None]]:
    """Every item of a Questionnaire (or QuestionnaireResponse) by linkId, with its parent's linkId (None at the
    root). The first item of a linkId wins; an item without a string linkId, and nesting deeper than
    ``max_depth``, are passed over (a malformed resource is reported by its validation, not here)."""
    out: dict[str, tuple[JSON, str | None]] = {}

    def walk(items: Any, parent: str | None, depth: int) -> None:
        if depth > max_depth:
            return
        for it in objs(items):
            link_id = it.get("linkId")
            if isinstance(link_id, str):
                out.setdefault(link_id, (it, parent))
                walk(it.get("item"), link_id, depth + 1)

    walk(obj(resource).get("item"), None, 0)
    return out
