"""The form's required sections, enforced here rather than by ``required`` on the group items.

SDC lets a ``required`` group be satisfied by any answered question inside it, but LHC-Forms checks a required group
like a question and reports it as "requires a value" even when every question in it is answered (its own
``checkValidity`` fails on a complete response). So the Questionnaire puts ``required`` on the questions only, and
this module keeps the rule the groups carried: each section in :data:`REQUIRED_GROUPS` must be present, with at least
one answer in it, wherever its parent item is present and the section itself is enabled (the checklist inside an
answered plan; the conversation, electronic access, safe contact and dependants sections in every response; the plan
and the duty to avert when their enableWhen holds). Under SDC an absent optional group would otherwise skip its
required questions.

LinkIds are quoted in double quotes, as the generic validator quotes them (the preview page ties a message to the
first quoted linkId). A Questionnaire that still marks such a group ``required`` is left to the generic validator, so
one missing section is reported once. The published earlier versions (content 1.0.0, frozen as published: required
groups marked on the groups, an optional plan and safe contact) keep their own rules: the sections here are those of
the current content.
"""

from __future__ import annotations

from typing import Any

from fhir_safetyplan.errors import JSON, issue
from fhir_safetyplan.form_ids import REQUIRED_GROUPS
from fhir_safetyplan.jsonshape import items_by_link
from fhir_safetyplan.validation.response import enabled_in
from fhir_safetyplan.versions import FROZEN_VERSIONS

_MAX_DEPTH = 50


def _occurrences(response: JSON, link_id: str | None) -> list[tuple[JSON, str]]:
    """The response nodes holding ``link_id`` (the response itself for the root), with their FHIRPath."""
    if link_id is None:
        return [(response, "QuestionnaireResponse")]
    found: list[tuple[JSON, str]] = []

    def walk(items: Any, path: str, depth: int) -> None:
        if not isinstance(items, list) or depth > _MAX_DEPTH:
            return
        for i, it in enumerate(items):
            if not isinstance(it, dict):
                continue
            here = f"{path}.item[{i}]"
            if it.get("linkId") == link_id:
                found.append((it, here))
            walk(it.get("item"), here, depth + 1)
            for j, answer in enumerate(it.get("answer") or []):
                if isinstance(answer, dict):
                    walk(answer.get("item"), f"{here}.answer[{j}]", depth + 1)

    walk(response.get("item"), "QuestionnaireResponse", 0)
    return found


def _answered(node: Any, depth: int = 0) -> bool:
    """Whether a response item (or one nested in it) has an answer with a value."""
    if not isinstance(node, dict) or depth > _MAX_DEPTH:
        return False
    for answer in node.get("answer") or []:
        if isinstance(answer, dict) and any(k.startswith("value") for k in answer):
            return True
    return any(_answered(child, depth + 1) for child in node.get("item") or [])


def section_issues(response: JSON, questionnaire: JSON) -> list[JSON]:
    """An error for each required section that is missing or has nothing answered in it."""
    if questionnaire.get("version") in FROZEN_VERSIONS:
        return []  # published as it is: its group items carry ``required`` (the generic validator's)
    q_items = items_by_link(questionnaire, _MAX_DEPTH)
    issues: list[JSON] = []
    for link_id in REQUIRED_GROUPS:
        if link_id not in q_items:
            continue
        item, parent = q_items[link_id]
        if item.get("required") is True:
            continue  # the generic validator reports it
        if not enabled_in(response, questionnaire, link_id):
            continue  # a section not asked in this conversation (e.g. the plan after a refusal)
        # The questions always asked in the section (no enableWhen of their own), at most three named.
        always = [
            f'"{c["linkId"]}"'
            for c in item.get("item") or []
            if isinstance(c, dict) and c.get("required") is True and "enableWhen" not in c and "linkId" in c
        ]
        asked = ", ".join(always[:3]) + (", …" if len(always) > 3 else "")
        for holder, path in _occurrences(response, parent):
            present = [
                c for c in holder.get("item") or [] if isinstance(c, dict) and c.get("linkId") == link_id
            ]
            if not any(_answered(c) for c in present):
                where = "in the response" if parent is None else f'in item "{parent}"'
                issues.append(
                    issue(
                        "error",
                        "required",
                        f'Section "{link_id}" {where} has no answered questions; it is required: answer '
                        + (f"its required questions ({asked})" if asked else "its questions"),
                        path,
                    )
                )
    return issues
