"""What the service answers when a plan is not delivered (or queued): status from the one table, and words.

The HTTP status comes from the one table, :mod:`fhir_safetyplan.service.statuses`; this module only says, per
outcome, what the caller (an integration engine) and the operator should know. It never quotes the upstream
server's diagnostics except for a content rejection, where they are the reason (and the caller sent the data).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from fhir_safetyplan.delivery.deliver import DeliveryResult
from fhir_safetyplan.errors import SafetyPlanError, issue, operation_outcome
from fhir_safetyplan.outcomes import Outcome
from fhir_safetyplan.service.fhirio import HttpError
from fhir_safetyplan.service.statuses import http_status

if TYPE_CHECKING:
    from fhir_safetyplan.service.sender import Delivery

log = logging.getLogger("fhir_safetyplan.service.routes")

#: outcome -> (message for the caller, IssueType code, Retry-After seconds or None)
_WORDS: dict[Outcome, tuple[str, str, int | None]] = {
    Outcome.HELD: (
        "The upstream FHIR server refused this service's request ({reason}); the operator must check the "
        "upstream URL, credentials and server capabilities.",
        "transient",
        60,
    ),
    Outcome.UNAVAILABLE: (
        "The upstream FHIR server cannot be reached now and this service has no outbox to keep the plan; "
        "send it again later (the same submission never creates copies).",
        "transient",
        30,
    ),
    Outcome.DAMAGED: (
        "This service's outbox is damaged, so the plan could not be stored; the operator has been told in "
        "the log (outbox check / export). Send it again later.",
        "transient",
        60,
    ),
    Outcome.REFUSED: ("{reason}", "security", None),
    Outcome.REJECTED: ("{reason}", "processing", None),
    Outcome.INVALID: ("{reason}", "invalid", None),
    Outcome.CONFLICT: ("{reason}", "conflict", None),
}


def _held(delivery: Delivery, key: str | None) -> str:
    """A sentence for the caller when the plan waits in the outbox, else '' (also when it cannot be read)."""
    try:
        outbox = delivery.outbox
        entry = (
            outbox.get(key, delivery.settings.upstream) if outbox is not None and key is not None else None
        )
    except SafetyPlanError:
        return ""
    if entry is not None and entry.status == "pending":
        return " The plan is held in the outbox and is sent once this is fixed."
    return ""


def refusal(result: DeliveryResult, delivery: Delivery) -> HttpError:
    """The HttpError for a result that is neither delivered nor queued."""
    outcome = Outcome(result.status)
    status = http_status(outcome)
    words, code, retry = _WORDS[outcome]
    message = words.format(reason=result.reason or outcome.value)
    headers = {"Retry-After": str(retry)} if retry else None
    if outcome in (Outcome.HELD, Outcome.DAMAGED):
        log.error("delivery %s (%s): see the service's configuration and outbox", outcome.value, result.kind)
        return HttpError(status, message + _held(delivery, result.plan_key), code=code, headers=headers)
    if outcome is Outcome.REJECTED and result.outcome is not None:
        upstream = [i for i in result.outcome.get("issue", []) if isinstance(i, dict)]
        lead = issue("error", "processing", "The upstream FHIR server refused the plan; its issues follow.")
        return HttpError(status, message, operation_outcome([lead, *upstream]))
    if outcome in (Outcome.REFUSED, Outcome.CONFLICT) and result.outcome is not None:
        return HttpError(status, message, result.outcome)
    return HttpError(status, message, code=code, headers=headers)
