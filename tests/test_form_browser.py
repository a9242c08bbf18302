"""The form page in a real browser: ``safetyplan preview`` and ``/form`` of ``safetyplan serve``, opened in
Debian's headless chromium (npm ``playwright-core``), filled in by clicks, checked.

Every request the page makes is counted, and any to another host than 127.0.0.1 is aborted: LHC-Forms and
everything else must come from this machine. Under ``CI`` these tests never skip (scripts/setup.sh installs
chromium, Node's driver and LHC-Forms).

``SAFETYPLAN_FORM_SCREENSHOTS=docs/img pytest tests/test_form_browser.py -k nb_by_clicks`` renews the
screenshots the README shows.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from _form_browser import NB_STEPS, drive, preview_url, require_browser, serving

from fhir_safetyplan import content, local_hapi
from fhir_safetyplan.questionnaire import shared_questionnaire

SERVICE_TOKEN = "form-browser-test-token-0123456789abcdef"


@pytest.fixture(scope="module")
def preview(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The address ``safetyplan preview`` prints (a one-time token in its fragment)."""
    require_browser()
    log = tmp_path_factory.mktemp("preview") / "stderr.log"
    with serving(["preview", "--port", str(local_hapi.free_port())], log) as printed:
        yield preview_url(printed)


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The base address of ``safetyplan serve`` with one configured token (no upstream)."""
    require_browser()
    port = local_hapi.free_port()
    log = tmp_path_factory.mktemp("serve") / "stderr.log"
    env = {"SAFETYPLAN_SERVICE_TOKENS": SERVICE_TOKEN, "SAFETYPLAN_UPSTREAM": "", "SAFETYPLAN_OUTBOX": ""}
    with serving(["serve", "--port", str(port)], log, env):
        yield f"http://127.0.0.1:{port}"


def _question_text(lang: str, link_id: str) -> str:
    stack = list(shared_questionnaire(lang, None)["item"])
    while stack:
        item = stack.pop()
        if item["linkId"] == link_id:
            return str(item["text"])
        stack.extend(item.get("item", []))
    raise AssertionError(link_id)


def _assert_the_nb_plan(result: dict[str, str | list[str]]) -> None:
    note = result["note"]
    assert isinstance(note, str)
    assert "Kan kontaktes: ved oppmøte hos tjenesten" in note
    assert "Skal ikke kontaktes via: brev (papir eller digital postkasse)" in note
    assert "Trygge tidspunkt: Hverdager 09–14" in note
    assert "Ringe krisesenteret sammen neste uke" in note
    in_place = next(line for line in note.splitlines() if line.startswith("På plass: "))
    assert in_place == "På plass: " + ", ".join(c.label.nb for c in content.load().checklist) + "."
    assert result["activities"] == ["Ringe krisesenteret sammen neste uke"]
    flag = result["flag"]
    assert isinstance(flag, str) and "ved oppmøte hos tjenesten" in flag and "brev" in flag


def test_preview_filled_in_nb_by_clicks_shows_the_journal_note_with_nothing_leaving_the_machine(
    preview: str, tmp_path: Path
) -> None:
    shots = os.environ.get("SAFETYPLAN_FORM_SCREENSHOTS")
    report = drive(preview, NB_STEPS, tmp_path, screenshots=Path(shots).resolve() if shots else tmp_path)
    assert report["consoleErrors"] == []
    assert report["blocked"] == [] and report["requests"] >= 10  # page, LHC-Forms, config, form, check
    assert report["title"] == "Sikkerhetsplan – forhåndsvisning av skjemaet"
    assert report["result"] is not None, report["problemList"]
    _assert_the_nb_plan(report["result"])
    assert report["deliverShown"] is False  # no --server: nothing can be delivered
    assert report["tokenAsked"] is False  # the preview handed its token to the page
    screenshots = Path(shots).resolve() if shots else tmp_path
    assert (screenshots / "form-filled.png").stat().st_size > 10_000
    assert (screenshots / "form-result.png").stat().st_size > 10_000


def test_preview_shows_each_problem_next_to_its_question(preview: str, tmp_path: Path) -> None:
    first = [
        {"choose": ["samtale.type", "Første samtale om sikkerhetsplan"]},
        {"choose": ["samtale.informert", "Ja"]},
    ]
    report = drive(preview, first, tmp_path, first_check=True)
    assert report["blocked"] == []
    # The browser itself reports the check's 422 (the answers break the form's rules); nothing else goes wrong.
    assert all("422" in error for error in report["consoleErrors"]), report["consoleErrors"]
    assert report["result"] is None
    # An empty form: the required groups (content 1.1.0), each shown at its group.
    assert {p["linkId"] for p in report["firstProblems"]["shown"]} == {
        "samtale",
        "innsyn",
        "trygg-kontakt",
        "sarbare",
    }
    # Informed, but no answer on involvement: shown at that question.
    shown = {p["linkId"]: p["text"] for p in report["problems"]}
    assert "samtale.involvering" in shown and "answer it" in shown["samtale.involvering"]
    assert len(report["problemList"]) == len(report["problems"])  # none without its question


@pytest.mark.parametrize("lang", ["nn", "en"])
def test_preview_language_switch_renders_the_form_in_that_language(
    preview: str, tmp_path: Path, lang: str
) -> None:
    report = drive(preview, [{"language": lang}], tmp_path, check=False)
    assert report["consoleErrors"] == [] and report["blocked"] == []
    assert _question_text(lang, "samtale.involvering") in report["questions"]
    assert _question_text("nb", "samtale.involvering") not in report["questions"]


def test_service_form_page_checks_with_the_services_token(service: str, tmp_path: Path) -> None:
    report = drive(f"{service}/form?lang=nb#token={SERVICE_TOKEN}", NB_STEPS, tmp_path)
    assert report["consoleErrors"] == [] and report["blocked"] == []
    assert report["result"] is not None, report["problemList"]
    _assert_the_nb_plan(report["result"])
    assert report["deliverShown"] is False  # the service has no upstream


def test_service_form_page_without_a_token_is_refused_and_asks_for_one(service: str, tmp_path: Path) -> None:
    report = drive(f"{service}/form?lang=nb", NB_STEPS[:2], tmp_path)
    assert report["blocked"] == []
    assert report["result"] is None and report["tokenAsked"] is True
    assert "needs a token" in (report["message"] or "")
    # The browser reports the refused POST itself; nothing else goes wrong.
    assert all("401" in error for error in report["consoleErrors"]), report["consoleErrors"]
