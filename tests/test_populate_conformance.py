"""Conformance: our ``$populate`` and @aehrc/sdc-populate 4.7.1 (npm) pre-fill the same response.

Both engines get the same Questionnaire (from the generator, with its launch contexts and initialExpressions),
the same previous QuestionnaireResponse and the same subject. Cases:

- every example's response into each of the four forms (multilingual, nb, nn, en);
- a generated corpus (fixed seed): previous responses with answers dropped, items reordered, answers to items
  no form has, codes no longer among the options, two answers on a single-answer item, and a "next version"
  of the form derived from ours (an item removed, an item added, an answer option removed, another version).

What is compared: the whole response except ``meta.source`` (the engine stamps its own name) and ``language``
(we set the form's language; the engine sets none). Where the engine has a documented quirk, its output is
normalised, counted, and a test proves the normalisation is needed on the quirk cases and never used on the
others:

- a value whose type does not fit the item becomes ``valueString`` holding the raw value (``{"valueString":
  true}`` on a text item, which is not valid FHIR): such answers are removed from its output;
- codings are matched to answer options by ``code`` alone, so a coding of another code system with an option's
  code becomes that option: answers whose system/code the previous response did not hold are removed.

Install the engine with ``bash scripts/setup.sh`` (``tools/sdc-populate-npm``). With ``CI`` set the test fails
when it is missing; elsewhere it is skipped with the reason.
"""

from __future__ import annotations

import copy
import json
import random
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _needs import unavailable
from _node import run_jsonl

from fhir_safetyplan import codes
from fhir_safetyplan.populate import launch_context_name, populate, previous_response
from fhir_safetyplan.population import INITIAL_EXPRESSION, initial_expression
from fhir_safetyplan.questionnaire import build_questionnaire

ROOT = Path(__file__).resolve().parent.parent
NPM_DIR = ROOT / "tools" / "sdc-populate-npm"
RUNNER = NPM_DIR / "populate.js"
ENGINE = NPM_DIR / "node_modules" / "@aehrc" / "sdc-populate"


def patient_of(prev: dict[str, Any]) -> dict[str, Any]:
    """The Patient both engines get: the previous response's own when it names one by reference."""
    ref = str(prev.get("subject", {}).get("reference", ""))
    return {
        "resourceType": "Patient",
        "id": ref.removeprefix("Patient/") if ref.startswith("Patient/") else "synthetic-1",
    }


def subject_of(prev: dict[str, Any]) -> dict[str, Any]:
    return {"reference": f"Patient/{patient_of(prev)['id']}"}


STRINGISH = frozenset({"string", "text", "open-choice"})

Case = tuple[str, dict[str, Any], dict[str, Any]]


def _require_npm() -> None:
    reason = None
    if shutil.which("node") is None:
        reason = "node is not installed (needs Node 20)"
    elif not ENGINE.is_dir():
        reason = "npm engine not installed: run bash scripts/setup.sh (tools/sdc-populate-npm)"
    if reason is not None:
        unavailable("the $populate conformance test", reason)


def _items(items: Any) -> Iterator[dict[str, Any]]:
    for item in items or []:
        yield item
        yield from _items(item.get("item"))


def _examples() -> list[tuple[str, dict[str, Any]]]:
    out = []
    for path in sorted((ROOT / "examples").glob("*/questionnaire-response.json")):
        out.append((path.parent.name, json.loads(path.read_text(encoding="utf-8"))))
    return out


def next_version(q: dict[str, Any]) -> dict[str, Any]:
    """A later version of ``q`` as content changes make them: one item gone, one new, an option withdrawn."""
    q = copy.deepcopy(q)
    q["version"] = "9.9.9"
    name = launch_context_name(q)
    for item in _items(q["item"]):
        if item["linkId"] == "trygg-kontakt":
            item["item"] = [i for i in item["item"] if i["linkId"] != "trygg-kontakt.tidspunkt"]
            new: dict[str, Any] = {"linkId": "trygg-kontakt.gjennomgatt", "text": "Ny", "type": "string"}
            new["extension"] = [
                {
                    "url": INITIAL_EXPRESSION,
                    "valueExpression": {
                        "language": "text/fhirpath",
                        "expression": initial_expression(name, new["linkId"]),
                    },
                }
            ]
            item["item"].append(new)
        if item["linkId"] in ("trygg-kontakt.trygge", "trygg-kontakt.utrygge"):
            item["answerOption"] = [o for o in item["answerOption"] if o["valueCoding"]["code"] != "sms"]
    return q


