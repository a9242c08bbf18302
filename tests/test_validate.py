"""validate_response: a QuestionnaireResponse against its Questionnaire, as the HL7 validator judges it.

The Questionnaires here are small and hand-made: these tests specify the validator for any R4 Questionnaire.
"""

from __future__ import annotations

import copy
import json
from datetime import date
from typing import Any

import pytest
from _mutate import slots
from hypothesis import given, settings
from hypothesis import strategies as st

from fhir_safetyplan.errors import JSON, ValidationFailed, has_errors
from fhir_safetyplan.identifiers import DNR_SYSTEM, FNR_SYSTEM, HPR_SYSTEM, synthetic_fnr
from fhir_safetyplan.validation import (
    QuestionnaireIndex,
    ValidationOptions,
    assert_valid,
    index_questionnaire,
    validate_response,
)

YN = "http://terminology.hl7.org/CodeSystem/v2-0532"
CH = "https://safetyplan.example/fhir/CodeSystem/test-channel"
URL = "https://safetyplan.example/fhir/Questionnaire/test-form"
CANONICAL = f"{URL}|1.0.0"
PATIENT_FNR = synthetic_fnr(date(1987, 5, 17), style="tenor")
PATIENT_DNR = synthetic_fnr(date(1991, 11, 3), style="nav", dnr=True)


def coding(system: str, code: str, display: str | None = None) -> JSON:
    out: JSON = {"system": system, "code": code}
    if display:
        out["display"] = display
    return out


def yes_no_na() -> list[JSON]:
    return [
        {"valueCoding": coding(YN, "Y", "Yes")},
        {"valueCoding": coding(YN, "N", "No")},
        {"valueCoding": coding(YN, "NA", "Not applicable")},
    ]


def make_q() -> JSON:
    """A small form covering groups, nested questions, repeats, enableWhen, display and maxLength."""
    return {
        "resourceType": "Questionnaire",
        "id": "test-form",
        "url": URL,
        "version": "1.0.0",
        "status": "active",
        "item": [
            {"linkId": "informed", "type": "boolean", "text": "Informed?", "required": True},
            {
                "linkId": "involve",
                "type": "choice",
                "text": "Wants involvement?",
                "required": True,
                "answerOption": yes_no_na(),
            },
            {
                "linkId": "why-not",
                "type": "text",
                "text": "Why not?",
                "maxLength": 200,
                "enableWhen": [{"question": "involve", "operator": "=", "answerCoding": coding(YN, "N")}],
            },
            {
                "linkId": "contact",
                "type": "group",
                "text": "Safe contact",
                "required": True,
                "item": [
                    {
                        "linkId": "channel",
                        "type": "choice",
                        "text": "Safe channels",
                        "repeats": True,
                        "answerOption": [
                            {"valueCoding": coding(CH, "sms", "SMS")},
                            {"valueCoding": coding(CH, "phone", "Phone call")},
                            {"valueCoding": coding(CH, "letter", "Letter")},
                        ],
                    },
                    {
                        "linkId": "phone",
                        "type": "string",
                        "text": "Safe phone number",
                        "maxLength": 20,
                        "enableWhen": [
                            {"question": "channel", "operator": "=", "answerCoding": coding(CH, "phone")}
                        ],
                    },
                    {"linkId": "note", "type": "text", "text": "Note"},
                ],
            },
            {
                "linkId": "children",
                "type": "choice",
                "text": "Children affected?",
                "answerOption": yes_no_na()[:2],
                "item": [
                    {"linkId": "children-count", "type": "integer", "text": "How many?", "required": True}
                ],
            },
            {
                "linkId": "actions",
                "type": "group",
                "text": "Agreed action",
                "repeats": True,
                "item": [
                    {"linkId": "action-what", "type": "string", "text": "What", "required": True},
                    {"linkId": "action-urgent", "type": "boolean", "text": "Urgent"},
                    {
                        "linkId": "action-when",
                        "type": "date",
                        "text": "By when",
                        "enableWhen": [{"question": "action-urgent", "operator": "=", "answerBoolean": True}],
                    },
                ],
            },
            {"linkId": "info", "type": "display", "text": "Call 112 in an emergency."},
        ],
    }


def make_qr(status: str = "completed") -> JSON:
    """A complete, valid response to :func:`make_q`."""
    return {
        "resourceType": "QuestionnaireResponse",
        "questionnaire": CANONICAL,
        "status": status,
        "subject": {"identifier": {"system": FNR_SYSTEM, "value": PATIENT_FNR}},
        "author": {"identifier": {"system": HPR_SYSTEM, "value": "9144889"}},
        "authored": "2025-03-01T10:00:00+01:00",
        "item": [
            {"linkId": "informed", "text": "Informed?", "answer": [{"valueBoolean": True}]},
            {"linkId": "involve", "answer": [{"valueCoding": coding(YN, "Y", "Yes")}]},
            {
                "linkId": "contact",
                "item": [
                    {
                        "linkId": "channel",
                        "answer": [{"valueCoding": coding(CH, "sms")}, {"valueCoding": coding(CH, "phone")}],
                    },
                    {"linkId": "phone", "answer": [{"valueString": "+47 400 00 000"}]},
                    {
                        "linkId": "note",
                        "answer": [{"valueString": "Call only on weekdays.\nNever leave messages."}],
                    },
                ],
            },
            {
                "linkId": "children",
                "answer": [
                    {
                        "valueCoding": coding(YN, "Y"),
                        "item": [{"linkId": "children-count", "answer": [{"valueInteger": 2}]}],
                    }
                ],
            },
            {
                "linkId": "actions",
                "item": [
                    {"linkId": "action-what", "answer": [{"valueString": "Pack a bag"}]},
                    {"linkId": "action-urgent", "answer": [{"valueBoolean": True}]},
                    {"linkId": "action-when", "answer": [{"valueDate": "2025-03-08"}]},
                ],
            },
            {
                "linkId": "actions",
                "item": [
                    {"linkId": "action-what", "answer": [{"valueString": "Copy keys"}]},
                    {"linkId": "action-urgent", "answer": [{"valueBoolean": False}]},
                ],
            },
        ],
    }


