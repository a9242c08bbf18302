"""Specification of the SDC template-based $extract engine (fhir_safetyplan.extract) and its FHIRPath."""

from __future__ import annotations

import copy
import itertools
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fhir.resources.R4B.bundle import Bundle

from fhir_safetyplan import _fhirpath
from fhir_safetyplan.errors import InputError
from fhir_safetyplan.extract import (
    EXTRACT_ALLOCATE_ID,
    TEMPLATE_EXTRACT,
    TEMPLATE_EXTRACT_BUNDLE,
    TEMPLATE_EXTRACT_CONTEXT,
    TEMPLATE_EXTRACT_VALUE,
    ExtractError,
    extract,
    extract_with_issues,
)

CORPUS = Path(__file__).resolve().parent / "extract_corpus"
UPDATE = os.environ.get("UPDATE_EXTRACT_GOLDEN") == "1"

JSON = dict[str, Any]


# -- helpers ------------------------------------------------------------------------------------------


def ids() -> Callable[[], str]:
    counter = itertools.count(1)
    return lambda: f"00000000-0000-4000-8000-{next(counter):012d}"


def value(expression: str) -> JSON:
    return {"extension": [{"url": TEMPLATE_EXTRACT_VALUE, "valueString": expression}]}


def context(expression: str) -> list[JSON]:
    return [{"url": TEMPLATE_EXTRACT_CONTEXT, "valueString": expression}]


def template_extract(template_id: str, **slices: str) -> JSON:
    ext: list[JSON] = [{"url": "template", "valueReference": {"reference": f"#{template_id}"}}]
    ext += [{"url": name, "valueString": expr} for name, expr in slices.items()]
    return {"url": TEMPLATE_EXTRACT, "extension": ext}


def questionnaire(items: list[JSON], contained: list[JSON], root: list[JSON] | None = None) -> JSON:
    q: JSON = {
        "resourceType": "Questionnaire",
        "id": "spec",
        "url": "https://safetyplan.example/fhir/Questionnaire/spec",
        "version": "1.0.0",
        "status": "active",
        "contained": contained,
        "item": items,
    }
    if root:
        q["extension"] = root
    return q


def response(items: list[JSON], **extra: Any) -> JSON:
    qr: JSON = {
        "resourceType": "QuestionnaireResponse",
        "id": "qr-1",
        "questionnaire": "https://safetyplan.example/fhir/Questionnaire/spec|1.0.0",
        "status": "completed",
        "subject": {"reference": "Patient/kari-testesen"},
        "authored": "2025-03-04T10:15:00+01:00",
        "item": items,
    }
    qr.update(extra)
    return qr


def answered(link_id: str, *answers: JSON, text: str | None = None) -> JSON:
    item: JSON = {"linkId": link_id, "answer": list(answers)}
    if text:
        item["text"] = text
    return item


def resources(bundle: JSON) -> list[JSON]:
    return [e["resource"] for e in bundle.get("entry", [])]


STRING_ITEMS = [{"linkId": "a", "type": "string", "text": "A", "repeats": True}]


# -- FHIRPath: the union fix ----------------------------------------------------------------------------

QR_WITH_NESTED = response(
    [
        {"linkId": "g", "item": [answered("x", {"valueBoolean": False})]},
        answered("y", {"valueBoolean": True, "item": [answered("z", {"valueBoolean": False})]}),
    ]
)


def _eval(expression: str, data: JSON = QR_WITH_NESTED) -> list[Any]:
    results = _fhirpath.compile_expression(expression)(_fhirpath.node(data, data["resourceType"]), {})
    return [_fhirpath.to_json(r) for r in results]


def test_union_keeps_node_types_so_choice_values_resolve_after_it() -> None:
    # fhirpathpy 2.2.4 returned [] here: '|' rebuilt the nodes without their type path
    assert _eval("repeat(item | answer.item).where(answer.value = false).linkId") == ["x", "z"]


