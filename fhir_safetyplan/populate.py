"""SDC ``$populate`` from the last plan: a pre-filled QuestionnaireResponse (``in-progress``) for a follow-up.

Expression-based, as the Questionnaire's own markup says (:mod:`fhir_safetyplan.population`): the previous
response is bound to the launch context of type QuestionnaireResponse the Questionnaire declares, and every
item's ``initialExpression`` is evaluated with FHIRPath. Nothing here knows our linkIds: any Questionnaire with
that markup works, and items added to the content get the right behaviour from their ``carry`` flag alone.

What the expressions find is kept only when it still fits the item (the previous plan may answer another
Questionnaire version): the same value type, a coding that is one of the item's answer options (then the
option's own coding, with the display of the new form's language), at most one answer on a non-repeating item.
Everything else is listed as an OperationOutcome issue, never silently dropped:

- ``warning``: an answered item the new form no longer has, a value that no longer fits its item;
- ``information``: answers that are asked again in every conversation (``carry = false``), and a previous plan
  made with another Questionnaire version.

Issues name linkIds, types and codes, never an answer's text (it is personal data).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from fhir_safetyplan import _fhirpath, codes
from fhir_safetyplan.errors import JSON, InputError, issue, operation_outcome
from fhir_safetyplan.jsonshape import items_by_link
from fhir_safetyplan.pipeline import kind_of, respond
from fhir_safetyplan.population import INITIAL_EXPRESSION, LAUNCH_CONTEXT, UNANSWERED_TYPES
from fhir_safetyplan.questionnaire import shared_questionnaire
from fhir_safetyplan.validation import structure_issues

#: the answer element (value[x]) each item type takes, and the FHIR types of values that fill it
_VALUE_TYPES: dict[str, tuple[str, frozenset[str]]] = {
    "boolean": ("valueBoolean", frozenset({"boolean"})),
    "decimal": ("valueDecimal", frozenset({"decimal", "integer"})),
    "integer": ("valueInteger", frozenset({"integer"})),
    "date": ("valueDate", frozenset({"date"})),
    "dateTime": ("valueDateTime", frozenset({"dateTime"})),
    "time": ("valueTime", frozenset({"time"})),
    "string": ("valueString", frozenset({"string"})),
    "text": ("valueString", frozenset({"string"})),
    "url": ("valueUri", frozenset({"uri", "url"})),
    "choice": ("valueCoding", frozenset({"Coding"})),
    "open-choice": ("valueCoding", frozenset({"Coding", "string"})),
    "attachment": ("valueAttachment", frozenset({"Attachment"})),
    "reference": ("valueReference", frozenset({"Reference"})),
    "quantity": ("valueQuantity", frozenset({"Quantity"})),
}
_PYTHON_TYPES: dict[type, str] = {bool: "boolean", int: "integer", float: "decimal", str: "string"}
#: at most this many issues are listed one by one
MAX_ISSUES = 100
_REFUSED = frozenset({"structure", "too-costly", "invariant", "not-supported"})
_DATE = re.compile(r"\d{4}(-\d{2}(-\d{2})?)?\Z")


@dataclass(frozen=True)
class Populated:
    """The pre-filled response and what could not be (or is never) carried over."""

    response: JSON
    issues: tuple[JSON, ...]

    def outcome(self) -> JSON:
        """The issues as an OperationOutcome (the SDC ``issues`` output parameter)."""
        return operation_outcome(list(self.issues))

    def parameters(self) -> JSON:
        """The SDC ``$populate`` output: Parameters with ``response`` and ``issues``."""
        return {
            "resourceType": "Parameters",
            "parameter": [
                {"name": "response", "resource": self.response},
                {"name": "issues", "resource": self.outcome()},
            ],
        }


def launch_context_name(questionnaire: JSON) -> str:
    """The name of the launch context of type QuestionnaireResponse the Questionnaire declares."""
    for ext in _dicts(questionnaire.get("extension")):
        if ext.get("url") != LAUNCH_CONTEXT:
            continue
        parts = {p.get("url"): p for p in _dicts(ext.get("extension"))}
        name = parts.get("name", {}).get("valueCoding", {}).get("code")
        if parts.get("type", {}).get("valueCode") == "QuestionnaireResponse" and isinstance(name, str):
            return name
    raise InputError(
        "the Questionnaire cannot be populated from a previous response",
        operation_outcome(
            [
                issue(
                    "error",
                    "not-supported",
                    f"Questionnaire {questionnaire.get('url', '')}|{questionnaire.get('version', '')} "
                    "declares no launch context of type QuestionnaireResponse; use one of this module's forms",
                    "Questionnaire.extension",
                )
            ]
        ),
    )


def populate(questionnaire: JSON, previous: JSON, subject: JSON | None = None) -> Populated:
    """Pre-fill ``questionnaire`` from the ``previous`` QuestionnaireResponse (SDC ``$populate``).

    ``subject`` (a Reference) becomes the response's subject; by default the previous response's.
    ``previous`` must be structurally valid (:func:`check_previous`); its answers need not fit the form.
    """
    name = launch_context_name(questionnaire)
    evaluate = Evaluator(name, previous)
    canonical = f"{questionnaire.get('url', '')}|{questionnaire.get('version', '')}"
    issues: list[JSON] = [
        *_subject_issues(subject, previous),
        *_version_note(canonical, questionnaire, previous),
    ]

    def answers_of(item: JSON, expression: str) -> list[JSON]:
        kept: list[JSON] = []
        for fhir_type, data in evaluate(expression):
            answer, problem = _answer(item, fhir_type, data)
            if answer is None:
                issues.append(_not_carried(item["linkId"], problem))
            elif kept and not item.get("repeats"):
                issues.append(
                    _not_carried(item["linkId"], "the item takes one answer; only the first was kept")
                )
            else:
                kept.append(answer)
        return kept

    def build(items: list[JSON]) -> list[JSON]:
        out: list[JSON] = []
        for item in _dicts(items):
            expression = _initial_expression(item)
            answers = answers_of(item, expression) if expression else []
            children = build(item.get("item") or [])
            if not answers and not children:
                continue
            qr_item: JSON = {"linkId": item["linkId"]}
            if "text" in item:
                qr_item["text"] = item["text"]
            if answers:
                qr_item["answer"] = answers
            if children:
                qr_item["item"] = children
            out.append(qr_item)
        return out

    response: JSON = {"resourceType": "QuestionnaireResponse"}
    if questionnaire.get("language"):
        response["language"] = questionnaire["language"]
    response["questionnaire"] = canonical
    response["status"] = "in-progress"
    chosen_subject = subject if subject is not None else previous.get("subject")
    if isinstance(chosen_subject, dict):
        response["subject"] = chosen_subject
    response["item"] = build(questionnaire.get("item") or [])
    issues.extend(_left_behind(questionnaire, previous))
    return Populated(response=response, issues=_capped(issues))


def _subject_issues(subject: JSON | None, previous: JSON) -> list[JSON]:
    """One patient's plan never pre-fills another's: a different subject of the same kind is an InputError."""
    before = previous.get("subject")
    if subject is None or not isinstance(before, dict) or before == subject:
        return []
    for key in ("reference", "identifier"):
        if key in subject and key in before:
            if _same(subject[key], before[key]):
                return []
            raise InputError(
                "the previous plan is another patient's",
                operation_outcome(
                    [
                        issue(
                            "error",
                            "business-rule",
                            "The previous response's subject is not the subject given: a plan is only pre-filled "
                            "from the same patient's previous plan.",
                            "QuestionnaireResponse.subject",
                        )
                    ]
                ),
            )
    return [
        issue(
            "warning",
            "informational",
            "The previous response names its patient differently (reference vs identifier) from the subject given: "
            "check that it is the same patient's plan.",
            "QuestionnaireResponse.subject",
        )
    ]


def _same(a: Any, b: Any) -> bool:
    """Two references (strings) or identifiers (system and value) name the same patient."""
    if isinstance(a, dict) and isinstance(b, dict):
        return bool(a.get("system") == b.get("system") and a.get("value") == b.get("value"))
    return bool(a == b)


def _version_note(canonical: str, questionnaire: JSON, previous: JSON) -> list[JSON]:
    """An information issue when the previous plan answers another form (language or version)."""
    before = str(previous.get("questionnaire") or "(no questionnaire)")[:200]
    if before == canonical:
        return []
    same_version = before.rpartition("|")[2] == str(questionnaire.get("version", ""))
    return [
        issue(
            "information",
            "informational",
            f"The previous plan answers {before}, this form is {canonical}"
            + (
                " (another language of the same version)."
                if same_version
                else ": another Questionnaire version, so answers were matched by linkId, value type and "
                "answer option; anything that did not match is listed here."
            ),
            "QuestionnaireResponse.questionnaire",
        )
    ]


def _capped(issues: list[JSON]) -> tuple[JSON, ...]:
    """At most MAX_ISSUES issues one by one (a hostile or foreign response could produce thousands)."""
    if len(issues) <= MAX_ISSUES:
        return tuple(issues)
    more = len(issues) - MAX_ISSUES
    return (
        *issues[:MAX_ISSUES],
        issue(
            "warning",
            "too-costly",
            f"{more} more issues (answers not carried over) are not listed one by one.",
        ),
    )


def check_previous(previous: Any) -> JSON:
    """``previous`` if it is a structurally valid QuestionnaireResponse; InputError (with every problem) if not."""

    if not isinstance(previous, dict) or previous.get("resourceType") != "QuestionnaireResponse":
        raise InputError(
            "the previous plan is not a QuestionnaireResponse",
            operation_outcome(
                [
                    issue(
                        "error",
                        "invalid",
                        "Give the previous plan as a QuestionnaireResponse or an answers document.",
                    )
                ]
            ),
        )
    # Refused: what is not R4, too deep, or changes meaning (dom-5, modifier extensions). A previous plan
    # without author or authored is still a plan to start from.
    problems = [i for i in structure_issues(previous) if i.get("code") in _REFUSED]
    if problems:
        raise InputError(
            "the previous QuestionnaireResponse is not valid FHIR R4", operation_outcome(problems)
        )
    return previous


#: the initialExpression our markup generates (population.initial_expression), evaluated natively
_GENERATED = re.compile(r"%([A-Za-z]+)\.repeat\(item\)\.where\(linkId='((?:[^'\\]|\\.)*)'\)\.answer\.value\Z")
#: value[x] element → FHIR type (primitives lower-case, as FHIRPath names them)
_PRIMITIVES = frozenset({"Boolean", "Decimal", "Integer", "Date", "DateTime", "Time", "String", "Uri", "Url"})


class Evaluator:
    """Evaluates initialExpressions against the previous response: ``(FHIR type, JSON value)`` per result.

    The expressions our markup generates (``%ctx.repeat(item).where(linkId='…').answer.value``) are answered
    from a linkId index of the response built once, ~100× faster than fhirpathpy; tests/test_populate.py
    checks both give the same results. Any other expression, another variable, or a linkId the response holds
    more than once (FHIRPath ``repeat`` de-duplicates equal items) goes to fhirpathpy.
    """

    def __init__(self, name: str, previous: JSON) -> None:
        self.name = name
        self.previous = previous
        self.index: dict[str, list[JSON]] = {}
        stack = list(reversed(_dicts(previous.get("item"))))
        while stack:
            item = stack.pop()
            if isinstance(item.get("linkId"), str):
                self.index.setdefault(item["linkId"], []).append(item)
            stack.extend(reversed(_dicts(item.get("item"))))

    def __call__(self, expression: str) -> list[tuple[str, Any]]:
        match = _GENERATED.match(expression)
        if match and match.group(1) == self.name:
            link_id = re.sub(r"\\(.)", r"\1", match.group(2))
            found = self.index.get(link_id, [])
            if len(found) <= 1:
                typed = (_typed(a) for item in found for a in _dicts(item.get("answer")))
                return [t for t in typed if t[0]]
        return self.reference(expression)

    def reference(self, expression: str) -> list[tuple[str, Any]]:
        """The same evaluation in fhirpathpy (any FHIRPath expression)."""

        context = _fhirpath.node(self.previous, "QuestionnaireResponse")
        raw = _fhirpath.compile_expression(expression)(context, {self.name: context})
        return [_fhir_type(value) for value in raw]


def _typed(answer: JSON) -> tuple[str, Any]:
    """(FHIR type, value) of an answer's value[x]; ("", None) when it has none."""
    for key, value in answer.items():
        if key.startswith("value") and len(key) > 5:
            kind = key[5:]
            return (kind[0].lower() + kind[1:] if kind in _PRIMITIVES else kind), value
    return "", None


