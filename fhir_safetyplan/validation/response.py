"""Validate a QuestionnaireResponse against its Questionnaire (FHIR R4).

:func:`validate_response` follows what the HL7 validator (used by HAPI) checks (its ``QuestionnaireValidator``
and ``EnableWhenEvaluator`` in org.hl7.fhir.validation), so that a response we accept is also accepted by the
server, plus checks that protect the journal (hostile free text, Norwegian identifier check digits). It is
generic: nothing in it knows our own Questionnaire.

Every problem becomes one OperationOutcome issue with ``expression`` = the FHIRPath of the offending element
(``QuestionnaireResponse.item[0].answer[0].item[2]``) and a message naming the linkId and saying what to do.
Messages never quote free-text answers or identity numbers (they may be logged or shown); Coding codes are
quoted, shortened.

Semantics chosen where R4 is loose (documented so callers know):

- ``enableWhen`` answers are looked up in the nearest common ancestor (the HL7 validator's rule), so a
  condition inside one repetition of a repeating group sees that repetition's answer.
- ``!=`` is true when there is at least one answer and no answer equals the value (R4 text; with no answer the
  HL7 validator also says false). Other operators are true when any answer satisfies them; an answer of a type
  that cannot be compared never satisfies them.
- Several ``enableWhen`` without ``enableBehavior`` (a que-12 error in the Questionnaire) count as enabled,
  as in the HL7 validator.
- ``sdc-questionnaire-enableWhenExpression``, ``answerValueSet`` that is not contained with an explicit
  concept list, ``readOnly``, min/max value extensions and ``regex`` are not checked here.
- A repeating question given as several items with the same linkId (instead of one item with several answers)
  is a warning (SDC ``sdcqr-2`` / R5 ``qrs-2``; R4 core does not forbid it).
"""

from __future__ import annotations

from typing import Any

from fhir_safetyplan.errors import JSON, ValidationFailed, has_errors, issue, operation_outcome
from fhir_safetyplan.validation.enable_when import ORDER_OPS, answer_equals, answer_order
from fhir_safetyplan.validation.header import check_header, check_identifiers
from fhir_safetyplan.validation.index import Cond, QItem, QuestionnaireIndex, index_questionnaire
from fhir_safetyplan.validation.options import DEFAULT_OPTIONS, ValidationOptions
from fhir_safetyplan.validation.primitives import (
    ALLOWED_ANSWER_TYPES,
    MAX_DEPTH,
    VALUE_KEYS,
    as_list,
    quote,
    value_format_problem,
    value_key,
)
from fhir_safetyplan.validation.text import CONTROL_RE, text_problems

COMPLETED = frozenset({"completed", "amended"})


