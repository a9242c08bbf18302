"""What validation needs from one Questionnaire, indexed once and cached."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from fhir_safetyplan.errors import JSON
from fhir_safetyplan.validation.primitives import (
    ENABLE_WHEN_KEYS,
    MAX_DEPTH,
    VALUE_KEYS,
    as_list,
    quote,
    value_key,
)

MIN_VALUE = "http://hl7.org/fhir/StructureDefinition/minValue"
MAX_VALUE = "http://hl7.org/fhir/StructureDefinition/maxValue"


@dataclass(frozen=True, slots=True)
class Cond:
    question: str
    operator: str
    kind: str | None  # "Boolean", "Coding", … (None when the enableWhen has no usable answer[x])
    value: Any


@dataclass(slots=True)
class QItem:
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
    conditions: tuple[Cond, ...]
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
        self.items: dict[str, QItem] = {}
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
                _parse_condition(c) for c in as_list(it.get("enableWhen")) if isinstance(c, dict)
            )
            self.has_conditions = self.has_conditions or bool(conditions)
            options: frozenset[tuple[Any, ...]] | None = None
            if isinstance(it.get("answerOption"), list):
                keys = set()
                for opt in it["answerOption"]:
                    if isinstance(opt, dict):
                        for key, kind in VALUE_KEYS.items():
                            if key in opt:
                                k = value_key(kind, opt[key])
                                if k is not None:
                                    keys.add(k)
                options = frozenset(keys)
            vs = it.get("answerValueSet")
            max_length = it.get("maxLength")
            text = it.get("text")
            behavior = it.get("enableBehavior")
            item_type = it.get("type")
            q = QItem(
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
                label=quote(link_id),
            )
            self.items[link_id] = q
            order[link_id] = len(order)
            q.children = self._add(it.get("item"), link_id, value_sets, depth + 1)
        return order


def _bound(item: JSON, url: str) -> float | None:
    """The numeric minValue/maxValue extension of an item, if any."""
    for ext in as_list(item.get("extension")):
        if isinstance(ext, dict) and ext.get("url") == url:
            for key in ("valueInteger", "valueDecimal"):
                v = ext.get(key)
                if isinstance(v, (int, float)) and not isinstance(v, bool):
                    return float(v)
    return None


def _contained_value_sets(questionnaire: JSON) -> dict[str, frozenset[tuple[str, str]]]:
    """Contained ValueSets that list their codes (compose concepts or expansion), by id."""
    out: dict[str, frozenset[tuple[str, str]]] = {}
    for res in as_list(questionnaire.get("contained")):
        if (
            not isinstance(res, dict)
            or res.get("resourceType") != "ValueSet"
            or not isinstance(res.get("id"), str)
        ):
            continue
        codes: set[tuple[str, str]] = set()
        complete = True
        compose = res.get("compose")
        for inc in as_list(compose.get("include") if isinstance(compose, dict) else None):
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
        for c in as_list(expansion.get("contains") if isinstance(expansion, dict) else None):
            if isinstance(c, dict) and isinstance(c.get("code"), str):
                codes.add((str(c.get("system") or ""), c["code"]))
        if complete and codes:
            out[res["id"]] = frozenset(codes)
    return out


def _parse_condition(c: JSON) -> Cond:
    kind = value = None
    for key, k in ENABLE_WHEN_KEYS.items():
        if key in c:
            kind, value = k, c[key]
            break
    question = c.get("question")
    operator = c.get("operator")
    return Cond(
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
