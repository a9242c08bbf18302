"""Two patients' plans never share an outbox entry, even when their senders gave them the same submission id.

The outbox keys an entry on (server, plan key), the plan key being the submission scoped by the bundle's
patient; the sender's submission id stays visible beside it. A submission id that names several patients'
plans is refused where one entry is meant, saying how to name one (its plan key).
"""

from __future__ import annotations

import json
import sqlite3
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from fhir_safetyplan import cli, pipeline
from fhir_safetyplan.delivery.outbox import Outbox, SharedSubmission
from fhir_safetyplan.delivery.outbox_keys import plan_key
from fhir_safetyplan.delivery.store import open_outbox
from fhir_safetyplan.identifiers import FNR_SYSTEM, synthetic_fnr

ROOT = Path(__file__).resolve().parents[1]
SERVER = "http://127.0.0.1:8080/fhir"
FNR_A = synthetic_fnr(date(1971, 3, 14))
FNR_B = synthetic_fnr(date(1988, 9, 2))


def plan(fnr: str, submission: str = "engine-1") -> dict[str, Any]:
    """Example 01 as a transaction bundle for the patient ``fnr`` under the sender's ``submission``."""
    data = json.loads((ROOT / "examples" / "01-alt-pa-plass" / "answers.json").read_text(encoding="utf-8"))
    data["submissionId"] = submission
    data["patient"] = {"fnr": fnr}
    bundle: dict[str, Any] = pipeline.build_bundle(data)
    return bundle


def subject_of(bundle: dict[str, Any] | None) -> str:
    assert bundle is not None
    qr = next(
        e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "QuestionnaireResponse"
    )
    return str(qr["subject"]["identifier"]["value"])


@pytest.fixture
def box(outbox_at: str):
    """An outbox of each store: SQLite, then PostgreSQL (the ``outbox_at`` fixture)."""
    with open_outbox(outbox_at) as ob:
        yield ob


def test_the_same_submission_for_two_patients_is_two_entries_and_both_are_delivered(box: Outbox) -> None:
    a = box.put("engine-1", plan(FNR_A), SERVER)
    b = box.put("engine-1", plan(FNR_B), SERVER)
    assert a.plan_key != b.plan_key
    assert [(e.submission_id, e.status, e.revision) for e in box.list()] == [
        ("engine-1", "pending", 1),
        ("engine-1", "pending", 1),
    ]
    assert [subject_of(e.bundle) for e in box.pending()] == [FNR_A, FNR_B]
    for entry in box.queue(SERVER):
        claimed = box.claim(entry.plan_key, SERVER)
        assert claimed is not None and claimed.bundle is not None
        assert box.mark_delivered(entry.plan_key, [], server_url=SERVER, revision=claimed.revision)
    assert [e.status for e in box.list()] == ["delivered", "delivered"]


def test_the_same_submission_for_the_same_patient_still_updates_its_one_entry(box: Outbox) -> None:
    box.put("engine-1", plan(FNR_A), SERVER)
    again = box.put("engine-1", plan(FNR_A), SERVER)
    assert again.revision == 2 and len(box.list()) == 1


def test_the_plan_key_is_the_patient_scoped_id_and_reveals_no_identity_number() -> None:
    bundle = plan(FNR_A)
    key = plan_key("engine-1", bundle)
    assert key == plan_key("engine-1", plan(FNR_A)) != plan_key("engine-1", plan(FNR_B))
    assert key != plan_key("engine-2", bundle)
    assert FNR_A not in key


def test_a_listing_shows_the_senders_submission_id_beside_each_plan_key(box: Outbox) -> None:
    box.put("engine-1", plan(FNR_A), SERVER)
    box.put("engine-1", plan(FNR_B), SERVER)
    rows = [e.as_dict() for e in box.list()]
    assert [r["submissionId"] for r in rows] == ["engine-1", "engine-1"]
    assert len({r["planKey"] for r in rows}) == 2


def test_a_submission_id_of_several_patients_is_refused_where_one_entry_is_meant(box: Outbox) -> None:
    a = box.put("engine-1", plan(FNR_A), SERVER)
    b = box.put("engine-1", plan(FNR_B), SERVER)
    for key in (a.plan_key, b.plan_key):
        assert box.mark_rejected(key, "ServerRejected (HTTP 422)", server_url=SERVER)
    with pytest.raises(SharedSubmission, match="2 different patients") as info:
        box.requeue("engine-1")
    assert a.plan_key in str(info.value) and b.plan_key in str(info.value)
    with pytest.raises(SharedSubmission):
        box.get("engine-1", SERVER)
    assert box.requeue(b.plan_key) == 1  # named by its plan key: that patient's plan only
    assert [e.status for e in box.list()] == ["rejected", "pending"]
    found = box.get(a.plan_key, SERVER)
    assert found is not None and subject_of(found.bundle) == FNR_A


