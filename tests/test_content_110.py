"""Content 1.1.0 as a specification: the clinical and legal corrections of the review of 1.0.0 (listed in
fhir_safetyplan/data/CHANGELOG-content.md), each proved on the form, on validation and on the documentation."""

from __future__ import annotations

import base64
import copy
import json
from pathlib import Path
from typing import Any

import pytest
from _items import items_by_link

from fhir_safetyplan import codes, content, pipeline
from fhir_safetyplan.document import DocumentContext
from fhir_safetyplan.errors import has_errors
from fhir_safetyplan.form_ids import CS_AVERT, REQUIRED_GROUPS, Link
from fhir_safetyplan.questionnaire import build_questionnaire

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
NORN_EPO = {"system": codes.VOLVEN_ACCESS, "code": "NORN_EPO"}
#: Our answer CodeSystem (content 1.1.0 codes every answer in it; 1.0.0 used the HL7 systems with the same codes).
ANSWER = codes.codesystem_url(codes.DEFAULT_CANONICAL_BASE, codes.ANSWER_CS)
JSONDict = dict[str, Any]


def example(name: str) -> JSONDict:
    data: JSONDict = json.loads((EXAMPLES / name / "answers.json").read_text(encoding="utf-8"))
    return data


def example_dirs() -> list[Path]:
    return sorted(p for p in EXAMPLES.iterdir() if p.is_dir())


def input_of(folder: Path) -> JSONDict:
    name = "answers.json" if (folder / "answers.json").exists() else "input.json"
    data: JSONDict = json.loads((folder / name).read_text(encoding="utf-8"))
    return data


def resources(bundle: JSONDict) -> dict[str, JSONDict]:
    return {e["resource"]["resourceType"]: e["resource"] for e in bundle["entry"]}


def note_of(bundle: JSONDict) -> str:
    doc = resources(bundle)["DocumentReference"]
    return base64.b64decode(doc["content"][0]["attachment"]["data"]).decode("utf-8")


def response_of(name: str) -> JSONDict:
    qr: JSONDict = json.loads((EXAMPLES / name / "questionnaire-response.json").read_text(encoding="utf-8"))
    return qr


def answer(qr: JSONDict, link: str, values: list[JSONDict] | None) -> JSONDict:
    """A copy of ``qr`` with the answers of ``link`` replaced (None: the item removed)."""
    out = copy.deepcopy(qr)

    def walk(its: list[JSONDict]) -> bool:
        for i, it in enumerate(its):
            if it["linkId"] == link:
                if values is None:
                    del its[i]
                else:
                    it["answer"] = values
                return True
            if walk(it.get("item", [])):
                return True
        return False

    assert walk(out["item"]), f"{link} is not in the response"
    return out


def errors_at(qr: JSONDict) -> str:
    outcome = pipeline.validate(qr)
    return json.dumps(
        [i for i in outcome["issue"] if i["severity"] in ("error", "fatal")], ensure_ascii=False
    )


# ---- the duty to avert (straffeloven § 196, helsepersonelloven § 31) ------------------------------------------


def test_the_duty_to_avert_is_asked_on_a_refusal_a_conversation_only_and_a_high_or_very_high_risk() -> None:
    it = items_by_link(build_questionnaire("nb"))
    group = it[Link.AVERT]
    conditions = {(c["question"], c["answerCoding"]["code"]) for c in group["enableWhen"]}
    assert conditions == {
        (Link.INVOLVEMENT, "N"),
        (Link.INVOLVEMENT, "bare-samtale"),
        (Link.RISK_LEVEL, "hoy"),
        (Link.RISK_LEVEL, "svaert-hoy"),
    }
    assert group["enableBehavior"] == "any"
    assert "§ 196" in it[Link.AVERT_INFO]["text"] and "§ 31" in it[Link.AVERT_INFO]["text"]
    assert it[Link.AVERT_STATUS]["required"] is True and it[Link.AVERT_NOTE]["required"] is True
    assert {o["valueCoding"]["system"] for o in it[Link.AVERT_STATUS]["answerOption"]} == {
        codes.codesystem_url(codes.canonical_base(), CS_AVERT)
    }
    # A high result prompts the duty and a low threshold for contacting the crisis centre and the police.
    assert {c["answerCoding"]["code"] for c in it[Link.RISK_HIGH_INFO]["enableWhen"]} == {"hoy", "svaert-hoy"}


