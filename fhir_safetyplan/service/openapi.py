"""The OpenAPI text of the service: answer descriptions, request bodies with their examples, and the schema
components (the inputs an operation takes, FHIR resources in outline).

The examples are built from the content (checklist keys, channel codes, the forms' linkIds), so they stay valid
when the content changes; ``tests/test_service.py`` sends them through the service to prove it.
"""

from __future__ import annotations

import copy
from typing import Any

from fastapi import FastAPI

from fhir_safetyplan import codes
from fhir_safetyplan.content import Content, load
from fhir_safetyplan.errors import JSON
from fhir_safetyplan.form_ids import CS_CHANNEL, Link
from fhir_safetyplan.service.fhirio import FHIR_JSON, PLAIN_JSON

RESOURCE = {"$ref": "#/components/schemas/Resource"}
OUTCOME = {"$ref": "#/components/schemas/OperationOutcome"}


def described(description: str, schema: JSON = RESOURCE) -> JSON:
    """One answer of an operation: its description and its body's schema in both JSON media types."""
    return {
        "description": description,
        "content": {FHIR_JSON: {"schema": schema}, PLAIN_JSON: {"schema": schema}},
    }


#: the answers every operation taking a body may give besides its own
ERRORS: dict[int | str, JSON] = {
    400: described("The body is not JSON or not an acceptable input (OperationOutcome).", OUTCOME),
    401: described("A token is needed or was not accepted (OperationOutcome).", OUTCOME),
    406: described("The caller accepts neither application/fhir+json nor application/json.", OUTCOME),
    413: described("The body is larger than the service's limit (OperationOutcome).", OUTCOME),
    415: described("The body is not application/fhir+json or application/json (OperationOutcome).", OUTCOME),
}
#: the answers a read may give besides its own
READ_ERRORS: dict[int | str, JSON] = {
    400: described("A search parameter is not acceptable (OperationOutcome).", OUTCOME),
    406: ERRORS[406],
}


def example_answers(content: Content | None = None) -> JSON:
    """A complete answers document for a synthetic person (Tenor-style test number: month + 80): everything in
    place, two channels safe and one not. Keys and codes come from the content, answer words from the answers
    document's own vocabulary (the names of the content's answer options)."""
    c = content or load()

    def channel(name: str) -> str:
        return c.option("channels", name).code

    return {
        "submissionId": "example-openapi-1",
        "language": "nb",
        "authored": "2026-11-20T10:15:00+01:00",
        "clinician": {"hpr": "99990001"},
        "organization": {"orgnr": "991000003"},
        "patient": {"fnr": "15838540063"},
        "answers": {
            "informed": True,
            "involvement": "yes",
            "safeContact": {
                "safe": [channel("phone-call"), channel("in-person")],
                "unsafe": [channel("letter")],
                "times": "Hverdager 09–15",
            },
            "existingMeasures": "Har nødnumrene på hurtigvalg og en avtale med søsteren om å bo der ved behov.",
            "checklist": {item.key: "yes" for item in c.checklist},
            "agreedActions": ["Ny samtale om fire uker"],
            "behaviourAdviceGiven": True,
            "dependants": {"present": "no"},
            "mental": {"present": "no"},
        },
    }


def example_populate(content: Content | None = None) -> JSON:
    """``$populate`` input Parameters: the previous plan of a synthetic patient, one safe channel agreed."""
    c = content or load()
    base = codes.DEFAULT_CANONICAL_BASE
    previous = {
        "resourceType": "QuestionnaireResponse",
        "status": "completed",
        "subject": {"reference": "Patient/example"},
        "item": [
            {
                "linkId": Link.SAFE_CONTACT,
                "item": [
                    {
                        "linkId": Link.SAFE_CHANNELS,
                        "answer": [
                            {
                                "valueCoding": {
                                    "system": codes.codesystem_url(base, CS_CHANNEL),
                                    "code": c.option("channels", "in-person").code,
                                }
                            }
                        ],
                    }
                ],
            }
        ],
    }
    return {
        "resourceType": "Parameters",
        "parameter": [
            {
                "name": "questionnaire",
                "valueCanonical": f"{base}/Questionnaire/{codes.questionnaire_id('nb')}|{codes.QUESTIONNAIRE_VERSION}",
            },
            {"name": "subject", "valueReference": {"reference": "Patient/example"}},
            {
                "name": "context",
                "part": [
                    {"name": "name", "valueString": c.raw["populate"]["launch-context"]},
                    {"name": "content", "resource": previous},
                ],
            },
        ],
    }


