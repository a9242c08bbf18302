"""Revision at delivery, as a pure function: journal bundle + the patient's plans as read → the bundle to send.

The server side (HAPI's ifMatch, the real searches) is proven in tests/integration/test_revision_hapi.py.
"""

from __future__ import annotations

import base64
import copy
import json
from typing import Any

import pytest
from _searches import stored

from fhir_safetyplan import current_plan, pipeline
from fhir_safetyplan.content import load
from fhir_safetyplan.revise import RevisionConflict, revise

JSON = dict[str, Any]
SYSTEM = "https://safetyplan.example/fhir/NamingSystem/submission"
FNR = "urn:oid:2.16.578.1.12.4.1.4.1"
PATIENT = "15838540063"


def conversation(submission: str, authored: str, **answer_changes: Any) -> JSON:
    """The journal bundle of one conversation with the example patient."""
    from pathlib import Path

    path = Path(__file__).resolve().parent.parent / "examples" / "02-flere-mangler" / "answers.json"
    data: JSON = json.loads(path.read_text(encoding="utf-8"))
    data |= {"submissionId": submission, "authored": authored, "patient": {"fnr": PATIENT}}
    data["answers"] |= answer_changes
    return pipeline.build_bundle(data)


def server(*resources: list[JSON]) -> dict[tuple[str, str], JSON]:
    return {(r["resourceType"], r["id"]): r for rs in resources for r in rs}


def after(state: dict[tuple[str, str], JSON], sent: JSON) -> dict[tuple[str, str], JSON]:
    """The server after a transaction: new resources at version 1, updated ones one version up."""
    out = dict(state)
    for r in stored(sent):
        key = (r["resourceType"], r["id"])
        if key in state:
            r["meta"]["versionId"] = str(int(state[key]["meta"]["versionId"]) + 1)
        out[key] = r
    for e in sent["entry"]:
        if "ifMatch" in e["request"]:
            r = copy.deepcopy(e["resource"])
            key = (r["resourceType"], r["id"])
            r["meta"] = {**r["meta"], "versionId": str(int(state[key]["meta"]["versionId"]) + 1)}
            out[key] = r
    return out


def plans(state: dict[tuple[str, str], JSON], submission: str | None = None) -> current_plan.CurrentPlan:
    return current_plan.group(list(state.values()), SYSTEM, submission)


def of_type(bundle: JSON, rtype: str) -> list[JSON]:
    return [e for e in bundle["entry"] if e["resource"]["resourceType"] == rtype]


def note(bundle: JSON) -> list[str]:
    data = of_type(bundle, "DocumentReference")[0]["resource"]["content"][0]["attachment"]["data"]
    return base64.b64decode(data).decode("utf-8").splitlines()


FIRST = "2026-11-01T10:00:00+01:00"
SECOND = "2026-11-10T10:00:00+01:00"


@pytest.fixture
def first() -> JSON:
    return conversation("c1", FIRST)


def test_a_first_plan_is_sent_as_it_is(first: JSON) -> None:
    revision = revise(first, plans({}, "c1"))
    assert revision.kind == "first" and revision.bundle == first and not revision.guarded


def test_a_new_plan_supersedes_the_current_one_in_the_same_transaction(first: JSON) -> None:
    state = server(stored(first))
    second = conversation("c2", SECOND, safeContact={"safe": ["brev"], "unsafe": ["telefonsamtale"]})
    revision = revise(second, plans(state, "c2"))
    assert revision.kind == "revision" and revision.replaced == ("c1",) and revision.guarded
    sent = revision.bundle
    assert sent is not None
    old_cp = state[("CarePlan", of_type(first, "CarePlan")[0]["resource"]["id"])]
    old_flag = state[("Flag", of_type(first, "Flag")[0]["resource"]["id"])]
    new_cp = of_type(sent, "CarePlan")[0]["resource"]
    assert new_cp["replaces"] == [{"reference": f"CarePlan/{old_cp['id']}"}]
    retired = {e["request"]["url"]: e for e in sent["entry"] if "ifMatch" in e["request"]}
    assert set(retired) == {f"CarePlan/{old_cp['id']}", f"Flag/{old_flag['id']}"}
    for e in retired.values():
        assert e["request"] == {"method": "PUT", "url": e["request"]["url"], "ifMatch": 'W/"1"'}
    cp = retired[f"CarePlan/{old_cp['id']}"]["resource"]
    flag = retired[f"Flag/{old_flag['id']}"]["resource"]
    assert (cp["status"], cp["period"]["end"]) == ("revoked", SECOND)
    assert cp["note"] == [{"time": SECOND, "text": load().text("revision", field="status-reason").get("nb")}]
    assert (flag["status"], flag["period"]) == ("inactive", {**old_flag["period"], "end": SECOND})


