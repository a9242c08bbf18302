"""The client's error family: every failure to deliver carries an OperationOutcome and an exit code.

Messages name the method, the path (never query values) and the status; they never quote request or
response bodies, which hold personal data. The server's own OperationOutcome is kept on ``err.outcome``
for a caller that prints it to its own user.
"""

from __future__ import annotations

import re

from fhir_safetyplan import codes
from fhir_safetyplan.errors import JSON, ConfigError, SafetyPlanError, issue, operation_outcome
from fhir_safetyplan.outcomes import Kind


class FhirError(SafetyPlanError):
    """Talking to the FHIR server did not end as expected (e.g. a 200 without a FHIR body).

    The request may or may not have taken effect on the server, so delivery treats this like
    :class:`ServerUnavailable`: the plan stays in the outbox and an idempotent resend settles it.
    """

    kind = Kind.UNAVAILABLE


class FhirHttpError(FhirError):
    """The exchange failed; ``status`` is the HTTP status, or ``None`` when no answer came at all.

    ``outcome`` is the server's OperationOutcome when it sent one, otherwise one we synthesise.
    """

    def __init__(self, message: str, status: int | None = None, outcome: JSON | None = None) -> None:
        super().__init__(message, outcome)
        self.status = status

    def __repr__(self) -> str:
        return f"{type(self).__name__}(status={self.status!r}, message={str(self)!r})"


class ServerRejected(FhirHttpError):
    """The server refused the *content* (400/409/412/422, or e.g. 404 on a read): retrying will not help."""

    kind = Kind.CONTENT


class UnknownPatient(ServerRejected):
    """The plan refers to its patient by identifier, and no Patient on the server has it (HAPI-1091).

    A problem of this plan only: the patient must be registered (or linked) on the server first. ``system``
    is the identifier system the reference used; the number itself is never kept here.
    """

    def __init__(self, message: str, status: int | None, system: str | None) -> None:
        super().__init__(message, status, synthesised_outcome("not-found", message))
        self.system = system


#: a conditional reference in HAPI's diagnostics: ``Patient?identifier=<system>|<value>``
_MATCH_URL = re.compile(r"Patient\?identifier=([^|\s\"]+)\|")
_SYSTEM_NAMES = {codes.FNR: "national identity number", codes.DNR: "D-number"}


def unknown_patient(method: str, where: str, status: int, outcome: JSON | None) -> UnknownPatient:
    """The error for HAPI's 404 ``HAPI-1091`` on a transaction: names the identifier system, never the value."""
    diagnostics = " ".join(str(i.get("diagnostics", "")) for i in (outcome or {}).get("issue", []))
    found = _MATCH_URL.search(diagnostics)
    system = found.group(1) if found else None
    named = f"{system} ({_SYSTEM_NAMES[system]})" if system in _SYSTEM_NAMES else system or "its system"
    message = (
        f"{method} {where}: no Patient on the server has the identifier this plan refers to (system "
        f"{named}) [HAPI-1091]. Register the patient on the server or link the existing Patient to that "
        "identifier, then send the plan again ('safetyplan outbox requeue SUBMISSION' for one kept in the "
        "outbox); on a test server, 'push --create-patient' creates the Patient with the plan."
    )
    return UnknownPatient(message, status, system)


class WriteConflict(FhirHttpError):
    """A 409 that says another write of the same resource happened at the same moment (HAPI-0550), or a
    conflict answered to a resend: the first attempt may still be in progress. Not a verdict on the content;
    the same plan is sent again later, and its other writes are unaffected."""

    kind = Kind.CONFLICT


class ServerUnavailable(FhirHttpError):
    """No usable answer: connection refused or reset, timeout, 429 or 5xx after the retries ran out."""

    kind = Kind.UNAVAILABLE


class ServerConfigError(FhirHttpError):
    """The server's answer says our configuration is wrong, not the content: credentials (401/403/407),
    a redirect (3xx), or a base URL that is not a FHIR base (404/405/413/415 at the base or /metadata).

    A plan meeting this stays pending in the outbox: once the URL or credentials are fixed it is sent.
    """

    kind = Kind.CONFIG


class ServerIncompatible(ConfigError):
    """The server's CapabilityStatement lacks the FHIR version, types or interactions we need."""


class AuthError(ConfigError):
    """Credentials are missing, unreadable, or refused by the token endpoint."""


def synthesised_outcome(code: str, diagnostics: str) -> JSON:
    """An OperationOutcome for a failure the server did not describe itself (IssueType ``code``)."""
    return operation_outcome([issue("error", code, diagnostics)])
