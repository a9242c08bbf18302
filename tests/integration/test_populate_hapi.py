"""``safetyplan populate --server`` against a real HAPI server: deliver, pre-fill, edit, push the follow-up.

Asserts on the new plan only (retiring the old one is the revision's work, tested elsewhere).
"""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from _guidance import CONVERSATION_SPECIFIC
from _items import answers_by_link, with_answers_of

from fhir_safetyplan import codes
from fhir_safetyplan.cli import main

from .conftest import Fhir
from .test_delivery_hapi import FNR, fresh_plan, push, write

JSON = dict[str, Any]
#: a content 1.1.0 plan (nynorsk, a follow-up, services involved)
EXAMPLE = "11-oppfolging-nynorsk"
ANSWERS = f"{codes.DEFAULT_CANONICAL_BASE}/CodeSystem/{codes.ANSWER_CS}"


def find(items: list[JSON], link_id: str) -> JSON:
    for item in items:
        if item["linkId"] == link_id:
            return item
        try:
            return find(item.get("item", []), link_id)
        except KeyError:
            continue
    raise KeyError(link_id)


def codes_of(answers: list[JSON]) -> list[str]:
    return [a["valueCoding"]["code"] for a in answers]


def test_populate_from_the_server_then_edit_and_push_gives_the_edited_plan(
    hapi_base_url: str, fhir: Fhir, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first = fresh_plan(EXAMPLE)
    fnr = first["patient"]["fnr"]
    code, summary, err = push(
        capsys, str(write(tmp_path, first)), "--server", hapi_base_url, "--create-patient", "--no-outbox"
    )
    assert code == 0, err
    old_qr_id = next(e["id"] for e in summary["entries"] if e["resourceType"] == "QuestionnaireResponse")
    old_qr = fhir.get(f"QuestionnaireResponse/{old_qr_id}").json()
    old = answers_by_link(old_qr)
    not_carried = CONVERSATION_SPECIFIC & set(old)  # what a follow-up asks again of this plan
    assert not_carried  # the example answers some of them

    capsys.readouterr()
    code = main(["populate", "--server", hapi_base_url, "--patient-identifier", f"{FNR}|{fnr}"])
    out, err = capsys.readouterr()
    assert code == 0, err
    prefilled = json.loads(out)
    assert prefilled["status"] == "in-progress"
    assert prefilled["subject"]["reference"].startswith("Patient/")
    carried = answers_by_link(prefilled)
    for link_id in not_carried:
        assert link_id not in carried, link_id
        assert link_id in err  # listed as asked again
    assert fnr not in err
    assert (
        "no active safety plan" not in err
    )  # a 1.1.0 plan's CarePlan (category oppfolging) is found as such
    assert carried == {k: v for k, v in old.items() if k in carried}
    assert set(carried) == set(old) - not_carried

    # The clinician's follow-up: phone calls are no longer safe, the escape plan has lapsed.
    edited = copy.deepcopy(prefilled)
    safe = find(edited["item"], "trygg-kontakt.trygge")
    unsafe = find(edited["item"], "trygg-kontakt.utrygge")
    phone = next(a for a in safe["answer"] if a["valueCoding"]["code"] == "telefonsamtale")
    safe["answer"].remove(phone)
    unsafe["answer"].append(phone)
    find(edited["item"], "plan.sjekkliste.romningsplan")["answer"] = [
        {"valueCoding": {"system": ANSWERS, "code": "N", "display": "Nei"}}
    ]  # (the same in nynorsk)
    edited["item"] = with_answers_of(edited["item"], old_qr["item"], not_carried)
    edited["status"] = "completed"
    # the follow-up comes after the example's conversation (dated 2026-12-01 14:30), whatever today is
    later = max(datetime.now(UTC), datetime.fromisoformat(first["authored"]) + timedelta(days=1))
    edited["authored"] = later.isoformat(timespec="seconds")
    edited["author"] = {"identifier": {"system": "urn:oid:2.16.578.1.12.4.1.4.4", "value": "99990001"}}

    code, summary, err = push(
        capsys, str(write(tmp_path, edited, "followup.json")), "--server", hapi_base_url, "--no-outbox"
    )
    assert code == 0, err
    new_qr_id = next(e["id"] for e in summary["entries"] if e["resourceType"] == "QuestionnaireResponse")
    assert new_qr_id != old_qr_id
    stored = answers_by_link(fhir.get(f"QuestionnaireResponse/{new_qr_id}").json())
    assert "telefonsamtale" in codes_of(stored["trygg-kontakt.utrygge"])
    assert "telefonsamtale" not in codes_of(stored["trygg-kontakt.trygge"])
    assert codes_of(stored["plan.sjekkliste.romningsplan"]) == ["N"]
    edited_links = {"trygg-kontakt.trygge", "trygg-kontakt.utrygge", "plan.sjekkliste.romningsplan"}
    for link_id in set(carried) - edited_links:
        assert stored[link_id] == carried[link_id], link_id
    care_plan_id = next(e["id"] for e in summary["entries"] if e["resourceType"] == "CarePlan")
    plan = fhir.get(f"CarePlan/{care_plan_id}").json()
    assert (
        next(a["detail"]["code"]["coding"][0]["code"] for a in plan["activity"] if "detail" in a)
        == "romningsplan"
    )
    flag_id = next(e["id"] for e in summary["entries"] if e["resourceType"] == "Flag")
    flag = fhir.get(f"Flag/{flag_id}").json()
    assert flag["status"] == "active"


@pytest.mark.parametrize("example", ["05-streng-kontakt", EXAMPLE], ids=["content-1.0.0", "content-1.1.0"])
def test_with_two_active_plans_the_newest_is_prefilled_and_stderr_says_so(
    example: str, hapi_base_url: str, fhir: Fhir, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Two active CarePlans of ours for one patient (what older versions left behind), made here directly; for a
    plan of each content version (their CarePlans have different category codes)."""
    first = fresh_plan(example)
    code, summary, err = push(
        capsys, str(write(tmp_path, first)), "--server", hapi_base_url, "--create-patient", "--no-outbox"
    )
    assert code == 0, err
    ids = {e["resourceType"]: e["id"] for e in summary["entries"]}
    qr = fhir.get(f"QuestionnaireResponse/{ids['QuestionnaireResponse']}").json()
    care_plan = fhir.get(f"CarePlan/{ids['CarePlan']}").json()
    newer = {k: v for k, v in copy.deepcopy(qr).items() if k != "meta"}
    newer["id"] = qr["id"] + "-b"
    newer["authored"] = "2099-01-01T09:00:00+01:00"
    find(newer["item"], "trygg-kontakt.tidspunkt")["answer"] = [{"valueString": "Bare onsdager"}]
    second = {k: v for k, v in copy.deepcopy(care_plan).items() if k != "meta"}
    second["id"] = care_plan["id"] + "-b"
    second["identifier"][0]["value"] += "-b"
    second["supportingInfo"] = [{"reference": f"QuestionnaireResponse/{newer['id']}"}]
    for resource in (newer, second):
        assert fhir.put(resource).status_code in (200, 201)

    patient = qr["subject"]["reference"]
    capsys.readouterr()
    assert main(["populate", "--server", hapi_base_url, "--patient", patient]) == 0
    out, err = capsys.readouterr()
    assert "2 active safety plans" in err and newer["id"] in err
    assert answers_by_link(json.loads(out))["trygg-kontakt.tidspunkt"] == [{"valueString": "Bare onsdager"}]