def test_the_old_resources_change_only_in_status_period_and_a_status_reason_note(first: JSON) -> None:
    state = server(stored(first))
    sent = revise(conversation("c2", SECOND), plans(state, "c2")).bundle
    assert sent is not None
    for e in (e for e in sent["entry"] if "ifMatch" in e["request"]):
        new = e["resource"]
        old = state[(new["resourceType"], new["id"])]
        changed = {k for k in {*old, *new} if old.get(k) != new.get(k)}
        assert changed <= {"status", "period", "note", "meta"}
        assert new["meta"] == {k: v for k, v in old["meta"].items() if k != "versionId"}


def test_the_note_says_what_changed_right_after_its_neutral_first_line(first: JSON) -> None:
    state = server(stored(first))
    second = conversation("c2", SECOND, safeContact={"safe": ["brev"], "unsafe": ["telefonsamtale"]})
    sent = revise(second, plans(state, "c2")).bundle
    assert sent is not None
    lines = note(sent)
    assert lines[0] == note(second)[0]
    assert lines[1] == f"{load().text('revision', field='changes').get('nb')} (01.11.2026):"
    assert lines[2].startswith("• ") and "→" in lines[2]
    assert lines[len(lines) - len(note(second)) + 1 :] == note(second)[1:]


def test_an_item_in_place_now_completes_the_old_plans_open_activity(first: JSON) -> None:
    state = server(stored(first))  # the example has romningsplan 'no': an open activity
    checklist = {
        "romningsplan": "yes",
        "politi": "yes",
        "krisesenter": "no",
        "penger": "no",
        "nokler": "yes",
        "telefonnumre": "yes",
        "kode": "yes",
        "naboer": "yes",
        "vapen": "yes",
        "bag": "no",
    }
    sent = revise(conversation("c2", SECOND, checklist=checklist), plans(state, "c2")).bundle
    assert sent is not None
    activities = of_type(sent, "CarePlan")[0]["resource"]["activity"]
    done = [a["detail"] for a in activities if a["detail"]["status"] == "completed"]
    assert [d["code"]["coding"][0]["code"] for d in done] == ["romningsplan"]
    assert [a["detail"]["code"]["coding"][0]["code"] for a in activities].count("romningsplan") == 1
    completed = load().text("revision", field="completed").get("nb")
    assert f"{completed}: {done[0]['code']['coding'][0]['display']}." in note(sent)


def test_the_provenance_records_the_revision(first: JSON) -> None:
    state = server(stored(first))
    sent = revise(conversation("c2", SECOND), plans(state, "c2")).bundle
    assert sent is not None
    prov = of_type(sent, "Provenance")[0]["resource"]
    assert prov["activity"]["coding"][0]["code"] == "UPDATE"
    old = {
        f"{t}/{r['id']}" for (t, _), r in state.items() if t in ("CarePlan", "Flag", "QuestionnaireResponse")
    }
    revised = {e["what"]["reference"] for e in prov["entity"] if e["role"] == "revision"}
    assert revised == old
    assert {x for x in old if not x.startswith("Questionnaire")} <= {t["reference"] for t in prov["target"]}