@pytest.mark.parametrize("name", ["09-avverging-ved-avslag", "12-follow-up-high-risk"])
def test_a_refusal_or_a_high_risk_without_the_duty_to_avert_does_not_validate(name: str) -> None:
    without_group = errors_at(answer(response_of(name), Link.AVERT, None))
    # (a section: enforced by fhir_safetyplan.sections, not by ``required`` on the group, see test_sections.py)
    assert f'Section \\"{Link.AVERT}\\" in the response has no answered questions' in without_group
    without_status = errors_at(answer(response_of(name), Link.AVERT_STATUS, None))
    assert Link.AVERT_STATUS in without_status
    without_note = errors_at(answer(response_of(name), Link.AVERT_NOTE, None))
    assert Link.AVERT_NOTE in without_note


def test_the_duty_to_avert_is_not_asked_when_services_are_involved_and_the_risk_is_moderate() -> None:
    qr = response_of("11-oppfolging-nynorsk")
    assert not has_errors(pipeline.validate(qr))
    with_avert = copy.deepcopy(qr)
    avert = copy.deepcopy(response_of("12-follow-up-high-risk")["item"][-1])
    assert avert["linkId"] == Link.AVERT
    with_avert["item"].append(avert)
    problems = errors_at(with_avert)
    assert f'Item \\"{Link.AVERT}\\"' in problems and "conditions are not met" in problems


def test_the_duty_to_avert_and_its_reasoning_are_in_the_note_in_every_language() -> None:
    nb = note_of(pipeline.build_bundle(example("09-avverging-ved-avslag")))
    assert "Avvergingsplikt (straffeloven § 196, helsepersonelloven § 31): politiet er varslet." in nb
    assert "Begrunnelse og hva som er gjort: Høy risiko og trusler om ny vold." in nb
    en = note_of(pipeline.build_bundle(example("12-follow-up-high-risk")))
    assert "Duty to avert (Penal Code section 196, Health Personnel Act section 31): the police have" in en


def test_an_answers_document_without_the_duty_to_avert_on_a_refusal_is_refused_with_the_place() -> None:
    doc = example("09-avverging-ved-avslag")
    del doc["answers"]["dutyToAvert"]
    outcome = pipeline.validate(doc)
    assert has_errors(outcome) and "dutyToAvert" in json.dumps(outcome)


# ---- children and the § 33 duty to inform the child welfare services ---------------------------------------


def coded(system: str, code: str) -> list[JSONDict]:
    return [{"valueCoding": {"system": system, "code": code}}]


UNKNOWN_OR_YES = [(ANSWER, "Y"), (ANSWER, "asked-declined"), (ANSWER, "not-asked")]


@pytest.mark.parametrize("link", [Link.CHILDREN, Link.PERPETRATOR_CHILDREN])
@pytest.mark.parametrize(("system", "code"), UNKNOWN_OR_YES)
def test_the_duty_to_inform_is_required_whenever_children_exist_or_it_is_not_known(
    link: str, system: str, code: str
) -> None:
    qr = answer(response_of("11-oppfolging-nynorsk"), link, coded(system, code))
    problems = errors_at(qr)
    assert Link.DUTY in problems and Link.DUTY_NOTE in problems  # the status and its reasoning note


def test_the_duty_to_inform_is_not_asked_when_there_are_no_children_on_either_side() -> None:
    qr = response_of("11-oppfolging-nynorsk")
    assert not has_errors(pipeline.validate(qr))
    it = items_by_link(build_questionnaire())
    # "Other vulnerable people" is its own question: it can no longer hide the duty for children.
    assert all(c["question"] != Link.OTHERS for c in it[Link.DUTY]["enableWhen"])
    assert "ingen-barn" not in json.dumps(it[Link.DUTY]["answerOption"])


