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
