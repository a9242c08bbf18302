"""Reading a plan back (``show.read_plan`` with a scripted server) and printing it (``show.render``)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import responses
from _searches import searchset

from fhir_safetyplan import codes, show
from fhir_safetyplan.cli import main
from fhir_safetyplan.client import FhirClient
from fhir_safetyplan.content import load
from fhir_safetyplan.errors import InputError

JSON = dict[str, Any]
BASE = "http://fhir.test/fhir"
EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
PATIENT = "Patient/p1"


def stored(example: str, updated: str = "2026-11-27T10:00:00Z") -> list[JSON]:
    """An example bundle's resources as a server would return them (literal references, server meta)."""
    bundle = json.loads((EXAMPLES / example / "bundle.json").read_text(encoding="utf-8"))
    text = json.dumps(bundle)
    for entry in bundle["entry"]:  # urn:uuid references become literal ones, as the server rewrites them
        r = entry["resource"]
        text = text.replace(entry["fullUrl"], f"{r['resourceType']}/{r['id']}")
    out = []
    for entry in json.loads(text)["entry"]:
        r = entry["resource"]
        if "subject" in r:
            r["subject"] = {"reference": PATIENT}
        r["meta"] = {**r.get("meta", {}), "versionId": "1", "lastUpdated": updated}
        out.append(r)
    return out


def plan_of(example: str) -> show.SafetyPlan:
    by_type = {r["resourceType"]: r for r in stored(example)}
    ident = by_type["DocumentReference"]["masterIdentifier"]
    return show.SafetyPlan(
        patient=PATIENT,
        submission=ident,
        questionnaire_response=by_type.get("QuestionnaireResponse"),
        care_plan=by_type.get("CarePlan"),
        flag=by_type.get("Flag"),
        document_reference=by_type.get("DocumentReference"),
        provenance=tuple(r for r in by_type.values() if r["resourceType"] == "Provenance"),
    )


def test_render_shows_in_place_agreed_help_safe_contact_and_the_note_in_bokmal() -> None:
    text = show.render(plan_of("02-flere-mangler"))
    assert text.startswith("Sikkerhetsplan – 2026-11-20\n===")
    sections = ["På plass:", "Avtalt hjelp:", "Trygg kontakt:", "Journalnotat:"]
    positions = [text.index(s) for s in sections]
    assert positions == sorted(positions)
    assert "Lage en rømningsplan sammen" in text  # help for a point not in place
    flag_text = load().text("safe-contact", "flag").get("nb")  # the wording comes from content.toml
    assert f"Trygg kontakt:\n  {flag_text} Kan kontaktes:" in text
    note = plan_of("02-flere-mangler").note_text
    assert note and all(line in text for line in note.splitlines())


def test_render_defaults_to_the_form_language_nynorsk() -> None:
    plan = plan_of("06-nynorsk")
    assert plan.language == "nn"
    text = show.render(plan)
    assert text.startswith("Tryggleiksplan – ")
    assert "Har tilgang på andre viktige telefonnummer" in text
    assert "Snakke om korleis pasienten trygt kan setje av pengar" in text
    assert "Journalnotat:\n" in text  # the note is in the language asked for: no language marker


def test_render_in_another_language_translates_our_texts_and_keeps_free_text_as_written() -> None:
    text = show.render(plan_of("06-nynorsk"), "en")
    assert text.startswith("Safety plan – ")
    assert "In place:" in text and "Has access to other important phone numbers" in text
    assert "Ny time om to veker" in text  # an agreed action is free text: printed as written
    assert "Clinical note (nn):" in text  # the stored note stays in the form's language, and says so


def test_render_of_a_refusal_says_no_measures_are_planned() -> None:
    plan = plan_of("04-avslag")
    assert plan.care_plan is None
    text = show.render(plan, "en")
    assert "The patient does not want involvement; no measures are planned." in text
    assert "In place:\n  (none)" in text


def test_render_without_flag_or_note_says_none() -> None:
    plan = plan_of("01-alt-pa-plass")
    bare = show.SafetyPlan(patient=PATIENT, submission=plan.submission, care_plan=plan.care_plan)
    text = show.render(bare, "nb")
    assert "Trygg kontakt:\n  (ingen)" in text
    assert "Journalnotat:\n  (ingen)" in text
    assert bare.language == "nb" and bare.note_text is None


