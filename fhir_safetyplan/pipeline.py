"""The whole flow for one plan, as plain functions: input → QuestionnaireResponse → validate → extract →
document → transaction Bundle. No network. The command line, the HTTP service and library users call these.

An *input* is either a QuestionnaireResponse (from any SDC form renderer) or an answers document (see
:mod:`fhir_safetyplan.answers`), told apart by content.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fhir_safetyplan import codes
from fhir_safetyplan.answers import context_of, parse_answers, submission_id, to_response
from fhir_safetyplan.bundle import transaction
from fhir_safetyplan.document import Documentation, DocumentContext
from fhir_safetyplan.document import document as make_documentation
from fhir_safetyplan.errors import JSON, InputError, ValidationFailed, has_errors, issue, operation_outcome
from fhir_safetyplan.ids import NAMESPACE, derived_id, plan_scope
from fhir_safetyplan.jsoninput import MAX_INPUT_BYTES as MAX_INPUT_BYTES
from fhir_safetyplan.jsoninput import lone_surrogate_issues
from fhir_safetyplan.jsoninput import parse_json as parse_json
from fhir_safetyplan.questionnaire import questionnaire_for
from fhir_safetyplan.sections import section_issues
from fhir_safetyplan.validation import documentation_issues, structure_issues, validate_response
from fhir_safetyplan.versions import KNOWN_VERSIONS

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Prepared:
    """A response ready for extraction and documentation, with its Questionnaire and context."""

    response: JSON
    questionnaire: JSON
    context: DocumentContext
    submission: str


def kind_of(data: Any) -> str:
    """``"QuestionnaireResponse"`` or ``"answers"``; InputError for anything else."""
    if isinstance(data, dict):
        rtype = data.get("resourceType")
        if rtype == "QuestionnaireResponse":
            return "QuestionnaireResponse"
        if rtype is None and "answers" in data:
            return "answers"
        if rtype is not None:
            raise InputError(
                f"resourceType {str(rtype)[:40]!r} is not accepted",
                operation_outcome(
                    [
                        issue(
                            "error",
                            "not-supported",
                            f"expected a QuestionnaireResponse or an answers document, got "
                            f"resourceType {str(rtype)[:40]!r}",
                            "resourceType",
                        )
                    ]
                ),
            )
    raise InputError(
        "input is neither a QuestionnaireResponse nor an answers document",
        operation_outcome(
            [
                issue(
                    "error",
                    "structure",
                    "expected a JSON object: a QuestionnaireResponse (resourceType "
                    "'QuestionnaireResponse') or an answers document (with 'answers', 'patient', 'clinician'); "
                    "see 'safetyplan schema'",
                )
            ]
        ),
    )


def respond(data: Any, canonical_base: str | None = None) -> JSON:
    """A QuestionnaireResponse from an answers document (a QuestionnaireResponse is returned as it is)."""
    if kind_of(data) == "QuestionnaireResponse":
        return dict(data)

    return to_response(parse_answers(data), canonical_base)


def questionnaire_of(response: JSON, canonical_base: str | None = None) -> JSON:
    """Our Questionnaire the response points at (``questionnaire`` = url|version)."""

    canonical = response.get("questionnaire")
    if not isinstance(canonical, str) or not canonical:
        raise InputError(
            "the response does not say which Questionnaire it answers",
            operation_outcome(
                [
                    issue(
                        "error",
                        "required",
                        "QuestionnaireResponse.questionnaire is missing: set it to the form's "
                        "url|version, e.g. " + _known(canonical_base)[0],
                        "QuestionnaireResponse.questionnaire",
                    )
                ]
            ),
        )
    q = questionnaire_for(canonical, canonical_base)
    if q is None:
        known = ", ".join(_known(canonical_base))
        raise InputError(
            "unknown Questionnaire",
            operation_outcome(
                [
                    issue(
                        "error",
                        "not-found",
                        f"QuestionnaireResponse.questionnaire {canonical[:200]!r} is not one of this "
                        f"module's forms ({known}); check the url, the version and the canonical base "
                        "(--canonical-base / SAFETYPLAN_CANONICAL_BASE)",
                        "QuestionnaireResponse.questionnaire",
                    )
                ]
            ),
        )
    return q


def _known(canonical_base: str | None) -> list[str]:
    """The current forms' url|version first (the example in messages), then the earlier versions'."""

    base = codes.canonical_base(canonical_base)
    return [
        f"{codes.questionnaire_url(base, lang)}|{version}"
        for version in reversed(KNOWN_VERSIONS)
        for lang in (None, *codes.LANGUAGES)
    ]


def _combine(*issue_lists: list[JSON]) -> JSON:
    issues = [
        i
        for lst in issue_lists
        for i in lst
        if not (i.get("severity") == "information" and i.get("code") == "informational")
    ]
    return operation_outcome(issues)


def validate(data: Any, canonical_base: str | None = None) -> JSON:
    """The OperationOutcome of validating an input (answers document or QuestionnaireResponse)."""
    unstorable = lone_surrogate_issues(data)
    if unstorable:
        return operation_outcome(unstorable)
    try:
        external = kind_of(data) == "QuestionnaireResponse"
        response = respond(data, canonical_base)
        questionnaire = questionnaire_of(response, canonical_base)
    except InputError as exc:
        return exc.outcome
    return _check(response, questionnaire, external)


def _check(response: JSON, questionnaire: JSON, external: bool) -> JSON:
    """Every rule an input must pass: the Questionnaire's, this form's documentation rules, and for a response
    received from elsewhere its R4 structure and what may be written of it."""

    checked = validate_response(response, questionnaire)
    return _combine(
        structure_issues(response) if external else [],
        checked["issue"],
        section_issues(response, questionnaire),
        documentation_issues(response),
    )


def prepare(data: Any, context: DocumentContext | None = None) -> Prepared:
    """Turn an input into a validated response with its Questionnaire, context and submission id."""

    unstorable = lone_surrogate_issues(data)
    if (
        unstorable
    ):  # before anything is derived from the input (the submission id is a hash of its identifier)
        raise InputError("the input holds text that cannot be stored", operation_outcome(unstorable))
    context = context or DocumentContext()
    base = context.canonical_base
    if kind_of(data) == "answers":
        doc = parse_answers(data)
        response = to_response(doc, base)
        context = context_of(doc, context)
        submission = submission_id(doc)
    else:
        response = data
        submission = _submission_of_response(response)
    questionnaire = questionnaire_of(response, base)
    outcome = _check(response, questionnaire, kind_of(data) == "QuestionnaireResponse")
    if has_errors(outcome):
        n = sum(1 for i in outcome["issue"] if i.get("severity") in ("error", "fatal"))
        raise ValidationFailed(f"the QuestionnaireResponse is not valid ({n} error(s))", outcome)
    return Prepared(response, questionnaire, context, submission)


def _submission_of_response(response: JSON) -> str:
    """The submission id of a QuestionnaireResponse, derived (never copied) from its identifier system and value,
    or from its content when it has none.

    Derived, so that two senders' responses numbered alike never share ids (the system is part of it), and so
    that whatever a sender put in its identifier (it could be an identity number) never appears in ids, logs or
    headers.
    """

    ident = response.get("identifier")
    if isinstance(ident, dict) and isinstance(ident.get("value"), str) and ident["value"]:
        key = f"{ident.get('system') or ''}|{ident['value']}"
    else:
        key = json.dumps(response, sort_keys=True, ensure_ascii=False)
    return derived_id(key)


def extract(data: Any, context: DocumentContext | None = None) -> JSON:
    """SDC ``$extract`` of a validated input: the transaction Bundle the Questionnaire's markup defines."""
    from fhir_safetyplan.extract import extract as sdc_extract  # fhirpathpy: validate/respond never load it

    p = prepare(data, context)
    return sdc_extract(p.response, p.questionnaire, new_id=_ids(p))


def _ids(p: Prepared) -> Callable[[], str]:
    """Deterministic uuids for extraction, so the same submission (for the same patient) always extracts the
    same Bundle."""

    scope = plan_scope(p.submission, p.response.get("subject"))
    counter = iter(range(1_000_000))
    return lambda: str(uuid.uuid5(NAMESPACE, f"{scope}/extract/{next(counter)}"))


def document(data: Any, context: DocumentContext | None = None) -> Documentation:
    """All journal resources for an input (validated and extracted first)."""
    from fhir_safetyplan.extract import extract as sdc_extract  # fhirpathpy: validate/respond never load it

    p = prepare(data, context)
    extracted = sdc_extract(p.response, p.questionnaire, new_id=_ids(p))
    documentation = make_documentation(p.response, p.questionnaire, extracted, p.context, p.submission)
    log.info("documented submission: %d resource(s)", len(documentation.resources))
    return documentation


def build_bundle(data: Any, context: DocumentContext | None = None) -> JSON:
    """The complete journal transaction Bundle for an input (answers document or QuestionnaireResponse)."""

    return transaction(document(data, context))