def test_union_matches_the_result_without_union() -> None:
    with_union = _eval("repeat(item | answer.item).where(answer.value.exists()).linkId")
    with_combine = _eval("repeat(item.combine(answer.item)).where(answer.value.exists()).linkId")
    assert with_union == with_combine == ["y", "x", "z"]  # repeat() is breadth-first


def test_union_still_removes_duplicates() -> None:
    assert _eval("(item | item).linkId") == ["g", "y"]
    assert _eval("(1 | 1 | 2)") == [1, 2]
    assert _eval("item.linkId.distinct().count()") == [2]


def test_distinct_keeps_node_types() -> None:
    assert _eval("item.distinct().answer.value") == [True]


def test_top_level_this_is_the_focus() -> None:
    assert _eval("$this.status") == ["completed"]


def test_expressions_are_compiled_once() -> None:
    _fhirpath.compile_expression.cache_clear()
    q = questionnaire(
        STRING_ITEMS,
        [{"resourceType": "Basic", "id": "t", "_language": value("item.answer.value.first()")}],
        [template_extract("t")],
    )
    qr = response([answered("a", {"valueString": "nb"})])
    for _ in range(5):
        extract(qr, q)
    info = _fhirpath.compile_expression.cache_info()
    assert info.misses == 1
    assert info.hits == 4


# -- where resources come from ----------------------------------------------------------------------------


def test_root_template_extract_makes_one_resource_with_the_response_as_context() -> None:
    tpl = {"resourceType": "Basic", "id": "t", "code": {"_text": value("status")}}
    bundle = extract(response([]), questionnaire(STRING_ITEMS, [tpl], [template_extract("t")]))
    assert bundle["type"] == "transaction"
    assert resources(bundle) == [{"resourceType": "Basic", "code": {"text": "completed"}}]


def test_item_template_extract_makes_one_resource_per_repetition_with_that_item_as_context() -> None:
    items = [
        {
            "linkId": "grp",
            "type": "group",
            "repeats": True,
            "extension": [template_extract("t")],
            "item": STRING_ITEMS,
        }
    ]
    tpl = {"resourceType": "Basic", "id": "t", "code": {"_text": value("item.answer.value.first()")}}
    qr = response(
        [
            {"linkId": "grp", "item": [answered("a", {"valueString": "one"})]},
            {"linkId": "grp", "item": [answered("a", {"valueString": "two"})]},
        ]
    )
    texts = [r["code"]["text"] for r in resources(extract(qr, questionnaire(items, [tpl])))]
    assert texts == ["one", "two"]


def test_item_inside_an_answer_is_found() -> None:
    items = [
        {
            "linkId": "q",
            "type": "boolean",
            "item": [{"linkId": "sub", "type": "string", "extension": [template_extract("t")]}],
        }
    ]
    tpl = {"resourceType": "Basic", "id": "t", "code": {"_text": value("answer.value")}}
    qr = response([answered("q", {"valueBoolean": True, "item": [answered("sub", {"valueString": "s"})]})])
    assert resources(extract(qr, questionnaire(items, [tpl]))) == [
        {"resourceType": "Basic", "code": {"text": "s"}}
    ]


def test_unanswered_templated_item_makes_no_resource() -> None:
    items = [{"linkId": "a", "type": "string", "extension": [template_extract("t")]}]
    tpl = {"resourceType": "Basic", "id": "t"}
    bundle = extract(response([]), questionnaire(items, [tpl]))
    assert bundle == {"resourceType": "Bundle", "type": "transaction"}


# -- templating -------------------------------------------------------------------------------------------


def _one(tpl: JSON, qr: JSON, items: list[JSON] = STRING_ITEMS) -> JSON:
    tpl = {"id": "t", **tpl}
    return resources(extract(qr, questionnaire(items, [tpl], [template_extract("t")]), new_id=ids()))[0]


