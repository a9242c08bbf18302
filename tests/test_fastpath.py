"""The native FHIRPath fast path gives exactly fhirpathpy's results (differentially), and covers our forms."""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from fhirpathpy.engine.nodes import ResourceNode
from fhirpathpy.parser import parse
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from fhir_safetyplan import _fastpath, _fhirpath, pipeline
from fhir_safetyplan.extract import (
    TEMPLATE_EXTRACT,
    TEMPLATE_EXTRACT_CONTEXT,
    TEMPLATE_EXTRACT_VALUE,
    extract,
)
from fhir_safetyplan.questionnaire import questionnaire_for

ROOT = Path(__file__).resolve().parent.parent
CHECKLIST = (
    "https://safetyplan.example/fhir/CodeSystem/svar"  # the answer CodeSystem (a word the fast path meets)
)
QR_TYPE = "QuestionnaireResponse.item"


# -- helpers ---------------------------------------------------------------------------------------------


def _load(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def _corpus_responses() -> list[dict[str, Any]]:
    files = sorted(ROOT.glob("tests/extract_corpus/*/responses/*.json"))
    files += sorted(ROOT.glob("examples/*/questionnaire-response.json"))
    return [_load(f) for f in files]


def _corpus_questionnaires() -> list[dict[str, Any]]:
    out = [_load(f) for f in sorted(ROOT.glob("tests/extract_corpus/*/questionnaire.json"))]
    for canonical in pipeline._known(None):
        q = questionnaire_for(canonical, None)
        assert q is not None
        out.append(q)
    return out


def _expressions(data: Any) -> Iterator[str]:
    """Every FHIRPath expression of template extraction markup in a Questionnaire."""
    if isinstance(data, dict):
        url = data.get("url")
        if url in (TEMPLATE_EXTRACT_CONTEXT, TEMPLATE_EXTRACT_VALUE):
            value = data.get("valueString") or (data.get("valueExpression") or {}).get("expression")
            if isinstance(value, str):
                yield value
        if url == TEMPLATE_EXTRACT:
            for sub in data.get("extension", []):
                if sub.get("url") != "template" and isinstance(sub.get("valueString"), str):
                    yield sub["valueString"]
        for v in data.values():
            yield from _expressions(v)
    elif isinstance(data, list):
        for v in data:
            yield from _expressions(v)


def _items(items: list[Any]) -> Iterator[dict[str, Any]]:
    for item in items:
        if isinstance(item, dict):
            yield item
            yield from _items(item.get("item", []) or [])
            for answer in item.get("answer", []) or []:
                if isinstance(answer, dict):
                    yield from _items(answer.get("item", []) or [])


def _shape(results: list[Any]) -> list[tuple[Any, ...]]:
    """What must be equal: each node's type path and data; each plain value's type and value."""
    return [
        ("node", r.path, r.data) if isinstance(r, ResourceNode) else (type(r).__name__, r) for r in results
    ]


def _reference(expression: str, focus: Any, variables: dict[str, Any]) -> tuple[str, Any]:
    try:
        return "ok", _shape(_fhirpath.compile_reference(expression)(focus, variables))
    except Exception as exc:  # fhirpathpy raises many exception types: the type is compared
        return "error", type(exc).__name__


def _fast(expression: str, focus: Any, variables: dict[str, Any]) -> tuple[str, Any] | None:
    """The fast path's answer, or None when it hands this evaluation back to fhirpathpy."""
    fn = _fhirpath.fast_path_of(expression)
    assert fn is not None, f"{expression!r} should be in the fast subset"
    try:
        return "ok", _shape(fn(focus, variables))
    except _fastpath.Fallback:
        return None


def _combined(expression: str, focus: Any, variables: dict[str, Any]) -> tuple[str, Any]:
    try:
        return "ok", _shape(_fhirpath.compile_expression(expression)(focus, variables))
    except Exception as exc:  # the same exception type as the reference
        return "error", type(exc).__name__


def _variables(qr: dict[str, Any], q: dict[str, Any]) -> dict[str, Any]:
    qr_node = _fhirpath.node(qr, "QuestionnaireResponse")
    first_item = next(_items(qr.get("item", []) or []), None)
    return {
        "resource": qr_node,
        "rootResource": qr_node,
        "questionnaire": _fhirpath.node(q, "Questionnaire"),
        "PlanId": "urn:uuid:7c0a4c8e-3f5e-4a39-9a53-2f0c1b2d3e4f",
        "section": _fhirpath.node(first_item, QR_TYPE) if first_item else None,
        "several": [
            _fhirpath.node(i, QR_TYPE) for i in (qr.get("item", []) or [])[:3] if isinstance(i, dict)
        ],
    }


def _assert_same(expression: str, focus: Any, variables: dict[str, Any]) -> bool:
    """Fast path (unless it hands back), and fast path + fallback, give fhirpathpy's answer; True if fast."""
    reference = _reference(expression, focus, variables)
    fast = _fast(expression, focus, variables)
    if fast is not None:
        assert fast == reference, expression
    assert _combined(expression, focus, variables) == reference, expression
    return fast is not None


# -- generated expressions from the subset grammar -------------------------------------------------------

MEMBERS = [
    "item", "linkId", "answer", "value", "valueCoding", "valueString", "valueBoolean", "valueInteger",
    "valueDecimal", "valueDate", "valueDateTime", "valueQuantity", "valueReference", "code", "system",
    "display", "text", "subject", "reference", "id", "authored", "status", "extension", "url", "author",
    "identifier", "questionnaire", "length", "nothing",
]  # fmt: skip
STRINGS = [
    "N", "Y", "NA", "", "plan.sjekkliste", "plan.sjekkliste.politi", "plan.avtalte-tiltak", "a", "b", "x",
    "QuestionnaireResponse/", CHECKLIST, "completed", "2024-05-01", "it's", "kg",
]  # fmt: skip
VARIABLES = [
    "resource",
    "rootResource",
    "questionnaire",
    "context",
    "ucum",
    "PlanId",
    "section",
    "several",
    "nope",
]


def _quote(s: str) -> str:
    return "'" + s.replace("\\", "\\\\").replace("'", "\\'") + "'"


literals = st.one_of(
    st.sampled_from(STRINGS).map(_quote),
    st.sampled_from(["0", "1", "2", "1.5", "true", "false", "{}"]),
)
heads = st.one_of(
    st.sampled_from(MEMBERS),
    st.sampled_from(VARIABLES).map(lambda v: "%" + v),
    literals.map(lambda lit: f"({lit})"),
    st.sampled_from(["first()", "exists()", "empty()", "count()"]),
)


def _expression_strategy() -> st.SearchStrategy[str]:
    def extend(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
        step = st.one_of(
            st.sampled_from(MEMBERS).map(lambda m: "." + m),
            inner.map(lambda c: f".where({c})"),
            inner.map(lambda c: f".exists({c})"),
            st.sampled_from([".first()", ".exists()", ".empty()", ".count()"]),
        )
        chain = st.builds(lambda h, steps: h + "".join(steps), heads | inner.map(lambda e: f"({e})"),
                          st.lists(step, max_size=3))  # fmt: skip
        binary = st.builds(
            lambda a, op, b: f"{a} {op} {b}",
            chain,
            st.sampled_from(["=", "!=", "and", "or", "+", "&"]),
            chain | literals,
        )
        return chain | binary

    return st.recursive(heads, extend, max_leaves=8)


coding_answers = st.builds(
    lambda system, code: {"valueCoding": {"system": system, "code": code}},
    st.sampled_from([CHECKLIST, "http://example.org/other"]),
    st.sampled_from(["Y", "N", "NA"]),
)
answers = st.one_of(
    coding_answers,
    st.sampled_from(STRINGS).map(lambda s: {"valueString": s}),
    st.booleans().map(lambda b: {"valueBoolean": b}),
    st.integers(-2, 3).map(lambda i: {"valueInteger": i}),
    st.sampled_from([0.5, 1.0, 2.25]).map(lambda d: {"valueDecimal": d}),
    st.just({"valueDate": "2024-05-01"}),
    st.just({"valueDateTime": "2024-05-01T10:00:00+02:00"}),
    st.just(
        {"valueQuantity": {"value": 70, "unit": "kg", "system": "http://unitsofmeasure.org", "code": "kg"}}
    ),
    st.just({"valueReference": {"reference": "Patient/1"}}),
    st.just({"_valueString": {"extension": [{"url": "http://example.org/x", "valueString": "y"}]}}),
    st.just({"valueString": "a", "_valueString": {"extension": [{"url": "http://example.org/x"}]}}),
)


def _item(children: st.SearchStrategy[list[dict[str, Any]]]) -> st.SearchStrategy[dict[str, Any]]:
    def build(
        link: str, text: str | None, ans: list[dict[str, Any]], kids: list[dict[str, Any]]
    ) -> dict[str, Any]:
        item: dict[str, Any] = {"linkId": link}
        if text is not None:
            item["text"] = text
        if ans:
            item["answer"] = ans
        if kids:
            item["item"] = kids
        return item

    return st.builds(
        build,
        st.sampled_from(["plan.sjekkliste", "plan.sjekkliste.politi", "plan.avtalte-tiltak", "a", "b", "x"]),
        st.none() | st.sampled_from(["a", "Politi", ""]),
        st.lists(answers, max_size=2),
        children,
    )


items = st.recursive(
    st.lists(_item(st.just([])), max_size=3),
    lambda kids: st.lists(_item(kids), max_size=3),
    max_leaves=8,
)
generated_responses = st.builds(
    lambda its, authored, ident: {
        "resourceType": "QuestionnaireResponse",
        **({"id": ident} if ident else {}),
        "status": "completed",
        **({"authored": authored} if authored else {}),
        "subject": {"reference": "Patient/p1"},
        "item": its,
    },
    items,
    st.none() | st.just("2024-05-01T10:00:00+02:00"),
    st.none() | st.just("qr-1"),
)
responses = st.one_of(st.sampled_from(_corpus_responses()), generated_responses)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    expression=_expression_strategy(),
    qr=responses,
    q=st.sampled_from(_corpus_questionnaires()),
    data=st.data(),
)
def test_generated_expressions_give_fhirpathpys_results_on_generated_and_corpus_responses(
    expression: str, qr: dict[str, Any], q: dict[str, Any], data: st.DataObject
) -> None:
    variables = _variables(qr, q)
    foci: list[Any] = [
        variables["resource"],
        *(_fhirpath.node(i, QR_TYPE) for i in _items(qr.get("item") or [])),
    ]
    focus = data.draw(st.sampled_from([*foci, "a plain string"]))
    answered = _assert_same(expression, focus, variables)
    event("fast path answered" if answered else "fast path handed back to fhirpathpy")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    head=st.sampled_from(
        ["item", "item.item", "item.answer", "item.answer.value", "%several", "%PlanId", "(1)"]
    ),
    member=st.sampled_from(["linkId", "text", "code", "value", "valueString", "id", "nothing", "extension"]),
    op=st.sampled_from(["=", "!="]),
    literal=literals.filter(lambda lit: lit != "{}"),
    literal_first=st.booleans(),
    qr=responses,
    data=st.data(),
)
def test_where_member_compared_with_a_constant_gives_fhirpathpys_results(
    head: str,
    member: str,
    op: str,
    literal: str,
    literal_first: bool,
    qr: dict[str, Any],
    data: st.DataObject,
) -> None:
    condition = f"{literal} {op} {member}" if literal_first else f"{member} {op} {literal}"
    variables = _variables(qr, {"resourceType": "Questionnaire"})
    foci: list[Any] = [
        variables["resource"],
        *(_fhirpath.node(i, QR_TYPE) for i in _items(qr.get("item") or [])),
    ]
    focus = data.draw(st.sampled_from(foci))
    for expression in (f"{head}.where({condition})", f"{head}.where({condition}).count()"):
        answered = _assert_same(expression, focus, variables)
        event("fast path answered" if answered else "fast path handed back to fhirpathpy")


