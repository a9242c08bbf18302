"""The journal transaction Bundle: every written resource as an idempotent entry.

Each resource gets ``PUT <Type>/<id>`` with an id derived from the submission identifier, and a deterministic
``urn:uuid:`` fullUrl that the other resources reference. Sending the same submission again — or retrying after a
lost response — therefore updates the same resources instead of creating new ones, and HAPI skips an update whose
content has not changed. The optional test Patient is a conditional create (``ifNoneExist``): created once, never
updated.
"""

from __future__ import annotations

from fhir_safetyplan.document import Documentation
from fhir_safetyplan.errors import JSON


def transaction(doc: Documentation, base_identifier_system: str | None = None) -> JSON:
    """The transaction Bundle for one submission's documentation."""
    entries: list[JSON] = []
    if doc.patient_entry is not None:
        entries.append(doc.patient_entry)
    for resource in doc.resources:
        rtype = resource["resourceType"]
        entries.append(
            {
                "fullUrl": doc.full_urls[rtype],
                "resource": resource,
                "request": {"method": "PUT", "url": f"{rtype}/{resource['id']}"},
            }
        )
    bundle: JSON = {"resourceType": "Bundle", "type": "transaction"}
    qr = doc.by_type("QuestionnaireResponse")
    if qr is not None and "identifier" in qr:
        bundle["identifier"] = dict(qr["identifier"])
    bundle["entry"] = entries
    return bundle


def submission_of(bundle: JSON) -> str | None:
    """The submission id a journal Bundle carries (Bundle.identifier.value), if any."""
    ident = bundle.get("identifier")
    value = ident.get("value") if isinstance(ident, dict) else None
    return value if isinstance(value, str) else None
