"""The whole flow for one plan, as plain functions: input → QuestionnaireResponse → validate → extract →
document → transaction Bundle. No network. The command line, the HTTP service and library users call these.

An *input* is either a QuestionnaireResponse (from any SDC form renderer) or an answers document (see
:mod:`fhir_safetyplan.answers`), told apart by content.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from typing import Any

from fhir_safetyplan import codes
from fhir_safetyplan.document import Documentation, DocumentContext
from fhir_safetyplan.errors import JSON, InputError, ValidationFailed, has_errors, issue, operation_outcome

log = logging.getLogger(__name__)

#: Inputs larger than this are refused before parsing (a plan is a few kB; this stops hostile payloads).
MAX_INPUT_BYTES = 1_000_000


@dataclass(frozen=True)
class Prepared:
    """A response ready for extraction and documentation, with its Questionnaire and context."""

    response: JSON
    questionnaire: JSON
    context: DocumentContext
    submission: str


def parse_json(text: str | bytes, source: str = "input") -> Any:
    """Parse JSON text, refusing oversized input and reporting where a syntax error is."""
    if len(text) > MAX_INPUT_BYTES:
        raise InputError(
            f"{source} is larger than {MAX_INPUT_BYTES} bytes",
            operation_outcome(
                [
                    issue(
                        "error",
                        "too-costly",
                        f"{source} is {len(text)} bytes; the limit is {MAX_INPUT_BYTES}. "
                        "Send one plan at a time.",
                    )
                ]
            ),
        )
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise InputError(
                f"{source} is not UTF-8",
                operation_outcome(
                    [
                        issue(
                            "error",
                            "structure",
                            f"{source} is not valid UTF-8 (byte {exc.start}); save it as UTF-8",
                        )
                    ]
                ),
            ) from None
    try:
        return json.loads(text)
    except RecursionError:
        raise InputError(
            f"{source} is nested too deeply",
            operation_outcome(
                [issue("error", "too-costly", f"{source} nests arrays or objects too deeply to be a plan")]
            ),
        ) from None
    except json.JSONDecodeError as exc:
        raise InputError(
            f"{source} is not valid JSON",
            operation_outcome(
                [
                    issue(
                        "error",
                        "structure",
                        f"{source} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}",
                    )
                ]
            ),
        ) from None


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
    from fhir_safetyplan.answers import parse_answers, to_response

    return to_response(parse_answers(data), canonical_base)


def questionnaire_of(response: JSON, canonical_base: str | None = None) -> JSON:
    """Our Questionnaire the response points at (``questionnaire`` = url|version)."""
    from fhir_safetyplan.questionnaire import questionnaire_for

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
    from fhir_safetyplan.versions import KNOWN_VERSIONS

    base = codes.canonical_base(canonical_base)
    return [
        f"{codes.questionnaire_url(base, lang)}|{version}"
        for version in reversed(KNOWN_VERSIONS)
        for lang in (None, *codes.LANGUAGES)
    ]


#: At most this many structural issues are listed (a hostile input could otherwise produce thousands).
MAX_STRUCTURE_ISSUES = 50


def structure_issues(response: JSON) -> list[JSON]:
    """Problems outside the items of a QuestionnaireResponse received from elsewhere: R4 structure (checked with
    the fhir.resources R4B model: unknown elements, wrong types), dom-5, unknown modifier extensions, and what the
    journal documentation needs (subject, author)."""
    from pydantic import ValidationError

    from fhir_safetyplan.validate import MAX_DEPTH

    issues: list[JSON] = []
    try:
        from fhir.resources.R4B.questionnaireresponse import QuestionnaireResponse

        QuestionnaireResponse.model_validate(response)
    except ValidationError as exc:
        for err in exc.errors(include_url=False, include_input=False)[:MAX_STRUCTURE_ISSUES]:
            loc = [p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-"))]
            where = "QuestionnaireResponse" + "".join(
                f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc if p != "__root__"
            )
            issues.append(issue("error", "structure", f"{where}: {err['msg']} (FHIR R4 structure)", where))
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

    def modifiers(node: Any, path: str, depth: int) -> None:
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
                    modifiers(value, f"{path}.{key}", depth + 1)
        elif isinstance(node, list):
            for i, value in enumerate(node):
                modifiers(value, f"{path}[{i}]", depth + 1)

    modifiers(response, "QuestionnaireResponse", 0)
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


_DATETIME_TZ = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})")


def documentation_issues(response: JSON) -> list[JSON]:
    """What this form's documentation needs beyond the Questionnaire's own rules (any input kind):
    only a finished conversation is documented, and a channel cannot be both safe and forbidden."""
    from fhir_safetyplan.document import answers_by_link
    from fhir_safetyplan.questionnaire import Link

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
    from fhir_safetyplan.validate import validate_response

    checked = validate_response(response, questionnaire)
    return _combine(
        structure_issues(response) if external else [], checked["issue"], documentation_issues(response)
    )


def prepare(data: Any, context: DocumentContext | None = None) -> Prepared:
    """Turn an input into a validated response with its Questionnaire, context and submission id."""

    context = context or DocumentContext()
    base = context.canonical_base
    if kind_of(data) == "answers":
        from fhir_safetyplan.answers import context_of, parse_answers, submission_id, to_response

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
    from fhir_safetyplan.document import derived_id

    ident = response.get("identifier")
    if isinstance(ident, dict) and isinstance(ident.get("value"), str) and ident["value"]:
        key = f"{ident.get('system') or ''}|{ident['value']}"
    else:
        key = json.dumps(response, sort_keys=True, ensure_ascii=False)
    return derived_id(key)


def extract(data: Any, context: DocumentContext | None = None) -> JSON:
    """SDC ``$extract`` of a validated input: the transaction Bundle the Questionnaire's markup defines."""
    from fhir_safetyplan.extract import extract as sdc_extract

    p = prepare(data, context)
    return sdc_extract(p.response, p.questionnaire, new_id=_ids(p.submission))


def _ids(submission: str) -> Any:
    """Deterministic uuids for extraction, so the same submission always extracts the same Bundle."""
    import uuid

    from fhir_safetyplan.document import NAMESPACE

    counter = iter(range(1_000_000))
    return lambda: str(uuid.uuid5(NAMESPACE, f"{submission}/extract/{next(counter)}"))


def document(data: Any, context: DocumentContext | None = None) -> Documentation:
    """All journal resources for an input (validated and extracted first)."""
    from fhir_safetyplan.document import document as make_documentation
    from fhir_safetyplan.extract import extract as sdc_extract

    p = prepare(data, context)
    extracted = sdc_extract(p.response, p.questionnaire, new_id=_ids(p.submission))
    documentation = make_documentation(p.response, p.questionnaire, extracted, p.context, p.submission)
    log.info("documented submission: %d resource(s)", len(documentation.resources))
    return documentation


def build_bundle(data: Any, context: DocumentContext | None = None) -> JSON:
    """The complete journal transaction Bundle for an input (answers document or QuestionnaireResponse)."""
    from fhir_safetyplan.bundle import transaction

    return transaction(document(data, context))
