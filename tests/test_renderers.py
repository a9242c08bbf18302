"""The form in real SDC renderers: LHC-Forms and Helsenorge Refero, in Debian's headless Chromium, offline.

The harness in ``tools/renderers/`` (npm ``playwright-core`` driving ``/usr/bin/chromium``; LHC-Forms served from its
npm build, Refero bundled with Vite by ``scripts/setup.sh``) serves the renderer on 127.0.0.1 and aborts every
request to any other address; it reports console errors, blocked requests, the rendered text, LHC-Forms' own
``checkValidity`` and the response each renderer holds. All jobs run in one browser (one subprocess, module fixture);
the tests below read its results. With ``CI`` set a missing harness fails the tests; elsewhere they are skipped.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from _needs import unavailable
from _node import run_node

from fhir_safetyplan.content import load
from fhir_safetyplan.form_ids import Link
from fhir_safetyplan.questionnaire import build_questionnaire
from fhir_safetyplan.rendering import for_renderer
from fhir_safetyplan.validation import validate_response
from fhir_safetyplan.versions import FROZEN_VERSIONS

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parent.parent
HARNESS = ROOT / "tools" / "renderers"
EXAMPLES = sorted(p.parent for p in (ROOT / "examples").glob("*/questionnaire-response.json"))
CHROMIUM = Path("/usr/bin/chromium")  # Debian's; the harness's default
LANGS = ("nb", "nn", "en")
MULTI_SELECT = (Link.SAFE_CHANNELS, Link.UNSAFE_CHANNELS)
JSON = dict[str, Any]


def _missing() -> str | None:
    if shutil.which("node") is None:
        return "node is not installed (needs Node 20)"
    if not CHROMIUM.exists():
        return "Debian's chromium is not installed (apt-get install -y chromium)"
    for need in ("node_modules/playwright-core", "node_modules/lforms", "refero/dist/index.html"):
        if not (HARNESS / need).exists():
            return f"tools/renderers/{need} is missing: run scripts/setup.sh"
    return None


def render(jobs: list[JSON], tmp: Path) -> list[JSON]:
    """Run the jobs in the harness; one result per job."""
    reason = _missing()
    if reason is not None:
        unavailable("the renderer tests", reason)
    path = tmp / "jobs.json"
    path.write_text(json.dumps(jobs), encoding="utf-8")
    results: list[JSON] = json.loads(run_node(HARNESS / "run.mjs", str(path), timeout=600))
    return results


def profiles_questionnaire(canonical: str) -> JSON:
    """The published Questionnaire (``profiles/``) whose ``url|version`` is the response's ``questionnaire``."""
    for path in (ROOT / "profiles").glob("Questionnaire-*.json"):
        q: JSON = json.loads(path.read_text(encoding="utf-8"))
        if f"{q['url']}|{q['version']}" == canonical:
            return q
    raise AssertionError(f"no Questionnaire {canonical} in profiles/")


def example(folder: Path) -> tuple[JSON, JSON]:
    qr: JSON = json.loads((folder / "questionnaire-response.json").read_text(encoding="utf-8"))
    return profiles_questionnaire(qr["questionnaire"]), qr


def choose(link_id: str, code: str) -> JSON:
    return {"linkId": link_id, "code": code}


YES, NO = choose(Link.INVOLVEMENT, "Y"), choose(Link.INVOLVEMENT, "N")


def job(renderer: str, q: JSON, *, response: JSON | None = None, steps: list[JSON] | None = None) -> JSON:
    return {
        "renderer": renderer,
        "questionnaire": q,
        "response": response,
        "lang": q["language"],
        "steps": steps,
    }


def jobs() -> dict[str, JSON]:
    out: dict[str, JSON] = {}
    for folder in EXAMPLES:
        q, qr = example(folder)
        out[f"lforms:{folder.name}"] = job("lforms", q, response=qr)
    nb = build_questionnaire("nb")
    out["lforms:yes"] = job("lforms", nb, steps=[YES])
    out["lforms:no"] = job("lforms", nb, steps=[NO])
    for lang in LANGS:
        out[f"refero:{lang}"] = job("refero", for_renderer(build_questionnaire(lang), "refero"))
    refero_nb = for_renderer(nb, "refero")
    out["refero:unadapted"] = job("refero", nb)
    out["refero:yes"] = job("refero", refero_nb, steps=[YES])
    out["refero:no"] = job("refero", refero_nb, steps=[NO])
    out["refero:channels"] = job(
        "refero",
        refero_nb,
        steps=[YES, choose(Link.SAFE_CHANNELS, "sms"), choose(Link.SAFE_CHANNELS, "e-post")],
    )
    return out