def problems(outcome: JSON, severity: str | None = None) -> list[JSON]:
    """Issues other than the 'all OK' information issue, optionally of one severity."""
    return [
        i
        for i in outcome["issue"]
        if i["severity"] != "information" and (severity is None or i["severity"] == severity)
    ]


def only_problem(outcome: JSON) -> JSON:
    found = problems(outcome)
    assert len(found) == 1, json.dumps(found, indent=1, ensure_ascii=False)
    return found[0]


def item(qr: JSON, *path: int) -> JSON:
    """qr.item[path[0]].item[path[1]]…"""
    node: JSON = qr
    for i in path:
        node = node["item"][i]
    return node


# -- the whole response


def test_complete_valid_response_has_no_problems() -> None:
    outcome = validate_response(make_qr(), make_q())
    assert outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"] == [
        {"severity": "information", "code": "informational", "diagnostics": "No problems found."}
    ]
    assert not has_errors(outcome)


def test_valid_response_parses_with_the_r4b_model() -> None:
    from fhir.resources.R4B.questionnaire import Questionnaire
    from fhir.resources.R4B.questionnaireresponse import QuestionnaireResponse

    Questionnaire.model_validate(make_q())
    QuestionnaireResponse.model_validate(make_qr())


@pytest.mark.parametrize("value", [None, [], "QuestionnaireResponse", 42])
def test_input_that_is_not_an_object_is_fatal(value: Any) -> None:
    issue = only_problem(validate_response(value, make_q()))
    assert issue["severity"] == "fatal" and "not a JSON object" in issue["diagnostics"]


def test_wrong_resource_type_is_fatal() -> None:
    qr = make_qr()
    qr["resourceType"] = "Questionnaire"
    issue = only_problem(validate_response(qr, make_q()))
    assert issue["severity"] == "fatal"
    assert issue["expression"] == ["QuestionnaireResponse.resourceType"]
    assert "expected QuestionnaireResponse" in issue["diagnostics"]


def test_questionnaire_argument_that_is_not_a_questionnaire_gives_fatal_outcome() -> None:
    issue = only_problem(validate_response(make_qr(), {"resourceType": "Patient"}))
    assert issue["severity"] == "fatal"


# -- header: questionnaire canonical, status


def test_response_for_another_questionnaire_url_is_an_error() -> None:
    qr = make_qr()
    qr["questionnaire"] = "https://other.example/Questionnaire/x|1.0.0"
    issue = only_problem(validate_response(qr, make_q()))
    assert issue["severity"] == "error" and issue["expression"] == ["QuestionnaireResponse.questionnaire"]


def test_response_for_another_questionnaire_version_is_an_error() -> None:
    qr = make_qr()
    qr["questionnaire"] = f"{URL}|0.9.0"
    issue = only_problem(validate_response(qr, make_q()))
    assert issue["severity"] == "error" and '"0.9.0"' in issue["diagnostics"]


def test_response_without_version_is_a_warning_naming_the_canonical_to_use() -> None:
    qr = make_qr()
    qr["questionnaire"] = URL
    issue = only_problem(validate_response(qr, make_q()))
    assert issue["severity"] == "warning" and CANONICAL in issue["diagnostics"]


def test_response_without_questionnaire_is_an_error() -> None:
    qr = make_qr()
    del qr["questionnaire"]
    issue = only_problem(validate_response(qr, make_q()))
    assert issue["severity"] == "error" and issue["code"] == "required"


def test_contained_questionnaire_reference_is_accepted() -> None:
    qr = make_qr()
    qr["questionnaire"] = "#test-form"
    assert not problems(validate_response(qr, make_q()))


@pytest.mark.parametrize(("status", "expected"), [(None, "no status"), ("done", "is not valid")])
def test_missing_or_unknown_status_is_an_error(status: str | None, expected: str) -> None:
    qr = make_qr()
    if status is None:
        del qr["status"]
    else:
        qr["status"] = status
    found = problems(validate_response(qr, make_q()), "error")
    assert any(
        expected in i["diagnostics"] and i["expression"] == ["QuestionnaireResponse.status"] for i in found
    )


# -- structure: linkIds, order, place, duplicates


def test_unknown_link_id_is_an_error_at_its_path() -> None:
    qr = make_qr()
    item(qr, 2, 2)["linkId"] = "notes"
    issue = only_problem(validate_response(qr, make_q()))
    assert issue["expression"] == ["QuestionnaireResponse.item[2].item[2]"]
    assert '"notes"' in issue["diagnostics"] and "not found" in issue["diagnostics"]


def test_item_without_link_id_is_an_error() -> None:
    qr = make_qr()
    del item(qr, 2, 2)["linkId"]
    issue = only_problem(validate_response(qr, make_q()))
    assert "no linkId" in issue["diagnostics"]


def test_item_in_the_wrong_place_names_where_it_belongs() -> None:
    qr = make_qr()
    note = qr["item"][2]["item"].pop(2)
    qr["item"].insert(3, note)
    issue = only_problem(validate_response(qr, make_q()))
    assert "wrong place" in issue["diagnostics"] and 'belongs under item "contact"' in issue["diagnostics"]
    assert issue["expression"] == ["QuestionnaireResponse.item[3]"]


def test_items_out_of_questionnaire_order_are_an_error() -> None:
    qr = make_qr()
    qr["item"][0], qr["item"][1] = qr["item"][1], qr["item"][0]
    issue = only_problem(validate_response(qr, make_q()))
    assert '"informed" is out of order' in issue["diagnostics"]
    assert issue["expression"] == ["QuestionnaireResponse.item[1]"]


def test_non_repeating_item_given_twice_is_an_error() -> None:
    qr = make_qr()
    qr["item"].insert(1, copy.deepcopy(qr["item"][0]))
    issue = only_problem(validate_response(qr, make_q()))
    assert "more than once" in issue["diagnostics"] and issue["expression"] == [
        "QuestionnaireResponse.item[1]"
    ]


def test_repeating_group_may_appear_several_times() -> None:
    qr = make_qr()
    assert [i["linkId"] for i in qr["item"]].count("actions") == 2
    assert not problems(validate_response(qr, make_q()))


def test_repeating_question_split_over_several_items_is_a_warning() -> None:
    qr = make_qr()
    contact = item(qr, 2)
    channel = contact["item"][0]
    second = {"linkId": "channel", "answer": [channel["answer"].pop()]}
    contact["item"].insert(1, second)
    issue = only_problem(validate_response(qr, make_q()))
    assert issue["severity"] == "warning" and "sdcqr-2" in issue["diagnostics"]


