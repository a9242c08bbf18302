"""``Questionnaire/$populate`` over HTTP: SDC Parameters in, Parameters with ``response`` and ``issues`` out.

The app runs in-process (FastAPI's TestClient); the upstream (for a plan read from the server) is scripted with
``responses``. The end-to-end path against a real HAPI server is in tests/integration/test_populate_hapi.py.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import responses
from _searches import active_plan, searchset
from fastapi.testclient import TestClient

from fhir_safetyplan import codes
from fhir_safetyplan.pipeline import respond
from fhir_safetyplan.service import ServiceSettings, Tokens, create_app

pytestmark = pytest.mark.filterwarnings("ignore:Using `httpx`:DeprecationWarning")

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
TOKEN = "test-token-0123456789abcdef"
HEADERS = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/fhir+json"}
UPSTREAM = "http://upstream.test/fhir"
NB = f"{codes.DEFAULT_CANONICAL_BASE}/Questionnaire/sikkerhetsplan-nb|{codes.QUESTIONNAIRE_VERSION}"


def previous(name: str = "02-flere-mangler") -> dict[str, Any]:
    return respond(json.loads((EXAMPLES / name / "answers.json").read_text(encoding="utf-8")))


def parameters(prev: dict[str, Any] | None, **extra: Any) -> dict[str, Any]:
    params: list[dict[str, Any]] = [{"name": k, **v} for k, v in extra.items()]
    if prev is not None:
        params.append(
            {
                "name": "context",
                "part": [
                    {"name": "name", "valueString": "previousResponse"},
                    {"name": "content", "resource": prev},
                ],
            }
        )
    return {"resourceType": "Parameters", "parameter": params}


def out(response: Any, name: str) -> dict[str, Any]:
    found: dict[str, Any] = next(p["resource"] for p in response.json()["parameter"] if p["name"] == name)
    return found


@pytest.fixture
def client() -> Iterator[TestClient]:
    settings = ServiceSettings(
        tokens=Tokens([TOKEN]), flush_interval=0, upstream=UPSTREAM, upstream_retries=0
    )
    with TestClient(create_app(settings), raise_server_exceptions=False) as c:
        yield c


def test_populate_returns_parameters_with_the_prefilled_response_and_its_issues(client: TestClient) -> None:
    r = client.post(
        "/Questionnaire/$populate",
        json=parameters(previous(), questionnaire={"valueCanonical": NB}),
        headers=HEADERS,
    )
    assert r.status_code == 200, r.text
    qr = out(r, "response")
    assert qr["status"] == "in-progress" and qr["questionnaire"] == NB
    issues = out(r, "issues")
    assert issues["resourceType"] == "OperationOutcome"
    assert any("samtale.involvering" in i["diagnostics"] for i in issues["issue"])


def test_instance_level_populate_uses_the_form_in_the_path(client: TestClient) -> None:
    r = client.post(
        "/Questionnaire/sikkerhetsplan-en/$populate", json=parameters(previous()), headers=HEADERS
    )
    assert r.status_code == 200, r.text
    assert out(r, "response")["questionnaire"].startswith(
        f"{codes.DEFAULT_CANONICAL_BASE}/Questionnaire/sikkerhetsplan-en|"
    )


def test_populate_needs_a_token(client: TestClient) -> None:
    r = client.post("/Questionnaire/$populate", json=parameters(previous()), headers={"Authorization": ""})
    assert r.status_code == 401
    assert r.json()["resourceType"] == "OperationOutcome"


@pytest.mark.parametrize(
    "body",
    [
        {"resourceType": "QuestionnaireResponse"},
        {"resourceType": "Parameters", "parameter": "x"},
        parameters(None, subject={"valueString": "Patient/1"}),
        parameters({"resourceType": "QuestionnaireResponse", "status": "completed", "item": [{"linkId": 3}]}),
        parameters(
            previous(), questionnaire={"valueCanonical": "http://elsewhere.example/Questionnaire/x|1"}
        ),
        {"resourceType": "Parameters", "parameter": [{"name": "context", "part": 7}]},
        {"resourceType": "Parameters", "parameter": [{"name": "questionnaire", "valueInteger": 3}]},
        parameters(
            {**previous(), "subject": {"reference": "Patient/a"}},
            subject={"valueReference": {"reference": "Patient/b"}},
        ),
    ],
    ids=[
        "not-parameters",
        "parameter-not-a-list",
        "subject-not-a-reference",
        "previous-not-r4",
        "unknown-form",
        "context-parts-not-a-list",
        "questionnaire-not-a-form",
        "another-patients-plan",
    ],
)
def test_bad_populate_input_is_a_4xx_operation_outcome(client: TestClient, body: dict[str, Any]) -> None:
    r = client.post("/Questionnaire/$populate", json=body, headers=HEADERS)
    assert 400 <= r.status_code < 500, r.text
    assert r.json()["resourceType"] == "OperationOutcome" and r.json()["issue"][0]["diagnostics"]


def test_an_oversized_populate_body_is_413(client: TestClient) -> None:
    big = parameters(previous(), questionnaire={"valueString": "x" * 1_100_000})
    r = client.post("/Questionnaire/$populate", content=json.dumps(big), headers=HEADERS)
    assert r.status_code == 413 and r.json()["resourceType"] == "OperationOutcome"


@responses.activate
def test_without_a_previous_response_the_subjects_current_plan_is_read_from_the_upstream(
    client: TestClient,
) -> None:
    prev = {**previous(), "id": "qr-1", "subject": {"reference": "Patient/p1"}}
    plan = active_plan("cp-1", "qr-1", prev["identifier"])
    responses.get(f"{UPSTREAM}/CarePlan", json=searchset(plan))
    responses.get(f"{UPSTREAM}/QuestionnaireResponse", json=searchset(prev))
    r = client.post(
        "/Questionnaire/$populate",
        json=parameters(None, subject={"valueReference": {"reference": "Patient/p1"}}),
        headers=HEADERS,
    )
    assert r.status_code == 200, r.text
    assert out(r, "response")["subject"] == {"reference": "Patient/p1"}
    assert len(responses.calls) == 2  # one CarePlan search, one QuestionnaireResponse search


@responses.activate
def test_a_subject_without_a_plan_on_the_upstream_is_404(client: TestClient) -> None:
    empty = {"resourceType": "Bundle", "type": "searchset"}
    responses.get(f"{UPSTREAM}/CarePlan", json=empty)
    responses.get(f"{UPSTREAM}/QuestionnaireResponse", json=empty)
    r = client.post(
        "/Questionnaire/$populate",
        json=parameters(None, subject={"valueReference": {"reference": "Patient/p2"}}),
        headers=HEADERS,
    )
    assert r.status_code == 404 and r.json()["resourceType"] == "OperationOutcome"


@responses.activate
def test_an_upstream_that_fails_the_plan_search_is_502_with_no_stack_and_no_subject(
    client: TestClient,
) -> None:
    responses.get(f"{UPSTREAM}/CarePlan", status=500, body="boom")
    r = client.post(
        "/Questionnaire/$populate",
        json=parameters(None, subject={"valueReference": {"reference": "Patient/p3"}}),
        headers=HEADERS,
    )
    assert r.status_code == 502 and r.json()["resourceType"] == "OperationOutcome"
    assert r.headers["content-type"].startswith("application/fhir+json")
    assert "Traceback" not in r.text and "p3" not in r.text


def test_the_capability_statement_and_openapi_list_populate(client: TestClient) -> None:
    meta = client.get("/metadata").json()
    q = next(r for r in meta["rest"][0]["resource"] if r["type"] == "Questionnaire")
    assert q["operation"] == [{"name": "populate", "definition": codes.SDC_POPULATE_OPERATION}]
    paths = client.get("/openapi.json").json()["paths"]
    assert "/Questionnaire/$populate" in paths and "/Questionnaire/{id}/$populate" in paths


def test_the_openapi_populate_example_carries_its_safe_channel_into_the_new_response(
    client: TestClient,
) -> None:
    operation = client.get("/openapi.json").json()["paths"]["/Questionnaire/$populate"]["post"]
    example = operation["requestBody"]["content"]["application/fhir+json"]["examples"]["previous"]["value"]
    r = client.post("/Questionnaire/$populate", json=example, headers=HEADERS)
    assert r.status_code == 200, r.text
    safe = next(
        inner
        for item in out(r, "response")["item"]
        if item["linkId"] == "trygg-kontakt"
        for inner in item["item"]
        if inner["linkId"] == "trygg-kontakt.trygge"
    )
    assert [a["valueCoding"]["code"] for a in safe["answer"]] == ["oppmote"]
