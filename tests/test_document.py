"""Journal documentation and the transaction Bundle: labels, links, narrative, idempotency, refusal."""

from __future__ import annotations

import base64
import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from fhir_safetyplan import codes, pipeline, settings
from fhir_safetyplan.document import CrisisCentre, DocumentContext
from fhir_safetyplan.errors import InputError

ROOT = Path(__file__).resolve().parent.parent
ALLOWED = {"QuestionnaireResponse", "CarePlan", "Flag", "DocumentReference", "Provenance"}


def answers(name: str = "02-flere-mangler") -> dict[str, Any]:
    data: dict[str, Any] = json.loads((ROOT / "examples" / name / "answers.json").read_text(encoding="utf-8"))
    return data


def resources(bundle: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["resource"]["resourceType"]: e["resource"] for e in bundle["entry"]}


def test_every_written_resource_carries_confidentiality_and_sdv_labels() -> None:
    for e in pipeline.build_bundle(answers())["entry"]:
        sec = {(s["system"], s["code"]) for s in e["resource"]["meta"]["security"]}
        assert (codes.CONFIDENTIALITY, "R") in sec and (codes.ACT_CODE, "SDV") in sec
        assert "contained" not in e["resource"]  # so no contained resource can carry labels (dom-5)


def test_only_allowed_resource_types_are_written() -> None:
    for name in ("01-alt-pa-plass", "03-barn-og-psykisk", "04-avslag"):
        assert {
            e["resource"]["resourceType"] for e in pipeline.build_bundle(answers(name))["entry"]
        } <= ALLOWED


def test_every_entry_is_an_idempotent_put_with_a_deterministic_id_and_urn_uuid_fullurl() -> None:
    b1 = pipeline.build_bundle(answers())
    b2 = pipeline.build_bundle(answers())
    assert json.dumps(b1) == json.dumps(b2)
    for e in b1["entry"]:
        assert e["fullUrl"].startswith("urn:uuid:")
        assert e["request"] == {
            "method": "PUT",
            "url": f"{e['resource']['resourceType']}/{e['resource']['id']}",
        }
    assert b1["identifier"]["value"] == "example-02-flere-mangler"


def test_a_different_submission_gets_different_ids() -> None:
    other = answers()
    other["submissionId"] = "another-submission"
    ids1 = {e["resource"]["id"] for e in pipeline.build_bundle(answers())["entry"]}
    ids2 = {e["resource"]["id"] for e in pipeline.build_bundle(other)["entry"]}
    assert not ids1 & ids2


def test_without_a_submission_id_the_id_is_derived_from_content() -> None:
    a = answers()
    del a["submissionId"]
    b = answers()
    del b["submissionId"]
    assert pipeline.build_bundle(a)["identifier"] == pipeline.build_bundle(b)["identifier"]
    b["answers"]["agreedActions"].append("Noe mer")
    assert pipeline.build_bundle(a)["identifier"] != pipeline.build_bundle(b)["identifier"]


def test_references_between_resources_resolve_inside_the_bundle() -> None:
    b = pipeline.build_bundle(answers())
    urls = {e["fullUrl"] for e in b["entry"]}
    r = resources(b)
    assert r["CarePlan"]["supportingInfo"][0]["reference"] in urls
    assert {x["reference"] for x in r["DocumentReference"]["context"]["related"]} <= urls
    assert {x["reference"] for x in r["Provenance"]["target"]} == urls - {
        next(e["fullUrl"] for e in b["entry"] if e["resource"]["resourceType"] == "Provenance")
    }
    assert r["Provenance"]["entity"] == [
        {
            "role": "source",
            "what": {
                "reference": next(
                    e["fullUrl"]
                    for e in b["entry"]
                    if e["resource"]["resourceType"] == "QuestionnaireResponse"
                )
            },
        }
    ]


def test_patient_by_identifier_is_a_conditional_reference_unless_a_test_patient_is_created() -> None:
    b = pipeline.build_bundle(answers())
    subject = resources(b)["CarePlan"]["subject"]
    assert subject["reference"] == f"Patient?identifier={codes.FNR}|02919240019"
    b = pipeline.build_bundle(answers(), DocumentContext(create_patient=True))
    patient = b["entry"][0]
    assert patient["request"] == {
        "method": "POST",
        "url": "Patient",
        "ifNoneExist": f"identifier={codes.FNR}|02919240019",
    }
    assert set(patient["resource"]) == {"resourceType", "meta", "identifier"}  # no name, address or phone
    assert resources(b)["CarePlan"]["subject"]["reference"] == patient["fullUrl"]


def test_narratives_are_valid_escaped_xhtml() -> None:
    a = answers()
    a["answers"]["agreedActions"] = ['Tiltak med & og "sitat" og 3 < 5 og </div>']
    assert "3 &lt; 5 og &lt;/div&gt;" in resources(pipeline.build_bundle(a))["CarePlan"]["text"]["div"]
    a["answers"]["agreedActions"] = ['Tiltak med & og "sitat" og 3 < 5 > 2']
    for e in pipeline.build_bundle(a)["entry"]:
        div = e["resource"].get("text", {}).get("div")
        if div:
            root = ET.fromstring(div)
            assert root.tag == "{http://www.w3.org/1999/xhtml}div"
    assert "3 &lt; 5 &gt; 2" in resources(pipeline.build_bundle(a))["CarePlan"]["text"]["div"]


