"""The required sections: no ``required`` on group items (LHC-Forms fails its own checkValidity on a complete response
otherwise, see tests/test_renderers.py), yet our validation still demands every section the groups used to mark —
in content 1.1.0 also the plan and the duty to avert, when they are enabled. The frozen 1.0.0 forms keep their
published ``required`` groups, which the generic validator checks."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from fhir_safetyplan import pipeline
from fhir_safetyplan.form_ids import REQUIRED_GROUPS, Link
from fhir_safetyplan.questionnaire import all_questionnaires, build_questionnaire
from fhir_safetyplan.sections import section_issues

ROOT = Path(__file__).resolve().parent.parent
JSON = dict[str, Any]


#: a complete 1.1.0 response with a plan and no duty-to-avert group (a follow-up, involvement yes)
FOLLOW_UP = "11-oppfolging-nynorsk"
#: a 1.1.0 refusal: no plan, the duty to avert asked
REFUSAL = "09-avverging-ved-avslag"
EXAMPLES_110 = [REFUSAL, "10-skjult-for-innsyn", FOLLOW_UP, "12-follow-up-high-risk"]


def response(name: str = FOLLOW_UP) -> JSON:
    data: JSON = json.loads(
        (ROOT / "examples" / name / "questionnaire-response.json").read_text(encoding="utf-8")
    )
    return data


def errors(qr: JSON) -> list[JSON]:
    return [i for i in pipeline.validate(qr)["issue"] if i["severity"] in ("error", "fatal")]


def without(items: list[JSON], link_id: str) -> list[JSON]:
    return [it for it in items if it["linkId"] != link_id]


def group_items(q: JSON) -> list[JSON]:
    out: list[JSON] = []

    def walk(items: list[JSON]) -> None:
        for it in items:
            if it["type"] == "group":
                out.append(it)
            walk(it.get("item", []))

    walk(q["item"])
    return out


@pytest.mark.parametrize("q", all_questionnaires(), ids=lambda q: q["id"])
def test_no_group_item_is_marked_required(q: JSON) -> None:
    assert [g["linkId"] for g in group_items(q) if g.get("required")] == []


@pytest.mark.parametrize("q", all_questionnaires(), ids=lambda q: q["id"])
def test_each_required_section_has_questions_that_carry_required_or_a_required_section(q: JSON) -> None:
    groups = {g["linkId"]: g for g in group_items(q)}
    for link_id in REQUIRED_GROUPS:
        children = groups[link_id]["item"]
        assert any(it.get("required") or it["linkId"] in REQUIRED_GROUPS for it in children), link_id


@pytest.mark.parametrize("name", EXAMPLES_110)
def test_a_complete_response_has_every_section(name: str) -> None:
    assert errors(response(name)) == []


@pytest.mark.parametrize(
    ("link_id", "asked"),
    [
        (Link.CONVERSATION, f'"{Link.CONVERSATION_TYPE}", "{Link.ALONE}", "{Link.INVOLVEMENT}"'),
        (Link.ACCESS, f'"{Link.ACCESS_HIDE}"'),
        (Link.SAFE_CONTACT, f'"{Link.SAFE_CHANNELS}"'),
        (Link.PLAN, ""),
        (Link.DEPENDANTS, f'"{Link.CHILDREN}", "{Link.PERPETRATOR_CHILDREN}", "{Link.OTHERS}"'),
    ],
)
def test_a_response_without_a_top_level_section_is_an_error(link_id: str, asked: str) -> None:
    qr = response()
    qr["item"] = without(qr["item"], link_id)
    # (without the conversation the plan is also answered although not enabled: a second error)
    [error] = [e for e in errors(qr) if f'Section "{link_id}"' in e["diagnostics"]]
    assert "in the response has no answered questions" in error["diagnostics"]
    if asked:
        assert f"answer its required questions ({asked})" in error["diagnostics"]
    else:  # the plan: its required questions are in its checklist
        assert "answer its questions" in error["diagnostics"]
    assert error["expression"] == ["QuestionnaireResponse"]


def test_a_refusal_without_the_duty_to_avert_is_an_error_and_a_plan_without_it_needs_none() -> None:
    qr = response(REFUSAL)
    qr["item"] = without(qr["item"], Link.AVERT)
    [error] = errors(qr)
    assert f'Section "{Link.AVERT}" in the response has no answered questions' in error["diagnostics"]
    assert f'"{Link.AVERT_STATUS}", "{Link.AVERT_NOTE}"' in error["diagnostics"]
    assert not any(it["linkId"] == Link.AVERT for it in response(FOLLOW_UP)["item"])  # not enabled there


def test_a_section_with_nothing_answered_in_it_is_an_error() -> None:
    qr = response()
    section = next(it for it in qr["item"] if it["linkId"] == Link.DEPENDANTS)
    for child in section["item"]:
        child.pop("answer", None)
    assert any(f'Section "{Link.DEPENDANTS}"' in e["diagnostics"] for e in errors(qr))


def test_a_plan_without_its_checklist_is_an_error_at_the_plan() -> None:
    qr = response()
    index = next(i for i, it in enumerate(qr["item"]) if it["linkId"] == Link.PLAN)
    qr["item"][index]["item"] = without(qr["item"][index]["item"], Link.CHECKLIST)
    [error] = errors(qr)
    assert f'Section "{Link.CHECKLIST}" in item "{Link.PLAN}"' in error["diagnostics"]
    assert error["expression"] == [f"QuestionnaireResponse.item[{index}]"]


def test_a_refusal_needs_no_plan() -> None:
    qr = response(REFUSAL)
    assert not any(it["linkId"] == Link.PLAN for it in qr["item"])
    assert errors(qr) == []


def test_a_published_1_0_0_response_keeps_the_rules_it_was_published_with() -> None:
    qr = response("01-alt-pa-plass")
    assert qr["questionnaire"].endswith("|1.0.0")
    assert errors(qr) == []
    qr["item"] = without(qr["item"], Link.CONVERSATION)
    found = [e for e in errors(qr) if f'"{Link.CONVERSATION}"' in e["diagnostics"]]
    assert len(found) == 1  # from the form's own required group, reported once
    no_plan = response("01-alt-pa-plass")
    no_plan["item"] = without(no_plan["item"], Link.PLAN)
    assert errors(no_plan) == []  # 1.0.0 let a response leave the whole plan out


def test_a_questionnaire_that_marks_the_group_required_reports_it_once() -> None:
    q = copy.deepcopy(build_questionnaire("nb"))
    for g in group_items(q):
        if g["linkId"] in REQUIRED_GROUPS:
            g["required"] = True
    qr = response()
    qr["item"] = without(qr["item"], Link.CONVERSATION)
    assert section_issues(qr, q) == []
    assert section_issues(qr, build_questionnaire("nb")) != []
