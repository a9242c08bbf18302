"""Versioning: the form is 1.1.0; 1.0.0 stays available exactly as published, and its responses still validate,
extract and give documentation; an unknown version is a clear error."""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import pytest

from fhir_safetyplan import codes, pipeline
from fhir_safetyplan.errors import InputError, has_errors
from fhir_safetyplan.package import build_package
from fhir_safetyplan.questionnaire import build_questionnaire, questionnaire_for
from fhir_safetyplan.versions import KNOWN_VERSIONS

ROOT = Path(__file__).resolve().parent.parent
PUBLISHED = ROOT / "fhir_safetyplan" / "data" / "published" / "1.0.0"
#: The 1.0.0 Questionnaires as published (SHA-256 of the files; byte-identical to profiles/ at commit ded87ba,
#: the last 1.0.0 release): a published version must not change.
PUBLISHED_1_0_0 = {
    "Questionnaire-sikkerhetsplan-en.json": "62eb4399da051d3704769f2d786d83e61013a64acf467a563ab30d78913334e9",
    "Questionnaire-sikkerhetsplan-nb.json": "bc316e2fafdcb63efdb074975b59599a18d9bd21eb91e60d579bbcdef16863cb",
    "Questionnaire-sikkerhetsplan-nn.json": "51c9db8c3162678cbee0e6e326ac15c2f97e5e1663792fef8931c8545fc456cc",
    "Questionnaire-sikkerhetsplan.json": "ae61f560b2d6723519330f721c917e8fcfb1332d844018686cc8f6436419fe8d",
}
EXAMPLES_1_0_0 = [
    "01-alt-pa-plass",
    "02-flere-mangler",
    "03-barn-og-psykisk",
    "04-avslag",
    "05-streng-kontakt",
    "06-nynorsk",
    "07-english",
    "08-skjema-fra-renderer",
]
BASE = codes.DEFAULT_CANONICAL_BASE


def load(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def test_the_current_form_is_1_1_0_and_both_versions_are_known() -> None:
    assert codes.QUESTIONNAIRE_VERSION == "1.1.0"
    assert KNOWN_VERSIONS == ("1.0.0", "1.1.0")
    for lang in (None, *codes.LANGUAGES):
        assert build_questionnaire(lang)["version"] == "1.1.0"
        assert build_questionnaire(lang, version="1.0.0")["version"] == "1.0.0"


def test_the_frozen_1_0_0_files_are_the_published_bytes() -> None:
    found = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(PUBLISHED.glob("*.json"))}
    assert found == PUBLISHED_1_0_0


def test_1_0_0_is_served_with_the_canonical_base_in_force_and_nothing_else_changed() -> None:
    other = "https://fhir.example.org/r4"
    moved = build_questionnaire("nn", other, "1.0.0")
    original = build_questionnaire("nn", None, "1.0.0")
    assert moved["url"] == f"{other}/Questionnaire/sikkerhetsplan-nn"
    assert json.dumps(moved).replace(other, BASE) == json.dumps(original)


@pytest.mark.parametrize("name", EXAMPLES_1_0_0)
def test_1_0_0_responses_still_validate_extract_and_give_documentation(name: str) -> None:
    qr = load(ROOT / "examples" / name / "questionnaire-response.json")
    assert qr["questionnaire"].endswith("|1.0.0")
    assert questionnaire_for(qr["questionnaire"])["version"] == "1.0.0"  # type: ignore[index]
    assert not has_errors(pipeline.validate(qr))
    bundle = pipeline.build_bundle(qr)
    types = [e["resource"]["resourceType"] for e in bundle["entry"]]
    assert "DocumentReference" in types and "Provenance" in types


def test_an_unknown_version_is_a_clear_error_naming_the_known_ones() -> None:
    qr = load(ROOT / "examples" / "08-skjema-fra-renderer" / "input.json")
    qr["questionnaire"] = qr["questionnaire"].replace("|1.0.0", "|1.2.0")
    with pytest.raises(InputError) as info:
        pipeline.build_bundle(qr)
    message = json.dumps(info.value.outcome)
    assert "|1.2.0" in message and "|1.1.0" in message and "|1.0.0" in message
    assert info.value.outcome["issue"][0]["code"] == "not-found"


def test_an_answers_document_with_an_unknown_version_is_a_clear_error() -> None:
    doc = load(ROOT / "examples" / "01-alt-pa-plass" / "answers.json")
    doc["version"] = "2.0"
    outcome = pipeline.validate(doc)
    assert (
        outcome["issue"][0]["expression"] == ["version"] and "'1.1.0'" in outcome["issue"][0]["diagnostics"]
    )


def test_an_answers_document_without_a_version_keeps_its_1_0_0_meaning() -> None:
    doc = load(ROOT / "examples" / "01-alt-pa-plass" / "answers.json")
    assert "version" not in doc
    assert pipeline.respond(doc)["questionnaire"].endswith("|1.0.0")
    assert pipeline.respond({**doc, "version": "1.0.0"}) == pipeline.respond(doc)


def test_the_cli_prints_1_0_0_on_request_and_refuses_an_unknown_version() -> None:
    run = [sys.executable, "-m", "fhir_safetyplan", "questionnaire", "--lang", "nb"]
    old = subprocess.run([*run, "--version", "1.0.0"], capture_output=True, text=True, check=False)
    assert old.returncode == 0 and json.loads(old.stdout) == build_questionnaire("nb", version="1.0.0")
    bad = subprocess.run([*run, "--version", "9.9.9"], capture_output=True, text=True, check=False)
    assert bad.returncode == 2 and "1.0.0" in bad.stderr and "Traceback" not in bad.stderr


def test_the_package_carries_both_versions_side_by_side() -> None:
    with tarfile.open(fileobj=io.BytesIO(build_package()), mode="r:gz") as tar:
        index = json.load(tar.extractfile("package/.index.json"))  # type: ignore[arg-type]
    questionnaires = {
        (f["url"], f["version"]): f["id"] for f in index["files"] if f["resourceType"] == "Questionnaire"
    }
    for lang in (None, *codes.LANGUAGES):
        url = codes.questionnaire_url(BASE, lang)
        assert questionnaires[(url, "1.1.0")] == codes.questionnaire_id(lang)
        assert questionnaires[(url, "1.0.0")] == f"{codes.questionnaire_id(lang)}-1.0.0"
