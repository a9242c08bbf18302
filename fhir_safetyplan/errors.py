"""One error family for the whole module; every error carries a FHIR OperationOutcome.

A caller (CLI, HTTP service, integration engine) can always print ``err.outcome`` as JSON and act on it:
each issue says what was wrong (``diagnostics``), where (``expression``: a FHIRPath or linkId path) and,
where we know it, what to do.
"""

from __future__ import annotations

from typing import Any

from fhir_safetyplan.exitcodes import exit_code_of_kind
from fhir_safetyplan.outcomes import Kind

JSON = dict[str, Any]


def issue(
    severity: str,
    code: str,
    diagnostics: str,
    expression: str | None = None,
) -> JSON:
    """One OperationOutcome.issue (severity: fatal|error|warning|information; code: IssueType)."""
    out: JSON = {"severity": severity, "code": code, "diagnostics": diagnostics}
    if expression:
        out["expression"] = [expression]
    return out


def operation_outcome(issues: list[JSON]) -> JSON:
    """An OperationOutcome resource; an empty list becomes the R4 'all OK' information issue."""
    if not issues:
        issues = [issue("information", "informational", "No problems found.")]
    return {"resourceType": "OperationOutcome", "issue": issues}


def one_issue(severity: str, code: str, diagnostics: str, expression: str | None = None) -> JSON:
    """An OperationOutcome of the one issue these arguments make (see :func:`issue`)."""
    return operation_outcome([issue(severity, code, diagnostics, expression)])


def has_errors(outcome: JSON) -> bool:
    """True when the OperationOutcome holds an error or fatal issue."""
    return any(i.get("severity") in ("error", "fatal") for i in outcome.get("issue", []))


class SafetyPlanError(Exception):
    """Base of every error this package raises on purpose. ``outcome`` is an OperationOutcome dict."""

    #: what kind of failure this is; :mod:`fhir_safetyplan.outcomes` alone decides what follows from it
    kind: Kind = Kind.INPUT

    def __init__(self, message: str, outcome: JSON | None = None) -> None:
        super().__init__(message)
        self.outcome: JSON = outcome or operation_outcome([issue("error", "processing", message)])

    @property
    def exit_code(self) -> int:
        """What the ``safetyplan`` command exits with when this error ends it (from its kind, by the one table
        :data:`fhir_safetyplan.exitcodes.EXIT_CODES`)."""
        return exit_code_of_kind(self.kind)


class InputError(SafetyPlanError):
    """The input (answers, QuestionnaireResponse, file) is not acceptable; nothing was sent anywhere."""


class ValidationFailed(InputError):
    """A QuestionnaireResponse failed validation against its Questionnaire; ``outcome`` lists every problem."""


class ConfigError(SafetyPlanError):
    """Configuration (canonical base, server URL, credentials, paths) is missing or wrong."""

    kind = Kind.CONFIG
