"""What fhir-safetyplan relies on in a HAPI FHIR server, proven on the real local server.

These are also the HAPI behaviours (status codes, HAPI-NNNN message codes) that the client is written
against; if a HAPI upgrade changes one, a test here says which.
"""

from __future__ import annotations

import copy
import uuid
from typing import Any

from .conftest import Fhir, fresh_identifier

JSON = dict[str, Any]
FNR = "urn:oid:2.16.578.1.12.4.1.4.1"
CONFIDENTIALITY = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality"
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
SECURITY = [{"system": CONFIDENTIALITY, "code": "R"}, {"system": ACT_CODE, "code": "SDV"}]
BASE = "https://safetyplan.example/fhir"


def _urn() -> str:
    return f"urn:uuid:{uuid.uuid4()}"


def _errors(outcome: JSON) -> list[str]:
    return [
        str(i.get("diagnostics", ""))
        for i in outcome.get("issue", [])
        if i.get("severity") in ("error", "fatal")
    ]


def _diagnostics(response: Any) -> str:
    return " ".join(str(i.get("diagnostics", "")) for i in response.json().get("issue", []))


def _patient(fnr_value: str) -> JSON:
    # The identifier value is a test-unique token, not a national identity number.
    return {
        "resourceType": "Patient",
        "identifier": [{"system": FNR, "value": fnr_value}],
        "name": [{"family": "Testesen", "given": ["Kari"]}],
    }


def _plan_bundle(key: str) -> JSON:
    """A journal-style transaction: conditional create of the Patient, PUT of a Flag and a CarePlan."""
    patient_urn = _urn()
    return {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": patient_urn,
                "resource": _patient(key),
                "request": {"method": "POST", "url": "Patient", "ifNoneExist": f"identifier={FNR}|{key}"},
            },
            {
                "fullUrl": _urn(),
                "resource": {
                    "resourceType": "Flag",
                    "id": f"flag-{key}",
                    "meta": {"security": copy.deepcopy(SECURITY)},
                    "status": "active",
                    "code": {"text": "Sikkerhetsplan finnes"},
                    "subject": {"reference": patient_urn},
                },
                "request": {"method": "PUT", "url": f"Flag/flag-{key}"},
            },
            {
                "fullUrl": _urn(),
                "resource": {
                    "resourceType": "CarePlan",
                    "id": f"plan-{key}",
                    "meta": {"security": copy.deepcopy(SECURITY)},
                    "status": "active",
                    "intent": "plan",
                    "subject": {"reference": patient_urn},
                },
                "request": {"method": "PUT", "url": f"CarePlan/plan-{key}"},
            },
        ],
    }


def test_transaction_of_puts_and_conditional_create_retried_leaves_one_of_each_unchanged(fhir: Fhir) -> None:
    key = fresh_identifier()
    first = fhir.transaction(_plan_bundle(key))
    assert first.status_code == 200, first.text
    statuses = [e["response"]["status"] for e in first.json()["entry"]]
    assert statuses == ["201 Created", "201 Created", "201 Created"]

    # A retry after a lost response sends the same content again (with fresh urn:uuids, as a new build would).
    for _ in range(2):
        again = fhir.transaction(_plan_bundle(key))
        assert again.status_code == 200, again.text
        entries = again.json()["entry"]
        assert [e["response"]["status"] for e in entries] == ["200 OK", "200 OK", "200 OK"]
        # Identical content: HAPI makes no new version.
        assert all(e["response"]["location"].endswith("/_history/1") for e in entries)

    patients = fhir.search("Patient", identifier=f"{FNR}|{key}")
    assert len(patients) == 1
    flag = fhir.get(f"Flag/flag-{key}").json()
    plan = fhir.get(f"CarePlan/plan-{key}").json()
    assert flag["meta"]["versionId"] == "1" and plan["meta"]["versionId"] == "1"
    # urn:uuid references were rewritten to the one Patient's server id.
    assert flag["subject"]["reference"] == f"Patient/{patients[0]['id']}"
    assert plan["subject"]["reference"] == f"Patient/{patients[0]['id']}"


def test_conditional_create_in_transaction_reuses_existing_patient_and_resolves_references(
    fhir: Fhir, upload: Any
) -> None:
    key = fresh_identifier()
    (existing,) = upload(_patient(key))
    response = fhir.transaction(_plan_bundle(key))
    assert response.status_code == 200, response.text
    patient_entry = response.json()["entry"][0]["response"]
    assert patient_entry["status"] == "200 OK"
    assert patient_entry["location"].startswith(f"Patient/{existing['id']}/")
    flag = fhir.get(f"Flag/flag-{key}").json()
    assert flag["subject"]["reference"] == f"Patient/{existing['id']}"


