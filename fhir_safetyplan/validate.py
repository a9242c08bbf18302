"""Validate a QuestionnaireResponse against its Questionnaire (FHIR R4); check a Questionnaire's invariants.

:func:`validate_response` follows what the HL7 validator (used by HAPI) checks (research/spec.md §2.2), so
that a response we accept is also accepted by the server, plus checks that protect the journal (hostile free
text, Norwegian identifier check digits). It is generic: nothing in it knows our own Questionnaire.

Every problem becomes one OperationOutcome issue with ``expression`` = the FHIRPath of the offending element
(``QuestionnaireResponse.item[0].answer[0].item[2]``) and a message naming the linkId and saying what to do.
Messages never quote free-text answers or identity numbers (they may be logged or shown); Coding codes are
quoted, shortened.

:func:`check_questionnaire` checks the R4 invariants fhir.resources does not (que-0 … que-13, unique linkIds),
enableWhen targets, codes against given CodeSystems, and translation extensions.

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

import json
import math
import re
import threading
from dataclasses import dataclass
from datetime import date
from typing import Any, Literal

from fhir_safetyplan.errors import JSON, ValidationFailed, has_errors, issue, operation_outcome
from fhir_safetyplan.identifiers import check_identifier

__all__ = [
    "ALLOWED_ANSWER_TYPES",
    "MAX_DEPTH",
    "TRANSLATION_URL",
    "QuestionnaireIndex",
    "ValidationOptions",
    "assert_valid",
    "check_questionnaire",
    "index_questionnaire",
    "validate_response",
]

TRANSLATION_URL = "http://hl7.org/fhir/StructureDefinition/translation"

QR_STATUSES = frozenset({"in-progress", "completed", "amended", "entered-in-error", "stopped"})
_COMPLETED = frozenset({"completed", "amended"})

ITEM_TYPES = frozenset(
    {
        "group",
        "display",
        "boolean",
        "decimal",
        "integer",
        "date",
        "dateTime",
        "time",
        "string",
        "text",
        "url",
        "choice",
        "open-choice",
        "attachment",
        "reference",
        "quantity",
    }
)

#: The answer value[x] each R4 item type allows (research/spec.md §2.2).
ALLOWED_ANSWER_TYPES: dict[str, frozenset[str]] = {
    "boolean": frozenset({"Boolean"}),
    "decimal": frozenset({"Decimal"}),
    "integer": frozenset({"Integer"}),
    "date": frozenset({"Date"}),
    "dateTime": frozenset({"DateTime"}),
    "time": frozenset({"Time"}),
    "string": frozenset({"String"}),
    "text": frozenset({"String"}),
    "url": frozenset({"Uri"}),
    "attachment": frozenset({"Attachment"}),
    "reference": frozenset({"Reference"}),
    "quantity": frozenset({"Quantity"}),
    "choice": frozenset({"Coding", "Date", "Time", "Integer", "String"}),
    "open-choice": frozenset({"Coding", "Date", "Time", "Integer", "String"}),
}

_VALUE_KEYS: dict[str, str] = {
    f"value{t}": t
    for t in (
        "Boolean",
        "Decimal",
        "Integer",
        "Date",
        "DateTime",
        "Time",
        "String",
        "Uri",
        "Attachment",
        "Coding",
        "Quantity",
        "Reference",
    )
}
_ENABLE_WHEN_KEYS: dict[str, str] = {
    f"answer{t}": t
    for t in (
        "Boolean",
        "Decimal",
        "Integer",
        "Date",
        "DateTime",
        "Time",
        "String",
        "Coding",
        "Quantity",
        "Reference",
    )
}
_OPERATORS = frozenset({"exists", "=", "!=", ">", "<", ">=", "<="})

# R4 primitive formats (simplified from the spec's regexes; full dates are also checked against the calendar).
_DATE_RE = re.compile(r"\d{4}(-(0[1-9]|1[0-2])(-(0[1-9]|[12]\d|3[01]))?)?")
_DATETIME_RE = re.compile(
    r"\d{4}(-(0[1-9]|1[0-2])(-(0[1-9]|[12]\d|3[01])"
    r"(T([01]\d|2[0-3]):[0-5]\d:([0-5]\d|60)(\.\d+)?(Z|[+-]((0\d|1[0-3]):[0-5]\d|14:00)))?)?)?"
)
_TIME_RE = re.compile(r"([01]\d|2[0-3]):[0-5]\d:([0-5]\d|60)(\.\d+)?")
# Control characters a journal must never store (C0 except tab/newline/return, DEL, C1) and lone surrogates,
# which cannot even be encoded as UTF-8 and would break serialisation further down the pipeline.
# Control characters, lone surrogates and the noncharacters U+FFFE/U+FFFF (not allowed in XML, so they would make
# the XHTML narrative ill-formed and the server refuse the plan).
_CONTROL_RE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")
# A tag or comment opener as an HTML parser sees it ("<b", "</", "<!", "<?"); "a < b" and "<3" do not match.
_MARKUP_RE = re.compile(r"<[A-Za-z!/?]")
# Bidirectional embedding/override/isolate controls: they make text display in another order than it is stored
# (a journal note could show something other than what it says), and no clinical text needs them.
_BIDI_RE = re.compile("[\u202a-\u202e\u2066-\u2069]")
MIN_VALUE = "http://hl7.org/fhir/StructureDefinition/minValue"
MAX_VALUE = "http://hl7.org/fhir/StructureDefinition/maxValue"
_NAME_RE = re.compile(r"[A-Z]([A-Za-z0-9_]){0,254}")

_INT32 = (-(2**31), 2**31 - 1)
#: Deeper item nesting is refused: no real form needs it, and hostile input must not exhaust the stack.
MAX_DEPTH = 50


@dataclass(frozen=True, slots=True)
class ValidationOptions:
    """Tunable limits of :func:`validate_response`."""

    #: Longest accepted free-text answer (valueString), in characters.
    max_text_length: int = 10_000
    #: What a tag-like ``<x`` in free text is: an error (default: the journal stores plain text), a warning,
    #: or nothing ("ignore").
    markup: Literal["error", "warning", "ignore"] = "error"
    #: Check Norwegian identifiers (FNR, D-number, FHN, HPR, organisation number) on subject/source/author.
    check_identifiers: bool = True


_DEFAULT_OPTIONS = ValidationOptions()


# ---- the index


@dataclass(frozen=True, slots=True)
class _Cond:
    question: str
    operator: str
    kind: str | None  # "Boolean", "Coding", … (None when the enableWhen has no usable answer[x])
    value: Any


@dataclass(slots=True)
class _QItem:
    link_id: str
    type: str
    text: str | None
    required: bool
    repeats: bool
    max_length: int | None
    #: the minValue / maxValue extensions (R4 core) for integer and decimal items
    min_value: float | None
    max_value: float | None
    options: frozenset[tuple[Any, ...]] | None
    value_set_codes: frozenset[tuple[str, str]] | None
    conditions: tuple[_Cond, ...]
    behavior: str | None
    children: dict[str, int]
    parent: str | None
    #: the linkId as quoted in messages (precomputed: validation of a valid response formats nothing)
    label: str


class QuestionnaireIndex:
    """What validation needs from one Questionnaire, computed once (treat the Questionnaire as immutable)."""

    __slots__ = ("canonical", "has_conditions", "items", "root", "source", "url", "version")

    def __init__(self, questionnaire: JSON) -> None:
        """Index ``questionnaire``; tolerant of malformed content (:func:`check_questionnaire` reports it)."""
        self.source: JSON = questionnaire
        url = questionnaire.get("url")
        version = questionnaire.get("version")
        self.url: str | None = url if isinstance(url, str) else None
        self.version: str | None = version if isinstance(version, str) else None
        self.canonical: str | None = (
            None if self.url is None else (f"{self.url}|{self.version}" if self.version else self.url)
        )
        self.items: dict[str, _QItem] = {}
        self.has_conditions = False
        value_sets = _contained_value_sets(questionnaire)
        self.root: dict[str, int] = self._add(questionnaire.get("item"), None, value_sets, 0)

    def _add(
        self, raw: Any, parent: str | None, value_sets: dict[str, frozenset[tuple[str, str]]], depth: int
    ) -> dict[str, int]:
        order: dict[str, int] = {}
        if not isinstance(raw, list) or depth > MAX_DEPTH:
            return order
        for it in raw:
            if not isinstance(it, dict):
                continue
            link_id = it.get("linkId")
            if not isinstance(link_id, str) or link_id in self.items:
                continue  # duplicates and missing linkIds are reported by check_questionnaire
            conditions = tuple(
                _parse_condition(c) for c in _as_list(it.get("enableWhen")) if isinstance(c, dict)
            )
            self.has_conditions = self.has_conditions or bool(conditions)
            options: frozenset[tuple[Any, ...]] | None = None
            if isinstance(it.get("answerOption"), list):
                keys = set()
                for opt in it["answerOption"]:
                    if isinstance(opt, dict):
                        for key, kind in _VALUE_KEYS.items():
                            if key in opt:
                                k = _value_key(kind, opt[key])
                                if k is not None:
                                    keys.add(k)
                options = frozenset(keys)
            vs = it.get("answerValueSet")
            max_length = it.get("maxLength")
            text = it.get("text")
            behavior = it.get("enableBehavior")
            item_type = it.get("type")
            q = _QItem(
                link_id=link_id,
                type=item_type if isinstance(item_type, str) else "",
                text=text if isinstance(text, str) else None,
                required=it.get("required") is True,
                repeats=it.get("repeats") is True,
                max_length=max_length
                if isinstance(max_length, int) and not isinstance(max_length, bool)
                else None,
                min_value=_bound(it, MIN_VALUE),
                max_value=_bound(it, MAX_VALUE),
                options=options,
                value_set_codes=value_sets.get(vs[1:])
                if isinstance(vs, str) and vs.startswith("#")
                else None,
                conditions=conditions,
                behavior=behavior if isinstance(behavior, str) else None,
                children={},
                parent=parent,
                label=_quote(link_id),
            )
            self.items[link_id] = q
            order[link_id] = len(order)
            q.children = self._add(it.get("item"), link_id, value_sets, depth + 1)
        return order


def _bound(item: JSON, url: str) -> float | None:
    """The numeric minValue/maxValue extension of an item, if any."""
    for ext in _as_list(item.get("extension")):
        if isinstance(ext, dict) and ext.get("url") == url:
            for key in ("valueInteger", "valueDecimal"):
                v = ext.get(key)
                if isinstance(v, (int, float)) and not isinstance(v, bool):
                    return float(v)
    return None


def _contained_value_sets(questionnaire: JSON) -> dict[str, frozenset[tuple[str, str]]]:
    """Contained ValueSets that list their codes (compose concepts or expansion), by id."""
    out: dict[str, frozenset[tuple[str, str]]] = {}
    for res in _as_list(questionnaire.get("contained")):
        if (
            not isinstance(res, dict)
            or res.get("resourceType") != "ValueSet"
            or not isinstance(res.get("id"), str)
        ):
            continue
        codes: set[tuple[str, str]] = set()
        complete = True
        compose = res.get("compose")
        for inc in _as_list(compose.get("include") if isinstance(compose, dict) else None):
            if not isinstance(inc, dict):
                continue
            concepts = inc.get("concept")
            if not isinstance(concepts, list) or inc.get("filter") or inc.get("valueSet"):
                complete = (
                    False  # a whole CodeSystem or a filter: cannot be checked without a terminology server
                )
                continue
            for c in concepts:
                if isinstance(c, dict) and isinstance(c.get("code"), str):
                    codes.add((str(inc.get("system") or ""), c["code"]))
        expansion = res.get("expansion")
        for c in _as_list(expansion.get("contains") if isinstance(expansion, dict) else None):
            if isinstance(c, dict) and isinstance(c.get("code"), str):
                codes.add((str(c.get("system") or ""), c["code"]))
        if complete and codes:
            out[res["id"]] = frozenset(codes)
    return out


def _parse_condition(c: JSON) -> _Cond:
    kind = value = None
    for key, k in _ENABLE_WHEN_KEYS.items():
        if key in c:
            kind, value = k, c[key]
            break
    question = c.get("question")
    operator = c.get("operator")
    return _Cond(
        question=question if isinstance(question, str) else "",
        operator=operator if isinstance(operator, str) else "",
        kind=kind,
        value=value,
    )


_CACHE: dict[tuple[int, str | None], QuestionnaireIndex] = {}
_CACHE_LOCK = threading.Lock()
_CACHE_SIZE = 64


def index_questionnaire(questionnaire: JSON) -> QuestionnaireIndex:
    """The (cached) :class:`QuestionnaireIndex` of ``questionnaire``.

    Cached by object identity and ``url|version``; the cache holds the Questionnaire itself, so an id cannot
    be reused by another object while its entry lives. Mutating a Questionnaire after validating with it is
    not detected: build a new dict, or pass an explicit :class:`QuestionnaireIndex`.
    """
    url, version = questionnaire.get("url"), questionnaire.get("version")
    key = (id(questionnaire), f"{url}|{version}")
    hit = _CACHE.get(key)
    if hit is not None and hit.source is questionnaire:
        return hit
    idx = QuestionnaireIndex(questionnaire)
    with _CACHE_LOCK:
        if len(_CACHE) >= _CACHE_SIZE:
            _CACHE.pop(next(iter(_CACHE)))
        _CACHE[key] = idx
    return idx


# ---- small helpers


def _as_list(v: Any) -> list[Any]:
    return v if isinstance(v, list) else []


def _quote(v: Any, limit: int = 60) -> str:
    """A short, escaped rendering of a code or linkId for a message (never used for free text)."""
    s = v if isinstance(v, str) else repr(v)
    if len(s) > limit:
        s = s[:limit] + "…"
    return json.dumps(s, ensure_ascii=False)


def _value_key(kind: str, value: Any) -> tuple[Any, ...] | None:
    """A hashable identity for an answer / option value: Codings by system + code (display ignored)."""
    key: tuple[Any, ...]
    if kind == "Coding":
        if not isinstance(value, dict):
            return None
        key = ("Coding", value.get("system") or "", value.get("code"))
    elif kind == "Reference":
        if not isinstance(value, dict):
            return None
        key = ("Reference", value.get("reference"))
    elif kind in ("Quantity", "Attachment"):
        return None
    elif kind == "Decimal" and isinstance(value, (int, float)) and not isinstance(value, bool):
        key = ("Decimal", float(value))
    else:
        key = (kind, value)
    try:
        hash(key)
    except TypeError:  # malformed content (a list where a code should be): it matches nothing
        return None
    return key


def _value_format_problem(kind: str, value: Any) -> str | None:
    """Why ``value`` is not a valid R4 ``value[kind]`` (None when it is)."""
    if kind == "Boolean":
        return None if isinstance(value, bool) else "must be true or false"
    if kind == "Integer":
        if isinstance(value, bool) or not isinstance(value, int):
            return "must be a whole number"
        return None if _INT32[0] <= value <= _INT32[1] else "is outside the 32-bit integer range"
    if kind == "Decimal":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return "must be a number"
        return None if math.isfinite(value) else "must be a finite number"
    if kind in ("String", "Uri"):
        if not isinstance(value, str):
            return "must be a string"
        if not value:
            return "must not be empty (leave the answer out instead)"
        if kind == "Uri" and any(ch.isspace() for ch in value):
            return "must not contain whitespace"
        return None
    if kind in ("Date", "DateTime"):
        if not isinstance(value, str) or not (_DATE_RE if kind == "Date" else _DATETIME_RE).fullmatch(value):
            return "must be an ISO date (YYYY, YYYY-MM or YYYY-MM-DD)" + (
                "" if kind == "Date" else ", or a date-time with a time zone (YYYY-MM-DDThh:mm:ss+01:00)"
            )
        if len(value) >= 10:
            try:
                date(int(value[0:4]), int(value[5:7]), int(value[8:10]))
            except ValueError:
                return "is not a date in the calendar"
        return None
    if kind == "Time":
        return None if isinstance(value, str) and _TIME_RE.fullmatch(value) else "must be a time hh:mm:ss"
    if kind == "Coding":
        if not isinstance(value, dict):
            return "must be a Coding object"
        for k in ("system", "code", "display", "version"):
            if k in value and not isinstance(value[k], str):
                return f"has a {k} that is not a string"
        return None if value.get("code") or value.get("system") else "needs a system and a code"
    if kind == "Quantity":
        if not isinstance(value, dict):
            return "must be a Quantity object"
        v = value.get("value")
        if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float))):
            return "has a value that is not a number"
        return None
    if kind in ("Reference", "Attachment"):
        return None if isinstance(value, dict) else f"must be a {kind} object"
    return None


def _text_problems(
    s: str, options: ValidationOptions
) -> list[tuple[str, str, str]]:  # (severity, code, message fragment)
    out: list[tuple[str, str, str]] = []
    if _CONTROL_RE.search(s):
        out.append(
            (
                "error",
                "value",
                "contains control characters (only tab, newline and carriage return are allowed); "
                "remove them — the text may have been pasted from another program",
            )
        )
    if len(s) > options.max_text_length:
        out.append(
            (
                "error",
                "too-long",
                f"is {len(s)} characters long; at most {options.max_text_length} are accepted — shorten it",
            )
        )
    if _BIDI_RE.search(s):
        out.append(
            (
                "error",
                "value",
                "contains bidirectional override characters (U+202A-U+202E, U+2066-U+2069), which make the "
                "text display differently from what it says; remove them",
            )
        )
    if options.markup != "ignore" and _MARKUP_RE.search(s):
        out.append(
            (
                options.markup,
                "security",
                "contains markup (something like an HTML tag '<…'); "
                "write plain text without '<' before a letter",
            )
        )
    return out


# ---- enableWhen answer comparisons


def _num(kind: str, v: Any) -> float | None:
    if kind in ("Integer", "Decimal") and isinstance(v, (int, float)) and not isinstance(v, bool):
        return float(v)
    return None


def _equal(c: _Cond, kind: str, v: Any) -> bool:
    if c.kind is None:
        return False
    if c.kind in ("Integer", "Decimal"):
        a, b = _num(c.kind, c.value), _num(kind, v)
        return a is not None and a == b
    if c.kind != kind:
        return False
    if kind == "Coding":
        if not isinstance(c.value, dict) or not isinstance(v, dict):
            return False
        if c.value.get("code") != v.get("code"):
            return False
        return not c.value.get("system") or c.value.get("system") == v.get("system")
    if kind == "Quantity":
        return _quantity_order(c.value, v) == 0
    if kind == "Reference":
        return (
            isinstance(c.value, dict)
            and isinstance(v, dict)
            and c.value.get("reference") == v.get("reference")
        )
    return bool(c.value == v and type(c.value) is type(v))


def _quantity_order(a: Any, b: Any) -> int | None:
    if not isinstance(a, dict) or not isinstance(b, dict):
        return None
    ua = (a.get("system"), a.get("code")) if a.get("code") else (None, a.get("unit"))
    ub = (b.get("system"), b.get("code")) if b.get("code") else (None, b.get("unit"))
    if ua != ub:
        return None
    x, y = _num("Decimal", a.get("value")), _num("Decimal", b.get("value"))
    if x is None or y is None:
        return None
    return (y > x) - (y < x)


def _order(c: _Cond, kind: str, v: Any) -> int | None:
    """Sign of (answer - condition value), or None when they cannot be ordered."""
    if c.kind in ("Integer", "Decimal"):
        a, b = _num(c.kind, c.value), _num(kind, v)
        if a is None or b is None:
            return None
        return (b > a) - (b < a)
    if c.kind != kind:
        return None
    if kind in ("Date", "DateTime", "Time", "String"):
        if not isinstance(c.value, str) or not isinstance(v, str):
            return None
        return (v > c.value) - (v < c.value)
    if kind == "Quantity":
        return _quantity_order(c.value, v)
    return None


_ORDER_OPS = {
    ">": lambda s: s > 0,
    "<": lambda s: s < 0,
    ">=": lambda s: s >= 0,
    "<=": lambda s: s <= 0,
}


# ---- validation


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
        for it in _as_list(items):
            if not isinstance(it, dict):
                continue
            link_id = it.get("linkId")
            inner = (*chain, id(it))
            values: list[tuple[str, Any]] = []
            for a in _as_list(it.get("answer")):
                if not isinstance(a, dict):
                    continue
                for key, kind in _VALUE_KEYS.items():
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

    def enabled(self, q: _QItem, chain: tuple[int, ...]) -> bool:
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

    def condition(self, c: _Cond, chain: tuple[int, ...]) -> bool:
        answers = self.lookup(c.question, chain)
        if c.operator == "exists":
            return isinstance(c.value, bool) and bool(answers) == c.value
        if not answers:
            return False
        if c.operator == "=":
            return any(_equal(c, k, v) for k, v in answers)
        if c.operator == "!=":
            return not any(_equal(c, k, v) for k, v in answers)
        test = _ORDER_OPS.get(c.operator)
        if test is None:
            return False
        for k, v in answers:
            sign = _order(c, k, v)
            if sign is not None and test(sign):
                return True
        return False

    # -- pass 2: structure and answers
    def items(
        self,
        raw: Any,
        path: str,
        parent: _QItem | None,
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
        for i, it in enumerate(_as_list(raw)):
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
                    f"Item {_quote(link_id)}: linkId not found in the Questionnaire; remove the item or "
                    "correct the linkId (is the response for another Questionnaire version?)",
                    p,
                )
                continue
            if link_id not in expected:
                home = f"under item {_quote(q.parent)}" if q.parent else "at the top level"
                self.add(
                    "error",
                    "structure",
                    f"Item {_quote(link_id)} is in the wrong place: it is {where} but belongs {home}",
                    p,
                )
                continue
            pos = expected[link_id]
            if pos < last:
                self.add(
                    "error",
                    "structure",
                    f"Item {_quote(link_id)} is out of order; "
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
                        f"Item {_quote(link_id)} appears more than once {where} but does not repeat; "
                        "keep one item (give several answers only if the question repeats)",
                        p,
                    )
                elif q.type != "group":
                    self.add(
                        "warning",
                        "structure",
                        f"Item {_quote(link_id)} repeats as several items; put all its answers in one item "
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
                if not any(_as_list(it.get("item")) for it in present):
                    self.add(
                        severity,
                        "required",
                        f"Required group {_quote(link_id)} {where} has no answered items; "
                        "answer at least one of its questions"
                        + ("" if self.completed else " before the response is completed"),
                        path,
                    )
            elif q.type != "display" and not any(
                any(
                    isinstance(a, dict) and any(k in a for k in _VALUE_KEYS)
                    for a in _as_list(it.get("answer"))
                )
                for it in present
            ):
                self.add(
                    severity,
                    "required",
                    f"No answer for required item {_quote(link_id)} {where}; answer it"
                    + ("" if self.completed else " before the response is completed"),
                    path,
                )

    def item(self, it: JSON, q: _QItem, p: str, chain: tuple[int, ...], parent_enabled: bool) -> None:
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
        if not answers:
            return
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

    def answer(self, a: Any, q: _QItem, ap: str) -> tuple[Any, ...] | None:
        lid = q.label
        if not isinstance(a, dict):
            self.add("error", "structure", f"Item {lid}: an answer must be an object", ap)
            return None
        value_keys = [k for k in a if k.startswith("value")]
        unknown = [k for k in value_keys if k not in _VALUE_KEYS]
        if unknown:
            self.add(
                "error",
                "structure",
                f"Item {lid}: {_quote(unknown[0])} is not an answer type of FHIR R4",
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
        kind = _VALUE_KEYS[key]
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
        problem = _value_format_problem(kind, value)
        if problem:
            self.add("error", "value", f"Item {lid}: {key} {problem}", vp)
            return None
        vkey = _value_key(kind, value)
        if q.options is not None and not (q.type == "open-choice" and kind == "String"):
            if vkey not in q.options:
                if kind == "Coding":
                    what = (
                        f"the code {_quote(value.get('code'))} (system {_quote(value.get('system') or '')})"
                    )
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
                    f"Item {lid}: the code {_quote(value.get('code'))} is not in the item's answer value set",
                    vp,
                )
        if kind in ("Integer", "Decimal") and isinstance(value, (int, float)) and not isinstance(value, bool):
            if q.min_value is not None and value < q.min_value:
                self.add("error", "value", f"Item {lid}: the answer is below the minimum {q.min_value:g}", vp)
            if q.max_value is not None and value > q.max_value:
                self.add("error", "value", f"Item {lid}: the answer is above the maximum {q.max_value:g}", vp)
        if kind in ("String", "Uri"):
            for severity, code, msg in _text_problems(value, self.options):
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
                if isinstance(s, str) and _CONTROL_RE.search(s):
                    self.add(
                        "error",
                        "value",
                        f"Item {lid}: the Coding {field} contains control characters; remove them",
                        f"{vp}.{field}",
                    )
        return vkey


def _check_identifiers(response: JSON, run: _Run) -> None:
    for field in ("subject", "source", "author"):
        ref = response.get(field)
        if not isinstance(ref, dict):
            continue
        ident = ref.get("identifier")
        if isinstance(ident, dict):
            problem = check_identifier(ident.get("system"), ident.get("value"))
            if problem:
                run.add(
                    "error",
                    "value",
                    f"{field}.identifier: {problem}",
                    f"QuestionnaireResponse.{field}.identifier.value",
                )
        reference = ref.get("reference")
        # a conditional reference inside a transaction, e.g. "Patient?identifier=<system>|<value>"
        if isinstance(reference, str) and "?identifier=" in reference:
            token = reference.split("?identifier=", 1)[1].split("&", 1)[0]
            if "|" in token:
                system, value = token.split("|", 1)
                problem = check_identifier(system, value)
                if problem:
                    run.add(
                        "error",
                        "value",
                        f"{field}.reference: {problem}",
                        f"QuestionnaireResponse.{field}.reference",
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
    opts = options or _DEFAULT_OPTIONS
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
                    f"The resourceType is {_quote(response.get('resourceType'))}; "
                    "expected QuestionnaireResponse",
                    "QuestionnaireResponse.resourceType",
                )
            ]
        )
    status = response.get("status")
    run = _Run(index, opts, completed=isinstance(status, str) and status in _COMPLETED)
    _check_header(response, index, run)
    if opts.check_identifiers:
        _check_identifiers(response, run)
    items = response.get("item")
    if index.has_conditions:
        run.collect(items, ())
    run.items(items, "QuestionnaireResponse", None, (), True)
    return operation_outcome(run.issues)


def _check_header(response: JSON, index: QuestionnaireIndex, run: _Run) -> None:
    status = response.get("status")
    if status is None:
        run.add(
            "error",
            "required",
            "The response has no status; set it to in-progress or completed",
            "QuestionnaireResponse.status",
        )
    elif not isinstance(status, str) or status not in QR_STATUSES:
        run.add(
            "error",
            "code-invalid",
            f"The status {_quote(status)} is not valid; use one of {', '.join(sorted(QR_STATUSES))}",
            "QuestionnaireResponse.status",
        )
    canonical = response.get("questionnaire")
    where = "QuestionnaireResponse.questionnaire"
    if canonical is None:
        run.add(
            "error",
            "required",
            f"The response does not say which Questionnaire it answers; set questionnaire to "
            f"{_quote(index.canonical or '<url>|<version>', 300)}",
            where,
        )
        return
    if not isinstance(canonical, str):
        run.add("error", "structure", "questionnaire must be a canonical URL string (url|version)", where)
        return
    url, _, version = canonical.partition("|")
    if url.startswith("#") and url[1:] == index.source.get("id"):
        return  # a contained Questionnaire
    if url != index.url:
        run.add(
            "error",
            "business-rule",
            f"The response is for Questionnaire {_quote(url, 300)}, not {_quote(index.url, 300)}; "
            "validate it against the Questionnaire it answers",
            where,
        )
    elif not version and index.version:
        run.add(
            "warning",
            "business-rule",
            "The response does not name the Questionnaire version; "
            f"set questionnaire to {_quote(index.canonical, 300)}",
            where,
        )
    elif version and version != index.version:
        run.add(
            "error",
            "business-rule",
            f"The response is for version {_quote(version, 300)} of the Questionnaire, not "
            f"{_quote(index.version, 300)}; validate it against that version (or convert it)",
            where,
        )


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


# ---- check_questionnaire


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
        for c in _as_list(concepts):
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
    for ext in _as_list(element.get("extension")):
        if not isinstance(ext, dict) or ext.get("url") != TRANSLATION_URL:
            continue
        lang = content = None
        for sub in _as_list(ext.get("extension")):
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
                f"{what}: code {_quote(code)} is not defined in CodeSystem {system}; "
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
        for i, it in enumerate(_as_list(raw)):
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
                f"que-2: linkId {_quote(link_id)} is used more than once; make it unique",
                p,
            )
        else:
            position[link_id] = n

    for n, (link_id, it, p) in enumerate(order):
        lid = _quote(link_id)
        t = it.get("type")
        children = _as_list(it.get("item"))
        has_options = "answerOption" in it
        initials = _as_list(it.get("initial"))
        if not isinstance(t, str) or t not in ITEM_TYPES:
            add("error", "code-invalid", f"Item {lid}: type {_quote(t)} is not an R4 item type", f"{p}.type")
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
        conditions = _as_list(it.get("enableWhen"))
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
        for j, coding in enumerate(_as_list(it.get("code"))):
            check_coding(coding, f"{p}.code[{j}]", f"Item {lid} code")
        for j, opt in enumerate(_as_list(it.get("answerOption"))):
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
    lid = _quote(link_id)
    if not isinstance(c, dict):
        return [issue("error", "structure", f"Item {lid}: enableWhen {j} is not an object", ep)]
    operator = c.get("operator")
    answer_keys = [k for k in c if k.startswith("answer")]
    kind = _ENABLE_WHEN_KEYS.get(answer_keys[0]) if len(answer_keys) == 1 else None
    if not isinstance(operator, str) or operator not in _OPERATORS:
        out.append(
            issue(
                "error", "code-invalid", f"Item {lid}: enableWhen operator {_quote(operator)} is unknown", ep
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
                f"Item {lid}: enableWhen {j} refers to question {_quote(question)}, which does not exist",
                f"{ep}.question",
            )
        )
        return out
    if target_pos >= n:
        out.append(
            issue(
                "error",
                "business-rule",
                f"Item {lid}: enableWhen {j} refers to question {_quote(question)}, which does not come "
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
        wanted = _value_key("Coding", coding)
        keys = {
            _value_key("Coding", o.get("valueCoding"))
            for o in target["answerOption"]
            if isinstance(o, dict) and "valueCoding" in o
        }
        if keys and wanted not in keys:
            out.append(
                issue(
                    "error",
                    "code-invalid",
                    f"Item {lid}: enableWhen {j} compares with a code that is not an answer option of "
                    f"{_quote(question)}, so it can never match",
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