def _fhir_type(value: Any) -> tuple[str, Any]:
    """(FHIR type name, JSON data) of one raw FHIRPath result."""

    data = _fhirpath.to_json(value)
    path = getattr(value, "path", None)
    if isinstance(path, str) and path:
        return path, data
    return _PYTHON_TYPES.get(type(data), type(data).__name__), data


def previous_response(data: Any, canonical_base: str | None = None) -> JSON:
    """The previous plan as a QuestionnaireResponse: an answers document is turned into one first."""

    if kind_of(data) == "QuestionnaireResponse":
        return check_previous(data)
    return check_previous(respond(data, canonical_base))


def target_questionnaire(previous: JSON, lang: str | None = None, canonical_base: str | None = None) -> JSON:
    """The current form to pre-fill (shared instance: never mutate): in ``lang``, else the previous plan's."""

    if lang is None:
        lang = previous.get("language") if previous.get("language") in codes.LANGUAGES else "nb"
    return shared_questionnaire(lang, canonical_base)


def _initial_expression(item: JSON) -> str | None:
    if item.get("type") in UNANSWERED_TYPES:
        return None
    for ext in _dicts(item.get("extension")):
        if ext.get("url") == INITIAL_EXPRESSION:
            expr = ext.get("valueExpression", {}).get("expression")
            return expr if isinstance(expr, str) else None
    return None


