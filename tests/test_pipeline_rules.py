"""Rules the pipeline enforces beyond the Questionnaire: what gets written, and how submissions are keyed."""

from __future__ import annotations

import copy
import json
import logging
from pathlib import Path
from typing import Any

import pytest

from fhir_safetyplan import pipeline
from fhir_safetyplan.document import DocumentContext
from fhir_safetyplan.errors import InputError, has_errors

ROOT = Path(__file__).resolve().parent.parent


def renderer_response() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(
        (ROOT / "examples" / "08-skjema-fra-renderer" / "input.json").read_text(encoding="utf-8")
    )
    return data


def answers(name: str = "01-alt-pa-plass") -> dict[str, Any]:
    data: dict[str, Any] = json.loads((ROOT / "examples" / name / "answers.json").read_text(encoding="utf-8"))
    return data


def written(bundle: dict[str, Any], rtype: str) -> dict[str, Any]:
    return next(e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == rtype)


def errors_of(data: dict[str, Any]) -> list[dict[str, Any]]:
    outcome = pipeline.validate(data)
    return [i for i in outcome["issue"] if i["severity"] == "error"]


def test_two_senders_numbering_responses_alike_never_share_resource_ids() -> None:
    a, b = renderer_response(), renderer_response()
    a["identifier"] = {"system": "urn:example:system-a", "value": "1001"}
    b["identifier"] = {"system": "urn:example:system-b", "value": "1001"}
    ids_a = {e["request"]["url"] for e in pipeline.build_bundle(a)["entry"]}
    ids_b = {e["request"]["url"] for e in pipeline.build_bundle(b)["entry"]}
    assert not ids_a & ids_b


def test_an_identity_number_in_the_senders_identifier_never_becomes_an_id() -> None:
    qr = renderer_response()
    qr["identifier"] = {"system": "urn:example:forms", "value": "15838540063"}
    bundle = pipeline.build_bundle(qr)
    assert "15838540063" not in json.dumps([bundle["identifier"], [e["request"] for e in bundle["entry"]]])


def test_only_known_elements_of_a_senders_response_are_written() -> None:
    qr = renderer_response()
    qr["contained"] = [{"resourceType": "Patient", "id": "p", "address": [{"text": "Testveien 1"}]}]
    qr["extension"] = [{"url": "urn:example:x", "valueString": "Testveien 1"}]
    qr["source"] = {"reference": "#p"}
    qr["item"][0]["extension"] = [{"url": "urn:example:y", "valueString": "Testveien 1"}]
    bundle = pipeline.build_bundle(qr)
    assert "Testveien" not in json.dumps(bundle)
    assert not {"contained", "extension", "source"} & set(written(bundle, "QuestionnaireResponse"))


def test_a_contact_channel_cannot_be_both_safe_and_forbidden_in_a_response() -> None:
    qr = renderer_response()
    contact = next(i for i in qr["item"] if i["linkId"] == "trygg-kontakt")
    unsafe = next(i for i in contact["item"] if i["linkId"] == "trygg-kontakt.utrygge")
    safe = next(i for i in contact["item"] if i["linkId"] == "trygg-kontakt.trygge")
    unsafe["answer"].append(copy.deepcopy(safe["answer"][0]))
    assert any("cannot say both" in i["diagnostics"] for i in errors_of(qr))
    with pytest.raises(InputError):
        pipeline.build_bundle(qr)


def refused_at(element: str, value: str) -> dict[str, Any]:
    """The renderer's response with ``element`` set to ``value``, after checking validation refuses it there."""
    qr = {**renderer_response(), element: value}
    assert any(i["expression"] == [f"QuestionnaireResponse.{element}"] for i in errors_of(qr))
    return qr


@pytest.mark.parametrize("status", ["in-progress", "stopped", "entered-in-error"])
def test_only_a_finished_response_is_documented(status: str) -> None:
    qr = refused_at("status", status)
    with pytest.raises(InputError):
        pipeline.build_bundle(qr)


@pytest.mark.parametrize("authored", ["2026-11", "2026-11-20", "2026-11-20T10:15:00"])
def test_authored_must_be_a_full_date_time_with_time_zone(authored: str) -> None:
    refused_at("authored", authored)


def test_noncharacters_that_break_xhtml_are_refused() -> None:
    doc = answers()
    doc["answers"]["agreedActions"] = ["Ny samtale \ufffe"]
    assert has_errors(pipeline.validate(doc))


def test_a_response_whose_items_are_null_is_refused_not_crashed() -> None:
    qr = renderer_response()
    qr["item"] = None
    assert errors_of(qr)
    with pytest.raises(InputError):
        pipeline.build_bundle(qr)


@pytest.mark.parametrize(
    ("in_document", "from_caller", "expected"),
    [(None, "V", "V"), ("V", "R", "V"), ("R", "R", "R"), (None, "R", "R")],
)
def test_the_stricter_confidentiality_wins(in_document: str | None, from_caller: str, expected: str) -> None:
    doc = answers()
    if in_document:
        doc["confidentiality"] = in_document
    bundle = pipeline.build_bundle(doc, DocumentContext(confidentiality=from_caller))  # type: ignore[arg-type]
    assert {e["resource"]["meta"]["security"][0]["code"] for e in bundle["entry"]} == {expected}


def test_verbose_logging_keeps_the_http_stack_quiet(tmp_path: Path) -> None:
    from fhir_safetyplan.cli import main

    path = tmp_path / "a.json"
    path.write_text(json.dumps(answers()), encoding="utf-8")
    assert main(["-vv", "validate", str(path)]) == 0
    assert logging.getLogger("urllib3").getEffectiveLevel() >= logging.WARNING