@pytest.fixture(scope="module")
def seen(tmp_path_factory: pytest.TempPathFactory) -> dict[str, JSON]:
    named = jobs()
    results = render(list(named.values()), tmp_path_factory.mktemp("renderers"))
    return dict(zip(named, results, strict=True))


def required_groups(q: JSON) -> list[JSON]:
    """The group items marked ``required`` (only the published 1.0.0 forms have them)."""
    out: list[JSON] = []

    def walk(items: list[JSON]) -> None:
        for it in items:
            if it["type"] == "group" and it.get("required") is True:
                out.append(it)
            walk(it.get("item", []))

    walk(q["item"])
    return out


def always_shown(q: JSON) -> list[JSON]:
    """The items a blank form shows whatever is answered (no enableWhen on them or their parents)."""
    out: list[JSON] = []

    def walk(items: list[JSON]) -> None:
        for it in items:
            if "enableWhen" not in it:
                out.append(it)
                walk(it.get("item", []))

    walk(q["item"])
    return out


def answers_of(qr: JSON, link_id: str) -> list[JSON]:
    found: list[JSON] = []

    def walk(items: list[JSON]) -> None:
        for it in items:
            if it.get("linkId") == link_id:
                found.extend(it.get("answer", []))
            walk(it.get("item", []))
            for a in it.get("answer", []):
                walk(a.get("item", []))

    walk(qr.get("item", []))
    return found


def answer_values(qr: JSON) -> dict[str, list[str]]:
    """Every answer value by linkId (codings as system|code), sorted: what a renderer must keep of a response."""
    out: dict[str, list[str]] = {}

    def walk(items: list[JSON]) -> None:
        for it in items:
            for a in it.get("answer", []):
                key, value = next((k, v) for k, v in a.items() if k.startswith("value"))
                shown = f"{value['system']}|{value['code']}" if key == "valueCoding" else json.dumps(value)
                out.setdefault(it["linkId"], []).append(shown)
                walk(a.get("item", []))
            walk(it.get("item", []))

    walk(qr.get("item", []))
    return {k: sorted(v) for k, v in out.items()}


def codes(answers: list[JSON]) -> set[str]:
    return {a["valueCoding"]["code"] for a in answers if "valueCoding" in a}


# ---- every renderer: offline and quiet


def test_every_job_ran_offline_with_no_console_errors(seen: dict[str, JSON]) -> None:
    assert {name: r["blockedRequests"] for name, r in seen.items() if r["blockedRequests"]} == {}
    assert {name: r["consoleErrors"] for name, r in seen.items() if r["consoleErrors"]} == {}
    assert all(r["requests"] > 0 for r in seen.values())  # the page and its files came from the local server


# ---- LHC-Forms


@pytest.mark.parametrize("folder", EXAMPLES, ids=lambda p: p.name)
def test_lhc_forms_finds_each_complete_example_response_valid(seen: dict[str, JSON], folder: Path) -> None:
    q, _ = example(folder)
    validity = seen[f"lforms:{folder.name}"]["validity"] or []
    if q["version"] in FROZEN_VERSIONS:
        # The published 1.0.0 forms are what they are: they mark their sections ``required`` on the group items,
        # and LHC-Forms reports each such group as missing a value although its questions are answered. Only that
        # is tolerated there; 1.1.0 and later mark no group required (fhir_safetyplan.sections enforces them).
        groups = {g["text"] for g in required_groups(q)}
        assert groups, "a frozen form without required groups needs no exception here"
        assert set(validity) <= {f"{text} requires a value" for text in groups}  # (the plan's only if shown)
    else:
        assert validity == []


@pytest.mark.parametrize("folder", EXAMPLES, ids=lambda p: p.name)
def test_lhc_forms_keeps_every_answer_of_each_example(seen: dict[str, JSON], folder: Path) -> None:
    _, qr = example(folder)
    assert answer_values(seen[f"lforms:{folder.name}"]["response"]) == answer_values(qr)


@pytest.mark.parametrize("folder", EXAMPLES, ids=lambda p: p.name)
def test_lhc_forms_shows_the_item_texts_in_the_form_language(seen: dict[str, JSON], folder: Path) -> None:
    q, _ = example(folder)
    text = seen[f"lforms:{folder.name}"]["text"]
    shown = always_shown(q)
    assert [it["linkId"] for it in shown if it["text"] not in text] == []
    others = [build_questionnaire(lang) for lang in LANGS if lang != q["language"]]
    foreign = {
        t
        for other in others
        for it in always_shown(other)
        if len(t := it["text"]) > 12 and t not in {s["text"] for s in shown}
    }
    assert foreign, "the languages must differ somewhere for this test to mean anything"
    assert sorted(t for t in foreign if t in text) == []