class _Run:
    """One validation of one response: collects issues; keeps enableWhen look-ups for this response."""

    def __init__(self, index: QuestionnaireIndex, options: ValidationOptions, completed: bool) -> None:
        self.index = index
        self.options = options
        self.completed = completed
        self.issues: list[JSON] = []
        # linkId -> [(ancestor chain, answers)] for the nearest-common-ancestor enableWhen look-up
        self.answers: dict[str, list[tuple[tuple[int, ...], list[tuple[str, Any]]]]] = {}
        self.enabled_cache: dict[tuple[str, tuple[int, ...]], bool] = {}

    def add(self, severity: str, code: str, diagnostics: str, expression: str) -> None:
        self.issues.append(issue(severity, code, diagnostics, expression))

    # -- pass 1: answers by linkId (only when the Questionnaire has enableWhen)
    def collect(self, items: Any, chain: tuple[int, ...]) -> None:
        if len(chain) > MAX_DEPTH:
            return
        for it in as_list(items):
            if not isinstance(it, dict):
                continue
            link_id = it.get("linkId")
            inner = (*chain, id(it))
            values: list[tuple[str, Any]] = []
            for a in as_list(it.get("answer")):
                if not isinstance(a, dict):
                    continue
                for key, kind in VALUE_KEYS.items():
                    if key in a:
                        values.append((kind, a[key]))
                        break
                if "item" in a:
                    self.collect(a["item"], inner)
            if isinstance(link_id, str):
                self.answers.setdefault(link_id, []).append((chain, values))
            if "item" in it:
                self.collect(it["item"], inner)

    def lookup(self, link_id: str, chain: tuple[int, ...]) -> list[tuple[str, Any]]:
        """Answers to ``link_id`` in the nearest common ancestor of the item whose ancestors are ``chain``."""
        best = -1
        result: list[tuple[str, Any]] = []
        for other, values in self.answers.get(link_id, ()):
            n = 0
            for a, b in zip(other, chain, strict=False):
                if a != b:
                    break
                n += 1
            if n > best:
                best, result = n, list(values)
            elif n == best:
                result.extend(values)
        return result

    def enabled(self, q: QItem, chain: tuple[int, ...]) -> bool:
        if not q.conditions:
            return True
        key = (q.link_id, chain)
        hit = self.enabled_cache.get(key)
        if hit is not None:
            return hit
        results = [self.condition(c, chain) for c in q.conditions]
        if len(results) == 1:
            value = results[0]
        elif q.behavior == "all":
            value = all(results)
        elif q.behavior == "any":
            value = any(results)
        else:
            value = True  # que-12 violation: the HL7 validator treats the item as enabled
        self.enabled_cache[key] = value
        return value

    def condition(self, c: Cond, chain: tuple[int, ...]) -> bool:
        answers = self.lookup(c.question, chain)
        if c.operator == "exists":
            return isinstance(c.value, bool) and bool(answers) == c.value
        if not answers:
            return False
        if c.operator == "=":
            return any(answer_equals(c, k, v) for k, v in answers)
        if c.operator == "!=":
            return not any(answer_equals(c, k, v) for k, v in answers)
        test = ORDER_OPS.get(c.operator)
        if test is None:
            return False
        for k, v in answers:
            sign = answer_order(c, k, v)
            if sign is not None and test(sign):
                return True
        return False

    # -- pass 2: structure and answers
    def items(
        self,
        raw: Any,
        path: str,
        parent: QItem | None,
        chain: tuple[int, ...],
        parent_enabled: bool,
    ) -> None:
        expected = parent.children if parent is not None else self.index.root
        where = f"under item {parent.label}" if parent is not None else "at the top level"
        if raw is not None and not isinstance(raw, list):
            self.add("error", "structure", f"'item' {where} must be a list of items", path)
            raw = None
        if len(chain) > MAX_DEPTH:
            self.add("error", "structure", f"Items are nested more than {MAX_DEPTH} levels deep", path)
            return
        seen: dict[str, list[JSON]] = {}
        last = -1
        for i, it in enumerate(as_list(raw)):
            p = f"{path}.item[{i}]"
            if not isinstance(it, dict):
                self.add("error", "structure", f"Item {i} {where} is not an object", p)
                continue
            link_id = it.get("linkId")
            if not isinstance(link_id, str) or not link_id:
                self.add("error", "required", f"Item {i} {where} has no linkId; every item needs one", p)
                continue
            q = self.index.items.get(link_id)
            if q is None:
                self.add(
                    "error",
                    "not-found",
                    f"Item {quote(link_id)}: linkId not found in the Questionnaire; remove the item or "
                    "correct the linkId (is the response for another Questionnaire version?)",
                    p,
                )
                continue
            if link_id not in expected:
                home = f"under item {quote(q.parent)}" if q.parent else "at the top level"
                self.add(
                    "error",
                    "structure",
                    f"Item {quote(link_id)} is in the wrong place: it is {where} but belongs {home}",
                    p,
                )
                continue
            pos = expected[link_id]
            if pos < last:
                self.add(
                    "error",
                    "structure",
                    f"Item {quote(link_id)} is out of order; "
                    "items must follow the order of the Questionnaire",
                    p,
                )
            last = max(last, pos)
            same = seen.setdefault(link_id, [])
            same.append(it)
            if len(same) == 2:
                if not q.repeats:
                    self.add(
                        "error",
                        "structure",
                        f"Item {quote(link_id)} appears more than once {where} but does not repeat; "
                        "keep one item (give several answers only if the question repeats)",
                        p,
                    )
                elif q.type != "group":
                    self.add(
                        "warning",
                        "structure",
                        f"Item {quote(link_id)} repeats as several items; put all its answers in one item "
                        "(SDC sdcqr-2)",
                        p,
                    )
            self.item(it, q, p, chain, parent_enabled)
        self.required(expected, seen, path, chain, parent_enabled, where)

    def required(
        self,
        expected: dict[str, int],
        seen: dict[str, list[JSON]],
        path: str,
        chain: tuple[int, ...],
        parent_enabled: bool,
        where: str,
    ) -> None:
        if not parent_enabled:
            return
        severity = "error" if self.completed else "warning"
        for link_id in expected:
            q = self.index.items[link_id]
            if not q.required or not self.enabled(q, chain):
                continue
            present = seen.get(link_id, [])
            if q.type == "group":
                if not any(as_list(it.get("item")) for it in present):
                    self.add(
                        severity,
                        "required",
                        f"Required group {quote(link_id)} {where} has no answered items; "
                        "answer at least one of its questions"
                        + ("" if self.completed else " before the response is completed"),
                        path,
                    )
            elif q.type != "display" and not any(
                any(
                    isinstance(a, dict) and any(k in a for k in VALUE_KEYS) for a in as_list(it.get("answer"))
                )
                for it in present
            ):
                self.add(
                    severity,
                    "required",
                    f"No answer for required item {quote(link_id)} {where}; answer it"
                    + ("" if self.completed else " before the response is completed"),
                    path,
                )

    def item(self, it: JSON, q: QItem, p: str, chain: tuple[int, ...], parent_enabled: bool) -> None:
        enabled = parent_enabled and self.enabled(q, chain)
        lid = q.label
        text = it.get("text")
        if text is not None and text != q.text:
            if q.text is None:
                msg = f"Item {lid}: has text but the Questionnaire item has none; remove the text"
            else:
                msg = (
                    f"Item {lid}: text differs from the Questionnaire's text; copy it exactly (in the "
                    "language of the Questionnaire the response points to) or leave it out"
                )
            self.add("error", "value", msg, f"{p}.text")
        answers = it.get("answer")
        children = it.get("item")
        if answers is not None and not isinstance(answers, list):
            self.add("error", "structure", f"Item {lid}: 'answer' must be a list", p)
            answers = None
        if children is not None and not isinstance(children, list):
            self.add("error", "structure", f"Item {lid}: 'item' must be a list", p)
            children = None
        if answers and children:
            self.add(
                "error",
                "invariant",
                f"Item {lid} has both answers and child items (qrs-1); child items of a question go in "
                "answer.item, of a group in item",
                p,
            )
        if not enabled and (answers or children):
            self.add(
                "error",
                "business-rule",
                f"Item {lid} has "
                + ("an answer" if answers else "child items")
                + ", even though it is not enabled (its enableWhen conditions are not met); "
                "remove it or correct the answers it depends on",
                p,
            )
            return
        inner = (*chain, id(it))
        if q.type == "display":
            if answers or children:
                self.add(
                    "error",
                    "structure",
                    f"Item {lid} is a display item; it cannot have answers or child items — remove them",
                    p,
                )
            return
        if q.type == "group":
            if answers:
                self.add(
                    "error",
                    "structure",
                    f"Item {lid} is a group; groups have no answers — put the questions in its item list",
                    f"{p}.answer[0]",
                )
            self.items(children, p, q, inner, enabled)
            return
        if children:
            self.add(
                "error",
                "structure",
                f"Item {lid} is a question; its child items belong in answer.item, not item"
                if q.children
                else f"Item {lid} is a question without child items in the Questionnaire; remove its items",
                f"{p}.item[0]",
            )
        if answers:
            self.question_answers(answers, q, p, inner, enabled)

    def question_answers(
        self, answers: list[Any], q: QItem, p: str, inner: tuple[int, ...], enabled: bool
    ) -> None:
        """The answers of a question item (at ``p``), and the items nested in them."""
        lid = q.label
        if len(answers) > 1 and not q.repeats:
            self.add(
                "error",
                "structure",
                f"Item {lid} has {len(answers)} answers but does not repeat; give exactly one",
                f"{p}.answer[1]",
            )
        keys_seen: set[tuple[Any, ...]] = set()
        for j, a in enumerate(answers):
            ap = f"{p}.answer[{j}]"
            key = self.answer(a, q, ap)
            if key is not None:
                if key in keys_seen:
                    self.add("warning", "duplicate", f"Item {lid}: the same answer is given twice", ap)
                keys_seen.add(key)
            if isinstance(a, dict) and ("item" in a or q.children):
                if a.get("item") and not q.children:
                    self.add(
                        "error",
                        "structure",
                        f"Item {lid}: answer has child items but the Questionnaire item has none; "
                        "remove them",
                        f"{ap}.item[0]",
                    )
                elif q.children:
                    self.items(a.get("item"), ap, q, inner, enabled)

    def answer(self, a: Any, q: QItem, ap: str) -> tuple[Any, ...] | None:
        lid = q.label
        if not isinstance(a, dict):
            self.add("error", "structure", f"Item {lid}: an answer must be an object", ap)
            return None
        value_keys = [k for k in a if k.startswith("value")]
        unknown = [k for k in value_keys if k not in VALUE_KEYS]
        if unknown:
            self.add(
                "error",
                "structure",
                f"Item {lid}: {quote(unknown[0])} is not an answer type of FHIR R4",
                ap,
            )
            return None
        if not value_keys:
            self.add(
                "error",
                "required",
                f"Item {lid}: the answer has no value; give a value or remove the empty answer",
                ap,
            )
            return None
        if len(value_keys) > 1:
            self.add("error", "structure", f"Item {lid}: an answer has exactly one value[x]", ap)
            return None
        key = value_keys[0]
        kind = VALUE_KEYS[key]
        value = a[key]
        vp = f"{ap}.{key}"
        allowed = ALLOWED_ANSWER_TYPES.get(q.type)
        if allowed is not None and kind not in allowed:
            names = " or ".join(f"value{k}" for k in sorted(allowed))
            self.add(
                "error",
                "value",
                f"Item {lid} is of type {q.type}; its answer value must be {names}, not {key}",
                vp,
            )
            return None
        problem = value_format_problem(kind, value)
        if problem:
            self.add("error", "value", f"Item {lid}: {key} {problem}", vp)
            return None
        self.answer_value(kind, key, value, q, vp)
        return value_key(kind, value)

    def answer_value(self, kind: str, key: str, value: Any, q: QItem, vp: str) -> None:
        """What a well-formed ``value[kind]`` answer of ``q`` must also be: an option, in range, safe text."""
        lid = q.label
        vkey = value_key(kind, value)
        if q.options is not None and not (q.type == "open-choice" and kind == "String"):
            if vkey not in q.options:
                if kind == "Coding":
                    what = f"the code {quote(value.get('code'))} (system {quote(value.get('system') or '')})"
                else:
                    what = f"this {key}"
                self.add(
                    "error",
                    "code-invalid",
                    f"Item {lid}: {what} is not one of the item's answer options; choose one of the options "
                    "(codes are matched on system and code)",
                    vp,
                )
        elif q.value_set_codes is not None and kind == "Coding":
            if (value.get("system") or "", value.get("code")) not in q.value_set_codes:
                self.add(
                    "error",
                    "code-invalid",
                    f"Item {lid}: the code {quote(value.get('code'))} is not in the item's answer value set",
                    vp,
                )
        if kind in ("Integer", "Decimal") and isinstance(value, (int, float)) and not isinstance(value, bool):
            if q.min_value is not None and value < q.min_value:
                self.add("error", "value", f"Item {lid}: the answer is below the minimum {q.min_value:g}", vp)
            if q.max_value is not None and value > q.max_value:
                self.add("error", "value", f"Item {lid}: the answer is above the maximum {q.max_value:g}", vp)
        if kind in ("String", "Uri"):
            for severity, code, msg in text_problems(value, self.options):
                self.add(severity, code, f"Item {lid}: the answer {msg}", vp)
            if q.max_length is not None and len(value) > q.max_length:
                self.add(
                    "error",
                    "too-long",
                    f"Item {lid}: the answer is {len(value)} characters; at most {q.max_length} are allowed",
                    vp,
                )
            if q.type == "string" and ("\n" in value or "\r" in value):
                self.add(
                    "warning",
                    "value",
                    f"Item {lid} is of type string; its answer contains a line break (type text is for "
                    "multi-line answers)",
                    vp,
                )
        elif kind == "Coding":
            for field in ("display", "code", "system"):
                s = value.get(field)
                if isinstance(s, str) and CONTROL_RE.search(s):
                    self.add(
                        "error",
                        "value",
                        f"Item {lid}: the Coding {field} contains control characters; remove them",
                        f"{vp}.{field}",
                    )