def request_body(description: str, schema: JSON, examples: dict[str, JSON]) -> JSON:
    """``openapi_extra`` for an operation whose body the route reads itself: required, both media types."""
    return {
        "requestBody": {
            "required": True,
            "description": description,
            "content": {media: {"schema": schema, "examples": examples} for media in (FHIR_JSON, PLAIN_JSON)},
        }
    }


def plan_body(description: str) -> JSON:
    """The request body of an operation on a plan: a response, an answers document or Parameters."""
    example = {"summary": "An answers document (synthetic person)", "value": example_answers()}
    return request_body(description, {"$ref": "#/components/schemas/PlanInput"}, {"answers": example})


# ---- schema components ---------------------------------------------------------------------------------


def _object(properties: JSON, *required: str) -> JSON:
    """A JSON Schema object with ``properties`` (and the ``required`` ones)."""
    return {"type": "object", **({"required": list(required)} if required else {}), "properties": properties}


def _array(items: JSON, **more: Any) -> JSON:
    return {"type": "array", **more, "items": items}


def _resource(name: str, properties: JSON, *required: str) -> JSON:
    """The outline of FHIR resource ``name``: its ``resourceType`` fixed, and ``properties``."""
    return _object({"resourceType": {"const": name}, **properties}, "resourceType", *required)


def _ref(name: str) -> JSON:
    return {"$ref": f"#/components/schemas/{name}"}


_STRING = {"type": "string"}
_CODING = _object({"system": _STRING, "code": _STRING})
_ANSWER_VALUE = _object(
    {
        "valueCoding": _CODING,
        "valueString": _STRING,
        "valueBoolean": {"type": "boolean"},
        "valueInteger": {"type": "integer"},
        "valueDate": _STRING,
    }
)
_QR_ITEMS = _array(_ref("QuestionnaireResponseItem"))
_ISSUE = _object(
    {
        "severity": {"enum": ["fatal", "error", "warning", "information"]},
        "code": _STRING,
        "diagnostics": _STRING,
        "expression": _array(_STRING),
    },
    "severity",
    "code",
)
_PARAMETER = _object(
    {"name": {"enum": ["questionnaire-response", "resource"]}, "resource": _ref("QuestionnaireResponse")},
    "name",
)
_QR_STATUSES = ["in-progress", "completed", "amended", "entered-in-error", "stopped"]

#: FHIR resources in outline (the service checks them itself; the outline is for the reader and for fuzzers)
_COMPONENTS: dict[str, Any] = {
    "Resource": {**_object({"resourceType": _STRING}, "resourceType"), "additionalProperties": True},
    "OperationOutcome": _resource("OperationOutcome", {"issue": _array(_ISSUE, minItems=1)}, "issue"),
    "QuestionnaireResponseItem": _object(
        {"linkId": _STRING, "text": _STRING, "answer": _array(_ANSWER_VALUE), "item": _QR_ITEMS}, "linkId"
    ),
    "QuestionnaireResponse": _resource(
        "QuestionnaireResponse",
        {
            "questionnaire": _STRING,
            "status": {"enum": _QR_STATUSES},
            "subject": {"type": "object"},
            "author": {"type": "object"},
            "authored": _STRING,
            "identifier": {"type": "object"},
            "item": _QR_ITEMS,
        },
        "questionnaire",
        "status",
    ),
    "Parameters": _resource("Parameters", {"parameter": _array(_PARAMETER)}, "parameter"),
    "PlanInput": {
        "description": "A QuestionnaireResponse, an answers document (see 'safetyplan schema'), or for "
        "the operations a Parameters resource holding the response.",
        "anyOf": [_ref("QuestionnaireResponse"), _ref("AnswersDocument"), _ref("Parameters")],
    },
}


def schemas() -> JSON:
    """The schema components: the answers document's models (from its Pydantic schema) and the outlines."""
    from fhir_safetyplan.answers import AnswersDocument

    answers = AnswersDocument.model_json_schema(ref_template="#/components/schemas/{model}")
    defs: JSON = answers.pop("$defs", {})
    return {**defs, "AnswersDocument": answers, **copy.deepcopy(_COMPONENTS)}


def document(app: FastAPI) -> JSON:
    """The OpenAPI document of ``app`` (a FastAPI app), with our components; made once and kept on the app."""
    if app.openapi_schema is None:
        from fastapi.openapi.utils import get_openapi

        schema = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
        schema.setdefault("components", {}).setdefault("schemas", {}).update(schemas())
        app.openapi_schema = schema
    result: JSON = app.openapi_schema
    return result