# -- every expression our forms and the corpus use -------------------------------------------------------


def _all_form_expressions() -> list[str]:
    return sorted({e for q in _corpus_questionnaires() for e in _expressions(q)})


def test_every_expression_of_our_questionnaires_is_in_the_fast_subset() -> None:
    ours = sorted({e for q in _corpus_questionnaires()[-4:] for e in _expressions(q)})
    assert len(ours) > 20
    assert [e for e in ours if _fhirpath.fast_path_of(e) is None] == []


def _pairs() -> list[tuple[str, Path, Path | None]]:
    """(name, Questionnaire, QuestionnaireResponse) from the corpus and the examples."""
    out: list[tuple[str, Path, Path | None]] = []
    for case in sorted(ROOT.glob("tests/extract_corpus/*/")):
        for r in sorted(case.glob("responses/*.json")):
            out.append((f"{case.name}/{r.stem}", case / "questionnaire.json", r))
    for r in sorted(ROOT.glob("examples/*/questionnaire-response.json")):
        out.append((r.parent.name, r, None))  # None: the form the response names
    return out


@pytest.mark.parametrize(("name", "q_file", "qr_file"), _pairs(), ids=[p[0] for p in _pairs()])
def test_every_markup_expression_matches_fhirpathpy_on_its_responses_at_the_root_and_every_item(
    name: str, q_file: Path, qr_file: Path | None
) -> None:
    if qr_file is None:
        qr = _load(q_file)
        q = pipeline.questionnaire_of(qr)
    else:
        qr, q = _load(qr_file), _load(q_file)
    variables = _variables(qr, q)
    foci = [variables["resource"], *(_fhirpath.node(i, QR_TYPE) for i in _items(qr.get("item") or []))]
    answered = 0
    for expression in sorted(set(_expressions(q))):
        if _fhirpath.fast_path_of(expression) is None:
            continue  # outside the subset (e.g. '$this', join(), '*'): fhirpathpy only
        for focus in foci:
            answered += _assert_same(expression, focus, variables)
    assert answered > 0