def _mutations(prev: dict[str, Any], rng: random.Random) -> Iterator[tuple[str, dict[str, Any]]]:
    """Previous responses an older or another system's form could have produced (no engine quirk involved)."""
    answered = [i for i in _items(prev.get("item")) if i.get("answer")]
    p = copy.deepcopy(prev)
    for item in _items(p.get("item")):
        if item.get("answer") and rng.random() < 0.4:
            del item["answer"]
    yield "answers-dropped", p
    p = copy.deepcopy(prev)
    rng.shuffle(p["item"])
    p["item"].append({"linkId": "punkt-fjernet-i-ny-versjon", "answer": [{"valueString": "x"}]})
    yield "reordered-and-removed-item", p
    p = copy.deepcopy(prev)
    for item in _items(p.get("item")):
        for a in item.get("answer", []):
            if "valueCoding" in a and rng.random() < 0.5:
                a["valueCoding"] = {**a["valueCoding"], "code": a["valueCoding"]["code"] + "-utgatt"}
    yield "codes-withdrawn", p
    p = copy.deepcopy(prev)
    for item in _items(p.get("item")):
        for a in item.get("answer", []):
            coding = a.get("valueCoding", {})
            if str(coding.get("system", "")).endswith(f"/CodeSystem/{codes.ANSWER_CS}"):
                coding["system"] = codes.DATA_ABSENT if coding["code"] == "asked-declined" else codes.YES_NO
    yield "hl7-answer-codes-of-1.0.0", p
    if answered:
        p = copy.deepcopy(prev)
        single = [i for i in _items(p.get("item")) if i.get("answer") and "valueCoding" in i["answer"][0]]
        for item in single[:2]:
            item["answer"] = item["answer"] + item["answer"]
        yield "two-answers", p


def cases() -> list[Case]:
    forms = {lang or "multi": build_questionnaire(lang) for lang in (None, *codes.LANGUAGES)}
    rng = random.Random(20261201)
    out: list[Case] = []
    for name, prev in _examples():
        for form_name, q in forms.items():
            out.append((f"{name}->{form_name}", q, prev))
        for mutation, p in _mutations(prev, rng):
            out.append((f"{name}/{mutation}->nb", forms["nb"], p))
        out.append((f"{name}->next-version", next_version(forms["nb"]), prev))
    return out


def quirk_cases() -> list[Case]:
    """Previous answers whose value no longer fits: the two documented engine quirks."""
    q = build_questionnaire("nb")
    out: list[Case] = []
    quirky = ("samtale.eksisterende-tiltak", "trygg-kontakt.trygge")
    for name, prev in _examples():
        answered = {i["linkId"] for i in _items(prev.get("item")) if i.get("answer")}
        if not set(quirky) <= answered:
            continue
        p = copy.deepcopy(prev)
        for item in _items(p.get("item")):
            if item["linkId"] == "samtale.eksisterende-tiltak":
                item["answer"] = [{"valueBoolean": True}]
            if item["linkId"] == "trygg-kontakt.trygge":
                item["answer"][0]["valueCoding"]["system"] = "http://other.example/CodeSystem/kanal"
        out.append((f"{name}/quirks", q, p))
    return out


def run_npm(batch: list[Case]) -> list[dict[str, Any]]:
    _require_npm()
    return run_jsonl(
        RUNNER,
        [
            {
                "questionnaire": q,
                "previous": p,
                "patient": patient_of(p),
                "contextName": launch_context_name(q),
            }
            for _, q, p in batch
        ],
    )


def comparable(qr: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in qr.items() if k not in ("language", "meta")}
    return out


