"""The HTTP status the service answers for each outcome of ``POST /QuestionnaireResponse``: the one table.

What became of a plan is decided in :mod:`fhir_safetyplan.outcomes`; the command line shows the same outcome
as an exit code (:data:`fhir_safetyplan.exitcodes.EXIT_CODES`). What the service *says* besides the status
is in :mod:`fhir_safetyplan.service.refusals`.
"""

from __future__ import annotations

from fhir_safetyplan.outcomes import Outcome

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
