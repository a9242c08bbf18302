"""The client's error family: every failure to deliver carries an OperationOutcome and an exit code.

Messages name the method, the path (never query values) and the status; they never quote request or
response bodies, which hold personal data. The server's own OperationOutcome is kept on ``err.outcome``
for a caller that prints it to its own user.
"""

from __future__ import annotations

from fhir_safetyplan import exitcodes
from fhir_safetyplan.errors import JSON, ConfigError, SafetyPlanError, issue, operation_outcome


class FhirError(SafetyPlanError):
    """Talking to the FHIR server did not end as expected (e.g. a 200 without a FHIR body).

    The request may or may not have taken effect on the server, so delivery treats this like
    :class:`ServerUnavailable`: the plan stays in the outbox and an idempotent resend settles it.
    """

    exit_code = exitcodes.UNAVAILABLE


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

    exit_code = exitcodes.REJECTED


class ServerUnavailable(FhirHttpError):
    """No usable answer: connection refused or reset, timeout, 429 or 5xx after the retries ran out."""

    exit_code = exitcodes.UNAVAILABLE


class ServerConfigError(FhirHttpError, ConfigError):
    """The server's answer says our configuration is wrong, not the content: credentials (401/403/407),
    a redirect (3xx), or a base URL that is not a FHIR base (404/405/413/415 at the base or /metadata).

    A plan meeting this stays pending in the outbox: once the URL or credentials are fixed it is sent.
    """

    exit_code = exitcodes.CONFIG


class ServerIncompatible(ConfigError, FhirError):
    """The server's CapabilityStatement lacks the FHIR version, types or interactions we need."""

    exit_code = exitcodes.CONFIG


class AuthError(ConfigError, FhirError):
    """Credentials are missing, unreadable, or refused by the token endpoint."""

    exit_code = exitcodes.CONFIG


def synthesised_outcome(code: str, diagnostics: str) -> JSON:
    """An OperationOutcome for a failure the server did not describe itself (IssueType ``code``)."""
    return operation_outcome([issue("error", code, diagnostics)])
