"""The CapabilityStatement of the service (``GET /metadata``): what it serves, its operations, how callers
authenticate."""

from __future__ import annotations

from fhir_safetyplan import __version__, codes, fhir_r4
from fhir_safetyplan.errors import JSON
from fhir_safetyplan.form_builder import RELEASE_DATE
from fhir_safetyplan.service.fhirio import FHIR_JSON, PLAIN_JSON
from fhir_safetyplan.service.settings import ServiceSettings


def capability_statement(settings: ServiceSettings, base_url: str) -> JSON:
    """The CapabilityStatement of this service: what it serves, its operations, how callers authenticate."""
    qr_interactions = [{"code": "create"}] if settings.upstream else []
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": RELEASE_DATE,
        "publisher": "fhir-safetyplan",
        "kind": "instance",
        "software": {"name": "fhir-safetyplan service", "version": __version__},
        "implementation": {
            "description": "Safety plans as FHIR R4: definitions, $validate, $extract, journal delivery",
            "url": base_url,
        },
        "fhirVersion": fhir_r4.FHIR_VERSION,
        "format": [FHIR_JSON, PLAIN_JSON, "json"],
        "rest": [
            {
                "mode": "server",
                "documentation": "Reads are open; operations need a token (Authorization: Bearer, or X-API-Key).",
                "security": {
                    "cors": False,
                    "description": "POST operations need a token the operator configured, sent as "
                    "'Authorization: Bearer <token>' or 'X-API-Key: <token>'.",
                },
                "resource": [
                    {
                        "type": "Questionnaire",
                        "interaction": [{"code": "read"}, {"code": "search-type"}],
                        "searchParam": [
                            {"name": "url", "type": "uri"},
                            {"name": "version", "type": "token"},
                            {"name": "language", "type": "token"},
                            {"name": "_id", "type": "token"},
                        ],
                        "operation": [{"name": "populate", "definition": codes.SDC_POPULATE_OPERATION}],
                    },
                    {
                        "type": "QuestionnaireResponse",
                        **({"interaction": qr_interactions} if qr_interactions else {}),
                        "operation": [
                            {
                                "name": "validate",
                                "definition": "http://hl7.org/fhir/OperationDefinition/Resource-validate",
                            },
                            {
                                "name": "extract",
                                "definition": "http://hl7.org/fhir/uv/sdc/OperationDefinition/"
                                "QuestionnaireResponse-extract",
                            },
                        ],
                    },
                ],
            }
        ],
    }
