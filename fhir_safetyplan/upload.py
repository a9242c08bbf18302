"""Uploading our conformance resources (Questionnaires, CodeSystems, ValueSets, StructureDefinitions, the
NamingSystem) to a server.

A server validates against profiles and Questionnaires it holds (HAPI's ``$validate`` resolves them from its own
database), so they must be uploaded *before* anything is validated: HAPI caches an unknown profile as unknown
for a while. One transaction of ``PUT Type/<id>`` entries: idempotent, and identical content makes no new
version.
"""

from __future__ import annotations

from fhir_safetyplan import codes
from fhir_safetyplan.client import EntryResult, FhirClient, entry_results
from fhir_safetyplan.conformance import all_resources
from fhir_safetyplan.errors import JSON

#: the order a validator needs them in: terminology first, then profiles, then forms
_ORDER = ("NamingSystem", "CodeSystem", "ValueSet", "StructureDefinition", "Questionnaire")


def conformance_bundle(canonical_base: str | None = None) -> JSON:
    """A transaction Bundle that PUTs every conformance resource at its id."""

    resources = sorted(all_resources(canonical_base), key=lambda r: _ORDER.index(r["resourceType"]))
    entries, seen = [], set()
    for r in resources:
        full_url = r.get("url") or r["uniqueId"][0]["value"]  # a NamingSystem has no url
        if full_url in seen:  # an earlier version of a Questionnaire shares its url: its own address, unique
            full_url = f"{codes.canonical_base(canonical_base)}/{r['resourceType']}/{r['id']}"
        seen.add(full_url)
        entries.append(
            {
                "fullUrl": full_url,
                "resource": r,
                "request": {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"},
            }
        )
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}


def upload_conformance(client: FhirClient, canonical_base: str | None = None) -> list[EntryResult]:
    """PUT every conformance resource to the server in one transaction; the server's answer per resource."""

    return entry_results(client.transaction(conformance_bundle(canonical_base)))
