"""The previous response `populate --server` pre-fills from: the patient's current plan on a FHIR server.

The current plan is the newest QuestionnaireResponse behind the patient's *active* CarePlan written by this
module (our submission identifier, as :mod:`fhir_safetyplan.current_plan` tells ours; every content version's
category code; ``supportingInfo`` names the response). Two round trips:
one CarePlan search, one QuestionnaireResponse search by ``_id``. When several such CarePlans are active (older
versions of this module never retired the previous plan) the newest response is taken and a warning says so.
A patient whose only conversations were refusals has no CarePlan: then the newest response written by this
module is taken, with an information issue. The search logs ids and counts only.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from fhir_safetyplan import codes
from fhir_safetyplan.errors import JSON, issue, operation_outcome
from fhir_safetyplan.show import PAGE_SIZE, PlanNotFound, normalise_patient

if TYPE_CHECKING:
    from fhir_safetyplan.client import FhirClient

log = logging.getLogger(__name__)

_DOCUMENTED = ("completed", "amended")


@dataclass(frozen=True)
class CurrentPlan:
    """The previous response to pre-fill from, and what the search noticed (OperationOutcome issues)."""

    response: JSON
    issues: tuple[JSON, ...]


def _ours(resource: JSON) -> bool:
    idents = resource.get("identifier")
    idents = idents if isinstance(idents, list) else [idents]
    return any(isinstance(i, dict) and codes.is_submission_system(i.get("system")) for i in idents)


def _response_ids(care_plan: JSON) -> list[str]:
    out = []
    for ref in care_plan.get("supportingInfo") or []:
        target = ref.get("reference") if isinstance(ref, dict) else None
        if isinstance(target, str) and target.startswith("QuestionnaireResponse/"):
            rid = target.removeprefix("QuestionnaireResponse/").split("/_history", 1)[0]
            if rid and all(ch.isalnum() or ch in "-." for ch in rid):
                out.append(rid)
    return out


def _instant(value: Any) -> datetime:
    """A FHIR dateTime as an aware datetime for ordering (a date alone is its midnight UTC; junk sorts first)."""
    try:
        parsed = datetime.fromisoformat(str(value))
    except ValueError:
        return datetime.min.replace(tzinfo=UTC)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _newest(responses: list[JSON]) -> JSON:
    """The newest by ``authored`` (offsets taken into account), then by the server's ``lastUpdated``."""
    return max(
        responses,
        key=lambda r: (_instant(r.get("authored")), _instant((r.get("meta") or {}).get("lastUpdated"))),
    )


def find_current_plan(client: FhirClient, patient: str) -> CurrentPlan:
    """The current plan of ``patient`` (``Patient/<id>``); :class:`PlanNotFound` when there is none."""
    patient = normalise_patient(patient)
    plans = client.search("CarePlan", {"subject": patient, "status": "active", "_count": PAGE_SIZE})
    active = [p for p in plans if p.get("resourceType") == "CarePlan" and _ours(p)]
    ids = sorted({rid for p in active for rid in _response_ids(p)})
    issues: list[JSON] = []
    if ids:
        found = client.search("QuestionnaireResponse", {"_id": ",".join(ids), "_count": PAGE_SIZE})
    else:
        found = client.search("QuestionnaireResponse", {"subject": patient, "_count": PAGE_SIZE})
    responses = [
        r
        for r in found
        if r.get("resourceType") == "QuestionnaireResponse"
        and _ours(r)
        and r.get("status") in _DOCUMENTED
        and _subject_is(r, patient)
    ]
    if not responses:
        raise PlanNotFound(
            "no plan to pre-fill from",
            operation_outcome(
                [
                    issue(
                        "error",
                        "not-found",
                        f"No safety plan written by this module for {patient} on {client.base_url}: "
                        "nothing to pre-fill from. Start with an empty form (safetyplan questionnaire).",
                    )
                ]
            ),
        )
    chosen = _newest(responses)
    if len(active) > 1:
        issues.append(
            issue(
                "warning",
                "multiple-matches",
                f"{len(active)} active safety plans for {patient}: pre-filled from the newest "
                f"(QuestionnaireResponse/{chosen.get('id')}, authored {chosen.get('authored', '?')}). "
                "Check that it is the right one; the others should be retired.",
            )
        )
    elif not active:
        issues.append(
            issue(
                "information",
                "informational",
                f"{patient} has no active safety plan (CarePlan); pre-filled from the newest form written by "
                f"this module (QuestionnaireResponse/{chosen.get('id')}).",
            )
        )
    log.info("current plan: %d active care plan(s), response %s", len(active), chosen.get("id"))
    return CurrentPlan(response=chosen, issues=tuple(issues))


def _subject_is(response: JSON, patient: str) -> bool:
    subject: Any = response.get("subject")
    return isinstance(subject, dict) and subject.get("reference") == patient
