"""For fake FHIR servers in unit tests: the answer to the batch of searches delivery sends first to find the
patient's current plan (fhir_safetyplan.current_plan), empty or finding a plan, and the searchsets and active
CarePlan a fake answers ``populate --server``'s searches with."""

from __future__ import annotations

import json
from typing import Any

from fhir_safetyplan import codes


def searchset(*resources: dict[str, Any]) -> dict[str, Any]:
    """A search answer that finds these resources."""
    return {"resourceType": "Bundle", "type": "searchset", "entry": [{"resource": r} for r in resources]}


def active_plan(rid: str, qr_id: str, identifier: dict[str, Any]) -> dict[str, Any]:
    """An active safety-plan CarePlan as a server holds it: this id and identifier, the safety-plan category,
    and the QuestionnaireResponse ``qr_id`` as its supporting information."""
    return {
        "resourceType": "CarePlan",
        "id": rid,
        "status": "active",
        "identifier": [identifier],
        "category": [
            {
                "coding": [
                    {
                        "system": f"{codes.DEFAULT_CANONICAL_BASE}/CodeSystem/sikkerhetsplan",
                        "code": "sikkerhetsplan",
                    }
                ]
            }
        ],
        "supportingInfo": [{"reference": f"QuestionnaireResponse/{qr_id}"}],
    }


def empty_searches(bundle: dict[str, Any]) -> dict[str, Any] | None:
    """A batch-response with an empty searchset per GET when ``bundle`` is a batch of searches, else None."""
    if bundle.get("type") != "batch" or any(
        e.get("request", {}).get("method") != "GET" for e in bundle.get("entry", [])
    ):
        return None
    return {
        "resourceType": "Bundle",
        "type": "batch-response",
        "entry": [
            {
                "resource": {"resourceType": "Bundle", "type": "searchset", "total": 0},
                "response": {"status": "200 OK"},
            }
            for _ in bundle.get("entry", [])
        ],
    }


def stored(bundle: dict[str, Any], version: str = "1") -> list[dict[str, Any]]:
    """The resources of a journal transaction Bundle as a server stores them: urn:uuid references resolved to
    ``Type/id``, a ``meta.versionId``."""
    refs = {
        e["fullUrl"]: f"{e['resource']['resourceType']}/{e['resource']['id']}"
        for e in bundle["entry"]
        if "fullUrl" in e and "id" in e["resource"]
    }
    text = json.dumps([e["resource"] for e in bundle["entry"] if e["request"]["method"] == "PUT"])
    for urn, ref in refs.items():
        text = text.replace(f'"{urn}"', f'"{ref}"')
    resources: list[dict[str, Any]] = json.loads(text)
    for r in resources:
        r["meta"] = {**r.get("meta", {}), "versionId": version}
    return resources


def plan_searches(bundle: dict[str, Any], current: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Like :func:`empty_searches`, but every search finds the plan ``current`` (resources as :func:`stored`
    gives them): the patient's current plan on the server."""
    answer = empty_searches(bundle)
    if answer is None:
        return None
    for entry in answer["entry"][:2]:  # the CarePlan and the Flag searches
        entry["resource"]["entry"] = [{"resource": r} for r in current]
        entry["resource"]["total"] = 1
    return answer


def refusing(status: int, body: dict[str, Any]) -> Any:
    """A ``responses`` callback for a server that answers the current-plan lookup (no plans) and refuses every
    transaction with ``status`` and ``body``."""

    def callback(request: Any) -> tuple[int, dict[str, str], str]:
        searches = empty_searches(json.loads(request.body or b"{}"))
        if searches is not None:
            return 200, {"Content-Type": "application/fhir+json"}, json.dumps(searches)
        return status, {"Content-Type": "application/fhir+json"}, json.dumps(body)

    return callback