def test_item_list_that_is_not_a_list_is_an_error() -> None:
    qr = make_qr()
    qr["item"] = {"linkId": "informed"}
    found = problems(validate_response(qr, make_q()), "error")
    assert any("must be a list" in i["diagnostics"] for i in found)


# -- item text


def test_item_text_equal_to_the_questionnaire_is_fine_but_different_text_is_an_error() -> None:
    qr = make_qr()
    qr["item"][0]["text"] = "Informert?"
    issue = only_problem(validate_response(qr, make_q()))
    assert issue["expression"] == ["QuestionnaireResponse.item[0].text"]
    assert "copy it exactly" in issue["diagnostics"]


# -- answer types


TYPE_CASES: list[tuple[str, str, Any, str, Any]] = [
    # (item type, good key, good value, bad key, bad value)
    ("boolean", "valueBoolean", False, "valueString", "false"),
    ("decimal", "valueDecimal", 1.5, "valueInteger", 1),
    ("integer", "valueInteger", 3, "valueDecimal", 3.0),
    ("date", "valueDate", "2025-02-28", "valueDateTime", "2025-02-28T10:00:00Z"),
    ("dateTime", "valueDateTime", "2025-02-28T10:00:00+01:00", "valueDate", "2025-02-28"),
    ("time", "valueTime", "10:30:00", "valueString", "10:30"),
    ("string", "valueString", "text", "valueUri", "urn:x"),
    ("text", "valueString", "text", "valueBoolean", True),
    ("url", "valueUri", "https://example.org", "valueString", "https://example.org"),
    ("quantity", "valueQuantity", {"value": 3, "unit": "kg"}, "valueDecimal", 3.0),
    ("reference", "valueReference", {"reference": "Patient/1"}, "valueString", "Patient/1"),
    ("attachment", "valueAttachment", {"contentType": "text/plain"}, "valueString", "x"),
    ("choice", "valueCoding", coding(YN, "Y"), "valueBoolean", True),
    ("open-choice", "valueString", "something else", "valueBoolean", True),
]


def questionnaire_of(*items: JSON) -> JSON:
    """The test form (URL, version 1.0.0, active) with these items."""
    return {
        "resourceType": "Questionnaire",
        "url": URL,
        "version": "1.0.0",
        "status": "active",
        "item": list(items),
    }


def single_item_qr(answer: list[JSON] | None = None, status: str = "completed", **extra: Any) -> JSON:
    it: JSON = {"linkId": "q"}
    if answer is not None:
        it["answer"] = answer
    it.update(extra)
    return {
        "resourceType": "QuestionnaireResponse",
        "questionnaire": CANONICAL,
        "status": status,
        "item": [it],
    }


def typed_item(item_type: str, **extra: Any) -> JSON:
    out: JSON = {"linkId": "q", "type": item_type, "text": "Q"}
    if item_type in ("choice", "open-choice"):
        out["answerOption"] = yes_no_na()
    out.update(extra)
    return out


@pytest.mark.parametrize(("item_type", "good_key", "good", "bad_key", "bad"), TYPE_CASES)
def test_answer_value_type_must_fit_the_item_type(
    item_type: str, good_key: str, good: Any, bad_key: str, bad: Any
) -> None:
    q = questionnaire_of(typed_item(item_type))
    assert not problems(validate_response(single_item_qr([{good_key: good}]), q))
    issue = only_problem(validate_response(single_item_qr([{bad_key: bad}]), q))
    assert issue["severity"] == "error"
    assert f"is of type {item_type}" in issue["diagnostics"] and f"not {bad_key}" in issue["diagnostics"]
    assert issue["expression"] == [f"QuestionnaireResponse.item[0].answer[0].{bad_key}"]


@pytest.mark.parametrize(
    ("item_type", "key", "value", "fragment"),
    [
        ("date", "valueDate", "2025-02-30", "not a date in the calendar"),
        ("date", "valueDate", "01.02.2025", "ISO date"),
        ("dateTime", "valueDateTime", "2025-02-28T10:00:00", "time zone"),
        ("time", "valueTime", "25:00:00", "hh:mm:ss"),
        ("integer", "valueInteger", True, "whole number"),
        ("integer", "valueInteger", 2**40, "32-bit"),
        ("decimal", "valueDecimal", "1.5", "must be a number"),
        ("boolean", "valueBoolean", "true", "true or false"),
        ("string", "valueString", "", "must not be empty"),
        ("string", "valueString", 5, "must be a string"),
        ("url", "valueUri", "has space", "whitespace"),
        ("choice", "valueCoding", "Y", "Coding object"),
        ("quantity", "valueQuantity", {"value": "3"}, "not a number"),
    ],
)
def test_malformed_answer_values_are_errors(item_type: str, key: str, value: Any, fragment: str) -> None:
    q = questionnaire_of(typed_item(item_type))
    issue = only_problem(validate_response(single_item_qr([{key: value}]), q))
    assert fragment in issue["diagnostics"]


def test_answer_without_value_is_an_error() -> None:
    q = questionnaire_of(typed_item("string"))
    issue = only_problem(validate_response(single_item_qr([{}]), q))
    assert "has no value" in issue["diagnostics"]


def test_answer_with_two_values_is_an_error() -> None:
    q = questionnaire_of(typed_item("string"))
    issue = only_problem(validate_response(single_item_qr([{"valueString": "a", "valueBoolean": True}]), q))
    assert "exactly one value" in issue["diagnostics"]


def test_answer_with_an_unknown_value_type_is_an_error() -> None:
    q = questionnaire_of(typed_item("string"))
    issue = only_problem(validate_response(single_item_qr([{"valueMarkdown": "a"}]), q))
    assert "not an answer type of FHIR R4" in issue["diagnostics"]


# -- answer options


def test_coding_outside_the_answer_options_is_an_error() -> None:
    q = questionnaire_of(typed_item("choice"))
    issue = only_problem(validate_response(single_item_qr([{"valueCoding": coding(YN, "MAYBE")}]), q))
    assert issue["code"] == "code-invalid" and '"MAYBE"' in issue["diagnostics"]


def test_answer_options_match_on_system_and_code_and_ignore_display() -> None:
    q = questionnaire_of(typed_item("choice"))
    ok = single_item_qr([{"valueCoding": coding(YN, "Y", "Ja")}])
    assert not problems(validate_response(ok, q))
    wrong_system = single_item_qr([{"valueCoding": coding("http://other.example", "Y", "Yes")}])
    assert only_problem(validate_response(wrong_system, q))["code"] == "code-invalid"
    no_system = single_item_qr([{"valueCoding": {"code": "Y"}}])
    assert only_problem(validate_response(no_system, q))["code"] == "code-invalid"


def test_non_coding_answer_options_are_checked_too() -> None:
    q = questionnaire_of(
        {
            "linkId": "q",
            "type": "choice",
            "text": "Q",
            "answerOption": [{"valueString": "a"}, {"valueInteger": 1}],
        }
    )
    assert not problems(validate_response(single_item_qr([{"valueString": "a"}]), q))
    assert not problems(validate_response(single_item_qr([{"valueInteger": 1}]), q))
    assert (
        only_problem(validate_response(single_item_qr([{"valueString": "b"}]), q))["code"] == "code-invalid"
    )
    assert only_problem(validate_response(single_item_qr([{"valueInteger": 2}]), q))["code"] == "code-invalid"


def test_open_choice_accepts_free_text_but_not_unknown_codes() -> None:
    q = questionnaire_of(typed_item("open-choice"))
    assert not problems(validate_response(single_item_qr([{"valueString": "Something else"}]), q))
    assert only_problem(validate_response(single_item_qr([{"valueCoding": coding(YN, "X")}]), q))["code"] == (
        "code-invalid"
    )


def test_contained_value_set_with_listed_codes_is_checked() -> None:
    q = questionnaire_of({"linkId": "q", "type": "choice", "text": "Q", "answerValueSet": "#vs"})
    q["contained"] = [
        {
            "resourceType": "ValueSet",
            "id": "vs",
            "status": "active",
            "compose": {"include": [{"system": YN, "concept": [{"code": "Y"}, {"code": "N"}]}]},
        }
    ]
    assert not problems(validate_response(single_item_qr([{"valueCoding": coding(YN, "N")}]), q))
    assert only_problem(validate_response(single_item_qr([{"valueCoding": coding(YN, "NA")}]), q))[
        "code"
    ] == ("code-invalid")


def test_external_value_set_is_not_checked_offline() -> None:
    q = questionnaire_of(
        {"linkId": "q", "type": "choice", "text": "Q", "answerValueSet": "http://x.example/vs"}
    )
    assert not problems(validate_response(single_item_qr([{"valueCoding": coding(YN, "anything")}]), q))


# -- required, by status


def test_missing_required_answer_is_an_error_in_a_completed_response() -> None:
    qr = make_qr()
    del qr["item"][0]
    issue = only_problem(validate_response(qr, make_q()))
    assert issue["severity"] == "error" and issue["code"] == "required"
    assert '"informed"' in issue["diagnostics"] and issue["expression"] == ["QuestionnaireResponse"]


@pytest.mark.parametrize("status", ["completed", "amended"])
def test_required_is_an_error_when_completed_or_amended(status: str) -> None:
    qr = make_qr(status)
    qr["item"][0]["answer"] = []
    assert only_problem(validate_response(qr, make_q()))["severity"] == "error"


@pytest.mark.parametrize("status", ["in-progress", "stopped"])
def test_missing_required_answer_is_only_a_warning_while_in_progress(status: str) -> None:
    qr = make_qr(status)
    del qr["item"][0]
    issue = only_problem(validate_response(qr, make_q()))
    assert issue["severity"] == "warning" and "before the response is completed" in issue["diagnostics"]


def test_required_group_needs_at_least_one_child_item() -> None:
    qr = make_qr()
    item(qr, 2)["item"] = []
    issue = only_problem(validate_response(qr, make_q()))
    assert 'Required group "contact"' in issue["diagnostics"]


def test_missing_required_group_is_an_error() -> None:
    qr = make_qr()
    del qr["item"][2]
    assert 'Required group "contact"' in only_problem(validate_response(qr, make_q()))["diagnostics"]


def test_required_item_inside_an_absent_optional_group_is_not_required() -> None:
    qr = make_qr()
    qr["item"] = [i for i in qr["item"] if i["linkId"] != "actions"]
    assert not problems(validate_response(qr, make_q()))


def test_required_item_inside_a_present_group_is_required() -> None:
    qr = make_qr()
    del item(qr, 4)["item"][0]  # action-what of the first action
    issue = only_problem(validate_response(qr, make_q()))
    assert '"action-what"' in issue["diagnostics"] and issue["expression"] == [
        "QuestionnaireResponse.item[4]"
    ]


def test_required_child_of_an_answered_question_is_required_under_its_answer() -> None:
    qr = make_qr()
    del item(qr, 3)["answer"][0]["item"]
    issue = only_problem(validate_response(qr, make_q()))
    assert '"children-count"' in issue["diagnostics"]
    assert issue["expression"] == ["QuestionnaireResponse.item[3].answer[0]"]


# -- repeats


def test_several_answers_to_a_non_repeating_question_are_an_error() -> None:
    qr = make_qr()
    qr["item"][0]["answer"].append({"valueBoolean": False})
    issue = only_problem(validate_response(qr, make_q()))
    assert "does not repeat" in issue["diagnostics"]
    assert issue["expression"] == ["QuestionnaireResponse.item[0].answer[1]"]


def test_the_same_answer_twice_to_a_repeating_question_is_a_warning() -> None:
    qr = make_qr()
    item(qr, 2, 0)["answer"].append({"valueCoding": coding(CH, "sms")})
    assert only_problem(validate_response(qr, make_q()))["severity"] == "warning"


# -- nesting: groups, questions with children, display items, qrs-1


def test_group_with_answers_is_an_error() -> None:
    qr = make_qr()
    item(qr, 2)["answer"] = [{"valueBoolean": True}]
    found = problems(validate_response(qr, make_q()), "error")
    assert any("groups have no answers" in i["diagnostics"] for i in found)
    assert any("qrs-1" in i["diagnostics"] for i in found)


def test_children_of_a_question_outside_answer_item_are_an_error() -> None:
    qr = make_qr()
    children = item(qr, 3)
    nested = children["answer"][0].pop("item")
    children["item"] = nested
    found = problems(validate_response(qr, make_q()), "error")
    assert any("belong in answer.item" in i["diagnostics"] for i in found)
    assert any("qrs-1" in i["diagnostics"] for i in found)


def test_item_with_both_answer_and_item_violates_qrs_1() -> None:
    q = questionnaire_of(typed_item("string"))
    qr = single_item_qr([{"valueString": "x"}], item=[{"linkId": "q2"}])
    found = problems(validate_response(qr, q), "error")
    assert any(
        "qrs-1" in i["diagnostics"] and i["expression"] == ["QuestionnaireResponse.item[0]"] for i in found
    )


def test_display_item_with_an_answer_is_an_error() -> None:
    qr = make_qr()
    qr["item"].append({"linkId": "info", "answer": [{"valueString": "x"}]})
    issue = only_problem(validate_response(qr, make_q()))
    assert "display item" in issue["diagnostics"] and issue["expression"] == ["QuestionnaireResponse.item[6]"]


def test_display_item_without_answer_may_be_present() -> None:
    qr = make_qr()
    qr["item"].append({"linkId": "info", "text": "Call 112 in an emergency."})
    assert not problems(validate_response(qr, make_q()))


def test_answer_item_on_a_question_without_children_is_an_error() -> None:
    qr = make_qr()
    qr["item"][0]["answer"][0]["item"] = [{"linkId": "children-count", "answer": [{"valueInteger": 1}]}]
    found = problems(validate_response(qr, make_q()), "error")
    assert any("Questionnaire item has none" in i["diagnostics"] for i in found)


# -- enableWhen


def test_answer_to_a_disabled_item_is_an_error() -> None:
    qr = make_qr()
    qr["item"].insert(2, {"linkId": "why-not", "answer": [{"valueString": "Because"}]})
    issue = only_problem(validate_response(qr, make_q()))
    assert issue["code"] == "business-rule" and "not enabled" in issue["diagnostics"]
    assert issue["expression"] == ["QuestionnaireResponse.item[2]"]


def test_answer_to_an_enabled_item_is_fine() -> None:
    qr = make_qr()
    qr["item"][1]["answer"] = [{"valueCoding": coding(YN, "N")}]
    qr["item"].insert(2, {"linkId": "why-not", "answer": [{"valueString": "Because"}]})
    assert not problems(validate_response(qr, make_q()))


def test_enable_when_is_evaluated_in_the_nearest_repetition_of_a_repeating_group() -> None:
    qr = make_qr()
    # second action: not urgent, but a date given → only that repetition is wrong
    item(qr, 5)["item"].append({"linkId": "action-when", "answer": [{"valueDate": "2025-04-01"}]})
    issue = only_problem(validate_response(qr, make_q()))
    assert issue["expression"] == ["QuestionnaireResponse.item[5].item[2]"]


def test_enable_when_on_a_repeating_coded_answer_matches_any_answer() -> None:
    qr = make_qr()
    item(qr, 2, 0)["answer"] = [{"valueCoding": coding(CH, "sms")}]
    issue = only_problem(validate_response(qr, make_q()))  # phone now disabled but answered
    assert '"phone"' in issue["diagnostics"] and "not enabled" in issue["diagnostics"]


def test_required_item_that_is_disabled_is_not_required() -> None:
    q = make_q()
    q["item"][2]["required"] = True  # why-not, enabled only when involve = N
    assert not problems(validate_response(make_qr(), q))


def test_required_item_that_is_enabled_is_required() -> None:
    q = make_q()
    q["item"][2]["required"] = True
    qr = make_qr()
    qr["item"][1]["answer"] = [{"valueCoding": coding(YN, "N")}]
    assert '"why-not"' in only_problem(validate_response(qr, q))["diagnostics"]


def test_children_of_a_disabled_group_are_disabled_too() -> None:
    q = make_q()
    q["item"][5]["enableWhen"] = [{"question": "informed", "operator": "=", "answerBoolean": False}]
    found = problems(validate_response(make_qr(), q))
    # one error per repetition of the group, none for the (required) questions inside it
    assert [i["expression"] for i in found] == [
        ["QuestionnaireResponse.item[4]"],
        ["QuestionnaireResponse.item[5]"],
    ]
    assert all('"actions" has child items' in i["diagnostics"] for i in found)
    qr = make_qr()
    qr["item"] = qr["item"][:4]
    assert not problems(validate_response(qr, q))


KG_60, KG_70, LB_70 = ({"value": 60, "unit": "kg"}, {"value": 70, "unit": "kg"}, {"value": 70, "unit": "lb"})
PATIENT_1 = {"reference": "Patient/1"}
SOURCE_CASES: list[tuple[str, str, Any, str, str, Any, bool]] = [
    # (source type, answer key, answer value, operator, enableWhen key, enableWhen value, enabled?)
    ("boolean", "valueBoolean", True, "=", "answerBoolean", True, True),
    ("boolean", "valueBoolean", False, "=", "answerBoolean", True, False),
    ("boolean", "valueBoolean", False, "!=", "answerBoolean", True, True),
    ("boolean", "valueBoolean", True, "!=", "answerBoolean", True, False),
    ("integer", "valueInteger", 3, ">", "answerInteger", 2, True),
    ("integer", "valueInteger", 2, ">", "answerInteger", 2, False),
    ("integer", "valueInteger", 2, ">=", "answerInteger", 2, True),
    ("integer", "valueInteger", 1, "<", "answerInteger", 2, True),
    ("integer", "valueInteger", 2, "<=", "answerInteger", 2, True),
    ("integer", "valueInteger", 3, "<=", "answerInteger", 2, False),
    ("integer", "valueInteger", 2, "=", "answerDecimal", 2.0, True),
    ("decimal", "valueDecimal", 2.5, ">", "answerDecimal", 2.25, True),
    ("decimal", "valueDecimal", 2.5, "<", "answerDecimal", 2.25, False),
    ("date", "valueDate", "2025-01-02", ">", "answerDate", "2025-01-01", True),
    ("date", "valueDate", "2024-12-31", ">=", "answerDate", "2025-01-01", False),
    (
        "dateTime",
        "valueDateTime",
        "2025-01-02T10:00:00Z",
        "<",
        "answerDateTime",
        "2025-01-03T10:00:00Z",
        True,
    ),
    ("time", "valueTime", "08:00:00", "<", "answerTime", "09:00:00", True),
    ("string", "valueString", "abc", "=", "answerString", "abc", True),
    ("string", "valueString", "abc", "=", "answerString", "ABC", False),
    ("string", "valueString", "b", ">", "answerString", "a", True),
    ("quantity", "valueQuantity", KG_70, ">", "answerQuantity", KG_60, True),
    ("quantity", "valueQuantity", LB_70, ">", "answerQuantity", KG_60, False),
    ("reference", "valueReference", PATIENT_1, "=", "answerReference", PATIENT_1, True),
    ("choice", "valueCoding", coding(YN, "Y"), "=", "answerCoding", coding(YN, "Y", "other display"), True),
    ("choice", "valueCoding", coding(YN, "Y"), "=", "answerCoding", coding("http://other", "Y"), False),
    ("choice", "valueCoding", coding(YN, "N"), "!=", "answerCoding", coding(YN, "Y"), True),
    ("choice", "valueCoding", coding(YN, "Y"), ">", "answerCoding", coding(YN, "N"), False),
    ("boolean", "valueBoolean", True, "=", "answerString", "true", False),  # type mismatch never matches
]


def enable_when_q(source_type: str, operator: str, ew_key: str, ew_value: Any, **target: Any) -> JSON:
    source = typed_item(source_type)
    source["linkId"] = "source"
    if source_type in ("choice", "open-choice"):
        source["answerOption"] = yes_no_na()
    return questionnaire_of(
        source,
        {
            "linkId": "target",
            "type": "string",
            "text": "T",
            "enableWhen": [{"question": "source", "operator": operator, ew_key: ew_value}],
            **target,
        },
    )


def enabled(q: JSON, source_answers: list[JSON] | None) -> bool:
    """Whether 'target' counts as enabled: answer it and see whether the validator objects."""
    items: list[JSON] = []
    if source_answers is not None:
        items.append({"linkId": "source", "answer": source_answers})
    items.append({"linkId": "target", "answer": [{"valueString": "x"}]})
    qr = {
        "resourceType": "QuestionnaireResponse",
        "questionnaire": CANONICAL,
        "status": "completed",
        "item": items,
    }
    found = problems(validate_response(qr, q), "error")
    assert all("not enabled" in i["diagnostics"] for i in found), found
    return not found


@pytest.mark.parametrize(("stype", "akey", "aval", "op", "ekey", "evalue", "expected"), SOURCE_CASES)
def test_enable_when_operators_on_every_answer_type(
    stype: str, akey: str, aval: Any, op: str, ekey: str, evalue: Any, expected: bool
) -> None:
    assert enabled(enable_when_q(stype, op, ekey, evalue), [{akey: aval}]) is expected


@pytest.mark.parametrize(
    ("answered", "exists", "expected"),
    [(True, True, True), (False, True, False), (True, False, False), (False, False, True)],
)
def test_enable_when_exists(answered: bool, exists: bool, expected: bool) -> None:
    q = enable_when_q("string", "exists", "answerBoolean", exists)
    assert enabled(q, [{"valueString": "a"}] if answered else None) is expected


def test_not_equal_with_no_answer_is_not_enabled() -> None:
    q = enable_when_q("boolean", "!=", "answerBoolean", True)
    assert enabled(q, None) is False


def test_comparison_operators_with_no_answer_are_not_enabled() -> None:
    for op in ("=", ">", "<", ">=", "<="):
        assert enabled(enable_when_q("integer", op, "answerInteger", 1), None) is False


def test_not_equal_requires_that_no_answer_equals_the_value() -> None:
    q = enable_when_q("choice", "!=", "answerCoding", coding(YN, "Y"), repeats=False)
    q["item"][0]["repeats"] = True
    assert enabled(q, [{"valueCoding": coding(YN, "N")}, {"valueCoding": coding(YN, "NA")}]) is True
    assert enabled(q, [{"valueCoding": coding(YN, "N")}, {"valueCoding": coding(YN, "Y")}]) is False


def two_condition_q(behavior: str | None) -> JSON:
    target: JSON = {
        "linkId": "target",
        "type": "string",
        "text": "T",
        "enableWhen": [
            {"question": "a", "operator": "=", "answerBoolean": True},
            {"question": "b", "operator": "=", "answerBoolean": True},
        ],
    }
    if behavior:
        target["enableBehavior"] = behavior
    return questionnaire_of(
        {"linkId": "a", "type": "boolean", "text": "A"},
        {"linkId": "b", "type": "boolean", "text": "B"},
        target,
    )


@pytest.mark.parametrize(
    ("behavior", "a", "b", "expected"),
    [
        ("all", True, True, True),
        ("all", True, False, False),
        ("any", True, False, True),
        ("any", False, False, False),
        (None, False, False, True),  # que-12 violated: treated as enabled, like the HL7 validator
    ],
)
def test_enable_behavior_all_and_any(behavior: str | None, a: bool, b: bool, expected: bool) -> None:
    q = two_condition_q(behavior)
    qr = {
        "resourceType": "QuestionnaireResponse",
        "questionnaire": CANONICAL,
        "status": "completed",
        "item": [
            {"linkId": "a", "answer": [{"valueBoolean": a}]},
            {"linkId": "b", "answer": [{"valueBoolean": b}]},
            {"linkId": "target", "answer": [{"valueString": "x"}]},
        ],
    }
    assert (not problems(validate_response(qr, q))) is expected


def test_enable_when_on_a_question_nested_in_answer_item() -> None:
    q = make_q()
    q["item"][4]["item"].append(
        {
            "linkId": "children-plan",
            "type": "text",
            "text": "Plan for the children",
            "enableWhen": [{"question": "children-count", "operator": ">", "answerInteger": 0}],
        }
    )
    qr = make_qr()
    item(qr, 3)["answer"][0]["item"].append(
        {"linkId": "children-plan", "answer": [{"valueString": "School told"}]}
    )
    assert not problems(validate_response(qr, q))
    item(qr, 3)["answer"][0]["item"][0]["answer"] = [{"valueInteger": 0}]
    assert '"children-plan"' in only_problem(validate_response(qr, q))["diagnostics"]


# -- lengths, strings and hostile free text


def test_answer_longer_than_max_length_is_an_error() -> None:
    qr = make_qr()
    item(qr, 2, 1)["answer"] = [{"valueString": "1" * 21}]
    issue = only_problem(validate_response(qr, make_q()))
    assert issue["code"] == "too-long" and "at most 20" in issue["diagnostics"]


def test_line_break_in_a_string_answer_is_a_warning_but_fine_in_text() -> None:
    qr = make_qr()
    item(qr, 2, 1)["answer"] = [{"valueString": "400\n000"}]
    issue = only_problem(validate_response(qr, make_q()))
    assert issue["severity"] == "warning" and "type text" in issue["diagnostics"]
    assert "\n" in item(make_qr(), 2, 2)["answer"][0]["valueString"]  # the valid note is multi-line


@pytest.mark.parametrize("char", ["\x00", "\x07", "\x1b", "\x7f", "\x85", "\ud800"])
def test_control_characters_in_free_text_are_errors(char: str) -> None:
    qr = make_qr()
    item(qr, 2, 2)["answer"] = [{"valueString": f"Call me{char} later"}]
    issue = only_problem(validate_response(qr, make_q()))
    assert issue["severity"] == "error" and "control characters" in issue["diagnostics"]
    assert issue["expression"] == ["QuestionnaireResponse.item[2].item[2].answer[0].valueString"]


def test_tab_newline_and_carriage_return_are_allowed_in_text() -> None:
    qr = make_qr()
    item(qr, 2, 2)["answer"] = [{"valueString": "a\tb\r\nc\nd"}]
    assert not problems(validate_response(qr, make_q()))


def test_control_characters_in_a_coding_display_are_errors() -> None:
    qr = make_qr()
    qr["item"][1]["answer"] = [{"valueCoding": coding(YN, "Y", "Yes\x00")}]
    assert "control characters" in only_problem(validate_response(qr, make_q()))["diagnostics"]


def test_oversized_free_text_is_an_error_with_a_configurable_limit() -> None:
    qr = make_qr()
    item(qr, 2, 2)["answer"] = [{"valueString": "x" * 501}]
    assert not problems(validate_response(qr, make_q()))
    issue = only_problem(validate_response(qr, make_q(), options=ValidationOptions(max_text_length=500)))
    assert issue["code"] == "too-long" and "at most 500" in issue["diagnostics"]
    item(qr, 2, 2)["answer"] = [{"valueString": "x" * 10_001}]
    assert only_problem(validate_response(qr, make_q()))["code"] == "too-long"


@pytest.mark.parametrize(
    "text",
    ["<script>alert(1)</script>", "<img src=x onerror=y>", '<a href="javascript:x()">', "<svg/onload=x>"],
)
def test_active_markup_in_free_text_is_an_error_whatever_the_markup_policy(text: str) -> None:
    qr = make_qr()
    item(qr, 2, 2)["answer"] = [{"valueString": text}]
    for policy in ("warning", "error", "ignore"):
        issue = only_problem(validate_response(qr, make_q(), options=ValidationOptions(markup=policy)))
        assert issue["severity"] == "error" and issue["code"] == "security"


@pytest.mark.parametrize("text", ["Hi <b>there</b>", "<!-- x -->", "Avtale med <Kari>", "avstand <ca. 5 km"])
def test_tag_like_free_text_is_a_warning_by_default(text: str) -> None:
    qr = make_qr()
    item(qr, 2, 2)["answer"] = [{"valueString": text}]
    issue = only_problem(validate_response(qr, make_q()))
    assert issue["severity"] == "warning" and issue["code"] == "security"
    assert "escaped" in issue["diagnostics"]


def test_markup_policy_can_make_tag_like_text_an_error_or_ignore_it() -> None:
    qr = make_qr()
    item(qr, 2, 2)["answer"] = [{"valueString": "<b>x</b>"}]
    assert only_problem(validate_response(qr, make_q(), options=ValidationOptions(markup="error")))[
        "severity"
    ] == ("error")
    assert not problems(validate_response(qr, make_q(), options=ValidationOptions(markup="ignore")))


@pytest.mark.parametrize("text", ["a < b", "I <3 you", "5<6", "x > y & z"])
def test_ordinary_less_than_signs_are_not_markup(text: str) -> None:
    qr = make_qr()
    item(qr, 2, 2)["answer"] = [{"valueString": text}]
    assert not problems(validate_response(qr, make_q()))


def test_messages_never_contain_free_text_answers() -> None:
    canary = "Kari Testesen <b>secret</b>\x07 " + "z" * 30
    qr = make_qr()
    item(qr, 2, 2)["answer"] = [{"valueString": canary}]
    item(qr, 2, 1)["answer"] = [{"valueString": canary}]
    qr["item"].insert(2, {"linkId": "why-not", "answer": [{"valueString": canary}]})
    outcome = validate_response(qr, make_q(), options=ValidationOptions(max_text_length=10))
    text = json.dumps(outcome, ensure_ascii=False)
    assert problems(outcome)
    assert "Kari" not in text and "secret" not in text


# -- Norwegian identifiers


def test_synthetic_fnr_and_hpr_number_are_accepted() -> None:
    assert not problems(validate_response(make_qr(), make_q()))


def test_fnr_with_a_wrong_check_digit_is_an_error_that_does_not_repeat_the_number() -> None:
    qr = make_qr()
    bad = PATIENT_FNR[:10] + str((int(PATIENT_FNR[10]) + 1) % 10)
    qr["subject"]["identifier"]["value"] = bad
    issue = only_problem(validate_response(qr, make_q()))
    assert issue["expression"] == ["QuestionnaireResponse.subject.identifier.value"]
    assert "check digit 2" in issue["diagnostics"] and bad not in json.dumps(issue)


def test_d_number_under_the_fnr_system_is_an_error() -> None:
    qr = make_qr()
    qr["subject"]["identifier"]["value"] = PATIENT_DNR
    issue = only_problem(validate_response(qr, make_q()))
    assert DNR_SYSTEM in issue["diagnostics"] and PATIENT_DNR not in issue["diagnostics"]


def test_d_number_under_the_d_number_system_is_accepted() -> None:
    qr = make_qr()
    qr["subject"]["identifier"] = {"system": DNR_SYSTEM, "value": PATIENT_DNR}
    assert not problems(validate_response(qr, make_q()))


def test_invalid_hpr_number_of_the_author_is_an_error() -> None:
    qr = make_qr()
    qr["author"]["identifier"]["value"] = "12-34"
    issue = only_problem(validate_response(qr, make_q()))
    assert (
        issue["expression"] == ["QuestionnaireResponse.author.identifier.value"]
        and "HPR" in issue["diagnostics"]
    )


def test_identity_number_in_a_conditional_reference_is_checked() -> None:
    qr = make_qr()
    bad = PATIENT_FNR[:10] + str((int(PATIENT_FNR[10]) + 1) % 10)
    qr["source"] = {"reference": f"Patient?identifier={FNR_SYSTEM}|{bad}"}
    issue = only_problem(validate_response(qr, make_q()))
    assert (
        issue["expression"] == ["QuestionnaireResponse.source.reference"] and bad not in issue["diagnostics"]
    )
    qr["source"] = {"reference": f"Patient?identifier={FNR_SYSTEM}|{PATIENT_FNR}"}
    assert not problems(validate_response(qr, make_q()))


def test_identifier_checks_can_be_switched_off() -> None:
    qr = make_qr()
    qr["subject"]["identifier"]["value"] = "123"
    assert problems(validate_response(qr, make_q()))
    assert not problems(validate_response(qr, make_q(), options=ValidationOptions(check_identifiers=False)))


# -- assert_valid, the index and its cache


def test_assert_valid_passes_a_valid_response() -> None:
    assert assert_valid(make_qr(), make_q()) is None


def test_assert_valid_raises_validation_failed_carrying_the_outcome() -> None:
    qr = make_qr()
    del qr["item"][0]
    qr["item"][0]["answer"] = [{"valueCoding": coding(YN, "nope")}]
    with pytest.raises(ValidationFailed) as err:
        assert_valid(qr, make_q())
    assert err.value.outcome["resourceType"] == "OperationOutcome"
    assert len(problems(err.value.outcome, "error")) == 2
    assert "(and 1 more)" in str(err.value)


def test_warnings_alone_do_not_fail_assert_valid() -> None:
    qr = make_qr("in-progress")
    del qr["item"][0]
    assert_valid(qr, make_q())
    assert problems(validate_response(qr, make_q()), "warning")


def test_an_explicit_index_gives_the_same_result_as_the_questionnaire() -> None:
    q = make_q()
    qr = make_qr()
    del qr["item"][0]
    assert validate_response(qr, QuestionnaireIndex(q)) == validate_response(qr, q)


def test_index_is_cached_per_questionnaire_object() -> None:
    q = make_q()
    assert index_questionnaire(q) is index_questionnaire(q)
    assert index_questionnaire(make_q()) is not index_questionnaire(q)


def test_index_of_a_questionnaire_with_another_version_is_not_reused() -> None:
    q = make_q()
    first = index_questionnaire(q)
    q["version"] = "2.0.0"
    second = index_questionnaire(q)
    assert second is not first and second.version == "2.0.0"


# -- robustness: never raise, always an OperationOutcome


def test_hostile_deep_nesting_is_refused_without_exhausting_the_stack() -> None:
    qr = make_qr()
    node: JSON = {"linkId": "contact"}
    qr["item"][2] = node
    for _ in range(5000):
        child: JSON = {"linkId": "contact"}
        node["item"] = [child]
        node = child
    found = problems(validate_response(qr, make_q()), "error")
    assert found


def test_status_of_the_wrong_json_type_is_an_error_not_a_crash() -> None:
    qr = make_qr()
    qr["status"] = ["completed"]
    assert "is not valid" in only_problem(validate_response(qr, make_q()))["diagnostics"]


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=30,
)
keys = st.sampled_from(
    [
        "linkId",
        "item",
        "answer",
        "text",
        "valueString",
        "valueCoding",
        "valueBoolean",
        "valueInteger",
        "system",
        "code",
    ]
)
LINK_IDS = ["informed", "involve", "why-not", "contact", "channel", "phone", "note", "children"]
LINK_IDS += ["children-count", "actions", "action-what", "action-urgent", "action-when", "info", "nope", ""]
link_ids = st.sampled_from(LINK_IDS)
qr_like = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=6) | link_ids,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(keys | st.text(max_size=4), children, max_size=4)
    ),
    max_leaves=40,
)


def assert_outcome(outcome: Any) -> None:
    assert isinstance(outcome, dict) and outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"]
    for i in outcome["issue"]:
        assert i["severity"] in ("fatal", "error", "warning", "information")
        assert isinstance(i["code"], str) and isinstance(i["diagnostics"], str) and i["diagnostics"]
    json.dumps(outcome)


@settings(max_examples=300)
@given(json_values)
def test_arbitrary_json_never_raises_and_always_gives_an_operation_outcome(value: Any) -> None:
    assert_outcome(validate_response(value, make_q()))


@settings(max_examples=300)
@given(st.lists(qr_like, max_size=6), st.sampled_from(["completed", "in-progress", None, 3]))
def test_arbitrary_item_trees_never_raise(items: list[Any], status: Any) -> None:
    qr = {
        "resourceType": "QuestionnaireResponse",
        "questionnaire": CANONICAL,
        "status": status,
        "item": items,
    }
    assert_outcome(validate_response(qr, make_q()))


@settings(max_examples=200)
@given(st.dictionaries(keys | st.sampled_from(["enableWhen", "type", "answerOption"]), qr_like, max_size=5))
def test_arbitrary_questionnaire_items_never_raise(extra: dict[str, Any]) -> None:
    q = make_q()
    q["item"].append({"linkId": "extra", **extra})
    q["item"][2]["enableWhen"].append(extra)
    q["item"][2]["enableBehavior"] = "any"
    assert_outcome(validate_response(make_qr(), q))


@settings(max_examples=200)
@given(st.data())
def test_replacing_any_value_in_a_valid_response_never_raises(data: st.DataObject) -> None:
    qr = make_qr()
    container, key = data.draw(st.sampled_from(slots(qr)))
    container[key] = data.draw(json_values)
    assert_outcome(validate_response(qr, make_q()))