def _search_callback(resources: list[JSON]) -> Any:
    def callback(request: Any) -> tuple[int, dict[str, str], str]:
        parts = urlsplit(request.url)
        rtype = parts.path.rsplit("/", 1)[-1]
        params = parse_qs(parts.query)
        found = [r for r in resources if r["resourceType"] == rtype]
        if "subject" in params:
            found = [r for r in found if r.get("subject", {}).get("reference") == params["subject"][0]]
            assert params["_sort"] == ["-_lastUpdated"]
        if "target" in params:
            targets = set(params["target"][0].split(","))
            found = [r for r in found if targets & {t["reference"] for t in r["target"]}]
        if "identifier" in params:
            found = [r for r in found if r["resourceType"] == "Patient"]
        found.sort(
            key=lambda r: str(r["meta"].get("lastUpdated", "")) if isinstance(r.get("meta"), dict) else "",
            reverse=True,
        )
        return 200, {"Content-Type": "application/fhir+json"}, json.dumps(searchset(*found))

    return callback


def _serve(resources: list[JSON]) -> None:
    responses.add_callback(responses.GET, re.compile(rf"{BASE}/\w+"), callback=_search_callback(resources))


@responses.activate
def test_read_plan_picks_the_newest_submission_and_gathers_its_resources() -> None:
    older = stored("01-alt-pa-plass", "2026-11-20T10:00:00Z")
    newer = stored("02-flere-mangler", "2026-11-27T10:00:00Z")
    _serve(older + newer)
    with FhirClient(BASE) as client:
        plan = show.read_plan(client, PATIENT)
    assert plan.submission["value"] == "example-02-flere-mangler"
    assert [r["resourceType"] for r in plan.resources()] == [
        "QuestionnaireResponse",
        "CarePlan",
        "Flag",
        "DocumentReference",
        "Provenance",
    ]
    assert all(
        show._submission_of(r) == plan.submission
        for r in plan.resources()
        if r["resourceType"] != "Provenance"
    )


def _revised_history() -> list[JSON]:
    """An earlier plan (01) superseded by a later one (02): retiring the earlier bumped its lastUpdated."""
    earlier = stored("01-alt-pa-plass", "2026-11-27T10:05:00Z")
    for r in earlier:
        if r["resourceType"] == "QuestionnaireResponse":
            r["authored"] = "2026-11-01T10:00:00+01:00"
        if r["resourceType"] in ("CarePlan", "Flag"):
            r["status"] = "revoked" if r["resourceType"] == "CarePlan" else "inactive"
    later = stored("02-flere-mangler", "2026-11-27T10:00:00Z")
    old_cp = next(r for r in earlier if r["resourceType"] == "CarePlan")
    next(r for r in later if r["resourceType"] == "CarePlan")["replaces"] = [
        {"reference": f"CarePlan/{old_cp['id']}"}
    ]
    return earlier + later


@responses.activate
def test_read_plan_takes_the_active_plan_not_the_newest_last_updated_and_lists_the_earlier_ones() -> None:
    _serve(_revised_history())
    with FhirClient(BASE) as client:
        plan = show.read_plan(client, PATIENT)
    assert plan.submission["value"] == "example-02-flere-mangler" and plan.current is None
    assert plan.earlier == (("2026-11-01T10:00:00+01:00", "example-01-alt-pa-plass"),)
    earlier = load().text("revision", field="earlier").get("nb")
    assert f"{earlier}: 01.11.2026\n" in show.render(plan)


@responses.activate
def test_an_earlier_plan_shown_by_submission_says_it_was_replaced_and_when_the_current_one_is_from() -> None:
    _serve(_revised_history())
    with FhirClient(BASE) as client:
        plan = show.read_plan(client, PATIENT, submission="example-01-alt-pa-plass")
    text = show.render(plan)
    reason = load().text("revision", field="status-reason").get("nb")
    current = load().text("revision", field="current").get("nb")
    assert f"{reason}. {current}: 20.11.2026\n" in text
    assert load().text("revision", field="earlier").get("nb") not in text


@responses.activate
def test_read_plan_of_a_named_submission_returns_that_one() -> None:
    _serve(stored("01-alt-pa-plass", "2026-11-20T10:00:00Z") + stored("02-flere-mangler"))
    with FhirClient(BASE) as client:
        plan = show.read_plan(client, "p1", submission="example-01-alt-pa-plass")
    assert plan.submission["value"] == "example-01-alt-pa-plass"


@responses.activate
def test_read_plan_of_a_patient_without_plan_is_not_found() -> None:
    _serve([])
    with FhirClient(BASE) as client, pytest.raises(show.PlanNotFound) as info:
        show.read_plan(client, PATIENT)
    assert info.value.exit_code == 1
    assert info.value.outcome["issue"][0]["code"] == "not-found"


