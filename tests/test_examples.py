"""The committed example outputs are exactly what the code produces, and say what each scenario is about."""

from __future__ import annotations

import base64
import importlib.util
import json
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _build_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("examples_build", ROOT / "examples" / "build.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


build = _build_module()
FOLDERS = build.example_dirs()


def bundle_of(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((ROOT / "examples" / name / "bundle.json").read_text(encoding="utf-8"))
    return data


def types_of(bundle: dict[str, Any]) -> list[str]:
    return [e["resource"]["resourceType"] for e in bundle["entry"]]


def test_there_are_at_least_six_scenarios() -> None:
    assert len(FOLDERS) >= 6


@pytest.mark.parametrize("folder", FOLDERS, ids=lambda p: p.name)
def test_committed_outputs_are_what_the_code_produces(folder: Path) -> None:
    for name, text in build.outputs(folder).items():
        committed = (folder / name).read_text(encoding="utf-8")
        assert committed == text, f"examples/{folder.name}/{name} is stale: run python examples/build.py"


def test_everything_in_place_gives_a_plan_without_checklist_help() -> None:
    b = bundle_of("01-alt-pa-plass")
    cp = next(e["resource"] for e in b["entry"] if e["resource"]["resourceType"] == "CarePlan")
    assert [a["detail"]["code"]["coding"][0]["code"] for a in cp["activity"]] == ["avtalt-tiltak"]


def test_several_missing_items_each_become_a_planned_activity_with_help() -> None:
    b = bundle_of("02-flere-mangler")
    cp = next(e["resource"] for e in b["entry"] if e["resource"]["resourceType"] == "CarePlan")
    codes = [a["detail"]["code"]["coding"][0]["code"] for a in cp["activity"]]
    assert codes == ["romningsplan", "krisesenter", "penger", "bag", "avtalt-tiltak", "avtalt-tiltak"]
    assert all(a["detail"]["status"] == "not-started" and a["detail"]["description"] for a in cp["activity"])


def test_refusal_gives_the_response_and_a_note_documenting_it_and_no_plan() -> None:
    b = bundle_of("04-avslag")
    assert "CarePlan" not in types_of(b)
    assert {"QuestionnaireResponse", "DocumentReference", "Provenance"} <= set(types_of(b))
    note = (ROOT / "examples" / "04-avslag" / "journal-note.txt").read_text(encoding="utf-8")
    assert "ønsker ikke involvering" in note and "Det er ikke utarbeidet sikkerhetsplan" in note
    assert "informert om hvor det er mulig å få hjelp senere" in note


def test_strict_safe_contact_becomes_a_safety_flag_and_very_restricted_labels() -> None:
    b = bundle_of("05-streng-kontakt")
    flag = next(e["resource"] for e in b["entry"] if e["resource"]["resourceType"] == "Flag")
    assert flag["category"][0]["coding"][0]["code"] == "safety"
    assert (
        "kontaktperson" in flag["code"]["text"]
        and "brev (papir eller digital postkasse)" in flag["code"]["text"]
    )
    for e in b["entry"]:
        assert {
            "system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality",
            "code": "V",
            "display": "very restricted",
        } in e["resource"]["meta"]["security"]


@pytest.mark.parametrize(
    ("name", "lang", "phrase"),
    [
        ("06-nynorsk", "nn", "Journalnotat – oppfølgingssamtale 20.11.2026"),
        ("07-english", "en", "Clinical note – follow-up conversation 2026-11-20"),
    ],
)
def test_nynorsk_and_english_forms_give_notes_in_that_language(name: str, lang: str, phrase: str) -> None:
    b = bundle_of(name)
    note = next(e["resource"] for e in b["entry"] if e["resource"]["resourceType"] == "DocumentReference")
    assert note["language"] == lang
    assert base64.b64decode(note["content"][0]["attachment"]["data"]).decode().startswith(phrase)
    qr = next(e["resource"] for e in b["entry"] if e["resource"]["resourceType"] == "QuestionnaireResponse")
    assert qr["questionnaire"].endswith(f"sikkerhetsplan-{lang}|1.0.0")


def test_children_and_mental_impairment_are_in_the_note() -> None:
    note = (ROOT / "examples" / "03-barn-og-psykisk" / "journal-note.txt").read_text(encoding="utf-8")
    assert "bekymringsmelding er sendt" in note and "Begrunnelse og hva som er gjort" in note
    assert "Pasienten har psykiske funksjonsnedsettelser som krever tilpasset oppfølging." in note
    assert "Tilpasning: Korte samtaler" in note


def test_the_duty_to_inform_is_asked_also_when_the_patient_declines_to_say_about_children() -> None:
    note = (ROOT / "examples" / "05-streng-kontakt" / "journal-note.txt").read_text(encoding="utf-8")
    assert "ønsket ikke å svare på om barn" in note
    assert "Opplysningsplikten til barnevernstjenesten – drøftet anonymt" in note


def test_a_response_from_a_form_renderer_keeps_its_literal_patient_reference() -> None:
    b = bundle_of("08-skjema-fra-renderer")
    for e in b["entry"]:
        r = e["resource"]
        if "subject" in r:
            assert r["subject"]["reference"] == "Patient/pasient-syntetisk-1"
