"""Developer check of a Questionnaire's R4 invariants (used by the tests of our generated Questionnaires).

:func:`check_questionnaire` checks the R4 invariants fhir.resources does not (que-0 … que-13, unique linkIds),
enableWhen targets, codes against given CodeSystems, and translation extensions.
"""

from __future__ import annotations

import re
from typing import Any

from fhir_safetyplan.errors import JSON, issue
from fhir_safetyplan.validation.primitives import (
    ALLOWED_ANSWER_TYPES,
    ENABLE_WHEN_KEYS,
    ITEM_TYPES,
    MAX_DEPTH,
    OPERATORS,
    as_list,
    quote,
    value_key,
)

TRANSLATION_URL = "http://hl7.org/fhir/StructureDefinition/translation"

_NAME_RE = re.compile(r"[A-Z]([A-Za-z0-9_]){0,254}")


_QUE5_TYPES = frozenset(
    {"choice", "open-choice", "decimal", "integer", "date", "dateTime", "time", "string", "quantity"}
)
_QUE10_TYPES = frozenset({"boolean", "decimal", "integer", "string", "text", "url", "open-choice"})
#: Which enableWhen answer[x] fits a question of each type (for the target-type check).
_ENABLE_WHEN_FITS: dict[str, frozenset[str]] = {
    **{t: frozenset(v) for t, v in ALLOWED_ANSWER_TYPES.items()},
    "decimal": frozenset({"Decimal", "Integer"}),
    "integer": frozenset({"Integer", "Decimal"}),
    "url": frozenset({"String"}),
}


def _codesystem_codes(codesystems: list[JSON] | tuple[JSON, ...]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}

    def walk(concepts: Any, into: set[str]) -> None:
        for c in as_list(concepts):
            if isinstance(c, dict):
                if isinstance(c.get("code"), str):
                    into.add(c["code"])
                walk(c.get("concept"), into)

    for cs in codesystems:
        if isinstance(cs, dict) and isinstance(cs.get("url"), str):
            walk(cs.get("concept"), out.setdefault(cs["url"], set()))
    return out


def _translations(element: Any) -> dict[str, str]:
    """lang -> content of the translation extensions on a primitive's ``_field`` element."""
    out: dict[str, str] = {}
    if not isinstance(element, dict):
        return out
    for ext in as_list(element.get("extension")):
        if not isinstance(ext, dict) or ext.get("url") != TRANSLATION_URL:
            continue
        lang = content = None
        for sub in as_list(ext.get("extension")):
            if isinstance(sub, dict):
                if sub.get("url") == "lang":
                    lang = sub.get("valueCode")
                elif sub.get("url") == "content":
                    content = sub.get("valueString")
        if isinstance(lang, str) and isinstance(content, str) and content.strip():
            out[lang] = content
    return out