def test_a_report_of_concern_to_be_sent_is_a_planned_activity_also_after_a_refusal() -> None:
    r = resources(pipeline.build_bundle(example("09-avverging-ved-avslag")))
    activities = r["CarePlan"]["activity"]
    assert [a["detail"]["code"]["coding"][0]["code"] for a in activities] == ["skal-sendes"]
    assert activities[0]["detail"]["status"] == "not-started"


def test_a_refusal_with_nothing_left_to_do_has_no_careplan() -> None:
    doc = example("09-avverging-ved-avslag")
    doc["answers"]["dependants"]["duty"] = "sendt"
    assert "CarePlan" not in resources(pipeline.build_bundle(doc))


# ---- hiding from electronic access (Helsenorge): Volven 9603 -------------------------------------------------


@pytest.mark.parametrize(
    "name", ["09-avverging-ved-avslag", "10-skjult-for-innsyn", "12-follow-up-high-risk"]
)
def test_the_chosen_volven_9603_label_is_on_every_written_resource_and_the_note(name: str) -> None:
    bundle = pipeline.build_bundle(example(name), DocumentContext(create_patient=True))
    for entry in bundle["entry"]:
        labels = entry["resource"]["meta"]["security"]
        assert NORN_EPO in labels, entry["resource"]["resourceType"]
        assert {"R", "SDV"} <= {x["code"] for x in labels} or {"V", "SDV"} <= {x["code"] for x in labels}
    note = resources(bundle)["DocumentReference"]
    assert {"coding": [NORN_EPO]} in note["securityLabel"]


def test_without_the_choice_no_resource_carries_a_9603_label() -> None:
    bundle = pipeline.build_bundle(example("11-oppfolging-nynorsk"))
    assert codes.VOLVEN_ACCESS not in json.dumps(bundle)


def test_no_text_claims_the_documents_are_shielded_as_a_fact() -> None:
    for lang in codes.LANGUAGES:
        q = build_questionnaire(lang)
        assert (
            "Skjermet dokumentasjon" not in q["description"]
            and "Restricted documentation" not in q["description"]
        )
    hidden = note_of(pipeline.build_bundle(example("10-skjult-for-innsyn")))
    assert "Kontroller i journalsystemet at de er skjermet." in hidden


# ---- an honest journal note ----------------------------------------------------------------------------------


@pytest.mark.parametrize("folder", example_dirs(), ids=lambda p: p.name)
def test_no_note_states_the_standard_help_the_clinician_was_not_shown(folder: Path) -> None:
    note = note_of(pipeline.build_bundle(input_of(folder)))
    for ci in content.load().checklist:
        for lang in codes.LANGUAGES:
            assert ci.help.get(lang)[:40] not in note
    assert "tilbys hjelp" not in note and "help offered" not in note and "tilbod om hjelp" not in note


def test_the_help_is_shown_in_the_form_under_the_item_when_it_is_not_in_place() -> None:
    it = items_by_link(build_questionnaire("nn"))
    for ci in content.load().checklist:
        shown = it[Link.checklist_help(ci.key)]
        assert shown["type"] == "display" and shown["text"] == ci.help.nn
        assert shown["enableWhen"] == [
            {
                "question": Link.checklist_item(ci.key),
                "operator": "=",
                "answerCoding": {"system": ANSWER, "code": "N"},
            }
        ]


def test_the_code_word_is_in_the_contact_agreement_only() -> None:
    bundle = pipeline.build_bundle(example("10-skjult-for-innsyn"))
    r = resources(bundle)
    assert "Blå paraply" in r["Flag"]["code"]["text"]
    assert "Blå paraply" not in note_of(bundle)
    assert "Blå paraply" not in r["DocumentReference"]["text"]["div"]
    assert "Blå paraply" not in r["QuestionnaireResponse"]["text"]["div"]