def test_conditional_create_matching_two_resources_is_refused_with_412_hapi_0958(
    fhir: Fhir, upload: Any
) -> None:
    key = fresh_identifier()
    upload(_patient(key), _patient(key))  # plain creates: two Patients with one identifier
    response = fhir.transaction(_plan_bundle(key))
    assert response.status_code == 412
    assert "HAPI-0958" in _diagnostics(response)
    assert fhir.get(f"Flag/flag-{key}").status_code == 404  # the whole transaction was rolled back


def test_client_assigned_numeric_id_is_refused_with_400_hapi_0960(fhir: Fhir) -> None:
    number = str(uuid.uuid4().int)[:12]
    response = fhir.put({"resourceType": "Basic", "id": number, "code": {"text": "x"}})
    assert response.status_code == 400
    assert "HAPI-0960" in _diagnostics(response)


def test_reference_to_a_missing_resource_is_refused_with_400_hapi_1094(fhir: Fhir) -> None:
    flag = {
        "resourceType": "Flag",
        "status": "active",
        "code": {"text": "x"},
        "subject": {"reference": f"Patient/{fresh_identifier('missing')}"},
    }
    response = fhir.post("Flag", flag)
    assert response.status_code == 400
    assert "HAPI-1094" in _diagnostics(response)


def _definition(rtype: str, rid: str, **fields: Any) -> JSON:
    """An active definition of this type and id, its canonical url under BASE."""
    return {"resourceType": rtype, "id": rid, "url": f"{BASE}/{rtype}/{rid}", "status": "active", **fields}


def _flag_profile(key: str) -> JSON:
    """A profile on Flag that requires a period (differential only: HAPI generates the snapshot)."""
    return _definition(
        "StructureDefinition",
        f"flag-{key}",
        name="TestFlagWithPeriod",
        fhirVersion="4.0.1",
        kind="resource",
        abstract=False,
        type="Flag",
        baseDefinition="http://hl7.org/fhir/StructureDefinition/Flag",
        derivation="constraint",
        differential={
            "element": [
                {"id": "Flag", "path": "Flag"},
                {"id": "Flag.period", "path": "Flag.period", "min": 1},
            ]
        },
    )


def test_validate_against_uploaded_profile_reports_violation_as_error(fhir: Fhir, upload: Any) -> None:
    key = fresh_identifier()
    profile = _flag_profile(key)
    (patient,) = upload(_patient(key))
    upload(profile)
    flag: JSON = {
        "resourceType": "Flag",
        "meta": {"profile": [profile["url"]]},
        "status": "active",
        "code": {"text": "x"},
        "subject": {"reference": f"Patient/{patient['id']}"},
    }

    errors = _errors(fhir.validate(flag))
    assert any("Flag.period" in e and "minimum required = 1" in e for e in errors), errors

    # The same via ?profile= without meta.profile.
    without_meta = {k: v for k, v in flag.items() if k != "meta"}
    errors = _errors(fhir.validate(without_meta, profile=profile["url"]))
    assert any("Flag.period" in e for e in errors), errors

    assert _errors(fhir.validate({**flag, "period": {"start": "2026-01-01"}})) == []


def _questionnaire(key: str) -> JSON:
    return _definition(
        "Questionnaire",
        f"q-{key}",
        version="1.0.0",
        item=[
            {"linkId": "har-plan", "text": "Har du en plan?", "type": "boolean", "required": True},
            {"linkId": "kommentar", "text": "Kommentar", "type": "string"},
        ],
    )


def _response(questionnaire: JSON, items: list[JSON]) -> JSON:
    return {
        "resourceType": "QuestionnaireResponse",
        "questionnaire": f"{questionnaire['url']}|{questionnaire['version']}",
        "status": "completed",
        "item": items,
    }


