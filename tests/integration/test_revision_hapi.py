"""A plan that lives over time, against the real HAPI FHIR server: each new conversation supersedes the patient's
current plan in the same transaction; one active CarePlan and one active safety Flag remain; resends change no
version; a revision that lost a race writes nothing and is held for a person; other patients are never touched.

Every test has its own synthetic patient (:func:`fresh_fnr`), so tests are independent on the shared server.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
import requests

from fhir_safetyplan import current_plan, pipeline, revise
from fhir_safetyplan.cli import main
from fhir_safetyplan.client import FhirClient
from fhir_safetyplan.content import load
from fhir_safetyplan.delivery.deliver import deliver, flush
from fhir_safetyplan.delivery.outbox import Outbox

from .conftest import Fhir, fresh_identifier
from .test_delivery_hapi import EXAMPLES, FNR, SUBMISSION_SYSTEM, fresh_fnr, push, write
from .test_service_hapi import HEADERS, RunningService, settings
from .test_validate_hapi import errors
from .test_validate_hapi import uploaded as uploaded  # the fixture: our profiles on the server

JSON = dict[str, Any]
DATES = ("2026-11-01T10:00:00+01:00", "2026-11-10T10:00:00+01:00", "2026-11-20T10:00:00+01:00")
CONTACTS = (
    {"safe": ["telefonsamtale"], "unsafe": ["brev"]},
    {"safe": ["brev"], "unsafe": ["telefonsamtale", "sms"]},
    {"safe": ["oppmote"], "unsafe": ["brev", "sms"]},
)


def conversation(fnr: str, authored: str, contact: JSON, example: str = "02-flere-mangler") -> JSON:
    """One conversation with the patient: an answers document with a fresh submission id."""
    data: JSON = json.loads((EXAMPLES / example / "answers.json").read_text(encoding="utf-8"))
    data |= {"submissionId": fresh_identifier("rev"), "authored": authored, "patient": {"fnr": fnr}}
    data["answers"]["safeContact"] = contact
    return data


def ours(fhir: Fhir, rtype: str, fnr: str) -> list[JSON]:
    """This module's resources of one type for the patient."""
    found = fhir.search(rtype, **{"subject:Patient.identifier": f"{FNR}|{fnr}"})
    return [r for r in found if any(i.get("system") == SUBMISSION_SYSTEM for i in identifiers(r))]


def identifiers(resource: JSON) -> list[JSON]:
    master = resource.get("masterIdentifier")
    return [*resource.get("identifier", []), *([master] if master else [])]


def versions(fhir: Fhir, fnr: str) -> dict[str, str]:
    """Type/id → meta.versionId of everything written for the patient."""
    out = {}
    for rtype in ("QuestionnaireResponse", "CarePlan", "Flag", "DocumentReference"):
        for r in fhir.search(rtype, **{"subject:Patient.identifier": f"{FNR}|{fnr}"}):
            out[f"{rtype}/{r['id']}"] = r["meta"]["versionId"]
    if out:  # the Provenances, which have no subject: by their targets
        for r in fhir.search("Provenance", target=",".join(out)):
            out[f"Provenance/{r['id']}"] = r["meta"]["versionId"]
    return out


def by_submission(resources: list[JSON]) -> dict[str, JSON]:
    return {
        next(i["value"] for i in r["identifier"] if i.get("system") == SUBMISSION_SYSTEM): r
        for r in resources
    }