def test_strict_parse_builds_the_same_ast_as_fhirpathpy() -> None:
    extra = ["%`a b`", "a.b[0]", "-1.5", "@2024-01-01", "a is string", "'x' | 'y'", "(a)", "{}"]
    for expression in [*_all_form_expressions(), *extra]:
        assert _fhirpath._ast(_fhirpath._strict_parse(expression)) == parse(expression), expression  # type: ignore[no-untyped-call]


@settings(max_examples=300, deadline=None)
@given(text=st.text(st.characters(exclude_characters="'\\", exclude_categories=["Cs"]), max_size=40))
def test_plain_string_literals_get_fhirpathpys_ast_without_parsing(text: str) -> None:
    expression = f"'{text}'"
    if "$this" in text:
        assert _fhirpath._string_literal_ast(expression) is None
    else:
        assert _fhirpath._string_literal_ast(expression) == parse(expression)  # type: ignore[no-untyped-call]
        assert _fhirpath.compile_expression(expression)(None, {}) == [text]


def test_only_a_lone_plain_string_literal_skips_the_parser() -> None:
    for expression in ("'a' + 'b'", "'a\\'b'", "'a'.exists()", " 'a'", "'a", "'$this'"):
        assert _fhirpath._string_literal_ast(expression) is None, expression