def test_a_resend_of_the_current_plan_sends_the_same_resources_and_retires_nothing_again(first: JSON) -> None:
    second = conversation("c2", SECOND, safeContact={"safe": ["brev"], "unsafe": ["telefonsamtale"]})
    state = server(stored(first))
    sent = revise(second, plans(state, "c2")).bundle
    assert sent is not None
    state = after(state, sent)
    again = revise(second, plans(state, "c2"))
    assert again.kind == "revision" and not again.guarded and again.bundle is not None
    new_only = [e for e in sent["entry"] if "ifMatch" not in e["request"]]
    assert again.bundle["entry"] == new_only


def test_a_resend_of_a_plan_superseded_since_sends_nothing(first: JSON) -> None:
    state = server(stored(first))
    sent = revise(conversation("c2", SECOND), plans(state, "c2")).bundle
    assert sent is not None
    state = after(state, sent)
    revision = revise(first, plans(state, "c1"))
    assert revision.kind == "already" and revision.bundle is None and revision.response is not None
    answered = revision.response["entry"]
    assert len(answered) == len(first["entry"]) and all(e["response"]["status"] == "200 OK" for e in answered)
    stored_cp = next(
        r for r in state.values() if r["resourceType"] == "CarePlan" and r["status"] == "revoked"
    )
    assert {"status": "200 OK", "location": f"CarePlan/{stored_cp['id']}/_history/2", "etag": 'W/"2"'} in [
        e["response"] for e in answered
    ]


def test_a_changed_plan_that_was_superseded_since_is_held_for_a_person(first: JSON) -> None:
    state = server(stored(first))
    sent = revise(conversation("c2", SECOND), plans(state, "c2")).bundle
    assert sent is not None
    state = after(state, sent)
    changed = conversation("c1", FIRST, agreedActions=["Et annet tiltak"])
    with pytest.raises(RevisionConflict, match="already been superseded"):
        revise(changed, plans(state, "c1"))


def test_an_older_conversation_never_replaces_a_newer_current_plan() -> None:
    state = server(stored(conversation("c2", SECOND)))
    with pytest.raises(RevisionConflict, match="later conversation") as info:
        revise(conversation("c1", FIRST), plans(state, "c1"))
    assert info.value.exit_code == 8
    assert info.value.outcome["issue"][0]["code"] == "conflict"


def test_another_patients_plan_is_never_retired(first: JSON) -> None:
    other = stored(first)
    for r in other:
        if "subject" in r:
            r["subject"] = {
                "reference": "Patient/other",
                "identifier": {"system": FNR, "value": "02919240019"},
            }
    revision = revise(conversation("c2", SECOND), plans(server(other), "c2"))
    assert revision.kind == "first" and not revision.guarded


def test_two_active_plans_left_by_older_data_are_both_retired() -> None:
    a, b = conversation("a", FIRST), conversation("b", "2026-11-05T10:00:00+01:00")
    revision = revise(conversation("c", SECOND), plans(server(stored(a), stored(b)), "c"))
    assert revision.replaced == ("b", "a")
    assert sum("ifMatch" in e["request"] for e in (revision.bundle or {})["entry"]) == 4


def test_the_lookup_is_one_batch_of_searches_by_status_our_identifier_system_and_the_patient() -> None:
    subject = {"reference": "Patient?identifier=" + f"{FNR}|{PATIENT}"}
    batch = current_plan.search_batch(subject, SYSTEM, "c1")
    assert batch["type"] == "batch" and [e["request"]["method"] for e in batch["entry"]] == ["GET"] * 3
    urls = [e["request"]["url"] for e in batch["entry"]]
    assert urls[0].startswith(
        f"CarePlan?subject:Patient.identifier={FNR}|{PATIENT}&status=active&identifier={SYSTEM}|&"
    )
    assert urls[1].startswith(f"Flag?subject:Patient.identifier={FNR}|{PATIENT}&identifier={SYSTEM}|&")
    assert f"identifier={SYSTEM}|c1&" in urls[2]
    assert current_plan.subject_param({"reference": "Patient/p1"}) == ("subject", "Patient/p1")