def test_three_conversations_leave_one_current_plan_a_complete_replaces_chain_and_resends_change_nothing(
    hapi_base_url: str, fhir: Fhir, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fnr = fresh_fnr()
    docs = [conversation(fnr, when, contact) for when, contact in zip(DATES, CONTACTS, strict=True)]
    files = [write(tmp_path, doc, f"c{i}.json") for i, doc in enumerate(docs)]
    outbox = str(tmp_path / "outbox.sqlite")
    for path in files:
        code, _, err = push(
            capsys, str(path), "--server", hapi_base_url, "--create-patient", "--outbox", outbox
        )
        assert code == 0, err

    subs = [d["submissionId"] for d in docs]
    careplans, flags = by_submission(ours(fhir, "CarePlan", fnr)), by_submission(ours(fhir, "Flag", fnr))
    assert [careplans[s]["status"] for s in subs] == ["revoked", "revoked", "active"]
    assert [flags[s]["status"] for s in subs] == ["inactive", "inactive", "active"]
    for older, newer in ((subs[0], subs[1]), (subs[1], subs[2])):
        assert careplans[newer]["replaces"] == [{"reference": f"CarePlan/{careplans[older]['id']}"}]
        end = docs[subs.index(newer)]["authored"]
        assert careplans[older]["period"]["end"] == end and flags[older]["period"]["end"] == end
    assert "replaces" not in careplans[subs[0]]
    note = next(r for r in ours(fhir, "DocumentReference", fnr) if r["masterIdentifier"]["value"] == subs[2])
    text = base64.b64decode(note["content"][0]["attachment"]["data"]).decode("utf-8").splitlines()
    assert text[1] == f"{load().text('revision', field='changes').get('nb')} (10.11.2026):"

    capsys.readouterr()
    assert main(["show", "--server", hapi_base_url, "--patient-identifier", f"{FNR}|{fnr}"]) == 0
    shown = capsys.readouterr().out
    assert f": {subs[2]}\n" in shown
    assert f"{load().text('revision', field='earlier').get('nb')}: 10.11.2026, 01.11.2026" in shown

    before = versions(fhir, fnr)
    assert sum(k.startswith("Provenance/") for k in before) == 3
    for path in files:
        code, _, err = push(
            capsys, str(path), "--server", hapi_base_url, "--create-patient", "--outbox", outbox
        )
        assert code == 0, err
    assert versions(fhir, fnr) == before


def test_two_revisions_from_the_same_base_race_one_wins_the_other_writes_nothing_and_is_held(
    hapi_base_url: str, fhir: Fhir, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fnr = fresh_fnr()
    base, x, y = (conversation(fnr, when, contact) for when, contact in zip(DATES, CONTACTS, strict=True))
    bundles = [pipeline.build_bundle(d, pipeline.DocumentContext(create_patient=True)) for d in (base, x, y)]
    with FhirClient(hapi_base_url) as client, Outbox(tmp_path / "outbox.sqlite") as box:
        assert (
            deliver(bundles[0], client, outbox=box, submission_id=base["submissionId"]).status == "delivered"
        )
        subject = {"identifier": {"system": FNR, "value": fnr}}
        # Y reads the current plan (the base) ...
        stale = current_plan.find(client, subject, SUBMISSION_SYSTEM, y["submissionId"])
        # ... X revises the same base meanwhile ...
        assert deliver(bundles[1], client, outbox=box, submission_id=x["submissionId"]).status == "delivered"
        written = versions(fhir, fnr)
        # ... and Y then writes what it computed from its (now stale) read.
        reads = iter([stale])
        real_find = revise.find
        monkeypatch.setattr(revise, "find", lambda *a, **kw: next(reads, None) or real_find(*a, **kw))
        held = deliver(bundles[2], client, outbox=box, submission_id=y["submissionId"])
        monkeypatch.setattr(revise, "find", real_find)
        assert held.status == "conflict" and held.exit_code == 8
        assert "revised by someone else" in str(held.reason)
        assert versions(fhir, fnr) == written  # nothing written
        entry = box.get(y["submissionId"])
        assert entry is not None and entry.status == "rejected" and entry.bundle is not None
        active = [r for r in ours(fhir, "CarePlan", fnr) if r["status"] == "active"]
        assert [r["identifier"][0]["value"] for r in active] == [x["submissionId"]]

        # A person decides Y should replace X: requeued, it is revised against what is current when sent.
        assert box.requeue(y["submissionId"]) == 1
        assert [r.status for r in flush(box, lambda _url: client, close_clients=False)] == ["delivered"]
    careplans = by_submission(ours(fhir, "CarePlan", fnr))
    assert careplans[y["submissionId"]]["replaces"] == [
        {"reference": f"CarePlan/{careplans[x['submissionId']]['id']}"}
    ]
    assert [s for s, r in careplans.items() if r["status"] == "active"] == [y["submissionId"]]


def test_an_older_conversation_pushed_late_is_held_with_exit_8_and_writes_nothing(
    hapi_base_url: str, fhir: Fhir, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fnr = fresh_fnr()
    newer = write(tmp_path, conversation(fnr, DATES[2], CONTACTS[0]), "newer.json")
    older = write(tmp_path, conversation(fnr, DATES[0], CONTACTS[1]), "older.json")
    outbox = str(tmp_path / "outbox.sqlite")
    assert push(capsys, str(newer), "--server", hapi_base_url, "--create-patient", "--outbox", outbox)[0] == 0
    written = versions(fhir, fnr)
    code, summary, err = push(
        capsys, str(older), "--server", hapi_base_url, "--create-patient", "--outbox", outbox
    )
    assert code == 8 and summary["status"] == "conflict"
    assert "held for a person" in err and "later conversation" in err and "Traceback" not in err
    assert versions(fhir, fnr) == written


def test_a_queued_revision_is_checked_against_the_server_when_it_is_finally_sent(
    hapi_base_url: str, fhir: Fhir, tmp_path: Path
) -> None:
    fnr = fresh_fnr()
    first, second, third = (
        conversation(fnr, when, contact) for when, contact in zip(DATES, CONTACTS, strict=True)
    )
    ctx = pipeline.DocumentContext(create_patient=True)
    with FhirClient(hapi_base_url) as client, Outbox(tmp_path / "outbox.sqlite") as box:
        deliver(pipeline.build_bundle(first, ctx), client, outbox=box, submission_id=first["submissionId"])
        # The third conversation waits in the outbox (queued while the server was away) ...
        box.put(third["submissionId"], pipeline.build_bundle(third, ctx), client.base_url)
        # ... the second is delivered meanwhile ...
        deliver(pipeline.build_bundle(second, ctx), client, outbox=box, submission_id=second["submissionId"])
        # ... and the third, sent at last, revises the plan current now: the second, not the first.
        assert [r.status for r in flush(box, lambda _url: client, close_clients=False)] == ["delivered"]
    careplans = by_submission(ours(fhir, "CarePlan", fnr))
    assert careplans[third["submissionId"]]["replaces"] == [
        {"reference": f"CarePlan/{careplans[second['submissionId']]['id']}"}
    ]
    assert sorted(r["status"] for r in careplans.values()) == ["active", "revoked", "revoked"]


def test_another_patients_plans_are_never_touched(hapi_base_url: str, fhir: Fhir, tmp_path: Path) -> None:
    patient_a, patient_b = fresh_fnr(), fresh_fnr()
    ctx = pipeline.DocumentContext(create_patient=True)
    with FhirClient(hapi_base_url) as client:
        b = conversation(patient_b, DATES[0], CONTACTS[0])
        deliver(pipeline.build_bundle(b, ctx), client, submission_id=b["submissionId"])
        untouched = versions(fhir, patient_b)
        for when, contact in zip(DATES, CONTACTS, strict=True):
            a = conversation(patient_a, when, contact)
            assert (
                deliver(pipeline.build_bundle(a, ctx), client, submission_id=a["submissionId"]).status
                == "delivered"
            )
    assert versions(fhir, patient_b) == untouched
    assert [r["status"] for r in ours(fhir, "Flag", patient_b)] == ["active"]


def test_the_service_revises_on_post_and_holds_an_older_conversation_with_409(
    hapi_base_url: str, fhir: Fhir, tmp_path: Path
) -> None:
    fnr = fresh_fnr()
    first, second = conversation(fnr, DATES[0], CONTACTS[0]), conversation(fnr, DATES[2], CONTACTS[1])
    late = conversation(fnr, DATES[1], CONTACTS[2])
    config = settings(hapi_base_url, outbox=tmp_path / "outbox.sqlite", flush_interval=0)
    with RunningService(config) as svc:
        post = lambda doc: requests.post(  # noqa: E731
            f"{svc.url}/QuestionnaireResponse", data=json.dumps(doc), headers=HEADERS, timeout=120
        )
        assert post(first).status_code == 201
        revised = post(second)
        assert revised.status_code == 201, revised.text
        assert sum("/_history/2" in e["response"]["location"] for e in revised.json()["entry"]) == 2
        held = post(late)
        assert held.status_code == 409
        outcome = held.json()
        assert outcome["resourceType"] == "OperationOutcome" and outcome["issue"][0]["code"] == "conflict"
    active = [r for r in ours(fhir, "CarePlan", fnr) if r["status"] == "active"]
    assert [r["identifier"][0]["value"] for r in active] == [second["submissionId"]]


@pytest.mark.usefixtures("uploaded")
def test_what_a_revision_writes_has_no_errors_against_our_profiles(fhir: Fhir) -> None:
    from _searches import stored

    fnr = fresh_fnr()
    first, second = conversation(fnr, DATES[0], CONTACTS[0]), conversation(fnr, DATES[1], CONTACTS[1])
    second["answers"]["checklist"] = dict(second["answers"]["checklist"], romningsplan="yes")
    earlier = current_plan.group(
        stored(pipeline.build_bundle(first)), SUBMISSION_SYSTEM, second["submissionId"]
    )
    revised = revise.revise(pipeline.build_bundle(second), earlier).bundle
    assert revised is not None
    written = [e["resource"] for e in revised["entry"] if e["resource"]["resourceType"] != "Patient"]
    assert {r["resourceType"] for r in written if r.get("status") in ("revoked", "inactive")} == {
        "CarePlan",
        "Flag",
    }
    assert any(a["detail"]["status"] == "completed" for r in written for a in r.get("activity", []))
    for resource in written:
        outcome = fhir.validate(resource, profile=resource["meta"]["profile"][0])
        assert errors(outcome) == [], resource["resourceType"]


def test_a_resend_naming_the_patient_another_way_leaves_one_active_careplan_and_flag(
    hapi_base_url: str, fhir: Fhir
) -> None:
    fnr = fresh_fnr()
    patient_id = fresh_identifier("pat")
    patient = {"resourceType": "Patient", "id": patient_id, "identifier": [{"system": FNR, "value": fnr}]}
    assert fhir.put(patient).status_code in (200, 201)
    first = conversation(fnr, DATES[0], CONTACTS[0])
    given_both = first | {"patient": {"fnr": fnr, "reference": f"Patient/{patient_id}"}}
    given_by_reference = first | {"patient": {"reference": f"Patient/{patient_id}"}}
    later = conversation(fnr, DATES[1], CONTACTS[1]) | {"patient": {"reference": f"Patient/{patient_id}"}}
    with FhirClient(hapi_base_url) as client:
        for data in (given_both, given_by_reference):
            result = deliver(pipeline.build_bundle(data), client, submission_id=data["submissionId"])
            assert result.status == "delivered"
            for rtype in ("CarePlan", "Flag"):
                active = [r for r in ours(fhir, rtype, fnr) if r["status"] == "active"]
                assert list(by_submission(active)) == [first["submissionId"]] and len(active) == 1
        assert deliver(pipeline.build_bundle(later), client, submission_id=later["submissionId"]).status == (
            "delivered"
        )
    for rtype in ("CarePlan", "Flag"):
        active = [r for r in ours(fhir, rtype, fnr) if r["status"] == "active"]
        assert len(active) == 1 and list(by_submission(active)) == [later["submissionId"]]
