"""The Questionnaire adapted for a renderer that reads standard markup its own way (today: Helsenorge Refero).

Refero reads ``repeats: true`` on a question as "the question may be copied" and gives each repeating check-box list
an "add another" button that adds a second copy of the whole list; its check-box control already collects several
answers in one item. Helsenorge's own form builder (Structor) therefore marks a multi-select check-box list as a
``choice`` with the ``check-box`` item control and no ``repeats``. FHIR and SDC read the same markup as "one answer",
which is why the definition itself (and LHC-Forms, Smart Forms, the HL7 validator) keeps ``repeats: true``.

:func:`for_renderer` gives the form as Refero should receive it: the same url, version, linkIds and options, with
``repeats`` left out on check-box lists only. What Refero sends back — several answers in the one item — is exactly
what the definition's ``repeats: true`` allows, so its responses validate against the published Questionnaire. The
adapted form is a rendering aid, not a definition: publish and validate against the Questionnaire itself.
"""

from __future__ import annotations

import copy
from typing import Any

from fhir_safetyplan.codes import ITEM_CONTROL, ITEM_CONTROL_SYSTEM
from fhir_safetyplan.errors import JSON, ConfigError

#: The renderers with an adapted form.
RENDERERS = ("refero",)


def _is_check_box_list(item: JSON) -> bool:
    if item.get("type") not in ("choice", "open-choice") or item.get("item"):
        return False
    for ext in item.get("extension") or []:
        if ext.get("url") == ITEM_CONTROL:
            codings = (ext.get("valueCodeableConcept") or {}).get("coding") or []
            return any(
                c.get("system") == ITEM_CONTROL_SYSTEM and c.get("code") == "check-box" for c in codings
            )
    return False


def _adapt(items: Any) -> None:
    for item in items or []:
        if _is_check_box_list(item):
            item.pop("repeats", None)
        _adapt(item.get("item"))


def for_renderer(questionnaire: JSON, renderer: str) -> JSON:
    """A copy of ``questionnaire`` adapted for ``renderer`` (one of :data:`RENDERERS`)."""
    if renderer not in RENDERERS:
        raise ConfigError(f"renderer {renderer!r} has no adapted form; use one of {', '.join(RENDERERS)}")
    out = copy.deepcopy(questionnaire)
    _adapt(out.get("item"))
    return out