def test_questionnaire_response_is_validated_against_uploaded_questionnaire(fhir: Fhir, upload: Any) -> None:
    questionnaire = _questionnaire(fresh_identifier())
    upload(questionnaire)
    answered = {"linkId": "har-plan", "answer": [{"valueBoolean": True}]}

    good = fhir.validate(_response(questionnaire, [answered]))
    assert _errors(good) == []
    # The validator found the Questionnaire (an unresolvable one is only a warning, so check explicitly).
    assert not any("could not be resolved" in str(i.get("diagnostics")) for i in good["issue"])

    bad_link = _response(
        questionnaire, [answered, {"linkId": "finnes-ikke", "answer": [{"valueString": "x"}]}]
    )
    errors = _errors(fhir.validate(bad_link))
    assert any("finnes-ikke" in e and "not found in questionnaire" in e for e in errors), errors

    wrong_type = _response(questionnaire, [{"linkId": "har-plan", "answer": [{"valueString": "ja"}]}])
    assert any("must be of the type boolean" in e for e in _errors(fhir.validate(wrong_type)))

    missing_required = _response(questionnaire, [{"linkId": "kommentar", "answer": [{"valueString": "x"}]}])
    assert any("required item 'har-plan'" in e for e in _errors(fhir.validate(missing_required)))


def test_security_label_search_finds_labelled_resources_only(fhir: Fhir, upload: Any) -> None:
    key = fresh_identifier()
    (patient,) = upload(_patient(key))
    subject = {"reference": f"Patient/{patient['id']}"}
    labelled = {
        "resourceType": "Flag",
        "id": f"lab-{key}",
        "meta": {"security": copy.deepcopy(SECURITY)},
        "status": "active",
        "code": {"text": "x"},
        "subject": subject,
    }
    plain = {
        "resourceType": "Flag",
        "id": f"pln-{key}",
        "status": "active",
        "code": {"text": "x"},
        "subject": subject,
    }
    upload(labelled, plain)

    found = fhir.search("Flag", subject=f"Patient/{patient['id']}", _security=f"{ACT_CODE}|SDV")
    assert [f["id"] for f in found] == [labelled["id"]]
    stored = {(s["system"], s["code"]) for s in found[0]["meta"]["security"]}
    assert stored == {(CONFIDENTIALITY, "R"), (ACT_CODE, "SDV")}
    assert len(fhir.search("Flag", subject=f"Patient/{patient['id']}")) == 2


def test_search_cache_is_bypassed_only_with_no_cache_header(fhir: Fhir, upload: Any) -> None:
    key = fresh_identifier()
    (patient,) = upload(_patient(key))
    url = fhir.url("Flag")
    params = {"subject": f"Patient/{patient['id']}"}
    naive: dict[str, str | None] = {"Cache-Control": None}  # None drops the session's no-cache header
    assert fhir.session.get(url, params=params, headers=naive).json().get("total") == 0

    upload(
        {
            "resourceType": "Flag",
            "status": "active",
            "code": {"text": "x"},
            "subject": {"reference": params["subject"]},
        }
    )

    cached = fhir.session.get(url, params=params, headers=naive).json()
    assert cached.get("total") == 0  # HAPI reuses the identical search's results for 60 s
    assert len(fhir.search("Flag", **params)) == 1  # Cache-Control: no-cache sees it


def test_expunge_removes_a_deleted_resource_so_its_id_can_be_reused(fhir: Fhir, upload: Any) -> None:
    key = fresh_identifier()
    basic = {"resourceType": "Basic", "id": f"gone-{key}", "code": {"text": "x"}}
    upload(basic)
    assert fhir.session.delete(fhir.url(f"Basic/{basic['id']}"), timeout=60).status_code == 200
    expunge = fhir.post(
        f"Basic/{basic['id']}/$expunge",
        {
            "resourceType": "Parameters",
            "parameter": [{"name": "expungeDeletedResources", "valueBoolean": True}],
        },
    )
    assert expunge.status_code == 200, expunge.text
    history = fhir.get(f"Basic/{basic['id']}/_history")
    assert history.status_code == 404 or history.json().get("total") == 0, history.text
    (again,) = upload(basic)
    assert again["meta"]["versionId"] == "1"


def test_lenient_parser_stores_resource_without_wrongly_typed_and_unknown_elements(fhir: Fhir) -> None:
    # Why the client validates before sending: HAPI answers 201 and silently drops what it cannot parse,
    # here the required Flag.subject (a string instead of a Reference) and an unknown element.
    flag = {
        "resourceType": "Flag",
        "status": "active",
        "code": {"text": "x"},
        "subject": "Patient/someone",
        "unknownElement": fresh_identifier(),
    }
    response = fhir.post("Flag", flag)
    assert response.status_code == 201, response.text
    stored = response.json()
    assert "subject" not in stored and "unknownElement" not in stored
