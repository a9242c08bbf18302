"""Rules an input must pass beyond its Questionnaire's: R4 structure of a response received from elsewhere,
what may be written of it, and what this form's journal documentation needs."""

from __future__ import annotations

import re
from typing import Any

from pydantic import ValidationError

from fhir_safetyplan import fhir_r4
from fhir_safetyplan.errors import JSON, issue
from fhir_safetyplan.form_ids import Link
from fhir_safetyplan.response_answers import answers_by_link
from fhir_safetyplan.validation.primitives import MAX_DEPTH

#: At most this many structural issues are listed (a hostile input could otherwise produce thousands).
MAX_STRUCTURE_ISSUES = 50


def structure_issues(response: JSON) -> list[JSON]:
    """Problems outside the items of a QuestionnaireResponse received from elsewhere: its FHIR structure (checked
    with :func:`fhir_safetyplan.fhir_r4.questionnaire_response_model`: unknown elements, wrong types), dom-5,
    unknown modifier extensions, and what the journal documentation needs (subject, author)."""

    issues: list[JSON] = []
    try:
        fhir_r4.questionnaire_response_model().model_validate(response)
    except ValidationError as exc:
        for err in exc.errors(include_url=False, include_input=False)[:MAX_STRUCTURE_ISSUES]:
            loc = [p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-"))]
            where = "QuestionnaireResponse" + "".join(
                f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc if p != "__root__"
            )
            issues.append(
                issue(
                    "error", "structure", f"{where}: {err['msg']} (FHIR {fhir_r4.RELEASE} structure)", where
                )
            )
    except RecursionError:
        issues.append(issue("error", "too-costly", "the QuestionnaireResponse is nested too deeply"))
    for i, contained in enumerate(response.get("contained") or []):
        if isinstance(contained, dict) and isinstance(contained.get("meta"), dict):
            if contained["meta"].get("security"):
                where = f"QuestionnaireResponse.contained[{i}].meta.security"
                issues.append(
                    issue(
                        "error",
                        "invariant",
                        "dom-5: a contained resource cannot have security "
                        "labels; label the QuestionnaireResponse itself",
                        where,
                    )
                )

    _modifier_extensions(response, "QuestionnaireResponse", 0, issues)
    for element, what in (
        ("subject", "the patient, as a reference (Patient/<id>) or an FNR/D-number identifier"),
        ("author", "the clinician, as a reference or an HPR-number identifier"),
    ):
        value = response.get(element)
        if not isinstance(value, dict) or not (value.get("reference") or value.get("identifier")):
            issues.append(
                issue(
                    "error",
                    "required",
                    f"QuestionnaireResponse.{element} is missing: the journal documentation needs {what}",
                    f"QuestionnaireResponse.{element}",
                )
            )
    authored = response.get("authored")
    if not isinstance(authored, str) or not _DATETIME_TZ.fullmatch(authored):
        issues.append(
            issue(
                "error",
                "required" if authored is None else "value",
                "QuestionnaireResponse.authored must be the date and time of the conversation with a time zone "
                "(e.g. 2026-11-27T10:15:00+01:00): the journal note and the Provenance need it",
                "QuestionnaireResponse.authored",
            )
        )
    return issues


def _modifier_extensions(node: Any, path: str, depth: int, issues: list[JSON]) -> None:
    """An issue for every modifierExtension below ``node`` (they change meaning we do not understand)."""
    if depth > MAX_DEPTH or len(issues) >= MAX_STRUCTURE_ISSUES:
        return
    if isinstance(node, dict):
        if node.get("modifierExtension"):
            issues.append(
                issue(
                    "error",
                    "not-supported",
                    f"{path}.modifierExtension: a modifier extension "
                    "changes the meaning of its element and this module does not understand "
                    "it; remove it or convert the response",
                    f"{path}.modifierExtension",
                )
            )
        for key, value in node.items():
            if key != "modifierExtension":
                _modifier_extensions(value, f"{path}.{key}", depth + 1, issues)
    elif isinstance(node, list):
        for i, value in enumerate(node):
            _modifier_extensions(value, f"{path}[{i}]", depth + 1, issues)


_DATETIME_TZ = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})")


def documentation_issues(response: JSON) -> list[JSON]:
    """What this form's documentation needs beyond the Questionnaire's own rules (any input kind):
    only a finished conversation is documented, and a channel cannot be both safe and forbidden."""

    issues: list[JSON] = []
    status = response.get("status")
    if isinstance(status, str) and status not in ("completed", "amended"):
        issues.append(
            issue(
                "error",
                "business-rule",
                f"QuestionnaireResponse.status is {status[:20]!r}: only a completed or amended response is "
                "documented in the record; finish the form first (a response entered in error is not sent)",
                "QuestionnaireResponse.status",
            )
        )
    answers = answers_by_link(response)

    def codes_of(link: str) -> set[str]:
        return {
            str(a["valueCoding"].get("code"))
            for a in answers.get(link, [])
            if isinstance(a, dict) and isinstance(a.get("valueCoding"), dict)
        }

    both = sorted(codes_of(Link.SAFE_CHANNELS) & codes_of(Link.UNSAFE_CHANNELS))
    if both:
        issues.append(
            issue(
                "error",
                "business-rule",
                f"Item {Link.UNSAFE_CHANNELS}: the channel(s) {', '.join(both)} are also given as safe in "
                f"{Link.SAFE_CHANNELS}; a contact agreement cannot say both — correct one of them",
                f"QuestionnaireResponse.item.where(linkId='{Link.SAFE_CONTACT}')",
            )
        )
    return issues