def test_context_clones_an_array_entry_per_result() -> None:
    tpl = {
        "resourceType": "Basic",
        "code": {"coding": [{"extension": context("item.answer"), "_code": value("value")}]},
    }
    qr = response([answered("a", {"valueString": "x"}, {"valueString": "y"})])
    assert _one(tpl, qr)["code"]["coding"] == [{"code": "x"}, {"code": "y"}]


def test_empty_context_removes_only_that_array_entry() -> None:
    tpl = {
        "resourceType": "Basic",
        "identifier": [
            {"system": "urn:static", "value": "1"},
            {
                "extension": context("item.where(linkId='none').answer"),
                "system": "urn:t",
                "_value": value("value"),
            },
        ],
    }
    assert _one(tpl, response([]))["identifier"] == [{"system": "urn:static", "value": "1"}]


def test_static_primitive_is_removed_when_its_value_expression_gives_nothing() -> None:
    # SDC: 'value' and '_value' are one property; no result removes it (npm 1.0.16 keeps the static value)
    tpl = {"resourceType": "Patient", "gender": "unknown", "_gender": value("item.answer.value.first()")}
    assert "gender" not in _one(tpl, response([]))
    assert _one(tpl, response([answered("a", {"valueString": "female"})]))["gender"] == "female"


def test_other_extensions_on_a_templated_primitive_are_kept() -> None:
    other = {"url": "http://example.org/other", "valueString": "kept"}
    tpl = {"resourceType": "Basic", "_language": {"extension": [other, *value("'nb'")["extension"]]}}
    out = _one(tpl, response([]))
    assert out["language"] == "nb"
    assert out["_language"] == {"extension": [other]}


def test_primitive_arrays_get_one_entry_per_result() -> None:
    tpl = {
        "resourceType": "Patient",
        "name": [{"given": ["Static"], "_given": [None, value("item.answer.value")]}],
    }
    qr = response([answered("a", {"valueString": "Kari"}, {"valueString": "Anne"})])
    assert _one(tpl, qr)["name"] == [{"given": ["Static", "Kari", "Anne"]}]


def test_complex_value_replaces_the_element_keeping_static_fields_it_does_not_set() -> None:
    tpl = {
        "resourceType": "Observation",
        "performer": [{"display": "static", "extension": value("%resource.subject")["extension"]}],
    }
    assert _one(tpl, response([]))["performer"] == [
        {"display": "static", "reference": "Patient/kari-testesen"}
    ]


def test_nested_context_is_evaluated_on_the_outer_result() -> None:
    items = [{"linkId": "g", "type": "group", "repeats": True, "item": STRING_ITEMS}]
    tpl = {
        "resourceType": "CarePlan",
        "activity": [
            {
                "extension": context("item.where(linkId='g')"),
                "progress": [{"extension": context("item.answer"), "_text": value("value")}],
            }
        ],
    }
    qr = response(
        [
            {"linkId": "g", "item": [answered("a", {"valueString": "1"}, {"valueString": "2"})]},
            {"linkId": "g", "item": [answered("a", {"valueString": "3"})]},
        ]
    )
    progress = [[p["text"] for p in a["progress"]] for a in _one(tpl, qr, items)["activity"]]
    assert progress == [["1", "2"], ["3"]]


def test_value_expression_context_name_is_a_variable_for_children() -> None:
    ctx = {
        "url": TEMPLATE_EXTRACT_CONTEXT,
        "valueExpression": {"language": "text/fhirpath", "name": "row", "expression": "item.answer"},
    }
    tpl = {"resourceType": "Basic", "identifier": [{"extension": [ctx], "_value": value("%row.value + '!'")}]}
    qr = response([answered("a", {"valueString": "x"})])
    assert _one(tpl, qr)["identifier"] == [{"value": "x!"}]


