"""SDC $populate markup of the Questionnaire: pre-filling a follow-up conversation from the last plan.

Expression-based population (SDC 4.0 ``populate.html``), generated generically over the items:

- the root declares two launch contexts: the SDC ``patient`` and ours, ``previousResponse`` (named in
  ``content.toml`` ``[populate]``, a code of our CodeSystem), of type QuestionnaireResponse: the previous response
  the caller passes in;
- every answerable item (not ``group``, not ``display``) gets an ``initialExpression`` reading the answers of the
  same linkId in that response — unless content.toml says ``carry = false`` for it or a group above it (answers
  that belong to one conversation: consent, informed, advice given, the § 33 assessment, the risk result).

Any SDC engine that evaluates launch contexts and initialExpressions (``@aehrc/sdc-populate``, LHC-Forms) can
pre-fill the form from this markup alone; :mod:`fhir_safetyplan.populate` is ours. ``$extract`` never sees it
(SDC: extraction has no access to launch contexts).
"""

from __future__ import annotations

from collections.abc import Iterable

from fhir_safetyplan import codes
from fhir_safetyplan.content import Content
from fhir_safetyplan.errors import JSON

LAUNCH_CONTEXT = codes.SDC + "sdc-questionnaire-launchContext"
INITIAL_EXPRESSION = codes.SDC + "sdc-questionnaire-initialExpression"
SDC_LAUNCH_CONTEXT_SYSTEM = "http://hl7.org/fhir/uv/sdc/CodeSystem/launchContext"
#: item types that hold no answer of their own
UNANSWERED_TYPES = frozenset({"group", "display"})


def context_name(content: Content) -> str:
    """The launch-context name (and FHIRPath variable) of the previous response."""
    name = str(content.raw["populate"]["launch-context"])
    if not name.isascii() or not name.isalpha():
        raise ValueError(f"content.toml: [populate] launch-context {name!r} must be letters only")
    return name


def initial_expression(name: str, link_id: str) -> str:
    """The FHIRPath that reads the answers of ``link_id`` from the previous response (``%<name>``)."""
    quoted = link_id.replace("\\", "\\\\").replace("'", "\\'")
    return f"%{name}.repeat(item).where(linkId='{quoted}').answer.value"


def add_markup(questionnaire: JSON, not_carried: Iterable[str], content: Content, plan_system: str) -> JSON:
    """Add the launch contexts and the items' initialExpressions to ``questionnaire`` (in place; returned).

    ``not_carried`` are the linkIds whose content says ``carry = false``; a group's flag covers its items.
    ``plan_system`` is the url of our CodeSystem, which defines the launch-context code.
    """
    name = context_name(content)
    skip = frozenset(not_carried)
    lang = str(questionnaire.get("language") or "nb")
    description = content.text("populate").get(lang if lang in codes.LANGUAGES else "nb")
    questionnaire.setdefault("extension", []).extend(
        [
            _launch_context({"system": SDC_LAUNCH_CONTEXT_SYSTEM, "code": "patient"}, "Patient", None),
            _launch_context({"system": plan_system, "code": name}, "QuestionnaireResponse", description),
        ]
    )

    def walk(items: list[JSON], carried: bool) -> None:
        for item in items:
            here = carried and item["linkId"] not in skip
            if here and item.get("type") not in UNANSWERED_TYPES:
                item.setdefault("extension", []).append(
                    {
                        "url": INITIAL_EXPRESSION,
                        "valueExpression": {
                            "language": "text/fhirpath",
                            "expression": initial_expression(name, item["linkId"]),
                        },
                    }
                )
            walk(item.get("item", []), here)

    walk(questionnaire.get("item", []), True)
    return questionnaire


def carried_link_ids(questionnaire: JSON) -> dict[str, str]:
    """linkId → its initialExpression, for every item of ``questionnaire`` that has one."""
    out: dict[str, str] = {}

    def walk(items: list[JSON]) -> None:
        for item in items:
            for ext in item.get("extension", []):
                if ext.get("url") == INITIAL_EXPRESSION:
                    out[item["linkId"]] = ext["valueExpression"]["expression"]
            walk(item.get("item", []))

    walk(questionnaire.get("item", []))
    return out


def _launch_context(name: JSON, rtype: str, description: str | None) -> JSON:
    ext: list[JSON] = [{"url": "name", "valueCoding": name}, {"url": "type", "valueCode": rtype}]
    if description:
        ext.append({"url": "description", "valueString": description})
    return {"url": LAUNCH_CONTEXT, "extension": ext}
