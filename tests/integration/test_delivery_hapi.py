"""``safetyplan push`` and ``show`` against the real HAPI FHIR server: what is read back is what was sent,
re-sending never duplicates, and hostile input is stopped by us before anything is sent.

Every test makes its own plan: a fresh submission id and a fresh synthetic identity number
(:func:`fresh_plan`), so tests are independent on the shared server.
"""

from __future__ import annotations

import copy
import json
import random
import xml.etree.ElementTree as ET
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from fhir_safetyplan.cli import main
from fhir_safetyplan.identifiers import synthetic_fnr

from .conftest import Fhir, fresh_identifier

JSON = dict[str, Any]
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
FNR = "urn:oid:2.16.578.1.12.4.1.4.1"
SUBMISSION_SYSTEM = "https://safetyplan.example/fhir/NamingSystem/submission"
WRITTEN = ("QuestionnaireResponse", "CarePlan", "Flag", "DocumentReference", "Provenance")
SERVER_META = ("versionId", "lastUpdated", "source")


def fresh_fnr() -> str:
    """A synthetic (Tenor-style) FNR no other test uses: random birth date and individual number."""
    rng = random.SystemRandom()
    while True:
        born = date(rng.randint(1940, 2005), rng.randint(1, 12), rng.randint(1, 28))
        try:
            return synthetic_fnr(born, rng.randint(0, 499))
        except ValueError:  # no valid check digit for this individual number: draw again
            continue


def fresh_plan(example: str, fnr: str | None = None) -> JSON:
    """An example's answers document with a fresh submission id and a fresh synthetic patient."""
    data: JSON = json.loads((EXAMPLES / example / "answers.json").read_text(encoding="utf-8"))
    data["submissionId"] = fresh_identifier("sub")
    data["patient"] = {"fnr": fnr or fresh_fnr()}
    return data


