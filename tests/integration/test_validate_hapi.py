"""HAPI's own validator agrees with us: after uploading our CodeSystems, ValueSets, StructureDefinitions and
Questionnaires, ``$validate`` finds no error in any example resource (against its declared profile) nor in any
example QuestionnaireResponse (against our Questionnaire) — and does report errors when something is wrong, so
the check is real.

Validation uses ``?profile=`` / ``meta.profile``: HAPI 8.8.0 does not resolve a profile given as a ``profile``
parameter inside a Parameters body ("Invalid profile. Failed to retrieve profile with url=UriType[...]").
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from .conftest import Fhir

JSON = dict[str, Any]
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
EXAMPLE_DIRS = sorted(p for p in EXAMPLES.iterdir() if (p / "bundle.json").is_file())


def errors(outcome: JSON) -> list[str]:
    """The error and fatal issues of an OperationOutcome, with where they are."""
    return [
        f"{i.get('diagnostics')} @ {i.get('expression') or i.get('location')}"
        for i in outcome.get("issue", [])
        if i.get("severity") in ("error", "fatal")
    ]


@pytest.fixture(scope="module")
def uploaded(hapi_base_url: str) -> list[JSON]:
    """Our conformance resources, uploaded before anything is validated (HAPI caches unknown profiles)."""
    from fhir_safetyplan.client import FhirClient
    from fhir_safetyplan.conformance import all_resources
    from fhir_safetyplan.upload import upload_conformance

    with FhirClient(hapi_base_url, timeout=(5.0, 300.0)) as client:
        results = upload_conformance(client)
    assert all(r.status.startswith(("200", "201")) for r in results), results
    return all_resources()


def _example_resources() -> list[Any]:
    params = []
    for folder in EXAMPLE_DIRS:
        bundle = json.loads((folder / "bundle.json").read_text(encoding="utf-8"))
        for entry in bundle["entry"]:
            resource = entry["resource"]
            params.append(pytest.param(resource, id=f"{folder.name}-{resource['resourceType']}"))
    return params


def test_every_conformance_resource_is_on_the_server(uploaded: list[JSON], fhir: Fhir) -> None:
    # url and version: the frozen 1.0.0 Questionnaires share their url with 1.1.0, side by side on the server.
    for resource in uploaded:
        if resource["resourceType"] == "NamingSystem":  # no url: found by its uniqueId
            canonical = resource["uniqueId"][0]["value"]
            found = fhir.search("NamingSystem", value=canonical)
        else:
            # url and version: the frozen 1.0.0 Questionnaires share their url with 1.1.0, side by side
            canonical = resource["url"]
            found = fhir.search(resource["resourceType"], url=canonical, version=resource["version"])
        assert [r["id"] for r in found] == [resource["id"]], canonical


@pytest.mark.parametrize("resource", _example_resources())
def test_example_resource_has_no_errors_against_its_declared_profile(
    resource: JSON, uploaded: list[JSON], fhir: Fhir
) -> None:
    profiles = (resource.get("meta") or {}).get("profile") or []
    if resource["resourceType"] != "Patient":
        assert profiles, "every written resource declares its profile"
    # References inside a transaction (urn:uuid, Patient?identifier=) are not resolved by $validate: fine.
    outcome = fhir.validate(resource, profile=profiles[0] if profiles else None)
    assert errors(outcome) == []
    # The profile was really found and applied (an unknown profile is an error, but say it plainly).
    assert not any("Failed to retrieve profile" in str(i.get("diagnostics")) for i in outcome["issue"])


@pytest.mark.parametrize("folder", EXAMPLE_DIRS, ids=[p.name for p in EXAMPLE_DIRS])
def test_example_questionnaire_response_has_no_errors_against_our_questionnaire(
    folder: Path, uploaded: list[JSON], fhir: Fhir
) -> None:
    response = json.loads((folder / "questionnaire-response.json").read_text(encoding="utf-8"))
    outcome = fhir.validate(response)
    assert errors(outcome) == []
    # HAPI only warns when it cannot find the Questionnaire: make sure it found ours.
    assert not any(
        "resolve" in str(i.get("diagnostics")).lower()
        and "questionnaire" in str(i.get("diagnostics")).lower()
        for i in outcome["issue"]
    ), outcome


def _response() -> JSON:
    response: JSON = json.loads(
        (EXAMPLES / "01-alt-pa-plass" / "questionnaire-response.json").read_text(encoding="utf-8")
    )
    return response


def test_hapi_reports_a_wrong_link_id_as_an_error(uploaded: list[JSON], fhir: Fhir) -> None:
    response = _response()
    response["item"][0]["item"][0]["linkId"] = "samtale.finnes-ikke"
    found = errors(fhir.validate(response))
    assert any("samtale.finnes-ikke" in e and "not found in questionnaire" in e for e in found), found


def test_hapi_reports_a_wrong_item_text_as_an_error(uploaded: list[JSON], fhir: Fhir) -> None:
    response = _response()
    response["item"][0]["item"][0]["text"] = "Ein annan tekst"
    found = errors(fhir.validate(response))
    assert any("must match the questionnaire definition for linkId samtale.informert" in e for e in found), (
        found
    )


def test_hapi_reports_a_missing_security_label_against_our_profile(uploaded: list[JSON], fhir: Fhir) -> None:
    bundle = json.loads((EXAMPLES / "01-alt-pa-plass" / "bundle.json").read_text(encoding="utf-8"))
    flag = copy.deepcopy(
        next(e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Flag")
    )
    flag["meta"]["security"] = [s for s in flag["meta"]["security"] if s["code"] != "SDV"]
    found = errors(fhir.validate(flag))
    assert any("sp-sec-1" in e for e in found), found