def _answer(item: JSON, fhir_type: str, data: Any) -> tuple[JSON | None, str]:
    """The answer a value (of FHIR type ``fhir_type``) gives ``item``, or (None, why not)."""
    item_type = str(item.get("type"))
    options = [
        o["valueCoding"] for o in _dicts(item.get("answerOption")) if isinstance(o.get("valueCoding"), dict)
    ]
    if options and fhir_type == "Coding" and isinstance(data, dict):
        for option in options:
            if _same_coding(option, data):
                coding = {k: option[k] for k in ("system", "code", "display") if k in option}
                return {"valueCoding": coding}, ""
        return None, (
            f"the answer {data.get('system')}|{data.get('code')} is not one of the item's answer options now"
        )
    element, accepted = _VALUE_TYPES.get(item_type, ("", frozenset()))
    if fhir_type not in accepted:
        return None, f"an answer of type {fhir_type} does not fit the item type {item_type} now"
    if item_type == "open-choice" and fhir_type == "string":
        element = "valueString"
    if item_type == "date" and not (isinstance(data, str) and _DATE.match(data)):
        return None, "the date is not a FHIR date"
    return {element: data}, ""


def _same_coding(option: JSON, coding: JSON) -> bool:
    """The previous coding is this option: the same system and code, or the same answer code where content 1.0.0
    used the HL7 code systems our answer CodeSystem now stands for (``same-as`` in content.toml)."""

    if option.get("system") == coding.get("system") and option.get("code") == coding.get("code"):
        return True
    legacy = coding.get("system") in codes.LEGACY_ANSWER_SYSTEMS
    return (
        legacy
        and codes.answer_code(option) is not None
        and codes.answer_code(option) == codes.answer_code(coding)
    )


