"""Resource ids are derived from the submission *and* the patient: one patient's record can never be overwritten
by another patient's plan that happens to carry the same submission id."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from fhir_safetyplan import pipeline
from fhir_safetyplan.identifiers import FNR_SYSTEM, synthetic_fnr
from fhir_safetyplan.ids import patient_key, plan_scope, resource_id

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "02-flere-mangler" / "answers.json"


def _plan(fnr: str, submission: str = "engine-1") -> dict[str, Any]:
    data: dict[str, Any] = json.loads(EXAMPLE.read_text(encoding="utf-8"))
    data["submissionId"] = submission
    data["patient"] = {"fnr": fnr}
    return data


def _ids_of(bundle: dict[str, Any]) -> set[str]:
    return {e["fullUrl"] for e in bundle["entry"]} | {
        e["request"]["url"] for e in bundle["entry"] if e["request"]["method"] == "PUT"
    }


def _two_fnrs() -> tuple[str, str]:
    from datetime import date

    return synthetic_fnr(date(1985, 3, 15), 100), synthetic_fnr(date(1990, 7, 1), 200)


def test_the_same_submission_for_two_patients_gives_disjoint_ids_and_full_urls() -> None:
    a, b = _two_fnrs()
    bundle_a = pipeline.build_bundle(_plan(a))
    bundle_b = pipeline.build_bundle(_plan(b))
    assert len(bundle_a["entry"]) == len(bundle_b["entry"]) == 5
    assert not _ids_of(bundle_a) & _ids_of(bundle_b)
    # Both still carry the sender's submission identifier: that is what the engine knows the plan by.
    assert bundle_a["identifier"] == bundle_b["identifier"]


def test_the_same_submission_for_the_same_patient_gets_the_same_ids_every_time() -> None:
    a, _ = _two_fnrs()
    assert _ids_of(pipeline.build_bundle(_plan(a))) == _ids_of(pipeline.build_bundle(copy.deepcopy(_plan(a))))


def test_a_patient_given_by_identifier_or_by_conditional_reference_is_the_same_patient() -> None:
    a, _ = _two_fnrs()
    by_identifier = {"identifier": {"system": FNR_SYSTEM, "value": a}}
    by_conditional = {"reference": f"Patient?identifier={FNR_SYSTEM}|{a}"}
    both = {"reference": "Patient/123", **by_identifier}
    assert patient_key(by_identifier) == patient_key(by_conditional) == patient_key(both)
    assert plan_scope("S", by_identifier) == plan_scope("S", by_conditional)


def test_a_literal_reference_identifies_the_patient_when_there_is_no_identifier() -> None:
    assert plan_scope("S", {"reference": "Patient/1"}) != plan_scope("S", {"reference": "Patient/2"})
    assert patient_key({"reference": "Patient/1"}) == "reference Patient/1"


def test_ids_reveal_neither_the_identity_number_nor_the_submission() -> None:
    a, _ = _two_fnrs()
    bundle = json.dumps(_ids_of(pipeline.build_bundle(_plan(a, "engine-secret-7"))), default=list)
    assert a not in bundle
    assert "engine-secret-7" not in bundle
    rid = resource_id(
        plan_scope("engine-secret-7", {"identifier": {"system": FNR_SYSTEM, "value": a}}), "Flag"
    )
    assert rid.startswith("sp-") and a not in rid
