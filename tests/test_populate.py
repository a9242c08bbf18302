"""Pre-filling a follow-up from the last plan: the markup, the engine, the current plan on a server, the CLI.

The conformance with an independent engine is in tests/test_populate_conformance.py, the service in
tests/test_service_populate.py, the path through a real HAPI server in tests/integration/test_populate_hapi.py.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import responses
from _guidance import CONVERSATION_SPECIFIC
from _items import answers_by_link, every_item, with_answers_of
from _searches import active_plan, searchset

from fhir_safetyplan import codes, pipeline
from fhir_safetyplan.cli import main
from fhir_safetyplan.conformance import codesystems
from fhir_safetyplan.content import load
from fhir_safetyplan.errors import InputError, has_errors
from fhir_safetyplan.populate import populate, previous_response, target_questionnaire
from fhir_safetyplan.populate_source import find_current_plan
from fhir_safetyplan.population import UNANSWERED_TYPES, add_markup, carried_link_ids
from fhir_safetyplan.questionnaire import build_questionnaire, shared_questionnaire
from fhir_safetyplan.show import PlanNotFound

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
BASE = "http://fhir.test/fhir"
ANSWERS = f"{codes.DEFAULT_CANONICAL_BASE}/CodeSystem/{codes.ANSWER_CS}"


def example_qr(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(
        (EXAMPLES / name / "questionnaire-response.json").read_text(encoding="utf-8")
    )
    return data


# ---- the markup ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("lang", [None, *codes.LANGUAGES])
def test_every_answerable_item_is_carried_except_the_conversation_specific_ones(lang: str | None) -> None:
    q = build_questionnaire(lang)
    answerable = {i["linkId"] for i in every_item(q["item"]) if i["type"] not in UNANSWERED_TYPES}
    assert set(carried_link_ids(q)) == answerable - CONVERSATION_SPECIFIC
    assert CONVERSATION_SPECIFIC <= answerable  # the spec names real items


def test_the_form_declares_the_patient_and_the_previous_response_launch_contexts() -> None:
    q = build_questionnaire("nb")
    contexts = [e for e in q["extension"] if e["url"].endswith("sdc-questionnaire-launchContext")]
    names = [(c["extension"][0]["valueCoding"]["code"], c["extension"][1]["valueCode"]) for c in contexts]
    assert names == [
        ("patient", "Patient"),
        (load().raw["populate"]["launch-context"], "QuestionnaireResponse"),
    ]
    cs = next(c for c in codesystems(codes.DEFAULT_CANONICAL_BASE) if c["id"] == "sikkerhetsplan")
    assert "previousResponse" in {c["code"] for c in cs["concept"]}  # the launch-context code is defined


def test_a_group_marked_not_carried_covers_every_item_below_it_and_new_items_are_carried_by_default() -> None:
    q = {
        "resourceType": "Questionnaire",
        "item": [
            {
                "linkId": "g",
                "type": "group",
                "item": [{"linkId": "g.a", "type": "string"}, {"linkId": "g.b", "type": "display"}],
            },
            {"linkId": "ny", "type": "boolean"},
            {"linkId": "h", "type": "group", "item": [{"linkId": "h.a", "type": "integer"}]},
        ],
    }
    add_markup(q, {"g"}, load(), "http://x.example/CodeSystem/cs")
    assert set(carried_link_ids(q)) == {"ny", "h.a"}


# ---- the engine ---------------------------------------------------------------------------------------------


#: a complete content 1.1.0 plan in bokmål (a safety conversation only, hidden from the portal)
PLAN_110 = "10-skjult-for-innsyn"


def test_the_prefilled_response_is_in_progress_with_no_author_and_carries_the_plan() -> None:
    prev = example_qr(PLAN_110)
    result = populate(shared_questionnaire("nb"), prev)
    qr = result.response
    assert qr["status"] == "in-progress" and "author" not in qr and "authored" not in qr and "id" not in qr
    assert qr["subject"] == prev["subject"]
    carried = answers_by_link(qr)
    assert not set(carried) & CONVERSATION_SPECIFIC
    assert carried == {k: v for k, v in answers_by_link(prev).items() if k not in CONVERSATION_SPECIFIC}
    severities = {i["severity"] for i in result.issues}
    assert severities == {"information"}  # nothing was lost: only the answers asked again are listed


def test_the_prefilled_response_validates_once_this_conversations_answers_are_given() -> None:
    prev = example_qr(PLAN_110)
    qr = populate(shared_questionnaire("nb"), prev).response
    asked_again = set(answers_by_link(prev)) & CONVERSATION_SPECIFIC
    assert asked_again  # the example answers some of them
    qr["item"] = with_answers_of(qr["item"], prev["item"], asked_again)
    qr.update(
        status="completed",
        authored="2026-12-01T10:00:00+01:00",
        author={"identifier": {"system": codes.HPR, "value": "99990001"}},
    )
    outcome = pipeline.validate(qr)
    assert not has_errors(outcome), outcome


def test_a_plan_in_another_language_is_prefilled_with_the_new_forms_displays_and_texts() -> None:
    result = populate(shared_questionnaire("en"), example_qr(PLAN_110))
    safe = next(i for i in every_item(result.response["item"]) if i["linkId"] == "trygg-kontakt.trygge")
    assert safe["text"].startswith("Safe ways to contact the patient (if no other way is safe")
    assert safe["answer"][0]["valueCoding"]["display"] == "In person, when the patient attends"
    note = next(i for i in result.issues if i["expression"] == ["QuestionnaireResponse.questionnaire"])
    assert note["severity"] == "information" and "another language of the same version" in note["diagnostics"]


def test_what_no_longer_fits_is_listed_as_warnings_and_never_carried() -> None:
    prev = copy.deepcopy(example_qr("12-follow-up-high-risk"))
    prev["questionnaire"] = prev["questionnaire"].replace("|1.1.0", "|0.9.0")
    prev["item"].append({"linkId": "fjernet", "answer": [{"valueString": "x"}]})
    by_link = {i["linkId"]: i for i in every_item(prev["item"])}
    by_link["trygg-kontakt.trygge"]["answer"][0]["valueCoding"]["code"] = "brevdue"
    by_link["sarbare.antall-barn"]["answer"] = [{"valueString": "to"}]
    by_link["sarbare.barn"]["answer"] *= 2
    result = populate(shared_questionnaire("en"), prev)
    warned = {i["expression"][0]: i["diagnostics"] for i in result.issues if i["severity"] == "warning"}
    assert len(warned) == 4
    assert any("'fjernet' is not an item" in d for d in warned.values())
    assert any("brevdue is not one of the item's answer options" in d for d in warned.values())
    assert any("type string does not fit the item type integer" in d for d in warned.values())
    assert any("only the first was kept" in d for d in warned.values())
    carried = answers_by_link(result.response)
    assert "sarbare.antall-barn" not in carried and "fjernet" not in carried
    assert len(carried["sarbare.barn"]) == 1
    assert "brevdue" not in json.dumps(carried)
    version = next(i for i in result.issues if i["expression"] == ["QuestionnaireResponse.questionnaire"])
    assert "another Questionnaire version" in version["diagnostics"]


def test_populate_never_changes_the_shared_questionnaire() -> None:
    q = shared_questionnaire("nb")
    before = json.dumps(q, sort_keys=True)
    populate(q, example_qr("02-flere-mangler"))
    assert json.dumps(q, sort_keys=True) == before


def test_an_answers_document_is_a_previous_plan_too_and_the_form_follows_its_language() -> None:
    doc = json.loads((EXAMPLES / "06-nynorsk" / "answers.json").read_text(encoding="utf-8"))
    prev = previous_response(doc)
    assert target_questionnaire(prev)["id"] == "sikkerhetsplan-nn"
    assert target_questionnaire(prev, "en")["id"] == "sikkerhetsplan-en"


@pytest.mark.parametrize(
    "data",
    [
        {"resourceType": "Bundle"},
        {"resourceType": "QuestionnaireResponse", "status": "completed", "item": "x"},
        [1],
    ],
    ids=["bundle", "items-not-a-list", "not-an-object"],
)
def test_a_previous_plan_that_is_not_a_valid_response_is_an_input_error(data: Any) -> None:
    with pytest.raises(InputError) as info:
        previous_response(data)
    assert info.value.outcome["issue"][0]["diagnostics"]


# ---- the current plan on a server ---------------------------------------------------------------------------


def _qr(rid: str, authored: str, patient: str = "Patient/p1") -> dict[str, Any]:
    qr = copy.deepcopy(example_qr("01-alt-pa-plass"))
    qr.update(id=rid, authored=authored, subject={"reference": patient})
    return qr


def _plan(rid: str, qr_id: str) -> dict[str, Any]:
    return active_plan(
        rid, qr_id, {"system": f"{codes.DEFAULT_CANONICAL_BASE}/NamingSystem/submission", "value": rid}
    )


@pytest.fixture
def fhir_client() -> Iterator[Any]:
    from fhir_safetyplan.client import FhirClient

    with FhirClient(BASE, retries=0) as client:
        yield client


@responses.activate
def test_several_active_plans_give_the_newest_response_and_a_warning(fhir_client: Any) -> None:
    # 10:00+01:00 is earlier than 09:30Z: offsets count, not the text
    responses.get(f"{BASE}/CarePlan", json=searchset(_plan("cp-a", "qr-a"), _plan("cp-b", "qr-b")))
    responses.get(
        f"{BASE}/QuestionnaireResponse",
        json=searchset(_qr("qr-a", "2026-11-20T10:00:00+01:00"), _qr("qr-b", "2026-11-20T09:30:00Z")),
    )
    plan = find_current_plan(fhir_client, "Patient/p1")
    assert plan.response["id"] == "qr-b"
    assert [i["severity"] for i in plan.issues] == ["warning"]
    assert "2 active safety plans" in plan.issues[0]["diagnostics"]
    assert "_id=qr-a%2Cqr-b" in str(responses.calls[1].request.url)


@responses.activate
def test_without_an_active_plan_the_newest_of_our_responses_is_used_with_a_note(fhir_client: Any) -> None:
    responses.get(f"{BASE}/CarePlan", json=searchset())
    responses.get(
        f"{BASE}/QuestionnaireResponse",
        json=searchset(_qr("qr-old", "2026-01-01"), _qr("qr-new", "2026-06-01")),
    )
    plan = find_current_plan(fhir_client, "Patient/p1")
    assert plan.response["id"] == "qr-new" and plan.issues[0]["severity"] == "information"


@responses.activate
def test_a_response_of_another_patient_is_never_taken(fhir_client: Any) -> None:
    responses.get(f"{BASE}/CarePlan", json=searchset(_plan("cp-a", "qr-x")))
    responses.get(
        f"{BASE}/QuestionnaireResponse", json=searchset(_qr("qr-x", "2026-11-20", patient="Patient/other"))
    )
    with pytest.raises(PlanNotFound):
        find_current_plan(fhir_client, "Patient/p1")


# ---- the command line ---------------------------------------------------------------------------------------


def test_cli_populate_from_a_file_prints_the_response_and_lists_issues_on_stderr(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["populate", "--from", str(EXAMPLES / "04-avslag" / "answers.json")]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["status"] == "in-progress"
    assert "safetyplan: populate: information: linkId 'samtale.avslag' is asked again" in err


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (["populate"], 2),
        (["populate", "--from", "x.json", "--server", BASE], 2),
        (["populate", "--server", BASE], 2),
        (["populate", "--from", "x.json", "--patient", "Patient/1"], 2),
        (["populate", "--from", "/nonexistent/plan.json"], 2),
    ],
    ids=["no-source", "two-sources", "server-without-patient", "patient-without-server", "missing-file"],
)
def test_cli_populate_usage_errors_exit_2(
    args: list[str], code: int, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        main(args)
    assert info.value.code == code


def test_cli_populate_from_bad_json_is_exit_1_with_an_outcome(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"resourceType": "QuestionnaireResponse", "status": ', encoding="utf-8")
    assert main(["populate", "--from", str(bad)]) == 1
    out, err = capsys.readouterr()
    assert json.loads(out)["resourceType"] == "OperationOutcome" and "Traceback" not in err


# ---- the native evaluation of generated expressions ---------------------------------------------------------


def _previous_variants() -> Iterator[tuple[str, dict[str, Any]]]:
    for path in sorted(EXAMPLES.glob("*/questionnaire-response.json")):
        prev = json.loads(path.read_text(encoding="utf-8"))
        yield path.parent.name, prev
        odd = copy.deepcopy(prev)
        odd["item"].append({"linkId": "x'y", "answer": [{"valueInteger": 3}, {"valueDate": "2026-01"}]})
        odd["item"][0].setdefault("item", []).append(
            {"linkId": "samtale.eksisterende-tiltak", "answer": [{"valueString": "twice"}]}
        )  # a linkId held twice: fhirpathpy decides (repeat de-duplicates)
        odd["item"].append({"linkId": "tom", "answer": [{}]})
        yield f"{path.parent.name}/odd", odd


@pytest.mark.parametrize(
    ("name", "prev"), list(_previous_variants()), ids=[n for n, _ in _previous_variants()]
)
def test_generated_expressions_evaluate_natively_exactly_as_in_fhirpathpy(
    name: str, prev: dict[str, Any]
) -> None:
    from fhir_safetyplan.populate import Evaluator
    from fhir_safetyplan.population import initial_expression

    evaluate = Evaluator("previousResponse", prev)
    link_ids = {i["linkId"] for i in every_item(prev["item"])} | {"x'y", "finnes-ikke"}
    for link_id in sorted(link_ids):
        expression = initial_expression("previousResponse", link_id)
        assert evaluate(expression) == evaluate.reference(expression), link_id


def test_our_own_markup_never_needs_fhirpathpy(monkeypatch: pytest.MonkeyPatch) -> None:
    from fhir_safetyplan.populate import Evaluator

    def refuse(self: Any, expression: str) -> Any:
        raise AssertionError(f"fell back to fhirpathpy for {expression}")

    monkeypatch.setattr(Evaluator, "reference", refuse)
    for path in sorted(EXAMPLES.glob("*/questionnaire-response.json")):
        populate(shared_questionnaire("nn"), json.loads(path.read_text(encoding="utf-8")))


def test_a_flood_of_unknown_items_is_listed_up_to_a_bound() -> None:
    from fhir_safetyplan.populate import MAX_ISSUES

    prev = copy.deepcopy(example_qr("02-flere-mangler"))
    prev["item"] += [
        {"linkId": f"ukjent-{n}", "answer": [{"valueString": "x"}]} for n in range(3 * MAX_ISSUES)
    ]
    result = populate(shared_questionnaire("nb"), prev)
    assert len(result.issues) == MAX_ISSUES + 1
    assert result.issues[-1]["code"] == "too-costly"
    assert answers_by_link(result.response) == answers_by_link(
        populate(shared_questionnaire("nb"), example_qr("02-flere-mangler")).response
    )


def test_another_patients_previous_plan_is_refused() -> None:
    prev = {**example_qr("01-alt-pa-plass"), "subject": {"reference": "Patient/a", "display": "A"}}
    q = shared_questionnaire("nb")
    assert populate(q, prev, {"reference": "Patient/a"}).response["subject"] == {"reference": "Patient/a"}
    with pytest.raises(InputError) as info:
        populate(q, prev, {"reference": "Patient/b"})
    assert info.value.outcome["issue"][0]["code"] == "business-rule"
    with pytest.raises(InputError):
        populate(
            q, example_qr("01-alt-pa-plass"), {"identifier": {"system": codes.FNR, "value": "02919240019"}}
        )
    warned = populate(q, example_qr("01-alt-pa-plass"), {"reference": "Patient/a"}).issues
    assert (
        warned[0]["severity"] == "warning" and "check that it is the same patient" in warned[0]["diagnostics"]
    )


def _hl7_coded(qr: dict[str, Any]) -> dict[str, Any]:
    """``qr`` coded as content 1.0.0 coded answers: HL7 v2-0532 and data-absent-reason instead of our CodeSystem."""
    old = copy.deepcopy(qr)
    for item in every_item(old.get("item")):
        for a in item.get("answer", []):
            coding = a.get("valueCoding", {})
            if coding.get("system") == ANSWERS:
                coding["system"] = codes.DATA_ABSENT if coding["code"] == "asked-declined" else codes.YES_NO
    return old


def test_a_plan_coded_with_the_hl7_answer_codes_of_content_1_0_0_is_carried_into_our_own_codes() -> None:
    current = example_qr(PLAN_110)
    old = _hl7_coded(current)
    assert old != current  # the example has answer codes to convert
    q = shared_questionnaire("nb")
    result = populate(q, old)
    assert answers_by_link(result.response) == answers_by_link(populate(q, current).response)
    assert not [i for i in result.issues if i["severity"] == "warning"]
