"""The published versions of the Questionnaire, and which one a response answers.

The current version (:data:`fhir_safetyplan.codes.QUESTIONNAIRE_VERSION`) is generated from ``content.toml``.
Earlier versions are frozen: the Questionnaires exactly as they were published, stored under
``data/published/<version>/`` with the default canonical base (a published version must not change; only the
canonical base is put in at load time, as for the current version). Responses to an earlier version keep
validating and extracting against the definitions they were made with, and are documented by the same code
as current responses (see ``CHANGELOG-content.md`` for what that means per version).
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources

from fhir_safetyplan import codes
from fhir_safetyplan.errors import JSON, ConfigError

#: Frozen earlier versions, oldest first.
FROZEN_VERSIONS = ("1.0.0",)
#: Every version this module validates, extracts and documents, oldest first.
KNOWN_VERSIONS = (*FROZEN_VERSIONS, codes.QUESTIONNAIRE_VERSION)


def check_version(version: str | None) -> str:
    """``version`` (default: the current one), or ConfigError naming the known versions."""
    if version is None:
        return codes.QUESTIONNAIRE_VERSION
    if version not in KNOWN_VERSIONS:
        raise ConfigError(
            f"Questionnaire version {version[:40]!r} is not one of this module's versions "
            f"({', '.join(KNOWN_VERSIONS)}); give one of them"
        )
    return version


@cache
def _frozen_text(version: str, q_id: str) -> str:
    path = resources.files("fhir_safetyplan").joinpath(f"data/published/{version}/Questionnaire-{q_id}.json")
    return path.read_text(encoding="utf-8")


@cache
def frozen_questionnaire(version: str, lang: str | None, base: str) -> JSON:
    """A frozen published Questionnaire with the canonical base ``base`` (shared instance: never mutate it)."""
    text = _frozen_text(version, codes.questionnaire_id(lang))
    if base != codes.DEFAULT_CANONICAL_BASE:
        # JSON-escape the base so that any character in it stays a valid string inside the document.
        text = text.replace(
            json.dumps(codes.DEFAULT_CANONICAL_BASE)[1:-1], json.dumps(base, ensure_ascii=False)[1:-1]
        )
    q: JSON = json.loads(text)
    return q


def server_id(q: JSON) -> str:
    """The id a Questionnaire has on a server or in the package: its own for the current version,
    ``<id>-<version>`` for a frozen one, so that every version can be held side by side."""
    return str(q["id"]) if q["version"] == codes.QUESTIONNAIRE_VERSION else f"{q['id']}-{q['version']}"


@cache
def published_questionnaires(base: str) -> list[JSON]:
    """Every Questionnaire of every version, with its server id, current version first (shared instances:
    never mutate them)."""
    # a cycle (questionnaire reads the frozen forms from here), and --help imports this module: lazy
    from fhir_safetyplan.questionnaire import shared_questionnaire

    out = []
    for version in reversed(KNOWN_VERSIONS):
        for lang in (None, *codes.LANGUAGES):
            q = shared_questionnaire(lang, base, version)
            out.append(q if server_id(q) == q["id"] else {**q, "id": server_id(q)})
    return out
