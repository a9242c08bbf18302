"""Answers are coded in our own CodeSystem ``svar``, whose displays are valid in nb, nn and en.

HL7 v2-0532 and data-absent-reason have English displays only, so a Norwegian display on them is an error for the
HL7 validator; our CodeSystem carries the same codes with nb displays and nn/en designations. Renderers show the
answerOption's ``valueCoding.display`` (LHC-Forms: ``answer.text = valueCoding.display``), so each form shows its
own language. Responses coded the content 1.0.0 way (the HL7 systems) are still read.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from fhir_safetyplan import codes
from fhir_safetyplan.conformance import codesystems
from fhir_safetyplan.content import load
from fhir_safetyplan.journal import journal_lines
from fhir_safetyplan.questionnaire import build_questionnaire

ROOT = Path(__file__).resolve().parent.parent
BASE = codes.DEFAULT_CANONICAL_BASE
ANSWER_CS = codes.codesystem_url(BASE, codes.ANSWER_CS)


def _codings(node: Any) -> list[dict[str, Any]]:
    if isinstance(node, dict):
        found = [node["valueCoding"]] if "valueCoding" in node else []
        return found + [c for v in node.values() for c in _codings(v)]
    if isinstance(node, list):
        return [c for v in node for c in _codings(v)]
    return []


@pytest.mark.parametrize("lang", ["nb", "nn", "en"])
def test_each_form_shows_answers_in_its_own_language(lang: str) -> None:
    q = build_questionnaire(lang=lang)
    shown = {c["code"]: c["display"] for c in _codings(q["item"]) if c["system"] == ANSWER_CS}
    expected = {o.code: o.display.get(lang) for o in load().options("answers")}
    assert shown == expected
    assert not [c for c in _codings(q["item"]) if c["system"] in codes.LEGACY_ANSWER_SYSTEMS]


def test_every_answer_display_is_a_display_or_designation_of_our_codesystem() -> None:
    cs = next(c for c in codesystems(BASE) if c["url"] == ANSWER_CS)
    valid = {
        (concept["code"], lang, text)
        for concept in cs["concept"]
        for lang, text in [("nb", concept["display"])]
        + [(d["language"], d["value"]) for d in concept["designation"]]
    }
    for lang in ("nb", "nn", "en"):
        for c in _codings(build_questionnaire(lang=lang)["item"]):
            if c["system"] == ANSWER_CS:
                assert (c["code"], lang, c["display"]) in valid


def test_answer_code_reads_our_codes_and_the_hl7_codes_of_content_1_0_0() -> None:
    assert codes.answer_code({"system": ANSWER_CS, "code": "Y"}) == "Y"
    assert (
        codes.answer_code({"system": "https://fhir.hospital.example/fhir/CodeSystem/svar", "code": "N"})
        == "N"
    )
    assert codes.answer_code({"system": codes.YES_NO, "code": "NA"}) == "NA"
    assert codes.answer_code({"system": codes.DATA_ABSENT, "code": "asked-declined"}) == "asked-declined"
    assert codes.answer_code({"system": "http://example.org/other", "code": "Y"}) is None
    assert codes.answer_code(None) is None


def test_a_response_coded_the_1_0_0_way_gets_the_same_journal_note() -> None:
    qr = json.loads(
        (ROOT / "examples" / "10-skjult-for-innsyn" / "questionnaire-response.json").read_text("utf-8")
    )  # content 1.1.0, whose answers are in our CodeSystem (the 1.0.0 examples keep the HL7 codes they had)
    legacy = copy.deepcopy(qr)
    for coding in _codings(legacy["item"]):
        if coding["system"] == ANSWER_CS:
            absent = coding["code"] in ("asked-declined", "not-asked")
            coding["system"] = codes.DATA_ABSENT if absent else codes.YES_NO
    assert legacy != qr
    c = load()
    assert journal_lines(legacy, "nb", c, None) == journal_lines(qr, "nb", c, None)
