"""Word lists live only in content.toml: the answers document's words, checklist keys and codes come from it.

The lists below are an independent specification (what the guidance and our CodeSystems say today); the test
checks the content against them and that no module re-types them. Content *keys* (``option("answers", "no")``)
are how code addresses the content and are not word lists: the English option names are therefore not
searched for, only words that can mean nothing else.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import get_args

from fhir_safetyplan import answers, answers_v110
from fhir_safetyplan.content import load
from fhir_safetyplan.questionnaire import ANSWER_WORDS

PACKAGE = Path(__file__).resolve().parent.parent / "fhir_safetyplan"
CHECKLIST = ("romningsplan", "politi", "telefonnumre", "krisesenter", "penger", "nokler", "kode", "naboer")
CHECKLIST_KEYS = (*CHECKLIST, "vapen", "bag")
NORWEGIAN_WORDS = ("ja", "nei", "ikke-aktuelt", "vil-ikke-svare", "ikke-tatt-opp")
CODES = (
    *("telefonsamtale", "talemelding", "helsenorge", "kontaktperson", "hjemmebesok"),  # channels
    *("sendt", "skal-sendes", "droftet-anonymt", "vurdert-ikke-grunnlag", "ingen-barn"),  # duty to inform
    *("danger-assessment", "sara-sv", "patriark", "svaert-hoy", "moderat"),  # risk instruments and levels
    *("politiet-varslet", "avverget-annet", "kvalifisert-tolk", "tolk-mangler", "bare-samtale"),
)


def test_the_answers_document_takes_its_words_and_keys_from_the_content() -> None:
    assert answers.CHECKLIST_KEYS == CHECKLIST_KEYS == tuple(ci.key for ci in load().checklist)
    assert set(get_args(answers.Word)) == {
        *("yes", "no", "not-relevant", "declined", "ja", "nei", "ikke-aktuelt", "vil-ikke-svare"),
        *("na", "asked-declined"),
    }
    assert set(get_args(answers_v110.Word)) == {*get_args(answers.Word), "not-asked", "ikke-tatt-opp"}
    assert set(get_args(answers.YesNo)) == {"yes", "no", "ja", "nei"}
    assert "ingen-barn" in get_args(answers.Duty) and "ingen-barn" not in get_args(answers_v110.Duty)
    assert get_args(answers.Channel) == tuple(o.code for o in load().options("channels"))
    assert {w: ANSWER_WORDS[w] for w in ("ja", "nei", "vil-ikke-svare", "ikke-tatt-opp")} == {
        "ja": "Y",
        "nei": "N",
        "vil-ikke-svare": "asked-declined",
        "ikke-tatt-opp": "not-asked",
    }


def test_only_the_crisis_centre_item_names_the_local_crisis_centre() -> None:
    assert [ci.key for ci in load().checklist if ci.names_crisis_centre] == ["krisesenter"]


def _string_constants(tree: ast.AST) -> set[str]:
    return {n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)}


def test_no_module_re_types_checklist_keys_answer_words_or_codes() -> None:
    searched = {*CHECKLIST_KEYS, *NORWEGIAN_WORDS, *CODES}
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        hits = sorted(_string_constants(ast.parse(path.read_text(encoding="utf-8"))) & searched)
        if hits:
            found[path.relative_to(PACKAGE).as_posix()] = hits
    assert found == {}
