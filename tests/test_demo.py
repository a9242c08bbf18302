"""``safetyplan demo`` delivers its example for a new synthetic patient each run, so a shared server's other
plans for the example's own patient never hold the demo's plan (the run against HAPI is in
``tests/integration/test_demo.py``)."""

from __future__ import annotations

import copy
import json
import random
from pathlib import Path
from typing import Any

from fhir_safetyplan import pipeline
from fhir_safetyplan.commands.demo import for_new_patient
from fhir_safetyplan.identifiers import FNR_SYSTEM, is_real_looking, parse_identity_number

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def example(name: str, file: str = "answers.json") -> Any:
    return json.loads((EXAMPLES / name / file).read_text(encoding="utf-8"))


def test_an_answers_document_gets_a_new_valid_synthetic_fnr_and_keeps_everything_else() -> None:
    doc = example("01-alt-pa-plass")
    fresh = for_new_patient(copy.deepcopy(doc), random.Random(7))
    number = fresh["patient"]["fnr"]
    assert number != doc["patient"]["fnr"]
    found = parse_identity_number(number)
    assert found.kind == "fnr" and found.synthetic and not is_real_looking(number)
    assert {k: v for k, v in fresh.items() if k != "patient"} == {
        k: v for k, v in doc.items() if k != "patient"
    }
    assert pipeline.validate(fresh)["issue"][0]["severity"] == "information"  # still a valid plan


def test_every_run_gets_another_patient() -> None:
    doc = example("01-alt-pa-plass")
    numbers = {for_new_patient(doc)["patient"]["fnr"] for _ in range(50)}
    assert len(numbers) == 50


def test_a_response_naming_its_patient_by_identifier_gets_a_new_one() -> None:
    qr = example("01-alt-pa-plass", "questionnaire-response.json")
    assert qr["subject"]["identifier"]["system"] == FNR_SYSTEM
    fresh = for_new_patient(copy.deepcopy(qr), random.Random(3))
    ident = fresh["subject"]["identifier"]
    assert ident["system"] == FNR_SYSTEM and ident["value"] != qr["subject"]["identifier"]["value"]
    assert parse_identity_number(ident["value"]).synthetic
    assert fresh["item"] == qr["item"]


def test_a_response_naming_its_patient_by_reference_is_kept() -> None:
    qr = example("08-skjema-fra-renderer", "input.json")
    assert for_new_patient(copy.deepcopy(qr)) == qr
