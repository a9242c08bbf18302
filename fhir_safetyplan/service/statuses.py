"""The HTTP statuses the service answers: per outcome of ``POST /QuestionnaireResponse``, and per error an
endpoint's work raises. The two tables.

What became of a plan is decided in :mod:`fhir_safetyplan.outcomes`; the command line shows the same outcome
as an exit code (:data:`fhir_safetyplan.exitcodes.EXIT_CODES`). What the service *says* besides the status
is in :mod:`fhir_safetyplan.service.refusals`; an error's answer is its own OperationOutcome.
"""

from __future__ import annotations

from fhir_safetyplan.client import FhirError
from fhir_safetyplan.errors import InputError, SafetyPlanError, ValidationFailed
from fhir_safetyplan.outcomes import Outcome
from fhir_safetyplan.show import PlanNotFound

#: outcome -> HTTP status of ``POST /QuestionnaireResponse``
HTTP_STATUSES: dict[Outcome, int] = {
    Outcome.INVALID: 422,
    Outcome.CONFLICT: 409,
    Outcome.DAMAGED: 503,
    Outcome.HELD: 502,
    Outcome.UNAVAILABLE: 503,
    Outcome.QUEUED: 202,
    Outcome.REJECTED: 422,
    Outcome.REFUSED: 403,
    Outcome.DELIVERED: 201,
}


def http_status(outcome: Outcome | str) -> int:
    """The HTTP status for ``outcome`` (an :class:`Outcome` or its value, e.g. a result's ``status``)."""
    return HTTP_STATUSES[Outcome(outcome)]


#: error an endpoint's work raises -> HTTP status, the most specific class first; any other error is a bug
#: of the service (500). An :class:`~fhir_safetyplan.service.fhirio.HttpError` carries its own status.
ERROR_STATUSES: tuple[tuple[type[SafetyPlanError], int], ...] = (
    (PlanNotFound, 404),  # the patient, or the patient's plan, is not on the upstream
    (ValidationFailed, 422),  # a plan that breaks the form's rules
    (InputError, 400),  # input we cannot read as a plan
    (FhirError, 502),  # the upstream did not answer as a FHIR server should
)


def error_status(err: SafetyPlanError) -> int | None:
    """The HTTP status for ``err`` (:data:`ERROR_STATUSES`), None when it is not the caller's or the upstream's."""
    return next((status for kind, status in ERROR_STATUSES if isinstance(err, kind)), None)