def test_titles_written_to_the_record_are_neutral() -> None:
    r = resources(pipeline.build_bundle(answers()))
    assert r["CarePlan"]["title"] == "Oppfølgingsplan"
    assert r["DocumentReference"]["description"] == "Journalnotat"
    assert (
        "vold"
        not in json.dumps(
            [
                r["CarePlan"]["title"],
                r["DocumentReference"]["content"][0]["attachment"]["title"],
                r["Flag"]["text"]["div"],
            ]
        ).lower()
    )


def test_journal_note_is_a_journalnotat_with_readable_text_and_links() -> None:
    r = resources(pipeline.build_bundle(answers()))
    note = r["DocumentReference"]
    assert note["type"]["coding"][0] == {
        "system": codes.VOLVEN_DOCUMENT_TYPE,
        "code": "B02-2",
        "display": "Journalnotat",
    }
    text = base64.b64decode(note["content"][0]["attachment"]["data"]).decode()
    # What is not in place, as a statement: never "help offered" with a text the clinician did not see.
    assert "Ikke på plass: Rømningsplan, Krisesenter" in text and "tilbys hjelp" not in text
    assert "gi kontaktinformasjon" not in text
    assert text.startswith("Journalnotat – oppfølgingssamtale 20.11.2026\n")  # a neutral first line
    assert {(c["coding"][0]["code"]) for c in note["securityLabel"]} == {"R", "SDV"}


def test_crisis_centre_details_come_from_configuration() -> None:
    ctx = DocumentContext(crisis_centre=CrisisCentre("Krisesenteret i Testby", "22 00 00 00"))
    note = resources(pipeline.build_bundle(answers(), ctx))["DocumentReference"]
    text = base64.b64decode(note["content"][0]["attachment"]["data"]).decode()
    assert "Lokalt krisesenter: Krisesenteret i Testby, 22 00 00 00." in text


def test_the_crisis_centre_is_configured_by_name_and_optional_phone() -> None:
    assert settings.crisis_centre({"SAFETYPLAN_CRISIS_CENTRE_NAME": "X"}) == CrisisCentre("X", None)
    assert settings.crisis_centre(
        {"SAFETYPLAN_CRISIS_CENTRE_NAME": " X ", "SAFETYPLAN_CRISIS_CENTRE_PHONE": " 22 00 00 00 "}
    ) == CrisisCentre("X", "22 00 00 00")
    assert settings.crisis_centre({"SAFETYPLAN_CRISIS_CENTRE_PHONE": "22 00 00 00"}) is None
    assert settings.crisis_centre({}) is None


def test_refusal_yields_no_careplan_and_no_planned_activities() -> None:
    r = resources(pipeline.build_bundle(answers("04-avslag")))
    assert "CarePlan" not in r
    assert [x["reference"] for x in r["DocumentReference"]["context"]["related"]] == [
        x["reference"] for x in r["Provenance"]["entity"] for x in [x["what"]]
    ]


def test_a_questionnaire_response_input_uses_the_configured_confidentiality() -> None:
    qr = json.loads((ROOT / "examples" / "08-skjema-fra-renderer" / "input.json").read_text(encoding="utf-8"))
    b = pipeline.build_bundle(qr, DocumentContext(confidentiality="V"))
    for e in b["entry"]:
        assert e["resource"]["meta"]["security"][0]["code"] == "V"


def test_a_response_without_author_is_refused_with_a_clear_message() -> None:
    qr = json.loads((ROOT / "examples" / "08-skjema-fra-renderer" / "input.json").read_text(encoding="utf-8"))
    del qr["author"]
    with pytest.raises(InputError) as err:
        pipeline.build_bundle(qr)
    assert "author" in json.dumps(err.value.outcome)


def test_every_written_resource_has_a_generated_narrative_with_neutral_heading() -> None:
    # dom-6: a resource should have a narrative; HAPI warns otherwise.
    for name in ("02-flere-mangler", "04-avslag"):
        for e in pipeline.build_bundle(answers(name))["entry"]:
            text = e["resource"]["text"]
            assert text["status"] == "generated"
            assert (
                "vold"
                not in ET.fromstring(text["div"]).findtext("{http://www.w3.org/1999/xhtml}h3", "").lower()
            )


def test_the_response_narrative_lists_the_answers_and_ignores_a_senders_narrative() -> None:
    qr = json.loads((ROOT / "examples" / "08-skjema-fra-renderer" / "input.json").read_text(encoding="utf-8"))
    qr["text"] = {"status": "generated", "div": '<div xmlns="http://www.w3.org/1999/xhtml">injected</div>'}
    div = resources(pipeline.build_bundle(qr))["QuestionnaireResponse"]["text"]["div"]
    assert "injected" not in div and "Utfylt skjema" in div
    assert "tjenesteapparatet? Ja" in div