def test_the_flag_names_what_sends_things_and_when_the_agreement_is_reviewed() -> None:
    flag = resources(pipeline.build_bundle(example("10-skjult-for-innsyn")))["Flag"]
    text = flag["code"]["text"]
    for phrase in ("innkallingsbrev", "automatiske SMS-påminnelser", "meldinger på Helsenorge"):
        assert phrase in text
    assert "Avtalen gjennomgås senest: 15.01.2027." in text
    assert flag["code"]["coding"][0]["code"] == "kontaktavtale"  # neutral, not "trygg-kontakt"


# ---- the conversation, involvement, safe contact, not discussed ---------------------------------------------


def test_informed_is_asked_at_the_first_conversation_only_and_the_note_names_the_conversation() -> None:
    it = items_by_link(build_questionnaire())
    assert it[Link.INFORMED]["enableWhen"][0]["question"] == Link.CONVERSATION_TYPE
    assert it[Link.CONVERSATION_TYPE]["required"] is True and it[Link.ALONE]["required"] is True
    nn = note_of(pipeline.build_bundle(example("11-oppfolging-nynorsk")))
    assert nn.splitlines()[1] == "Oppfølgingssamtale om tryggleiksplan."
    assert "informert om formålet" not in nn
    assert "Samtalen gjekk føre utan partnar eller familie til stades." in nn
    assert "Tolk: kvalifisert tolk vart brukt." in nn


def test_a_safety_conversation_without_other_services_still_makes_a_plan() -> None:
    r = resources(pipeline.build_bundle(example("10-skjult-for-innsyn")))
    assert "CarePlan" in r
    note = note_of(pipeline.build_bundle(example("10-skjult-for-innsyn")))
    assert "Pasienten ønsker sikkerhetssamtale, men ikke involvering fra andre tjenester nå." in note
    assert "Ikke på plass: Viktige telefonnumre, Krisesenter, Bag med dokumenter og klær." in note


def test_safe_contact_is_required_with_a_safe_channel_and_asks_for_a_review_date() -> None:
    it = items_by_link(build_questionnaire())
    assert Link.SAFE_CONTACT in REQUIRED_GROUPS  # a required section (fhir_safetyplan.sections)
    assert it[Link.SAFE_CHANNELS]["required"] is True and it[Link.SAFE_REVIEW]["type"] == "date"
    qr = answer(response_of("11-oppfolging-nynorsk"), Link.SAFE_CHANNELS, None)
    assert Link.SAFE_CHANNELS in errors_at(qr)


def test_not_discussed_is_an_answer_of_its_own_and_is_documented_as_such() -> None:
    it = items_by_link(build_questionnaire("en"))
    for link in (Link.checklist_item("penger"), Link.CHILDREN, Link.MENTAL_PRESENT):
        options = {o["valueCoding"]["code"]: o["valueCoding"]["display"] for o in it[link]["answerOption"]}
        assert (
            options["not-asked"] == "Not discussed" and options["asked-declined"] == "Did not want to answer"
        )
    note = note_of(pipeline.build_bundle(example("10-skjult-for-innsyn")))
    assert "Ikke tatt opp: Penger satt til side, Mulige våpen fjernet." in note
    assert "Psykiske funksjonsnedsettelser ble ikke tatt opp." in note


@pytest.mark.parametrize(
    ("lang", "yes", "no"), [("nb", "Ja", "Nei"), ("nn", "Ja", "Nei"), ("en", "Yes", "No")]
)
def test_yes_no_questions_are_coded_with_displays_in_the_forms_language(lang: str, yes: str, no: str) -> None:
    it = items_by_link(build_questionnaire(lang))
    assert not [link for link, i in it.items() if i["type"] == "boolean"]
    options = [o["valueCoding"] for o in it[Link.ALONE]["answerOption"]]
    assert options == [
        {"system": ANSWER, "code": "Y", "display": yes},
        {"system": ANSWER, "code": "N", "display": no},
    ]


