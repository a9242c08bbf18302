"""The header of a QuestionnaireResponse: status, which Questionnaire it answers, and Norwegian identifiers."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fhir_safetyplan.errors import JSON
from fhir_safetyplan.identifiers import check_identifier
from fhir_safetyplan.validation.index import QuestionnaireIndex
from fhir_safetyplan.validation.primitives import quote

if TYPE_CHECKING:
    from fhir_safetyplan.validation.response import _Run

QR_STATUSES = frozenset({"in-progress", "completed", "amended", "entered-in-error", "stopped"})


def check_identifiers(response: JSON, run: _Run) -> None:
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


def check_header(response: JSON, index: QuestionnaireIndex, run: _Run) -> None:
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
            f"The status {quote(status)} is not valid; use one of {', '.join(sorted(QR_STATUSES))}",
            "QuestionnaireResponse.status",
        )
    canonical = response.get("questionnaire")
    where = "QuestionnaireResponse.questionnaire"
    if canonical is None:
        run.add(
            "error",
            "required",
            f"The response does not say which Questionnaire it answers; set questionnaire to "
            f"{quote(index.canonical or '<url>|<version>', 300)}",
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
            f"The response is for Questionnaire {quote(url, 300)}, not {quote(index.url, 300)}; "
            "validate it against the Questionnaire it answers",
            where,
        )
    elif not version and index.version:
        run.add(
            "warning",
            "business-rule",
            "The response does not name the Questionnaire version; "
            f"set questionnaire to {quote(index.canonical, 300)}",
            where,
        )
    elif version and version != index.version:
        run.add(
            "error",
            "business-rule",
            f"The response is for version {quote(version, 300)} of the Questionnaire, not "
            f"{quote(index.version, 300)}; validate it against that version (or convert it)",
            where,
        )