# -- the extraction uses the fast path, with the same output ---------------------------------------------


def test_examples_extract_the_same_bundle_with_and_without_the_fast_path() -> None:
    for path in sorted(ROOT.glob("examples/*/questionnaire-response.json")):
        qr = _load(path)
        q = pipeline.questionnaire_of(qr)
        try:
            _fhirpath.set_fast_path(False)
            slow = extract(qr, q, new_id=lambda: "00000000-0000-0000-0000-000000000000")
        finally:
            _fhirpath.set_fast_path(True)
        fast = extract(qr, q, new_id=lambda: "00000000-0000-0000-0000-000000000000")
        assert fast == slow, path.parent.name


def test_the_examples_are_extracted_without_falling_back(monkeypatch: pytest.MonkeyPatch) -> None:
    fallbacks = []
    compile_ast = _fastpath.compile_ast
    compile_ = _fhirpath._compile

    def counting(ast: Any, model: Any) -> _fastpath.FastCompiled:
        fn = compile_ast(ast, model)

        def run(focus: Any, variables: Any) -> list[Any]:
            try:
                return fn(focus, variables)
            except _fastpath.Fallback:
                fallbacks.append(1)
                raise

        return run

    monkeypatch.setattr(_fastpath, "compile_ast", counting)
    calls: list[str] = []

    def compiling(expression: str, *, fast: bool) -> Any:
        calls.append(expression)
        return compile_(expression, fast=fast)

    monkeypatch.setattr(_fhirpath, "_compile", compiling)
    _fhirpath.compile_expression.cache_clear()
    try:
        entries = 0
        for path in sorted(ROOT.glob("examples/*/questionnaire-response.json")):
            qr = _load(path)
            entries += len(extract(qr, pipeline.questionnaire_of(qr)).get("entry", []))
    finally:
        _fhirpath.compile_expression.cache_clear()
    assert entries > 0
    assert len(calls) > 20  # the markup's expressions were compiled (and so ran) through the counting path
    assert fallbacks == []