def test_the_examples_cover_all_three_languages() -> None:
    assert {example(folder)[0]["language"] for folder in EXAMPLES} == set(LANGS)


def plan_and_refusal_texts() -> tuple[str, str]:
    t = load().text
    return t("plan", "checklist").get("nb"), t("conversation", "refusal-note").get("nb")


@pytest.mark.parametrize("renderer", ["lforms", "refero"])
def test_involvement_yes_shows_the_plan_and_not_the_refusal(seen: dict[str, JSON], renderer: str) -> None:
    plan, refusal = plan_and_refusal_texts()
    text = seen[f"{renderer}:yes"]["text"]
    assert plan in text and refusal not in text


@pytest.mark.parametrize("renderer", ["lforms", "refero"])
def test_a_refusal_shows_the_refusal_items_and_not_the_plan(seen: dict[str, JSON], renderer: str) -> None:
    plan, refusal = plan_and_refusal_texts()
    text = seen[f"{renderer}:no"]["text"]
    assert refusal in text and plan not in text


def test_a_blank_form_hides_both_the_plan_and_the_refusal(seen: dict[str, JSON]) -> None:
    plan, refusal = plan_and_refusal_texts()
    text = seen["refero:nb"]["text"]
    assert plan not in text and refusal not in text


# ---- Helsenorge Refero


@pytest.mark.parametrize("lang", LANGS)
def test_refero_shows_one_list_per_multi_select_question(seen: dict[str, JSON], lang: str) -> None:
    channels = len(load().options("channels"))
    result = seen[f"refero:{lang}"]
    assert {link: result["checkboxLists"].get(link) for link in MULTI_SELECT} == {
        link: [channels] for link in MULTI_SELECT
    }
    assert not set(MULTI_SELECT) & set(result["repeatButtons"])


@pytest.mark.parametrize("lang", LANGS)
def test_refero_shows_the_item_texts_in_the_form_language(seen: dict[str, JSON], lang: str) -> None:
    q = build_questionnaire(lang)
    text = seen[f"refero:{lang}"]["text"]
    assert [it["linkId"] for it in always_shown(q) if it["text"] not in text] == []


def test_refero_offers_to_copy_a_check_box_list_marked_repeats(seen: dict[str, JSON]) -> None:
    # Why the form is adapted for Refero: given the definition as is, it offers "add another" on each list.
    assert set(MULTI_SELECT) <= set(seen["refero:unadapted"]["repeatButtons"])


def test_refero_collects_several_channels_in_one_item(seen: dict[str, JSON]) -> None:
    held = seen["refero:channels"]["response"]
    assert [codes(answers_of(held, Link.SAFE_CHANNELS))] == [{"sms", "e-post"}]
    assert len([it for it in _items(held) if it.get("linkId") == Link.SAFE_CHANNELS]) == 1


def _items(qr: JSON) -> list[JSON]:
    out: list[JSON] = []

    def walk(items: list[JSON]) -> None:
        for it in items:
            out.append(it)
            walk(it.get("item", []))

    walk(qr.get("item", []))
    return out


def test_what_refero_sends_is_valid_against_the_published_questionnaire(seen: dict[str, JSON]) -> None:
    held = seen["refero:channels"]["response"]
    outcome = validate_response(held, build_questionnaire("nb"))
    about_channels = [i for i in outcome["issue"] if Link.SAFE_CHANNELS in i.get("diagnostics", "")]
    assert about_channels == []


def test_lhc_forms_accepts_the_channels_refero_collected(seen: dict[str, JSON], tmp_path: Path) -> None:
    held = seen["refero:channels"]["response"]
    q = build_questionnaire("nb")
    qr = {**held, "questionnaire": f"{q['url']}|{q['version']}"}
    [result] = render([job("lforms", q, response=qr)], tmp_path)
    assert result["consoleErrors"] == [] and result["blockedRequests"] == []
    assert codes(answers_of(result["response"], Link.SAFE_CHANNELS)) == {"sms", "e-post"}
    assert result["controls"][Link.SAFE_CHANNELS] == {
        "checkboxes": len(load().options("channels")),
        "radios": 0,
    }


def test_refero_sends_no_boolean_answers_because_yes_no_questions_are_coded(seen: dict[str, JSON]) -> None:
    # Refero answers an untouched boolean with valueBoolean false; content 1.1.0 codes every yes/no question.
    assert [it["linkId"] for it in _items(build_questionnaire("nb")) if it["type"] == "boolean"] == []
    for name in ("refero:yes", "refero:no", "refero:channels"):
        held = seen[name]["response"]
        assert held is not None and "valueBoolean" not in json.dumps(held), name