def normalise_quirks(
    theirs: dict[str, Any], q: dict[str, Any], prev: dict[str, Any]
) -> tuple[dict[str, Any], list[str]]:
    """The engine's response without the answers its two quirks add (see the module docstring), and the
    linkId of each answer removed."""
    theirs = copy.deepcopy(theirs)
    types = {i["linkId"]: i.get("type") for i in _items(q["item"])}
    held: dict[str, set[tuple[str, str]]] = {}
    for item in _items(prev.get("item")):
        for a in item.get("answer", []):
            if isinstance(a.get("valueCoding"), dict):
                held.setdefault(item["linkId"], set()).add(
                    (a["valueCoding"].get("system"), a["valueCoding"].get("code"))
                )
    removed: list[str] = []

    def fits(link_id: str, answer: dict[str, Any]) -> bool:
        if "valueString" in answer and types.get(link_id) not in STRINGISH:
            return False  # quirk 1: a misfit value wrapped as valueString
        if "valueString" in answer and not isinstance(answer["valueString"], str):
            return False  # quirk 1 again: a boolean or number inside valueString
        coding = answer.get("valueCoding")
        if isinstance(coding, dict) and (coding.get("system"), coding.get("code")) not in held.get(
            link_id, set()
        ):
            # quirk 2: matched to an option by code alone -- except where the previous coding is the HL7 answer
            # code content 1.0.0 used, which both engines rightly read as our answer code of the same code
            legacy = {(s, c) for s, c in held.get(link_id, set()) if s in codes.LEGACY_ANSWER_SYSTEMS}
            return bool(codes.answer_code(coding)) and any(c == coding.get("code") for _, c in legacy)
        return True

    def clean(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        out = []
        for item in items:
            if "answer" in item:
                kept = [a for a in item["answer"] if fits(item["linkId"], a)]
                removed.extend([item["linkId"]] * (len(item["answer"]) - len(kept)))
                item["answer"] = kept
                if not kept:
                    del item["answer"]
            if "item" in item:
                item["item"] = clean(item["item"])
                if not item["item"]:
                    del item["item"]
            if "answer" in item or "item" in item:
                out.append(item)
        return out

    theirs["item"] = clean(theirs.get("item", []))
    return theirs, removed


def misfits(issues: tuple[dict[str, Any], ...]) -> set[str]:
    """linkIds our engine reported a previous value for that no longer fits (type or answer option)."""
    out = set()
    for i in issues:
        if i["severity"] == "warning" and i["code"] == "value" and "linkId '" in i["diagnostics"]:
            out.add(i["diagnostics"].split("linkId '", 1)[1].split("'", 1)[0])
    return out


CASES = cases()
QUIRKS = quirk_cases()


@pytest.fixture(scope="module")
def npm_results() -> dict[str, dict[str, Any]]:
    batch = CASES + QUIRKS
    return {name: result for (name, _, _), result in zip(batch, run_npm(batch), strict=True)}


def test_the_corpus_covers_every_example_every_form_and_a_new_version() -> None:
    assert len(QUIRKS) >= 3
    assert len(_examples()) >= 8
    assert sum(name.endswith("->next-version") for name, _, _ in CASES) == len(_examples())
    assert len(CASES) >= 8 * 5 + 8 * 4


@pytest.mark.npm
@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_both_engines_prefill_the_same_response(case: Case, npm_results: dict[str, dict[str, Any]]) -> None:
    name, q, prev = case
    result = npm_results[name]
    assert result["ok"], result
    populated = populate(q, prev, subject_of(prev))
    ours = populated.response
    theirs = result["response"]
    assert theirs["meta"] == {"source": "https://smartforms.csiro.au"}
    normalised, removed = normalise_quirks(theirs, q, prev)
    # Normalised only where our engine itself reports that the previous value no longer fits the item.
    assert set(removed) <= misfits(populated.issues), removed
    assert comparable(ours) == comparable(normalised)


@pytest.mark.npm
@pytest.mark.parametrize("case", QUIRKS, ids=[c[0] for c in QUIRKS])
def test_the_quirk_normalisation_is_needed_and_then_both_agree(
    case: Case, npm_results: dict[str, dict[str, Any]]
) -> None:
    name, q, prev = case
    ours = populate(q, prev, subject_of(prev))
    theirs = npm_results[name]["response"]
    assert comparable(ours.response) != comparable(theirs), (
        "the quirks no longer show: drop the normalisation"
    )
    normalised, removed = normalise_quirks(theirs, q, prev)
    # one misfit type wrapped in valueString, one foreign coding matched to an option by code
    assert sorted(removed) == ["samtale.eksisterende-tiltak", "trygg-kontakt.trygge"]
    assert set(removed) <= misfits(ours.issues)
    assert comparable(ours.response) == comparable(normalised)


def test_a_previous_answers_document_prefills_like_its_response() -> None:
    doc = json.loads((ROOT / "examples" / "02-flere-mangler" / "answers.json").read_text(encoding="utf-8"))
    qr = json.loads(
        (ROOT / "examples" / "02-flere-mangler" / "questionnaire-response.json").read_text(encoding="utf-8")
    )
    q = build_questionnaire("nb")
    assert populate(q, previous_response(doc)).response == populate(q, qr).response