def _answered(items: Any, parent: str = "QuestionnaireResponse") -> Iterator[tuple[str, str]]:
    """(linkId, FHIRPath) of every item of a response that has an answer, depth first."""
    for item in _dicts(items):
        link_id = item.get("linkId")
        if not isinstance(link_id, str):
            continue
        where = f"{parent}.item.where(linkId='{link_id}')"
        answers = _dicts(item.get("answer"))
        if answers:
            yield link_id, where
        yield from _answered(item.get("item"), where)
        for answer in answers:
            yield from _answered(answer.get("item"), f"{where}.answer")


def _left_behind(questionnaire: JSON, previous: JSON) -> list[JSON]:
    """Issues for the previous answers no initialExpression reads: items removed, or asked again each time."""
    items = items_by_link(questionnaire)
    out: list[JSON] = []
    seen: set[str] = set()
    for link_id, where in _answered(previous.get("item")):
        if link_id in seen:
            continue
        seen.add(link_id)
        q = items.get(link_id, (None, None))[0]
        if q is None:
            out.append(
                issue(
                    "warning",
                    "not-found",
                    f"linkId {link_id!r} is not an item of this form any more: its answer was not carried over; "
                    "ask it again if it still matters.",
                    where,
                )
            )
        elif _initial_expression(q) is None:
            out.append(
                issue(
                    "information",
                    "informational",
                    f"linkId {link_id!r} is asked again in every conversation: not pre-filled.",
                    where,
                )
            )
    return out


def _not_carried(link_id: str, why: str) -> JSON:
    return issue(
        "warning",
        "value",
        f"linkId {link_id!r}: {why}; that answer was not carried over, ask it again.",
        f"QuestionnaireResponse.repeat(item).where(linkId='{link_id}')",
    )


def _dicts(value: Any) -> list[JSON]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []
