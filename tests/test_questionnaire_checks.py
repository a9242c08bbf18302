"""check_questionnaire: R4 invariants fhir.resources does not check, enableWhen targets, codes, translations.

Hand-made Questionnaires only: these tests specify the checker for any R4 Questionnaire.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from _mutate import slots
from _questionnaire_check import TRANSLATION_URL, check_questionnaire
from hypothesis import given, settings
from hypothesis import strategies as st

from fhir_safetyplan.errors import JSON

CS = "https://safetyplan.example/fhir/CodeSystem/test-plan"
YN = "http://terminology.hl7.org/CodeSystem/v2-0532"


def translated(nb: str, nn: str | None = "nn", en: str | None = "en") -> JSON:
    """The ``_field`` element carrying nn/en translation extensions."""
    exts = []
    for lang, content in (("nn", nn), ("en", en)):
        if content is not None:
            exts.append(
                {
                    "url": TRANSLATION_URL,
                    "extension": [
                        {"url": "lang", "valueCode": lang},
                        {"url": "content", "valueString": f"{nb} ({content})"},
                    ],
                }
            )
    return {"extension": exts}


def text_item(link_id: str, item_type: str, text: str, **extra: Any) -> JSON:
    out: JSON = {"linkId": link_id, "type": item_type, "text": text, "_text": translated(text)}
    out.update(extra)
    return out


def option(system: str, code: str, display: str) -> JSON:
    return {
        "valueCoding": {"system": system, "code": code, "display": display, "_display": translated(display)}
    }


def codesystem() -> JSON:
    return {
        "resourceType": "CodeSystem",
        "url": CS,
        "status": "active",
        "content": "complete",
        "concept": [
            {"code": "plan", "display": "Plan", "concept": [{"code": "escape", "display": "Escape plan"}]},
            {"code": "contact", "display": "Safe contact"},
        ],
    }


def make_q() -> JSON:
    """A valid, fully translated form: groups, choice with coded options, enableWhen, display, prefix."""
    return {
        "resourceType": "Questionnaire",
        "id": "check-form",
        "url": "https://safetyplan.example/fhir/Questionnaire/check-form",
        "version": "1.0.0",
        "name": "CheckForm",
        "title": "Skjema",
        "_title": translated("Skjema"),
        "description": "Et testskjema",
        "_description": translated("Et testskjema"),
        "status": "active",
        "item": [
            text_item("informed", "boolean", "Informert?", required=True),
            text_item(
                "plan",
                "group",
                "Plan",
                code=[{"system": CS, "code": "plan"}],
                item=[
                    text_item(
                        "escape",
                        "choice",
                        "Rømningsplan?",
                        prefix="1.",
                        _prefix=translated("1."),
                        code=[{"system": CS, "code": "escape"}],
                        answerOption=[option(YN, "Y", "Ja"), option(YN, "N", "Nei")],
                    ),
                    text_item(
                        "escape-help",
                        "display",
                        "Vi kan lage en plan sammen.",
                        enableWhen=[
                            {
                                "question": "escape",
                                "operator": "=",
                                "answerCoding": {"system": YN, "code": "N"},
                            }
                        ],
                    ),
                    text_item(
                        "escape-note",
                        "text",
                        "Notat",
                        maxLength=500,
                        enableWhen=[
                            {"question": "informed", "operator": "exists", "answerBoolean": True},
                            {
                                "question": "escape",
                                "operator": "=",
                                "answerCoding": {"system": YN, "code": "Y"},
                            },
                        ],
                        enableBehavior="all",
                    ),
                ],
            ),
        ],
    }


def check(q: JSON, **kw: Any) -> list[JSON]:
    kw.setdefault("codesystems", [codesystem()])
    return check_questionnaire(q, **kw)


def with_rule(issues: list[JSON], fragment: str) -> list[JSON]:
    return [i for i in issues if fragment in i["diagnostics"]]


def only(issues: list[JSON], fragment: str) -> JSON:
    assert len(issues) == 1, json.dumps(issues, indent=1, ensure_ascii=False)
    assert fragment in issues[0]["diagnostics"], issues[0]
    return issues[0]


def plan_item(q: JSON, i: int) -> JSON:
    item: JSON = q["item"][1]["item"][i]
    return item


# -- the valid form


def test_valid_translated_questionnaire_has_no_issues() -> None:
    assert check(make_q()) == []


def test_valid_questionnaire_parses_with_the_r4b_model() -> None:
    from fhir.resources.R4B.questionnaire import Questionnaire

    Questionnaire.model_validate(make_q())


def test_not_a_questionnaire_is_fatal() -> None:
    assert check_questionnaire({"resourceType": "Patient"})[0]["severity"] == "fatal"


# -- que-0 … que-13


def test_que_0_name_that_is_not_a_computer_name_is_a_warning() -> None:
    q = make_q()
    q["name"] = "check form"
    issue = only(check(q), "que-0")
    assert issue["severity"] == "warning" and issue["expression"] == ["Questionnaire.name"]


def test_que_1_group_without_items_is_an_error() -> None:
    q = make_q()
    q["item"].append(text_item("empty", "group", "Tom"))
    assert only(check(q), "que-1")["expression"] == ["Questionnaire.item[2]"]


def test_que_1_display_with_items_is_an_error() -> None:
    q = make_q()
    plan_item(q, 1)["item"] = [text_item("x", "string", "X")]
    only(with_rule(check(q), "que-1"), "display item")


def test_que_2_duplicate_link_ids_anywhere_in_the_tree_are_an_error() -> None:
    q = make_q()
    plan_item(q, 2)["linkId"] = "informed"
    issues = check(q)
    dup = only(with_rule(issues, "que-2"), '"informed"')
    assert dup["expression"] == ["Questionnaire.item[1].item[2]"]


def test_item_without_link_id_is_an_error() -> None:
    q = make_q()
    del q["item"][0]["linkId"]
    assert with_rule(check(q), "has no linkId")


def test_que_3_display_with_a_code_is_an_error() -> None:
    q = make_q()
    plan_item(q, 1)["code"] = [{"system": CS, "code": "plan"}]
    assert only(check(q), "que-3")["expression"] == ["Questionnaire.item[1].item[1].code"]


@pytest.mark.parametrize(
    ("index", "element", "value", "rule"),
    [
        # plan items: 0 a choice with answer options, 1 a display, 2 a question with two enableWhen
        pytest.param(
            0, "answerValueSet", "http://example.org/vs", "que-4", id="que-4 answer options and value set"
        ),
        pytest.param(1, "readOnly", True, "que-9", id="que-9 a display cannot be read-only"),
        pytest.param(0, "maxLength", 10, "que-10", id="que-10 maxLength only on textual and numeric types"),
        pytest.param(
            0,
            "initial",
            [{"valueCoding": {"system": YN, "code": "Y"}}],
            "que-11",
            id="que-11 initial with options",
        ),
        pytest.param(
            2, "enableBehavior", "some", "enableBehavior must be all or any", id="enableBehavior all|any"
        ),
    ],
)
def test_one_element_a_rule_forbids_on_a_plan_item_is_that_rules_error_alone(
    index: int, element: str, value: Any, rule: str
) -> None:
    q = make_q()
    plan_item(q, index)[element] = value
    only(check(q), rule)


def test_que_5_answer_options_on_a_boolean_are_an_error() -> None:
    q = make_q()
    q["item"][0]["answerOption"] = [{"valueString": "x"}]
    only(check(q), "que-5")


@pytest.mark.parametrize(
    "item_type", ["decimal", "integer", "date", "dateTime", "time", "string", "quantity"]
)
def test_que_5_allows_answer_options_on_the_types_the_expression_lists(item_type: str) -> None:
    q = make_q()
    q["item"].append(text_item("x", item_type, "X", answerOption=[{"valueString": "x"}]))
    assert check(q) == []


@pytest.mark.parametrize("field", ["required", "repeats"])
def test_que_6_display_cannot_be_required_or_repeat(field: str) -> None:
    q = make_q()
    plan_item(q, 1)[field] = False  # the R4 expression forbids the element, whatever its value
    only(check(q), "que-6")


def test_que_7_exists_needs_answer_boolean() -> None:
    q = make_q()
    plan_item(q, 2)["enableWhen"][0] = {"question": "informed", "operator": "exists", "answerString": "x"}
    assert with_rule(check(q), "que-7")[0]["expression"] == ["Questionnaire.item[1].item[2].enableWhen[0]"]


@pytest.mark.parametrize("index", [1, 0])
def test_que_8_group_or_display_cannot_have_initial(index: int) -> None:
    q = make_q()
    target = plan_item(q, 1) if index == 1 else q["item"][1]
    target["initial"] = [{"valueString": "x"}]
    only(check(q), "que-8")


def test_que_12_more_than_one_enable_when_needs_enable_behavior() -> None:
    q = make_q()
    del plan_item(q, 2)["enableBehavior"]
    assert only(check(q), "que-12")["expression"] == ["Questionnaire.item[1].item[2]"]


def test_que_12_one_enable_when_needs_no_enable_behavior() -> None:
    q = make_q()
    assert "enableBehavior" not in plan_item(q, 1)
    assert check(q) == []


def test_que_13_several_initial_values_need_repeats() -> None:
    q = make_q()
    q["item"].append(text_item("x", "string", "X", initial=[{"valueString": "a"}, {"valueString": "b"}]))
    only(check(q), "que-13")
    q["item"][-1]["repeats"] = True
    assert check(q) == []


def test_unknown_item_type_is_an_error() -> None:
    q = make_q()
    q["item"][0]["type"] = "yesno"
    only(check(q), "is not an R4 item type")


def test_answer_option_needs_exactly_one_value() -> None:
    q = make_q()
    plan_item(q, 0)["answerOption"].append({"initialSelected": True})
    only(check(q), "exactly one value")


# -- enableWhen targets


def test_enable_when_on_a_missing_question_is_an_error() -> None:
    q = make_q()
    plan_item(q, 1)["enableWhen"][0]["question"] = "nowhere"
    issue = only(check(q), "does not exist")
    assert issue["expression"] == ["Questionnaire.item[1].item[1].enableWhen[0].question"]


def test_enable_when_on_a_later_question_is_an_error() -> None:
    q = make_q()
    q["item"][0]["enableWhen"] = [{"question": "escape", "operator": "exists", "answerBoolean": True}]
    only(check(q), "does not come before it")


def test_enable_when_on_itself_is_an_error() -> None:
    q = make_q()
    q["item"][0]["enableWhen"] = [{"question": "informed", "operator": "exists", "answerBoolean": True}]
    only(check(q), "does not come before it")


def test_enable_when_on_a_group_is_an_error() -> None:
    q = make_q()
    q["item"].append(
        text_item(
            "x", "string", "X", enableWhen=[{"question": "plan", "operator": "exists", "answerBoolean": True}]
        )
    )
    only(check(q), "targets a group item")


def test_enable_when_answer_type_must_fit_the_target_question() -> None:
    q = make_q()
    plan_item(q, 1)["enableWhen"][0] = {"question": "escape", "operator": "=", "answerBoolean": True}
    only(check(q), "compares with answerBoolean, but the target question is of type choice")


def test_enable_when_coding_that_is_not_an_option_can_never_match() -> None:
    q = make_q()
    plan_item(q, 1)["enableWhen"][0]["answerCoding"] = {"system": YN, "code": "MAYBE"}
    only(check(q), "can never match")


def test_enable_when_with_unknown_operator_or_without_answer_is_an_error() -> None:
    q = make_q()
    plan_item(q, 1)["enableWhen"][0]["operator"] = "~"
    only(check(q), "operator")
    q = make_q()
    del plan_item(q, 1)["enableWhen"][0]["answerCoding"]
    only(check(q), "exactly one answer[x]")


def test_not_equal_on_an_optional_question_is_a_warning() -> None:
    q = make_q()
    plan_item(q, 1)["enableWhen"][0]["operator"] = "!="
    issue = only(check(q), "!=")
    assert issue["severity"] == "warning"


# -- codes against the given CodeSystems


def test_item_code_missing_from_the_code_system_is_an_error() -> None:
    q = make_q()
    q["item"][1]["code"][0]["code"] = "plans"
    issue = only(check(q), '"plans" is not defined')
    assert issue["expression"] == ["Questionnaire.item[1].code[0]"]


def test_nested_code_system_concepts_count() -> None:
    assert plan_item(make_q(), 0)["code"][0]["code"] == "escape"  # defined under "plan" in the CodeSystem
    assert check(make_q()) == []


def test_answer_option_code_missing_from_the_code_system_is_an_error() -> None:
    q = make_q()
    plan_item(q, 0)["answerOption"].append(option(CS, "unknown", "Ukjent"))
    only(check(q), '"unknown" is not defined')


def test_codes_of_other_systems_are_not_checked() -> None:
    q = make_q()
    q["item"][0]["code"] = [{"system": "http://snomed.info/sct", "code": "123"}]
    assert check(q) == []
    assert check_questionnaire(make_q(), codesystems=[]) == []


# -- translations


def test_missing_translation_of_item_text_is_an_error_per_language() -> None:
    q = make_q()
    del q["item"][0]["_text"]
    issues = check(q)
    assert [i["diagnostics"].split(" translation")[0][-4:] for i in issues] == ["'nn'", "'en'"]
    assert all(i["expression"] == ["Questionnaire.item[0].text"] for i in issues)


def test_missing_english_translation_of_an_option_display_is_an_error() -> None:
    q = make_q()
    plan_item(q, 0)["answerOption"][1]["valueCoding"]["_display"] = translated("Nei", en=None)
    issue = only(check(q), "no 'en' translation")
    assert issue["expression"] == ["Questionnaire.item[1].item[0].answerOption[1].valueCoding.display"]


@pytest.mark.parametrize(
    ("field", "expression"), [("title", "Questionnaire.title"), ("description", "Questionnaire.description")]
)
def test_missing_translation_of_title_or_description_is_an_error(field: str, expression: str) -> None:
    q = make_q()
    q["_" + field] = translated("x", nn=None)
    assert only(check(q), "no 'nn' translation")["expression"] == [expression]


def test_missing_translation_of_a_prefix_is_an_error() -> None:
    q = make_q()
    del plan_item(q, 0)["_prefix"]
    assert len(with_rule(check(q), "prefix")) == 2


def test_empty_translation_content_counts_as_missing() -> None:
    q = make_q()
    q["item"][0]["_text"]["extension"][0]["extension"][1]["valueString"] = "  "
    only(check(q), "no 'nn' translation")


def test_translations_are_only_required_for_the_languages_asked_for() -> None:
    q = make_q()
    for it in [q["item"][0], plan_item(q, 1)]:
        del it["_text"]
    assert check(q, languages=()) == []
    assert len(check(q, languages=("en",))) == 2


def test_the_questionnaires_own_language_needs_no_translation() -> None:
    q = make_q()
    q["language"] = "nn"
    for ext in q["item"][0]["_text"]["extension"][:]:
        if ext["extension"][0]["valueCode"] == "nn":
            q["item"][0]["_text"]["extension"].remove(ext)
    assert check(q) == []


def test_elements_that_are_absent_need_no_translation() -> None:
    q = make_q()
    for field in ("title", "_title", "description", "_description"):
        del q[field]
    assert check(q) == []


# -- robustness


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=6),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                ["linkId", "type", "item", "enableWhen", "question", "operator", "answerOption", "code"]
            )
            | st.text(max_size=4),
            children,
            max_size=4,
        )
    ),
    max_leaves=40,
)


@settings(max_examples=300)
@given(st.lists(json_values, max_size=5))
def test_arbitrary_items_never_raise(items: list[Any]) -> None:
    q = make_q()
    q["item"].extend(items)
    for i in check(q):
        assert i["severity"] in ("fatal", "error", "warning") and i["diagnostics"]


@settings(max_examples=200)
@given(st.data())
def test_replacing_any_value_never_raises(data: st.DataObject) -> None:
    q = make_q()
    container, key = data.draw(st.sampled_from(slots(q)))
    container[key] = data.draw(json_values)
    assert isinstance(check(copy.deepcopy(q)), list)


def test_hostile_deep_nesting_is_reported_not_a_crash() -> None:
    q = make_q()
    node = q["item"][1]
    for n in range(3000):
        child = text_item(f"deep{n}", "group", "G")
        node["item"] = [child]
        node = child
    assert with_rule(check(q), "nested more than")
