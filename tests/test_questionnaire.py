"""The Questionnaire as a specification: content from the guidance, three languages, R4 validity, renderability."""

from __future__ import annotations

import json
from typing import Any

import pytest
from _guidance import GUIDANCE_KEYS
from _items import items_by_link
from _questionnaire_check import check_questionnaire
from fhir.resources.R4B.questionnaire import Questionnaire

from fhir_safetyplan import codes, content
from fhir_safetyplan.conformance import codesystems
from fhir_safetyplan.form_ids import Link
from fhir_safetyplan.questionnaire import build_questionnaire

ANSWER_CS_URL = codes.codesystem_url(codes.DEFAULT_CANONICAL_BASE, codes.ANSWER_CS)
LANGS = [None, "nb", "nn", "en"]


@pytest.mark.parametrize("lang", LANGS)
def test_every_questionnaire_parses_as_r4_and_passes_our_invariant_checks(lang: str | None) -> None:
    q = build_questionnaire(lang)
    Questionnaire.model_validate(q)
    issues = check_questionnaire(
        q, languages=("nn", "en") if lang is None else (), codesystems=codesystems(codes.canonical_base())
    )
    assert issues == []


def questions(checklist: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The checklist questions (each is followed by a display item with its help)."""
    return [i for i in checklist if i["type"] != "display"]


def test_the_ten_checklist_items_of_the_guidance_are_coded_required_questions_in_order() -> None:
    q = build_questionnaire()
    checklist = questions(items_by_link(q)[Link.CHECKLIST]["item"])
    assert [i["linkId"].rsplit(".", 1)[1] for i in checklist] == GUIDANCE_KEYS
    for item in checklist:
        assert item["type"] == "choice" and item["required"] is True
        assert item["code"][0]["system"].endswith("/CodeSystem/sikkerhetsplan")
        answers = {(o["valueCoding"]["system"], o["valueCoding"]["code"]) for o in item["answerOption"]}
        answer_cs = codes.codesystem_url(codes.DEFAULT_CANONICAL_BASE, codes.ANSWER_CS)
        assert answers == {
            (answer_cs, "Y"),
            (answer_cs, "N"),
            (answer_cs, "NA"),
            (answer_cs, "asked-declined"),
            (answer_cs, "not-asked"),
        }


def test_checklist_texts_come_from_the_norwegian_guidance() -> None:
    seed_phrases = [
        "rømningsplan",
        "politiet",
        "telefonnumre",
        "krisesenter",
        "penger",
        "nøkler",
        "kode",
        "naboer",
        "våpen",
        "bag",
    ]
    q = build_questionnaire("nb")
    for phrase, item in zip(seed_phrases, questions(items_by_link(q)[Link.CHECKLIST]["item"]), strict=True):
        assert phrase in item["text"].lower()


def test_every_missing_item_has_help_in_three_languages() -> None:
    for ci in content.load().checklist:
        for lang in codes.LANGUAGES:
            assert len(ci.help.get(lang)) > 20


def test_refusal_is_a_documentable_answer_and_disables_the_plan() -> None:
    q = build_questionnaire()
    it = items_by_link(q)
    assert {o["valueCoding"]["code"] for o in it[Link.INVOLVEMENT]["answerOption"]} == {
        "Y",
        "bare-samtale",
        "N",
    }
    assert it[Link.REFUSAL_NOTE]["enableWhen"] == [
        {
            "question": Link.INVOLVEMENT,
            "operator": "=",
            "answerCoding": {"system": ANSWER_CS_URL, "code": "N"},
        }
    ]
    # The plan is made when the services are involved, and also for a safety conversation only.
    assert {c["answerCoding"]["code"] for c in it[Link.PLAN]["enableWhen"]} == {"Y", "bare-samtale"}
    assert it[Link.PLAN]["enableBehavior"] == "any"


def test_safe_contact_is_structured_with_channels_that_must_never_be_used() -> None:
    it = items_by_link(build_questionnaire())
    unsafe = {o["valueCoding"]["code"] for o in it[Link.UNSAFE_CHANNELS]["answerOption"]}
    assert {"brev", "sms", "helsenorge"} <= unsafe
    assert it[Link.SAFE_CHANNELS]["repeats"] is True and it[Link.UNSAFE_CHANNELS]["repeats"] is True
    assert it[Link.SAFE_TIMES]["type"] == "string" and it[Link.SAFE_NOTE]["type"] == "text"


def test_children_widen_the_plan_including_the_duty_to_inform_child_welfare() -> None:
    it = items_by_link(build_questionnaire("nb"))
    assert it[Link.CHILDREN_COUNT]["enableWhen"][0]["question"] == Link.CHILDREN
    for link in (Link.DUTY_INFO, Link.DUTY, Link.DUTY_NOTE):
        assert {c["question"] for c in it[link]["enableWhen"]} == {Link.CHILDREN, Link.PERPETRATOR_CHILDREN}
    assert "§ 33" in it[Link.DUTY_INFO]["text"]
    assert it[Link.DUTY]["required"] is True and it[Link.DUTY_NOTE]["required"] is True


def test_mental_impairment_leads_to_adapted_follow_up() -> None:
    it = items_by_link(build_questionnaire("en"))
    assert it[Link.MENTAL_ADAPTATION]["enableWhen"][0]["question"] == Link.MENTAL_PRESENT
    assert "adapted" in it[Link.MENTAL_ADAPTATION]["text"]


def test_risk_assessment_records_a_result_and_never_scores_an_instrument() -> None:
    it = items_by_link(build_questionnaire())
    links = (
        Link.RISK_DONE,
        Link.RISK_INSTRUMENT,
        Link.RISK_DATE,
        Link.RISK_BY,
        Link.RISK_CONCLUSION,
        Link.RISK_LEVEL,
    )
    assert [it[k]["type"] for k in links] == ["choice", "choice", "date", "string", "string", "choice"]
    # No item of the form asks the questions of an instrument (no integer/decimal scores, no calculation).
    assert not any(i["type"] in ("decimal",) or "calculatedExpression" in json.dumps(i) for i in it.values())


def test_only_certain_phone_numbers_appear_in_the_content() -> None:
    import re

    text = json.dumps(build_questionnaire(), ensure_ascii=False)
    text = re.sub(r"\b(116) (117|006|111)\b", r"\1\2", text)  # the 116 numbers, written with a space
    numbers = set(re.findall(r"(?<![\d.-])\d{3,}(?![\d.-])", text))
    certain = {"112", "113", "110", "02800", "116117", "116006", "116111"}
    # Besides: ISO 3166, the Volven OIDs' last parts, law sections, maxLength, and years in dates.
    other = {"3166", "1101", "9602", "9603", "196", "282", "283", "4000", "500"}
    assert numbers <= certain | other, numbers - certain - other


def test_multilingual_form_has_nynorsk_and_english_on_every_text() -> None:
    q = build_questionnaire()
    for item in items_by_link(q).values():
        langs = {e["extension"][0]["valueCode"] for e in item["_text"]["extension"]}
        assert langs == {"nn", "en"}


@pytest.mark.parametrize("lang", ["nb", "nn", "en"])
def test_one_language_forms_share_linkids_and_codes_and_have_no_translations(lang: str) -> None:
    multi, single = build_questionnaire(), build_questionnaire(lang)
    assert list(items_by_link(single)) == list(items_by_link(multi))
    assert single["language"] == lang and single["id"] == f"sikkerhetsplan-{lang}"
    assert "_text" not in json.dumps(single)


def test_nynorsk_and_english_texts_differ_from_bokmal() -> None:
    nb, nn, en = (items_by_link(build_questionnaire(x)) for x in ("nb", "nn", "en"))
    assert nb[Link.checklist_item("romningsplan")]["text"] != nn[Link.checklist_item("romningsplan")]["text"]
    assert en[Link.checklist_item("romningsplan")]["text"].startswith("Has an escape plan")


def test_answers_are_inline_options_so_renderers_need_no_terminology_server() -> None:
    assert "answerValueSet" not in json.dumps(build_questionnaire())


def test_enable_when_targets_exist_and_come_earlier() -> None:
    q = build_questionnaire()
    order = list(items_by_link(q))
    for link, item in items_by_link(q).items():
        for ew in item.get("enableWhen", []):
            assert order.index(ew["question"]) < order.index(link)


def test_canonical_url_version_and_metadata() -> None:
    q = build_questionnaire(canonical_base="https://fhir.example.org/r4/")
    assert q["url"] == "https://fhir.example.org/r4/Questionnaire/sikkerhetsplan"
    assert q["version"] == "1.1.0" and q["status"] == "active" and q["subjectType"] == ["Patient"]
    assert q["jurisdiction"][0]["coding"][0]["code"] == "NO"
    cite = next(e for e in q["extension"] if e["url"] == codes.RELATED_ARTIFACT)
    assert "NKVTS" in cite["valueRelatedArtifact"]["citation"]


def test_template_extraction_markup_is_on_the_conversation_item_with_a_contained_careplan_without_labels() -> (
    None
):
    # On the conversation group (always answered), not on the plan: a report of concern still to be sent is a
    # planned activity also after a refusal. Not on the root: the independent npm engine ignores root templates.
    q = build_questionnaire()
    group = items_by_link(q)[Link.CONVERSATION]
    ext = group["extension"][0]
    assert ext["url"] == codes.TEMPLATE_EXTRACT
    assert ext["extension"][0]["valueReference"]["reference"] == "#careplan-template"
    template = q["contained"][0]
    assert template["resourceType"] == "CarePlan" and "meta" not in template  # dom-5
    # one per checklist item, the repeating agreed actions, and a report of concern to be sent
    assert len(template["activity"]) == 12
    assert not any(e["url"] == codes.TEMPLATE_EXTRACT for e in q.get("extension", []))


def test_generation_is_deterministic() -> None:
    from fhir_safetyplan.conformance import dumps

    assert dumps(build_questionnaire()) == dumps(build_questionnaire())


def test_an_unsupported_language_is_a_clear_configuration_error() -> None:
    from fhir_safetyplan.errors import ConfigError

    with pytest.raises(ConfigError, match="nb, nn, en"):
        build_questionnaire("se")