@responses.activate
@pytest.mark.parametrize(("count", "code"), [(0, "not-found"), (2, "multiple-matches")])
def test_a_patient_identifier_must_match_exactly_one_patient(count: int, code: str) -> None:
    _serve([{"resourceType": "Patient", "id": f"p{i}"} for i in range(count)])
    with FhirClient(BASE) as client, pytest.raises(show.PlanNotFound) as info:
        show.resolve_patient(client, "urn:oid:2.16.578.1.12.4.1.4.1|15838540063")
    assert info.value.outcome["issue"][0]["code"] == code
    assert "15838540063" not in json.dumps(info.value.outcome)


@pytest.mark.parametrize("bad", ["no-bar", "|value", "system|"])
def test_a_patient_identifier_without_system_and_value_is_refused(bad: str) -> None:
    with pytest.raises(InputError):
        show.parse_token(bad)


@pytest.mark.parametrize("bad", ["Patient/", "Patient/../x", "Patient/a b", "x" * 70])
def test_a_malformed_patient_reference_is_refused(bad: str) -> None:
    with pytest.raises(InputError):
        show.normalise_patient(bad)


@responses.activate
def test_show_command_prints_text_or_json(capsys: pytest.CaptureFixture[str]) -> None:
    _serve(stored("07-english"))
    assert main(["show", "--server", BASE, "--patient", PATIENT]) == 0
    assert capsys.readouterr().out.startswith("Safety plan – ")
    assert main(["show", "--server", BASE, "--patient", "p1", "--json"]) == 0
    bundle = json.loads(capsys.readouterr().out)
    assert bundle["type"] == "collection" and len(bundle["entry"]) == 5


@responses.activate
def test_show_command_without_plan_exits_1_with_an_outcome(capsys: pytest.CaptureFixture[str]) -> None:
    _serve([])
    assert main(["show", "--server", BASE, "--patient", PATIENT]) == 1
    out, err = capsys.readouterr()
    assert json.loads(out)["resourceType"] == "OperationOutcome"
    assert "Traceback" not in err


SUB = {"system": "https://safetyplan.example/fhir/NamingSystem/submission", "value": "s1"}


@pytest.mark.parametrize(
    "odd",
    [
        {"resourceType": "QuestionnaireResponse", "id": "q", "identifier": SUB, "item": {"linkId": "x"}},
        {"resourceType": "QuestionnaireResponse", "id": "q", "identifier": SUB, "item": [{"linkId": "x", "answer": "y"}]},
        {"resourceType": "QuestionnaireResponse", "id": "q", "identifier": SUB, "item": [{"answer": [{"valueBoolean": True}]}]},
        {"resourceType": "CarePlan", "id": "c", "identifier": [SUB], "activity": ["x"]},
        {"resourceType": "CarePlan", "id": "c", "identifier": [SUB], "meta": "x"},
        {"resourceType": "Flag", "id": "f", "identifier": [SUB], "code": "x"},
        {"resourceType": "DocumentReference", "id": "d", "identifier": [SUB], "content": [{"attachment": "x"}]},
    ],
)  # fmt: skip
@responses.activate
def test_show_renders_odd_resources_from_the_server_without_failing(
    odd: JSON, capsys: pytest.CaptureFixture[str]
) -> None:
    _serve([{**odd, "subject": {"reference": PATIENT}}])
    assert main(["show", "--server", BASE, "--patient", PATIENT]) == 0
    assert "Traceback" not in capsys.readouterr().err


@responses.activate
def test_a_searchset_with_entries_that_are_not_objects_is_a_server_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    responses.get(
        re.compile(rf"{BASE}/\w+"), json={"resourceType": "Bundle", "type": "searchset", "entry": ["x"]}
    )
    assert main(["show", "--server", BASE, "--patient", PATIENT]) == 5
    assert "Traceback" not in capsys.readouterr().err


def test_show_never_sends_a_real_looking_identity_number_to_a_public_server(
    capsys: pytest.CaptureFixture[str],
) -> None:
    real = "01019010046"  # valid check digits, not a synthetic series
    with responses.RequestsMock() as rsps:  # any request would fail the test
        code = main(
            [
                "show",
                "--server",
                "https://hapi.fhir.org/baseR4",
                "--patient-identifier",
                f"{codes.FNR}|{real}",
            ]
        )
        assert len(rsps.calls) == 0
    assert code == 6
    assert real not in capsys.readouterr().out
