"""The Questionnaire, generated from the clinical content (``content.toml``).

Two shapes, same linkIds and codes:

- the multilingual form (``lang=None``, id ``sikkerhetsplan``): bokmål text with nynorsk and English translation
  extensions on every text — the SDC-endorsed, portable markup;
- one form per language (``lang="nb"|"nn"|"en"``, id ``sikkerhetsplan-<lang>``): what renderers such as Refero,
  LHC-Forms and Smart Forms actually display, and what makes a response's item text equal its Questionnaire's
  (the HL7 validator demands it).

Answers are inline ``answerOption`` codings (renderers work with no terminology server). The form carries SDC 4.0
template-based extraction markup: a contained CarePlan template, referenced by ``templateExtract`` on the ``plan``
group item (not on the root: the independent npm engine ignores root-level templates), with one activity per
checklist item answered "No" and one per concrete action agreed. Every value in the template is a
``templateExtractValue`` expression (literals included) with no static placeholder beside it: the npm engine merges
static nested template data shallowly and keeps a placeholder whose expression finds nothing.
"""

from __future__ import annotations

import copy
from functools import cache

from fhir_safetyplan import codes, population
from fhir_safetyplan.content import load
from fhir_safetyplan.errors import JSON, ConfigError
from fhir_safetyplan.form_builder import _Builder
from fhir_safetyplan.form_ids import CS_PLAN
from fhir_safetyplan.versions import KNOWN_VERSIONS, check_version, frozen_questionnaire

# The form's ids live in form_ids and the builder in form_builder: import them from there.
__all__ = [
    "ANSWER_WORDS",
    "all_questionnaires",
    "build_questionnaire",
    "questionnaire_for",
    "shared_questionnaire",
]


@cache
def _cached(base: str, lang: str | None) -> JSON:
    builder = _Builder(load(), base, lang)
    q = builder.build()
    return population.add_markup(q, builder.not_carried, builder.c, codes.codesystem_url(base, CS_PLAN))


def build_questionnaire(
    lang: str | None = None, canonical_base: str | None = None, version: str | None = None
) -> JSON:
    """The Questionnaire: multilingual (``lang=None``) or in one language (nb, nn, en), in ``version``
    (default: the current one; earlier versions are the frozen published copies). Returns a fresh copy."""
    return copy.deepcopy(shared_questionnaire(lang, canonical_base, version))


def shared_questionnaire(
    lang: str | None = None, canonical_base: str | None = None, version: str | None = None
) -> JSON:
    """Like :func:`build_questionnaire` but the process-wide cached instance: never mutate it.

    The hot path (validation, extraction) uses it so per-Questionnaire indexes and compiled expressions are
    reused across plans instead of being rebuilt for a fresh copy each time.
    """

    if lang is not None and lang not in codes.LANGUAGES:
        raise ConfigError(f"language {lang!r} is not supported; use one of nb, nn, en")
    version = check_version(version)
    base = codes.canonical_base(canonical_base)
    if version != codes.QUESTIONNAIRE_VERSION:
        return frozen_questionnaire(version, lang, base)
    return _cached(base, lang)


def all_questionnaires(canonical_base: str | None = None, version: str | None = None) -> list[JSON]:
    """The multilingual Questionnaire and one per language (of ``version``, default the current one)."""
    return [build_questionnaire(lang, canonical_base, version) for lang in (None, *codes.LANGUAGES)]


def questionnaire_for(canonical: str, canonical_base: str | None = None) -> JSON | None:
    """Our Questionnaire whose ``url|version`` is ``canonical`` (a bare ``url``: the current version), or None
    (the shared instance: never mutate it)."""

    url, _, version = canonical.partition("|")
    if version and version not in KNOWN_VERSIONS:
        return None
    for lang in (None, *codes.LANGUAGES):
        q = shared_questionnaire(lang, canonical_base, version or None)
        if q["url"] == url:
            return q
    return None


# The answer codes (in our answer CodeSystem; content 1.0.0: the HL7 systems with the same codes) an integration
# engine may send as plain words in an answers document (content.toml ``[answers.*] words``).
ANSWER_WORDS: dict[str, str] = load().answer_codes()