def check_questionnaire(
    questionnaire: JSON,
    *,
    languages: tuple[str, ...] | list[str] = ("nn", "en"),
    codesystems: list[JSON] | tuple[JSON, ...] = (),
) -> list[JSON]:
    """Check the R4 invariants fhir.resources does not check; return OperationOutcome issues (empty = fine).

    Covers que-0 (warning) … que-13 (que-12 as intended: more than one enableWhen needs enableBehavior), que-2
    (unique linkIds), enableWhen targets (exist, come earlier in document order, are questions, and the answer
    fits), codes of item.code / answerOption / enableWhen / initial whose system is the url of one of
    ``codesystems``, and translation extensions for every language in ``languages`` (other than the
    Questionnaire's own ``language``) on title, description, item text and prefix, and answerOption Coding
    display.
    """
    issues: list[JSON] = []

    def add(severity: str, code: str, msg: str, expr: str) -> None:
        issues.append(issue(severity, code, msg, expr))

    if not isinstance(questionnaire, dict) or questionnaire.get("resourceType") != "Questionnaire":
        return [issue("fatal", "structure", "Not a Questionnaire resource", "Questionnaire")]
    own = questionnaire.get("language")
    langs = [lang for lang in languages if lang != own]
    cs_codes = _codesystem_codes(codesystems)

    def need_translations(holder: JSON, field: str, expr: str, what: str) -> None:
        if not langs or not isinstance(holder.get(field), str):
            return
        found = _translations(holder.get("_" + field))
        for lang in langs:
            if lang not in found:
                add(
                    "error",
                    "required",
                    f"{what} has no {lang!r} translation; add a {TRANSLATION_URL} extension with lang "
                    f"{lang!r} and content to _{field}",
                    f"{expr}.{field}",
                )

    def check_coding(coding: Any, expr: str, what: str) -> None:
        if not isinstance(coding, dict):
            return
        system, code = coding.get("system"), coding.get("code")
        if (
            isinstance(system, str)
            and system in cs_codes
            and not (isinstance(code, str) and code in cs_codes[system])
        ):
            add(
                "error",
                "code-invalid",
                f"{what}: code {quote(code)} is not defined in CodeSystem {system}; "
                "add it there or correct it",
                expr,
            )

    name = questionnaire.get("name")
    if name is not None and not (isinstance(name, str) and _NAME_RE.fullmatch(name)):
        add(
            "warning",
            "invariant",
            "que-0: name should be usable as a computer name: an upper-case letter, then letters, digits "
            "or _ (at most 255)",
            "Questionnaire.name",
        )
    for field in ("title", "description"):
        need_translations(questionnaire, field, "Questionnaire", f"Questionnaire {field}")

    # pass 1: document order of every item (pre-order), for uniqueness and enableWhen targets
    order: list[tuple[str, JSON, str]] = []

    def collect(raw: Any, expr: str, depth: int) -> None:
        if depth > MAX_DEPTH:
            if raw:
                add("error", "structure", f"Items are nested more than {MAX_DEPTH} levels deep", expr)
            return
        for i, it in enumerate(as_list(raw)):
            if isinstance(it, dict):
                p = f"{expr}.item[{i}]"
                link_id = it.get("linkId")
                order.append((link_id if isinstance(link_id, str) else "", it, p))
                collect(it.get("item"), p, depth + 1)

    collect(questionnaire.get("item"), "Questionnaire", 0)
    position: dict[str, int] = {}
    for n, (link_id, _it, p) in enumerate(order):
        if not link_id:
            add("error", "required", "Item has no linkId; every item needs a unique linkId", p)
        elif link_id in position:
            add(
                "error",
                "invariant",
                f"que-2: linkId {quote(link_id)} is used more than once; make it unique",
                p,
            )
        else:
            position[link_id] = n

    for n, (link_id, it, p) in enumerate(order):
        lid = quote(link_id)
        t = it.get("type")
        children = as_list(it.get("item"))
        has_options = "answerOption" in it
        initials = as_list(it.get("initial"))
        if not isinstance(t, str) or t not in ITEM_TYPES:
            add("error", "code-invalid", f"Item {lid}: type {quote(t)} is not an R4 item type", f"{p}.type")
        if t == "group" and not children:
            add("error", "invariant", f"que-1: group {lid} has no items; add items or make it a display", p)
        if t == "display" and children:
            add("error", "invariant", f"que-1: display item {lid} cannot have child items", p)
        if t == "display" and "code" in it:
            add("error", "invariant", f"que-3: display item {lid} cannot have a code", f"{p}.code")
        if has_options and "answerValueSet" in it:
            add(
                "error",
                "invariant",
                f"que-4: item {lid} has both answerOption and answerValueSet; keep one",
                p,
            )
        if (has_options or "answerValueSet" in it) and not (isinstance(t, str) and t in _QUE5_TYPES):
            add("error", "invariant", f"que-5: item {lid} of type {t} cannot have answer options", p)
        if t == "display" and ("required" in it or "repeats" in it):
            add("error", "invariant", f"que-6: display item {lid} cannot have required or repeats", p)
        if t in ("group", "display") and initials:
            add(
                "error",
                "invariant",
                f"que-8: item {lid} of type {t} cannot have an initial value",
                f"{p}.initial",
            )
        if t == "display" and "readOnly" in it:
            add("error", "invariant", f"que-9: display item {lid} cannot be readOnly", f"{p}.readOnly")
        if "maxLength" in it and not (isinstance(t, str) and t in _QUE10_TYPES):
            add(
                "error",
                "invariant",
                f"que-10: item {lid} of type {t} cannot have maxLength",
                f"{p}.maxLength",
            )
        if has_options and initials:
            add(
                "error",
                "invariant",
                f"que-11: item {lid} has answerOption and initial; use answerOption.initialSelected instead",
                f"{p}.initial",
            )
        if len(initials) > 1 and it.get("repeats") is not True:
            add("error", "invariant", f"que-13: item {lid} has several initial values but does not repeat", p)
        conditions = as_list(it.get("enableWhen"))
        if len(conditions) > 1 and "enableBehavior" not in it:
            add(
                "error",
                "invariant",
                f"que-12: item {lid} has {len(conditions)} enableWhen conditions; "
                "set enableBehavior to all or any",
                p,
            )
        if "enableBehavior" in it and it["enableBehavior"] not in ("all", "any"):
            add(
                "error",
                "code-invalid",
                f"Item {lid}: enableBehavior must be all or any",
                f"{p}.enableBehavior",
            )
        for j, c in enumerate(conditions):
            issues.extend(_enable_when_issues(c, j, n, link_id, p, order, position))
        for j, coding in enumerate(as_list(it.get("code"))):
            check_coding(coding, f"{p}.code[{j}]", f"Item {lid} code")
        for j, opt in enumerate(as_list(it.get("answerOption"))):
            if not isinstance(opt, dict):
                continue
            op = f"{p}.answerOption[{j}]"
            if sum(1 for k in opt if k.startswith("value") and not k.startswith("_")) != 1:
                add("error", "structure", f"Item {lid}: answerOption {j} needs exactly one value[x]", op)
            coding = opt.get("valueCoding")
            if isinstance(coding, dict):
                check_coding(coding, f"{op}.valueCoding", f"Item {lid} answerOption")
                need_translations(
                    coding, "display", f"{op}.valueCoding", f"Item {lid} answerOption {j} display"
                )
        for j, init in enumerate(initials):
            if isinstance(init, dict):
                check_coding(init.get("valueCoding"), f"{p}.initial[{j}].valueCoding", f"Item {lid} initial")
        need_translations(it, "text", p, f"Item {lid} text")
        need_translations(it, "prefix", p, f"Item {lid} prefix")
    return issues


