"""Messages are sentences: none ends in "?." (issue 9 point 11) — the server-refusal hints, the capability check,
and every OperationOutcome the bad-input corpus produces."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import responses

from fhir_safetyplan import pipeline
from fhir_safetyplan.client import NO_RETRY, FhirClient, FhirError
from fhir_safetyplan.errors import InputError

BASE = "http://fhir.test/fhir"
CORPUS = Path(__file__).parent / "bad_inputs"
BUNDLE = {"resourceType": "Bundle", "type": "transaction", "entry": []}


def _texts(err: FhirError) -> str:
    return str(err) + " " + json.dumps(err.outcome or {}, ensure_ascii=False)


@pytest.mark.parametrize("status", [301, 400, 401, 403, 404, 405, 407, 409, 410, 412, 413, 415, 422, 500])
def test_what_the_client_says_about_a_refused_transaction_never_ends_in_question_mark_and_period(
    status: int,
) -> None:
    with responses.RequestsMock() as rsps:
        rsps.post(BASE, status=status, headers={"Location": f"{BASE}/x"} if status == 301 else {})
        client = FhirClient(BASE, retries=NO_RETRY)
        with pytest.raises(FhirError) as info:
            client.transaction(BUNDLE)
    text = _texts(info.value)
    assert "?." not in text, text
    if status == 404:
        assert f"check that {BASE} is the FHIR base URL." in text


def test_metadata_that_is_not_a_capability_statement_says_what_to_check_as_a_sentence() -> None:
    with responses.RequestsMock() as rsps:
        rsps.get(f"{BASE}/metadata", json={"resourceType": "Bundle"})
        with pytest.raises(FhirError) as info:
            FhirClient(BASE, retries=NO_RETRY).capabilities()
    assert "?." not in _texts(info.value) and str(info.value).endswith("base URL.")


def test_no_operation_outcome_of_the_bad_input_corpus_has_a_question_mark_and_period() -> None:
    for path in sorted(CORPUS.glob("*.json")):
        try:
            outcome = pipeline.validate(pipeline.parse_json(path.read_bytes(), path.name))
        except InputError as err:
            outcome = err.outcome
        assert "?." not in json.dumps(outcome, ensure_ascii=False), path.name