# ---- risk: the instrument's own words, and who did it --------------------------------------------------------


def test_the_risk_result_is_recorded_in_the_instruments_own_words_and_by_whom() -> None:
    it = items_by_link(build_questionnaire())
    assert it[Link.RISK_CONCLUSION]["required"] is True and it[Link.RISK_BY]["required"] is True
    nn = note_of(pipeline.build_bundle(example("11-oppfolging-nynorsk")))
    assert "Utført av: Sjukepleiar med opplæring i DA, legevakta. Konklusjon: Increased danger." in nn


# ---- phone numbers and wording -------------------------------------------------------------------------------


def test_the_refusal_information_gives_the_certain_numbers_for_help_later() -> None:
    text = items_by_link(build_questionnaire("nb"))[Link.REFUSAL_INFO]["text"]
    for number in ("112", "113", "116 117", "116 006"):
        assert number in text
    police = next(ci for ci in content.load().checklist if ci.key == "politi")
    assert "02800" in police.help.nb and "02800" in police.help.nn and "02800" in police.help.en


def test_the_content_is_gender_neutral_and_uses_barn_in_nynorsk() -> None:
    raw = (ROOT / "fhir_safetyplan" / "data" / "content.toml").read_text(encoding="utf-8")
    assert "hun/han" not in raw and "ho/han" not in raw
    for lang in codes.LANGUAGES:
        text = json.dumps(build_questionnaire(lang), ensure_ascii=False)
        assert "hun/han" not in text and "ho/han" not in text
    nn = json.dumps(build_questionnaire("nn"), ensure_ascii=False)
    assert " born" not in nn and "borna" not in nn


def test_the_behaviour_advice_is_shown_also_after_a_refusal() -> None:
    it = items_by_link(build_questionnaire())
    advice = it[Link.ADVICE_INFO_V11]
    assert "enableWhen" not in advice  # in the conversation group, shown in every conversation
    assert "partneren" not in advice["text"]
    assert "Pasienten er rådet til ikke å endre atferd" in note_of(
        pipeline.build_bundle(example("09-avverging-ved-avslag"))
    )


# ---- the 1.1.0 answers document -----------------------------------------------------------------------------


def broken(change: Any) -> JSONDict:
    doc = example("11-oppfolging-nynorsk")
    change(doc["answers"])
    return doc


@pytest.mark.parametrize(
    ("change", "where"),
    [
        (lambda a: a.update(informed=True), "informed is asked only at a first conversation"),
        (lambda a: a.pop("checklist"), "checklist needs an answer for every item"),
        (lambda a: a["dependants"].update(children="declined"), "dependants.duty and dutyNote are required"),
        (lambda a: a["dependants"].update(duty="sendt", dutyNote="x"), "apply only when children exist"),
        (lambda a: a["safeContact"].update(safe=[]), "safeContact.safe"),
        (lambda a: a["risk"].pop("conclusion"), "conclusion and performedBy are required"),
        (lambda a: a.update(dutyToAvert={"status": "avverget-annet", "note": "x"}), "dutyToAvert applies"),
    ],
)
def test_a_1_1_0_answers_document_that_breaks_a_rule_of_the_form_is_refused_saying_what(
    change: Any, where: str
) -> None:
    outcome = pipeline.validate(broken(change))
    assert has_errors(outcome)
    assert where in json.dumps(outcome, ensure_ascii=False)


def test_the_1_1_0_answers_schema_is_printed_on_request() -> None:
    import subprocess
    import sys

    run = [sys.executable, "-m", "fhir_safetyplan", "schema", "--version", "1.1.0"]
    schema = json.loads(subprocess.run(run, capture_output=True, text=True, check=True).stdout)
    assert {"conversationType", "hideFromPortal", "dutyToAvert"} <= set(
        schema["$defs"]["Answers"]["properties"]
    )