def test_questionnaire_and_context_variables_are_available() -> None:
    tpl = {
        "resourceType": "Basic",
        "code": {"_text": value("%questionnaire.url"), "coding": [{"_code": value("%context.status")}]},
    }
    out = _one(tpl, response([]))
    assert out["code"] == {
        "text": "https://safetyplan.example/fhir/Questionnaire/spec",
        "coding": [{"code": "completed"}],
    }


def test_template_id_and_all_markup_are_removed_and_empties_dropped() -> None:
    tpl = {
        "resourceType": "Basic",
        "extension": context("%resource")[:0],
        "code": {"coding": [{"extension": context("{}")}], "_text": value("{}")},
        "note": [],
        "text": {"status": "generated", "div": ""},
    }
    out = _one(tpl, response([]))
    assert out == {"resourceType": "Basic", "text": {"status": "generated"}}
    assert "urn:" not in json.dumps(out) and "sdc-questionnaire" not in json.dumps(out)


def test_the_questionnaire_and_response_are_not_modified() -> None:
    path = CORPUS / "careplan-checklist"
    q = json.loads((path / "questionnaire.json").read_text(encoding="utf-8"))
    qr = json.loads((path / "responses" / "two-unmet.json").read_text(encoding="utf-8"))
    before = copy.deepcopy((q, qr))
    out = extract(qr, q)
    out["entry"][0]["resource"]["activity"][0]["detail"]["code"]["coding"][0]["code"] = "changed"
    assert (q, qr) == before


# -- bundle entries ---------------------------------------------------------------------------------------


def test_resource_id_gives_put_and_conditional_headers_are_set() -> None:
    slices = {
        "resourceId": "'plan-' + %resource.id",
        "fullUrl": "'urn:uuid:11111111-1111-4111-8111-111111111111'",
        "ifNoneExist": "'identifier=urn:x|1'",
        "ifMatch": "'W/\"1\"'",
        "ifNoneMatch": "'*'",
        "ifModifiedSince": "%resource.authored",
    }
    q = questionnaire(
        STRING_ITEMS, [{"resourceType": "CarePlan", "id": "t"}], [template_extract("t", **slices)]
    )
    (entry,) = extract(response([]), q)["entry"]
    assert entry == {
        "fullUrl": "urn:uuid:11111111-1111-4111-8111-111111111111",
        "resource": {"resourceType": "CarePlan", "id": "plan-qr-1"},
        "request": {
            "method": "PUT",
            "url": "CarePlan/plan-qr-1",
            "ifNoneMatch": "*",
            "ifModifiedSince": "2025-03-04T10:15:00+01:00",
            "ifMatch": 'W/"1"',
            "ifNoneExist": "identifier=urn:x|1",
        },
    }


def test_without_resource_id_the_entry_is_a_post_with_a_new_uuid_full_url() -> None:
    q = questionnaire(STRING_ITEMS, [{"resourceType": "CarePlan", "id": "t"}], [template_extract("t")])
    (entry,) = extract(response([]), q, new_id=ids())["entry"]
    assert entry["request"] == {"method": "POST", "url": "CarePlan"}
    assert entry["fullUrl"] == "urn:uuid:00000000-0000-4000-8000-000000000001"
    assert entry["resource"] == {"resourceType": "CarePlan"}


def test_root_allocate_id_is_one_urn_uuid_shared_by_all_resources() -> None:
    items = [{"linkId": "a", "type": "string", "repeats": True, "extension": [template_extract("o")]}]
    contained = [
        {"resourceType": "Patient", "id": "p"},
        {"resourceType": "Observation", "id": "o", "subject": {"_reference": value("%Pid")}},
    ]
    root = [{"url": EXTRACT_ALLOCATE_ID, "valueString": "Pid"}, template_extract("p", fullUrl="%Pid")]
    qr = response([answered("a", {"valueString": "1"})])
    patient, observation = extract(qr, questionnaire(items, contained, root), new_id=ids())["entry"]
    assert patient["fullUrl"] == "urn:uuid:00000000-0000-4000-8000-000000000001"
    assert observation["resource"]["subject"] == {"reference": patient["fullUrl"]}
    assert observation["fullUrl"] != patient["fullUrl"]