# -- fhirpathpy's quirks, kept on purpose ----------------------------------------------------------------

QR = {
    "resourceType": "QuestionnaireResponse",
    "id": "qr-1",
    "status": "completed",
    "authored": "2024-05-01T10:00:00+02:00",
    "item": [
        {"linkId": "a", "answer": [{"valueString": "x"}, {"valueString": "y"}]},
        {"linkId": "b", "answer": [{"valueString": "x"}, {"valueString": "z"}]},
        {"linkId": "c", "answer": [{"_valueString": {"extension": [{"url": "http://example.org/e"}]}}]},
        {"linkId": "d", "answer": [{"valueQuantity": {"value": 1, "code": "kg"}}]},
    ],
}


def _both(expression: str) -> list[tuple[Any, ...]]:
    variables = _variables(QR, {"resourceType": "Questionnaire", "status": "draft"})
    _assert_same(expression, variables["resource"], variables)
    return _shape(_fhirpath.compile_expression(expression)(variables["resource"], variables))


def test_equality_of_two_same_size_collections_compares_their_first_items_as_fhirpathpy_does() -> None:
    expression = "item.where(linkId='a').answer.value = item.where(linkId='b').answer.value"
    assert _fhirpath.fast_path_of(expression) is not None
    assert _both(expression) == [("bool", True)]
    assert _both("item.answer.value = 'x'") == [("bool", False)]  # sizes differ
    assert _both("item.where(linkId='zz').linkId = 'x'") == []  # empty operand


def test_choice_values_resolve_and_extension_only_primitives_are_dropped_from_results() -> None:
    assert _both("item.where(linkId='a').answer.value") == [("node", "string", "x"), ("node", "string", "y")]
    assert _both("item.where(linkId='c').answer.value") == []
    assert _both("item.where(linkId='c').answer.value.exists()") == [("bool", True)]


def test_string_concatenation_propagates_empty_and_dates_fall_back_to_fhirpathpy() -> None:
    assert _both("'QuestionnaireResponse/' + %resource.id") == [("str", "QuestionnaireResponse/qr-1")]
    assert _both("'x' + %resource.nothing") == []
    assert _both("%resource.nothing & 'x'") == [("str", "x")]
    assert _both("%resource.authored = '2024-05-01T10:00:00+02:00'") == [("bool", True)]
    variables = _variables(QR, {"resourceType": "Questionnaire"})
    fast = _fhirpath.fast_path_of("'at ' + %resource.authored")
    assert fast is not None
    with pytest.raises(_fastpath.Fallback):
        fast(variables["resource"], variables)


def test_quantities_and_undefined_variables_are_left_to_fhirpathpy() -> None:
    variables = _variables(QR, {"resourceType": "Questionnaire"})
    for expression in ("item.where(linkId='d').answer.value = 'kg'", "%undefined.item"):
        fast = _fhirpath.fast_path_of(expression)
        assert fast is not None
        with pytest.raises(_fastpath.Fallback):
            fast(variables["resource"], variables)
        _assert_same(expression, variables["resource"], variables)
    with pytest.raises(ValueError, match="undefined environment variable"):
        _fhirpath.compile_expression("%undefined.item")(variables["resource"], variables)


def test_where_keeps_items_whose_condition_is_truthy_in_python_terms() -> None:
    assert _both("item.where(linkId)") == _both("item")
    assert _both("item.where('')") == []
    assert _both("item.where(0).count()") == [("int", 0)]
    assert _both("item.where(1.5).count()") == [("int", 4)]


def test_outside_the_subset_is_fhirpathpy_only() -> None:
    for expression in (
        "item.answer.value.join(' ')",
        "$this.item",
        "answer.value * 100",
        "item[0]",
        "Patient",
    ):
        assert _fhirpath.fast_path_of(expression) is None, expression
    assert _shape(_fhirpath.compile_expression("1.50")(None, {})) == [("Decimal", Decimal("1.50"))]
