"""What the form page shows after "check": the answers' problems by question, or what they would become.

The form page (``safetyplan preview``, and ``/form`` of ``safetyplan serve``) sends the QuestionnaireResponse
the renderer made; this module runs the same pipeline as every other entry point and answers with

- the problems, each tied to the question (linkId) it is about, so the page can show it next to that field
  (with the OperationOutcome, and HTTP 422 or 400);
- or the journal note's text, the CarePlan's activities and the safe-contact Flag's text.

Nothing here delivers anything, and nothing is logged beyond counts.
"""

from __future__ import annotations

import base64
import re
import tomllib
from functools import cache
from importlib import resources
from typing import Any

from fhir_safetyplan import fhir_r4
from fhir_safetyplan.errors import JSON, InputError

#: ``QuestionnaireResponse.item[0].item[3].answer[0]…`` → the indices of the item path
_ITEM_STEP = re.compile(r"\.item\[(\d+)\]")
#: a name in double quotes, as the validator quotes linkIds
_QUOTED = re.compile(r'"([^"\s]+)"')


@cache
def page_texts() -> JSON:
    """The page's own words (buttons, headings) in nb/nn/en, from ``data/form_page.toml``."""
    text = resources.files("fhir_safetyplan").joinpath("data/form_page.toml").read_text(encoding="utf-8")
    return tomllib.loads(text)


def linkid_at(response: Any, expression: str) -> str | None:
    """The linkId of the deepest item a FHIRPath like ``QuestionnaireResponse.item[0].item[2]…`` points at."""
    if not expression.startswith("QuestionnaireResponse.") or not isinstance(response, dict):
        return None
    node: Any = response
    found: str | None = None
    for step in _ITEM_STEP.finditer(expression):
        items = node.get("item") if isinstance(node, dict) else None
        index = int(step.group(1))
        if not isinstance(items, list) or index >= len(items) or not isinstance(items[index], dict):
            break
        node = items[index]
        link_id = node.get("linkId")
        found = link_id if isinstance(link_id, str) else found
    return found


@cache
def form_link_ids() -> frozenset[str]:
    """Every linkId of our Questionnaire (the same in every language)."""
    from fhir_safetyplan.questionnaire import shared_questionnaire

    found: set[str] = set()
    stack = list(shared_questionnaire("nb", None).get("item", []))
    while stack:
        item = stack.pop()
        found.add(item["linkId"])
        stack.extend(item.get("item", []))
    return frozenset(found)


def problems(response: Any, outcome: JSON) -> list[JSON]:
    """The outcome's issues as ``{severity, text, linkId}``; linkId is None for an issue about no question.

    The question is the first linkId of the form the message quotes ("No answer for required item "x"
    under item "y"" is about x, whose parent y is all the FHIRPath can point at, as x has no item in the
    response); else the deepest item the issue's FHIRPath points at.
    """
    out = []
    for item in outcome.get("issue", []):
        if not isinstance(item, dict) or item.get("severity") not in ("error", "fatal", "warning"):
            continue
        text = str(item.get("diagnostics", ""))
        quoted = [q for q in _QUOTED.findall(text) if q in form_link_ids()]
        expressions = [e for e in item.get("expression", []) if isinstance(e, str)]
        pointed = (linkid_at(response, e) for e in expressions)
        link_id = quoted[0] if quoted else next((lid for lid in pointed if lid), None)
        out.append({"severity": item["severity"], "text": text, "linkId": link_id})
    return out


def _note_text(document_reference: JSON | None) -> str:
    for content in (document_reference or {}).get("content", []):
        data = content.get("attachment", {}).get("data")
        if isinstance(data, str):
            return base64.b64decode(data).decode("utf-8")
    return ""


def result(response: Any, context: Any) -> tuple[int, JSON]:
    """The HTTP status and answer of a check: 200 ``{"ok": true, note, activities, flag, resources}``;
    else ``{"ok": false, problems, outcome}`` with 422 when the answers break the form's rules, 400 when the
    input is no plan at all. ``outcome`` is the OperationOutcome, for callers other than the page.

    ``context`` is a :class:`~fhir_safetyplan.document.DocumentContext`.
    """
    from fhir_safetyplan.errors import ValidationFailed
    from fhir_safetyplan.pipeline import document

    try:
        documentation = document(response, context)
    except InputError as err:
        status = 422 if isinstance(err, ValidationFailed) else 400
        return status, {"ok": False, "problems": problems(response, err.outcome), "outcome": err.outcome}
    care_plan = documentation.by_type("CarePlan") or {}
    flag = documentation.by_type("Flag")
    activities = [
        description for a in care_plan.get("activity", []) if (description := fhir_r4.activity_description(a))
    ]
    return 200, {
        "ok": True,
        "note": _note_text(documentation.by_type("DocumentReference")),
        "activities": activities,
        "flag": (flag or {}).get("code", {}).get("text"),
        "resources": [r["resourceType"] for r in documentation.resources],
    }
