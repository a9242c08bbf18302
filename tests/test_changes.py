"""What changed between two plans: safe contact first, then each item before → now, in the form's language;
the note of a revision and ``safetyplan changes`` say the same."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from fhir_safetyplan import changes, pipeline
from fhir_safetyplan.cli import main
from fhir_safetyplan.content import load
from fhir_safetyplan.form_ids import Link

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
JSON = dict[str, Any]


def answers(example: str = "01-alt-pa-plass") -> JSON:
    data: JSON = json.loads((EXAMPLES / example / "answers.json").read_text(encoding="utf-8"))
    return data


def response(data: JSON) -> JSON:
    return pipeline.prepare(data).response


def revised(data: JSON, **answer_changes: Any) -> JSON:
    out = copy.deepcopy(data)
    out["answers"] |= answer_changes
    return out


def test_the_same_answers_have_no_changes_and_the_note_says_so_with_the_previous_date() -> None:
    qr = response(answers())
    assert changes.changes(qr, qr, "nb") == []
    text = load().text("revision", field="no-changes").get("nb")
    assert changes.lines([], "nb", "2026-11-20T10:15:00+01:00") == [f"{text} (20.11.2026)."]


def test_safe_contact_changes_come_first_then_the_other_items_in_the_forms_order() -> None:
    old = answers()
    checklist = dict(old["answers"]["checklist"], romningsplan="no", bag="no")
    new = revised(old, checklist=checklist, safeContact={"safe": ["brev"], "unsafe": ["telefonsamtale"]})
    found = changes.changes(response(old), response(new), "nb")
    links = [c.link_id for c in found]
    contact = [c.link_id for c in found if c.safe_contact]
    assert links[: len(contact)] == contact and contact[:2] == [Link.SAFE_CHANNELS, Link.UNSAFE_CHANNELS]
    rest = links[len(contact) :]
    assert rest.index(Link.checklist_item("romningsplan")) < rest.index(Link.checklist_item("bag"))


def test_each_change_reads_question_before_arrow_now_with_the_forms_texts_and_displays() -> None:
    old = answers("07-english")
    new = revised(old, safeContact={"safe": ["oppmote"], "unsafe": ["brev", "sms"]})
    found = changes.changes(response(old), response(new), "en")
    lines = changes.lines(found, "en", response(old)["authored"])
    assert lines[0] == "Changed since the previous plan (2026-11-20):"
    safe = next(c for c in found if c.link_id == Link.SAFE_CHANNELS)
    assert lines[1] == f"• {safe.text}: {'; '.join(safe.before)} → {'; '.join(safe.now)}"
    channels = {o.code: o.display.get("en") for o in load().options("channels")}
    assert safe.now == (channels["oppmote"],)


def test_an_answer_given_only_before_shows_as_not_answered_now_in_each_language() -> None:
    old = answers()
    new = copy.deepcopy(old)
    del new["answers"]["safeContact"]["times"]
    found = changes.changes(response(old), response(new), "nn")
    (times,) = [c for c in found if c.link_id == Link.SAFE_TIMES]
    assert times.before == (old["answers"]["safeContact"]["times"],) and times.now == ()
    line = next(x for x in changes.lines(found, "nn") if times.text in x)
    assert line.endswith(f"→ ({load().text('revision', field='not-answered').get('nn')})")


def test_hidden_and_display_items_and_groups_are_not_compared() -> None:
    form = {
        "item": [
            {"linkId": "g", "type": "group", "item": [{"linkId": "g.d", "type": "display", "text": "D"}]},
            {
                "linkId": "h",
                "type": "string",
                "extension": [{"url": changes.HIDDEN, "valueBoolean": True}],
            },
            {"linkId": "s", "type": "string", "text": "S"},
        ]
    }
    assert [i.link_id for i in changes._items(form)] == ["s"]


def test_the_changes_command_prints_what_the_note_of_a_revision_says(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    old = answers()
    new = revised(old, involvement="no", refusalNote="Vil tenke på det")
    for key in ("checklist", "agreedActions", "behaviourAdviceGiven", "existingMeasures"):
        new["answers"].pop(key, None)  # the plan part is not asked after a refusal
    for name, data in (("old.json", old), ("new.json", new)):
        (tmp_path / name).write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    code = main(["changes", str(tmp_path / "old.json"), str(tmp_path / "new.json")])
    out, _ = capsys.readouterr()
    assert code == 0
    expected = changes.lines(changes.changes(response(old), response(new), "nb"), "nb", old["authored"])
    assert out.splitlines() == expected and len(expected) > 3


def test_the_changes_command_refuses_an_invalid_file_with_an_outcome_and_exit_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "old.json").write_text(json.dumps(answers()), encoding="utf-8")
    bad = answers()
    bad["answers"]["checklist"]["romningsplan"] = "kanskje"
    (tmp_path / "bad.json").write_text(json.dumps(bad), encoding="utf-8")
    code = main(["changes", str(tmp_path / "old.json"), str(tmp_path / "bad.json")])
    out, err = capsys.readouterr()
    assert code == 1 and "Traceback" not in err
    outcome = json.loads(out)
    assert outcome["resourceType"] == "OperationOutcome" and outcome["issue"][0]["severity"] == "error"


def test_a_response_made_with_another_canonical_base_still_gets_its_forms_texts() -> None:
    qr = json.loads(
        json.dumps(response(answers())).replace(
            "https://safetyplan.example/fhir", "https://fhir.hospital.example/fhir"
        )
    )
    later = copy.deepcopy(qr)
    contact = next(it for it in later["item"] if it["linkId"] == Link.SAFE_CONTACT)
    contact["item"] = [it for it in contact["item"] if it["linkId"] != Link.SAFE_TIMES]
    (times,) = changes.changes(qr, later, "en")
    assert times.link_id == Link.SAFE_TIMES and times.text == load().text("safe-contact", "times").get("en")
