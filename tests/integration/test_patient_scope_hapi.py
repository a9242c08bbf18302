"""Against the real HAPI server: the same submission id for another patient never touches the first patient's
record (issue 9 point 3). Two engines that number their messages 1, 2, 3 collide on submission ids all the time."""

from __future__ import annotations

from pathlib import Path

import pytest

from .conftest import Fhir
from .test_delivery_hapi import FNR, SUBMISSION_SYSTEM, fresh_plan, push, write

WRITTEN = {"QuestionnaireResponse", "CarePlan", "Flag", "DocumentReference", "Provenance"}


def test_the_same_submission_for_another_patient_leaves_the_first_patients_resources_unchanged(
    hapi_base_url: str, fhir: Fhir, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plan_a = fresh_plan("02-flere-mangler")
    plan_b = fresh_plan("02-flere-mangler")
    plan_b["submissionId"] = plan_a["submissionId"]
    outcomes = [
        push(capsys, str(write(tmp_path, plan, f"{name}.json")), "--server", hapi_base_url,
             "--create-patient", "--outbox", str(tmp_path / f"{name}.sqlite"))
        for name, plan in (("a", plan_a), ("b", plan_b))
    ]  # fmt: skip
    assert [code for code, _, _ in outcomes] == [0, 0], [err for _, _, err in outcomes]
    (_, summary_a, _), (_, summary_b, _) = outcomes
    refs_a = {f"{e['resourceType']}/{e['id']}" for e in summary_a["entries"] if e["resourceType"] in WRITTEN}
    refs_b = {f"{e['resourceType']}/{e['id']}" for e in summary_b["entries"] if e["resourceType"] in WRITTEN}
    assert len(refs_a) == len(refs_b) == 5
    assert not refs_a & refs_b, "the second patient's plan was written over the first patient's resources"

    patient_a = fhir.search("Patient", identifier=f"{FNR}|{plan_a['patient']['fnr']}")
    assert len(patient_a) == 1
    for ref in sorted(refs_a):
        history = fhir.get(f"{ref}/_history").json()
        assert history.get("total", len(history.get("entry", []))) == 1, f"{ref} got a new version"
        resource = fhir.get(ref).json()
        assert resource["meta"]["versionId"] == "1"
        if ref.startswith("Provenance/"):
            continue  # a Provenance has no subject: its targets are A's resources, checked above
        subject = resource["subject"]
        assert subject["reference"] == f"Patient/{patient_a[0]['id']}", ref

    # Each patient has one plan with the sender's submission identifier.
    token = f"{SUBMISSION_SYSTEM}|{plan_a['submissionId']}"
    found = fhir.search("QuestionnaireResponse", identifier=token)
    assert len(found) == 2
    assert {r["subject"]["identifier"]["value"] for r in found} == {
        plan_a["patient"]["fnr"],
        plan_b["patient"]["fnr"],
    }