def test_item_allocate_id_is_new_for_each_repetition() -> None:
    items = [
        {
            "linkId": "g",
            "type": "group",
            "repeats": True,
            "extension": [
                {"url": EXTRACT_ALLOCATE_ID, "valueString": "Gid"},
                template_extract("t", fullUrl="%Gid"),
            ],
            "item": STRING_ITEMS,
        }
    ]
    qr = response([{"linkId": "g", "item": [answered("a", {"valueString": str(i)})]} for i in range(3)])
    bundle = extract(qr, questionnaire(items, [{"resourceType": "Basic", "id": "t"}]), new_id=ids())
    urls = [e["fullUrl"] for e in bundle["entry"]]
    assert len(set(urls)) == 3
    assert all(u.startswith("urn:uuid:") for u in urls)


def test_with_issues_returns_an_all_ok_outcome() -> None:
    q = questionnaire(STRING_ITEMS, [{"resourceType": "Basic", "id": "t"}], [template_extract("t")])
    bundle, outcome = extract_with_issues(response([]), q)
    assert len(bundle["entry"]) == 1
    assert outcome["issue"][0]["severity"] == "information"


# -- errors -----------------------------------------------------------------------------------------------


def _error(q: JSON, qr: JSON | None = None) -> JSON:
    with pytest.raises(ExtractError) as info:
        extract(qr if qr is not None else response([]), q)
    assert isinstance(info.value, InputError)
    outcome = info.value.outcome
    assert outcome["resourceType"] == "OperationOutcome"
    return outcome["issue"][0]


def test_fhirpath_syntax_error_is_reported_with_its_location() -> None:
    tpl = {"resourceType": "Basic", "id": "t", "code": {"_text": value("item.where(")}}
    found = _error(questionnaire(STRING_ITEMS, [tpl], [template_extract("t")]))
    assert found["code"] == "invalid"
    assert "item.where(" in found["diagnostics"]
    assert found["expression"] == [
        "Questionnaire.contained.where(id='t').code._text.extension('templateExtractValue')"
    ]


def test_fhirpath_evaluation_error_is_reported_and_every_error_is_collected() -> None:
    tpl = {
        "resourceType": "Basic",
        "id": "t",
        "code": {"_text": value("%nope")},
        "_language": value("%nope2"),
    }
    with pytest.raises(ExtractError) as info:
        extract(response([]), questionnaire(STRING_ITEMS, [tpl], [template_extract("t")]))
    issues = info.value.outcome["issue"]
    assert [i["code"] for i in issues] == ["processing", "processing"]
    assert "nope" in issues[0]["diagnostics"]


def test_error_messages_do_not_echo_answers() -> None:
    tpl = {"resourceType": "Basic", "id": "t", "_language": value("item.answer.value")}
    qr = response([answered("a", {"valueString": "Kari Testesen"}, {"valueString": "17428512345"})])
    with pytest.raises(ExtractError) as info:
        extract(qr, questionnaire(STRING_ITEMS, [tpl], [template_extract("t")]))
    text = json.dumps(info.value.outcome) + str(info.value)
    assert "2 values" in text
    assert "Kari" not in text and "17428512345" not in text


def test_complex_value_on_a_primitive_is_an_error() -> None:
    tpl = {"resourceType": "Basic", "id": "t", "_language": value("%resource.subject")}
    assert (
        "complex value" in _error(questionnaire(STRING_ITEMS, [tpl], [template_extract("t")]))["diagnostics"]
    )


def test_primitive_value_on_a_complex_element_is_an_error() -> None:
    tpl = {"resourceType": "Basic", "id": "t", "subject": value("'Patient/x'")}
    found = _error(questionnaire(STRING_ITEMS, [tpl], [template_extract("t")]))
    assert "_reference" in found["diagnostics"]