def test_a_submission_id_of_one_patient_still_names_its_entry(box: Outbox) -> None:
    box.put("engine-7", plan(FNR_A, "engine-7"), SERVER)
    entry = box.get("engine-7", SERVER)
    assert entry is not None and subject_of(entry.bundle) == FNR_A


def test_requeue_on_the_command_line_says_how_to_pick_one_of_several_patients_plans(
    box: Outbox, outbox_at: str, capsys: pytest.CaptureFixture[str]
) -> None:
    a = box.put("engine-1", plan(FNR_A), SERVER)
    b = box.put("engine-1", plan(FNR_B), SERVER)
    for key in (a.plan_key, b.plan_key):
        box.mark_rejected(key, "ServerRejected (HTTP 422)", server_url=SERVER)
    capsys.readouterr()
    assert cli.main(["outbox", "requeue", "--outbox", outbox_at, "engine-1"]) == 1
    err = capsys.readouterr().err
    assert "names plans for 2 different patients" in err and a.plan_key in err and "planKey" in err
    assert FNR_A not in err and FNR_B not in err and "Traceback" not in err
    assert cli.main(["outbox", "requeue", "--outbox", outbox_at, a.plan_key]) == 0
    assert [e.status for e in box.list()] == ["pending", "rejected"]


V3_SCHEMA = """
CREATE TABLE outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, submission_id TEXT NOT NULL, server_url TEXT NOT NULL,
    revision INTEGER NOT NULL DEFAULT 1,
    status TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'rejected', 'damaged')), bundle TEXT,
    attempts INTEGER NOT NULL DEFAULT 0, last_error TEXT, created_at TEXT NOT NULL, updated_at TEXT NOT NULL,
    delivered_at TEXT, response_summary TEXT, lease_owner TEXT, lease_until TEXT,
    UNIQUE (server_url, submission_id));
CREATE INDEX outbox_status ON outbox (status, seq);
PRAGMA user_version = 3;
"""


def test_an_outbox_of_schema_3_is_migrated_in_place_keeping_every_entry(tmp_path: Path) -> None:
    path = tmp_path / "v3.sqlite"
    conn = sqlite3.connect(path)
    conn.executescript(V3_SCHEMA)
    rows = [
        ("engine-1", "pending", 2, json.dumps(plan(FNR_A)), 1, "ServerUnavailable", None, "h:1:x", "2030"),
        ("engine-2", "delivered", 1, None, 1, None, '[{"status": "201 Created"}]', None, None),
        (
            "engine-3",
            "rejected",
            1,
            json.dumps(plan(FNR_B, "engine-3")),
            1,
            "ServerRejected",
            None,
            None,
            None,
        ),
        ("engine-4", "damaged", 1, '{"broken', 0, "OutboxDamaged", None, None, None),
    ]
    conn.executemany(
        "INSERT INTO outbox (submission_id, server_url, status, revision, bundle, attempts, last_error, "
        "response_summary, lease_owner, lease_until, created_at, updated_at) "
        "VALUES (?, 'http://127.0.0.1:8080/fhir', ?, ?, ?, ?, ?, ?, ?, ?, 't', 't')",
        rows,
    )
    conn.commit()
    conn.close()
    path.chmod(0o600)
    with Outbox(path) as ob:
        got = [(e.submission_id, e.status, e.revision, e.attempts, e.last_error) for e in ob.list()]
        assert got == [(r[0], r[1], r[2], r[4], r[5]) for r in rows]
        first = ob.list()[0]
        assert first.plan_key == plan_key("engine-1", plan(FNR_A))  # keyed on its bundle's patient
        assert (first.lease_owner, first.lease_until) == ("h:1:x", "2030")
        assert ob.list()[1].response_summary == [{"status": "201 Created"}]
        # after the migration the same submission for another patient is a second entry, not a replacement
        ob.put("engine-1", plan(FNR_B), SERVER)
        pending = ob.pending(SERVER)
        assert sorted(subject_of(e.bundle) for e in pending) == sorted([FNR_A, FNR_B])
        # and for the same patient it is still the one entry, its revision raised
        assert ob.put("engine-1", plan(FNR_A), SERVER).revision == 3
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 4
    conn.close()


def test_the_subject_is_found_in_a_bundle_with_the_patient_as_a_conditional_reference() -> None:
    bundle = plan(FNR_A)
    qr = next(
        e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "QuestionnaireResponse"
    )
    reference_only = {"reference": f"Patient?identifier={FNR_SYSTEM}|{FNR_A}"}
    qr["subject"] = reference_only
    assert plan_key("engine-1", bundle) == plan_key("engine-1", plan(FNR_A))