def validate_response(
    response: Any,
    questionnaire: JSON | QuestionnaireIndex,
    *,
    options: ValidationOptions | None = None,
) -> JSON:
    """Validate a QuestionnaireResponse against its Questionnaire; return an OperationOutcome (never raises).

    ``questionnaire`` is the Questionnaire dict (indexed once and cached) or a prepared
    :class:`QuestionnaireIndex`. The outcome has one issue per problem (errors, warnings), or the single
    "No problems found." information issue. Use :func:`fhir_safetyplan.errors.has_errors` to decide.
    """
    opts = options or DEFAULT_OPTIONS
    if isinstance(questionnaire, QuestionnaireIndex):
        index = questionnaire
    elif isinstance(questionnaire, dict) and questionnaire.get("resourceType") == "Questionnaire":
        index = index_questionnaire(questionnaire)
    else:
        return operation_outcome(
            [
                issue(
                    "fatal",
                    "processing",
                    "The Questionnaire to validate against is not a Questionnaire resource",
                )
            ]
        )
    if not isinstance(response, dict):
        return operation_outcome(
            [issue("fatal", "structure", "The input is not a JSON object; expected a QuestionnaireResponse")]
        )
    if response.get("resourceType") != "QuestionnaireResponse":
        return operation_outcome(
            [
                issue(
                    "fatal",
                    "structure",
                    f"The resourceType is {quote(response.get('resourceType'))}; "
                    "expected QuestionnaireResponse",
                    "QuestionnaireResponse.resourceType",
                )
            ]
        )
    status = response.get("status")
    run = _Run(index, opts, completed=isinstance(status, str) and status in COMPLETED)
    check_header(response, index, run)
    if opts.check_identifiers:
        check_identifiers(response, run)
    items = response.get("item")
    if index.has_conditions:
        run.collect(items, ())
    run.items(items, "QuestionnaireResponse", None, (), True)
    return operation_outcome(run.issues)


def assert_valid(
    response: Any,
    questionnaire: JSON | QuestionnaireIndex,
    *,
    options: ValidationOptions | None = None,
) -> None:
    """Raise :class:`ValidationFailed` (carrying the OperationOutcome) when the response has any error."""
    outcome = validate_response(response, questionnaire, options=options)
    if has_errors(outcome):
        errors = [i for i in outcome["issue"] if i.get("severity") in ("error", "fatal")]
        first = errors[0].get("diagnostics", "")
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise ValidationFailed(f"The QuestionnaireResponse is not valid: {first}{more}", outcome)


def enabled_in(response: JSON, questionnaire: JSON, link_id: str) -> bool:
    """Whether the Questionnaire item ``link_id`` is enabled in ``response`` (its conditions looked up anywhere in
    the response, as for a top-level item; an item with no enableWhen, or unknown, is enabled)."""
    index = index_questionnaire(questionnaire)
    q = index.items.get(link_id)
    if q is None or not q.conditions:
        return True
    run = _Run(index, DEFAULT_OPTIONS, completed=True)
    run.collect(response.get("item"), ())
    return run.enabled(q, ())