def _target_problem(ew_kind: str | None, target: JSON) -> str | None:
    """Why an enableWhen answer[x] cannot match the target question (None when it can)."""
    t = target.get("type")
    if t in ("group", "display"):
        return f"targets a {t} item, which has no answers; point it at a question"
    if ew_kind is None or not isinstance(t, str):
        return None
    fits = _ENABLE_WHEN_FITS.get(t)
    if fits is not None and ew_kind not in fits:
        return f"compares with answer{ew_kind}, but the target question is of type {t}"
    return None


def _enable_when_issues(
    c: Any, j: int, n: int, link_id: str, p: str, order: list[tuple[str, JSON, str]], position: dict[str, int]
) -> list[JSON]:
    """Issues of one enableWhen (``c``, number ``j``) on the item at document position ``n``."""
    out: list[JSON] = []
    ep = f"{p}.enableWhen[{j}]"
    lid = quote(link_id)
    if not isinstance(c, dict):
        return [issue("error", "structure", f"Item {lid}: enableWhen {j} is not an object", ep)]
    operator = c.get("operator")
    answer_keys = [k for k in c if k.startswith("answer")]
    kind = ENABLE_WHEN_KEYS.get(answer_keys[0]) if len(answer_keys) == 1 else None
    if not isinstance(operator, str) or operator not in OPERATORS:
        out.append(
            issue(
                "error", "code-invalid", f"Item {lid}: enableWhen operator {quote(operator)} is unknown", ep
            )
        )
    if len(answer_keys) != 1 or kind is None:
        out.append(issue("error", "structure", f"Item {lid}: enableWhen {j} needs exactly one answer[x]", ep))
    if operator == "exists" and "answerBoolean" not in c:
        out.append(issue("error", "invariant", f"que-7: item {lid}: operator exists needs answerBoolean", ep))
    question = c.get("question")
    target_pos = position.get(question) if isinstance(question, str) else None
    if target_pos is None:
        out.append(
            issue(
                "error",
                "not-found",
                f"Item {lid}: enableWhen {j} refers to question {quote(question)}, which does not exist",
                f"{ep}.question",
            )
        )
        return out
    if target_pos >= n:
        out.append(
            issue(
                "error",
                "business-rule",
                f"Item {lid}: enableWhen {j} refers to question {quote(question)}, which does not come "
                "before it; conditions must depend on earlier questions",
                f"{ep}.question",
            )
        )
    target = order[target_pos][1]
    problem = _target_problem(kind if operator != "exists" else None, target)
    if problem:
        out.append(issue("error", "business-rule", f"Item {lid}: enableWhen {j} {problem}", ep))
    elif kind == "Coding" and operator in ("=", "!=") and isinstance(target.get("answerOption"), list):
        coding = c.get("answerCoding")
        wanted = value_key("Coding", coding)
        keys = {
            value_key("Coding", o.get("valueCoding"))
            for o in target["answerOption"]
            if isinstance(o, dict) and "valueCoding" in o
        }
        if keys and wanted not in keys:
            out.append(
                issue(
                    "error",
                    "code-invalid",
                    f"Item {lid}: enableWhen {j} compares with a code that is not an answer option of "
                    f"{quote(question)}, so it can never match",
                    f"{ep}.answerCoding",
                )
            )
    if operator == "!=" and target.get("required") is not True:
        out.append(
            issue(
                "warning",
                "business-rule",
                f"Item {lid}: enableWhen {j} uses != on an optional question; renderers disagree on whether "
                "an unanswered question counts (the HL7 validator says not enabled) — prefer = or exists",
                ep,
            )
        )
    return out