def test_template_reference_to_a_missing_contained_resource_is_bad_markup() -> None:
    found = _error(questionnaire(STRING_ITEMS, [], [template_extract("missing")]))
    assert found["code"] == "not-found"
    assert "#missing" in found["diagnostics"]


def test_template_extract_without_template_is_bad_markup() -> None:
    bad = {"url": TEMPLATE_EXTRACT, "extension": [{"url": "fullUrl", "valueString": "'x'"}]}
    assert _error(questionnaire(STRING_ITEMS, [], [bad]))["code"] == "structure"


def test_questionnaire_without_template_markup_is_not_supported() -> None:
    assert _error(questionnaire(STRING_ITEMS, []))["code"] == "not-supported"


def test_template_extract_bundle_is_not_supported() -> None:
    root = [{"url": TEMPLATE_EXTRACT_BUNDLE, "valueReference": {"reference": "#b"}}]
    assert _error(questionnaire(STRING_ITEMS, [], root))["code"] == "not-supported"


def test_response_to_another_questionnaire_is_rejected() -> None:
    q = questionnaire(STRING_ITEMS, [{"resourceType": "Basic", "id": "t"}], [template_extract("t")])
    qr = response([], questionnaire="https://safetyplan.example/fhir/Questionnaire/other|1.0.0")
    assert _error(q, qr)["expression"] == ["QuestionnaireResponse.questionnaire"]


@pytest.mark.parametrize("bad", [None, [], "x", {"resourceType": "Patient"}])
def test_wrong_input_types_are_input_errors(bad: Any) -> None:
    q = questionnaire(STRING_ITEMS, [{"resourceType": "Basic", "id": "t"}], [template_extract("t")])
    with pytest.raises(ExtractError):
        extract(bad, q)
    with pytest.raises(ExtractError):
        extract(response([]), bad)


def test_duplicate_full_urls_are_an_error() -> None:
    items = [
        {
            "linkId": "a",
            "type": "string",
            "repeats": True,
            "extension": [template_extract("t", fullUrl="'urn:uuid:x'")],
        }
    ]
    qr = response([answered("a", {"valueString": "1"}), answered("a", {"valueString": "2"})])
    assert (
        "same fullUrl"
        in _error(questionnaire(items, [{"resourceType": "Basic", "id": "t"}]), qr)["diagnostics"]
    )


# -- the corpus: golden outputs and R4 structure -------------------------------------------------------------


def corpus() -> list[tuple[str, Path, Path]]:
    out = []
    for case in sorted(p for p in CORPUS.iterdir() if p.is_dir()):
        for qr_file in sorted((case / "responses").glob("*.json")):
            out.append((f"{case.name}/{qr_file.stem}", case / "questionnaire.json", qr_file))
    return out


@pytest.mark.parametrize(("name", "q_file", "qr_file"), corpus(), ids=[c[0] for c in corpus()])
def test_corpus_extracts_to_its_golden_bundle(name: str, q_file: Path, qr_file: Path) -> None:
    q = json.loads(q_file.read_text(encoding="utf-8"))
    qr = json.loads(qr_file.read_text(encoding="utf-8"))
    bundle = extract(qr, q, new_id=ids())
    golden = q_file.parent / "expected" / qr_file.name
    if UPDATE:
        golden.parent.mkdir(exist_ok=True)
        golden.write_text(json.dumps(bundle, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    assert bundle == json.loads(golden.read_text(encoding="utf-8"))
    # structure check with the R4 models (fhir.resources does not check codes or invariants)
    Bundle.model_validate(bundle)


def test_corpus_is_meaningful() -> None:
    cases = {c[0].split("/")[0] for c in corpus()}
    assert len(corpus()) >= 12
    assert {"careplan-checklist", "patient-names", "nested-groups", "empty-results", "sdc-only"} <= cases