def write(tmp_path: Path, data: JSON, name: str = "plan.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return path


def push(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, Any, str]:
    """Run ``safetyplan push ...``; (exit code, stdout parsed as JSON or None, stderr)."""
    capsys.readouterr()
    code = main(["push", *args])
    out, err = capsys.readouterr()
    try:
        parsed = json.loads(out) if out.strip() else None
    except ValueError:
        parsed = out
    return code, parsed, err


def _canonical_xhtml(div: str) -> Any:
    """Attribute order and namespace spelling do not matter in XHTML; the tree does."""

    def walk(el: ET.Element) -> Any:
        return (el.tag, sorted(el.attrib.items()), (el.text or ""), [walk(c) for c in el], (el.tail or ""))

    return walk(ET.fromstring(div))


def comparable(resource: JSON) -> JSON:
    """A resource without what the server adds (meta.versionId/lastUpdated/source), labels as a set."""
    out = copy.deepcopy(resource)
    meta = out.get("meta") or {}
    for key in SERVER_META:
        meta.pop(key, None)
    if "security" in meta:
        meta["security"] = sorted(meta["security"], key=lambda c: (c["system"], c["code"]))
    if not meta:
        out.pop("meta", None)
    if "div" in (out.get("text") or {}):
        out["text"]["div"] = _canonical_xhtml(out["text"]["div"])
    return out


def expected_on_server(bundle: JSON, summary: JSON) -> dict[str, JSON]:
    """What the server should hold for each entry: the sent resource with urn:uuid (and conditional)
    references replaced by the server's literal references, keyed by ``Type/id``."""
    locations = {
        e["fullUrl"]: f"{r['resourceType']}/{r['id']}"
        for e, r in zip(bundle["entry"], summary["entries"], strict=True)
    }
    patient = next((v for v in locations.values() if v.startswith("Patient/")), None)

    def rewrite(node: Any) -> Any:
        if isinstance(node, dict):
            new = {k: rewrite(v) for k, v in node.items()}
            ref = new.get("reference")
            if isinstance(ref, str):
                if ref in locations:
                    new["reference"] = locations[ref]
                elif ref.startswith("Patient?") and patient:
                    new["reference"] = patient
            return new
        if isinstance(node, list):
            return [rewrite(v) for v in node]
        return node

    return {
        locations[e["fullUrl"]]: rewrite(e["resource"])
        for e in bundle["entry"]
        if e["resource"]["resourceType"] != "Patient"
    }


@pytest.mark.parametrize(
    "example",
    ["01-alt-pa-plass", "02-flere-mangler", "04-avslag", "05-streng-kontakt", "06-nynorsk", "07-english"],
)
def test_pushed_plan_reads_back_as_sent_including_security_labels(
    example: str, hapi_base_url: str, fhir: Fhir, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from fhir_safetyplan import pipeline
    from fhir_safetyplan.document import DocumentContext

    data = fresh_plan(example)
    path = write(tmp_path, data)
    sent = pipeline.build_bundle(data, DocumentContext(create_patient=True))

    code, summary, err = push(
        capsys, str(path), "--server", hapi_base_url, "--create-patient", "--outbox", str(tmp_path / "o.db")
    )
    assert code == 0, err
    assert summary["status"] == "delivered"
    assert summary["submissionId"] == data["submissionId"]
    types = [e["resourceType"] for e in summary["entries"]]
    assert types == [e["resource"]["resourceType"] for e in sent["entry"]]
    if example == "04-avslag":
        assert "CarePlan" not in types  # a refusal makes no plan

    for ref, expected in expected_on_server(sent, summary).items():
        stored = fhir.get(ref).json()
        assert comparable(stored) == comparable(expected), ref
        # The labels arrive as sent (HAPI keeps them; order may differ).
        labels = {(s["system"], s["code"]) for s in stored["meta"]["security"]}
        assert {(s["system"], s["code"]) for s in expected["meta"]["security"]} == labels


def test_show_prints_the_plan_in_the_form_language_and_json_gives_the_stored_resources(
    hapi_base_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = fresh_plan("06-nynorsk")
    path = write(tmp_path, data)
    code, summary, err = push(capsys, str(path), "--server", hapi_base_url, "--create-patient", "--no-outbox")
    assert code == 0, err
    identifier = f"{FNR}|{data['patient']['fnr']}"

    assert main(["show", "--server", hapi_base_url, "--patient-identifier", identifier]) == 0
    text = capsys.readouterr().out
    assert text.startswith("Tryggleiksplan – 2026-11-20")
    assert "På plass:" in text and "Har tilgang på andre viktige telefonnummer" in text
    assert "Ny time om to veker" in text  # an agreed action, as written
    from fhir_safetyplan.content import load

    assert (
        f"Trygg kontakt:\n  {load().text('safe-contact', 'flag').get('nn')}" in text
    )  # wording: content.toml
    assert data["patient"]["fnr"] not in text  # the identity number is not printed

    patient = next(
        e["location"].split("/_history")[0] for e in summary["entries"] if e["resourceType"] == "Patient"
    )
    assert main(["show", "--server", hapi_base_url, "--patient", patient, "--lang", "en", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    got = sorted(e["resource"]["resourceType"] for e in shown["entry"])
    assert got == sorted(WRITTEN)
    assert all(e["resource"]["identifier"] for e in shown["entry"] if e["resource"]["resourceType"] == "Flag")


def test_show_reports_a_patient_without_plan_with_exit_1(
    hapi_base_url: str, fhir: Fhir, capsys: pytest.CaptureFixture[str]
) -> None:
    (patient,) = fhir.upload(
        {"resourceType": "Patient", "identifier": [{"system": FNR, "value": fresh_fnr()}]}
    )
    assert main(["show", "--server", hapi_base_url, "--patient", f"Patient/{patient['id']}"]) == 1
    outcome = json.loads(capsys.readouterr().out)
    assert outcome["issue"][0]["code"] == "not-found"


def test_conditional_subject_reference_resolves_to_the_existing_patient(
    hapi_base_url: str, fhir: Fhir, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fnr = fresh_fnr()
    (patient,) = fhir.upload({"resourceType": "Patient", "identifier": [{"system": FNR, "value": fnr}]})
    path = write(tmp_path, fresh_plan("01-alt-pa-plass", fnr))
    code, summary, err = push(capsys, str(path), "--server", hapi_base_url, "--no-outbox")
    assert code == 0, err
    assert "Patient" not in [e["resourceType"] for e in summary["entries"]]  # no Patient written
    for entry in summary["entries"]:
        stored = fhir.get(f"{entry['resourceType']}/{entry['id']}").json()
        if "subject" in stored:
            assert stored["subject"]["reference"] == f"Patient/{patient['id']}"


def test_pushing_the_same_submission_three_times_leaves_one_of_each_with_no_new_versions(
    hapi_base_url: str, fhir: Fhir, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = fresh_plan("02-flere-mangler")
    path = write(tmp_path, data)
    outbox = str(tmp_path / "outbox.sqlite")
    runs = [
        push(capsys, str(path), "--server", hapi_base_url, "--create-patient", "--outbox", outbox)
        for _ in range(3)
    ]
    assert [code for code, _, _ in runs] == [0, 0, 0], [err for _, _, err in runs]
    first, *again = [summary for _, summary, _ in runs]
    assert {e["status"] for e in first["entries"]} == {"201 Created"}
    for summary in again:
        # HAPI answers 200 and keeps version 1: an update with identical content is not a new version.
        assert {e["status"] for e in summary["entries"]} == {"200 OK"}
        assert [e["location"] for e in summary["entries"]] == [e["location"] for e in first["entries"]]

    token = f"{SUBMISSION_SYSTEM}|{data['submissionId']}"
    for rtype in ("QuestionnaireResponse", "CarePlan", "Flag"):
        assert len(fhir.search(rtype, identifier=token)) == 1, rtype
    assert len(fhir.search("DocumentReference", identifier=token)) == 1
    assert len(fhir.search("Patient", identifier=f"{FNR}|{data['patient']['fnr']}")) == 1
    for entry in first["entries"]:
        ref = f"{entry['resourceType']}/{entry['id']}"
        history = fhir.get(f"{ref}/_history").json()
        assert history.get("total", len(history.get("entry", []))) == 1, ref
        assert fhir.get(ref).json()["meta"]["versionId"] == "1"
    # The outbox keeps one entry for the submission, delivered.
    capsys.readouterr()
    assert main(["outbox", "list", "--outbox", outbox]) == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [(x["submissionId"], x["status"]) for x in lines] == [(data["submissionId"], "delivered")]


def _hostile(data: JSON, kind: str) -> JSON:
    data = copy.deepcopy(data)
    if kind == "script":
        data["answers"]["existingMeasures"] = "Bor hos søster <script>alert(1)</script>"
    elif kind == "control-character":
        data["answers"]["existingMeasures"] = "Bor hos søster \x07"
    elif kind == "bad-reference":
        data["patient"] = {"reference": "Patient/../../etc"}
    return data


@pytest.mark.parametrize("kind", ["script", "control-character", "bad-reference"])
def test_hostile_input_is_stopped_by_us_first_and_nothing_reaches_the_server(
    kind: str, hapi_base_url: str, fhir: Fhir, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = _hostile(fresh_plan("01-alt-pa-plass"), kind)
    outbox = tmp_path / "outbox.sqlite"
    code, outcome, err = push(
        capsys,
        str(write(tmp_path, data)),
        "--server",
        hapi_base_url,
        "--create-patient",
        "--outbox",
        str(outbox),
    )
    assert code == 1
    assert outcome["resourceType"] == "OperationOutcome"
    assert any(i["severity"] == "error" for i in outcome["issue"])
    assert "Traceback" not in err
    token = f"{SUBMISSION_SYSTEM}|{data['submissionId']}"
    for rtype in ("QuestionnaireResponse", "Flag", "DocumentReference"):
        assert fhir.search(rtype, identifier=token) == []
    assert not outbox.exists()  # never even queued


def test_hapi_itself_rejects_the_bad_reference_we_stop(fhir: Fhir) -> None:
    """The server-side truth behind the bad-reference case: HAPI refuses it (422, HAPI-0931)."""
    flag = {
        "resourceType": "Flag",
        "status": "active",
        "code": {"text": "x"},
        "subject": {"reference": "Patient/../../etc"},
    }
    response = fhir.post("Flag", flag)
    assert response.status_code in (400, 422)
    assert "HAPI-0931" in response.text
