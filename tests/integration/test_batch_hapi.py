"""``safetyplan push --ndjson`` against the real HAPI FHIR server: 30 lines with bad ones among them → every good
plan on the server exactly once (through an SQLite and through a PostgreSQL outbox), in input order per patient
(a patient's second plan revises the first), and the same file again changes nothing; a SIGTERM mid-batch
leaves every accepted plan in the outbox.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from fhir_safetyplan import exitcodes
from fhir_safetyplan.cli import main
from fhir_safetyplan.delivery.outbox import Outbox
from fhir_safetyplan.delivery.store import open_outbox

from .conftest import Fhir
from .test_delivery_hapi import SUBMISSION_SYSTEM, fresh_plan

JSON = dict[str, Any]
ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ("01-alt-pa-plass", "02-flere-mangler", "03-barn-og-psykisk", "05-streng-kontakt", "06-nynorsk")
LATER = "2026-11-27T13:30:00+01:00"  # a follow-up conversation, a week after the examples' 2026-11-20


def batch_of_30() -> tuple[list[str], dict[int, JSON], list[tuple[int, int]]]:
    """30 lines: 24 plans for 21 patients (3 of them with a second, later plan on the very next line) and
    6 bad or blank lines. Returns the lines, the plan of each good line, and the (first, second) line pairs."""
    lines: list[str] = []
    plans: dict[int, JSON] = {}
    pairs: list[tuple[int, int]] = []
    bad = iter(
        [
            "{not json",
            '{"answers": {}, "answers": {}}',
            '{"answers": ' + "7" * 2000 + "}",
            '{"answers": {"note": "\\udc00"}}',
            "",
        ]
    )
    for i in range(21):
        plan = fresh_plan(EXAMPLES[i % len(EXAMPLES)])
        lines.append(json.dumps(plan, ensure_ascii=False))
        plans[len(lines)] = plan
        if i % 7 == 3:
            later = fresh_plan(EXAMPLES[(i + 1) % len(EXAMPLES)], plan["patient"]["fnr"])
            later["authored"] = LATER
            lines.append(json.dumps(later, ensure_ascii=False))
            plans[len(lines)] = later
            pairs.append((len(lines) - 1, len(lines)))
        if i % 4 == 1:
            lines.append(next(bad, ""))
    invalid = fresh_plan("01-alt-pa-plass")
    invalid["patient"] = {"fnr": invalid["patient"]["fnr"][:-1] + "x"}
    lines.append(json.dumps(invalid))
    assert len(lines) == 30 and len(plans) == 24
    return lines, plans, pairs


def push_batch(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, list[JSON], str]:
    capsys.readouterr()
    code = main(["push", "--ndjson", *args])
    out, err = capsys.readouterr()
    return code, [json.loads(line) for line in out.splitlines()], err


def versions(fhir: Fhir, results: list[JSON]) -> dict[str, str]:
    """``Type/id`` → the server's current versionId, for every entry the delivered lines wrote."""
    out = {}
    for result in results:
        for entry in result.get("entries", []):
            ref = f"{entry['resourceType']}/{entry['id']}"
            out[ref] = fhir.get(ref).json()["meta"]["versionId"]
    return out


def test_push_ndjson_puts_each_good_plan_on_the_server_once_and_the_same_file_again_changes_nothing(
    outbox_at: str, hapi_base_url: str, fhir: Fhir, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lines, plans, pairs = batch_of_30()
    path = tmp_path / "plans.ndjson"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    outbox = outbox_at  # an SQLite file, then a PostgreSQL database
    args = (
        str(path),
        "--server",
        hapi_base_url,
        "--create-patient",
        "--outbox",
        outbox,
        "--workers",
        "4",
    )

    code, results, err = push_batch(capsys, *args)
    assert code == exitcodes.PARTIAL, err  # delivered and invalid lines
    assert "24 delivered" in err and "5 invalid" in err and "1 blank line(s) skipped" in err
    numbered = [n for n, text in enumerate(lines, start=1) if text.strip()]
    assert len(results) == len(numbered) == 29
    for number, result in zip(numbered, results, strict=True):
        if number in plans:
            assert (result["line"], result["status"]) == (number, "delivered"), result
            assert result["submissionId"] == plans[number]["submissionId"]
        else:
            assert result["resourceType"] == "OperationOutcome"
            assert all(i["diagnostics"].startswith(f"line {number}") for i in result["issue"])

    for plan in plans.values():
        token = f"{SUBMISSION_SYSTEM}|{plan['submissionId']}"
        for rtype in ("QuestionnaireResponse", "CarePlan", "Flag", "DocumentReference"):
            assert len(fhir.search(rtype, identifier=token)) == 1, (rtype, plan["submissionId"])
    for first, second in pairs:  # sent in input order: the later plan revised the earlier one
        (old,) = fhir.search("CarePlan", identifier=f"{SUBMISSION_SYSTEM}|{plans[first]['submissionId']}")
        (new,) = fhir.search("CarePlan", identifier=f"{SUBMISSION_SYSTEM}|{plans[second]['submissionId']}")
        assert (old["status"], new["status"]) == ("revoked", "active")
        assert new["replaces"] == [{"reference": f"CarePlan/{old['id']}"}]
    patients = {plan["patient"]["fnr"] for plan in plans.values()}
    for fnr in patients:
        assert len(fhir.search("Patient", identifier=f"urn:oid:2.16.578.1.12.4.1.4.1|{fnr}")) == 1
    before = versions(fhir, results)

    code, again, err = push_batch(capsys, *args)
    assert code == exitcodes.PARTIAL, err
    assert [r.get("status") for r in again] == [r.get("status") for r in results]
    assert versions(fhir, results) == before, "the same file again wrote no new version of anything"
    with open_outbox(outbox) as box:
        entries = box.list()
    assert sorted(e.submission_id for e in entries) == sorted(p["submissionId"] for p in plans.values())
    assert {e.status for e in entries} == {"delivered"}


def test_sigterm_mid_batch_leaves_every_accepted_plan_in_the_outbox_and_says_up_to_which_line(
    hapi_base_url: str, fhir: Fhir, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plans = [fresh_plan(EXAMPLES[i % len(EXAMPLES)]) for i in range(6)]
    outbox = tmp_path / "outbox.sqlite"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "fhir_safetyplan",
            "push",
            "--ndjson",
            "-",
            "--server",
            hapi_base_url,
            "--create-patient",
            "--outbox",
            str(outbox),
            "--workers",
            "2",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
    proc.stdin.write("".join(json.dumps(p) + "\n" for p in plans).encode())
    proc.stdin.flush()  # stdin stays open: the command is still reading when the signal comes
    first = json.loads(proc.stdout.readline())
    assert first["line"] == 1
    proc.send_signal(signal.SIGTERM)
    code = proc.wait(timeout=120)
    rest, err = proc.stdout.read(), proc.stderr.read()  # (communicate would miss what stdout has buffered)
    proc.stdin.close()
    assert code == exitcodes.INTERRUPTED, err.decode()
    *results, last = [first, *(json.loads(x) for x in rest.decode().splitlines())]
    read_up_to = int(last["issue"][0]["diagnostics"].split("read up to line ")[1].split()[0])
    assert [r["line"] for r in results] == list(range(1, read_up_to + 1))
    assert {r["status"] for r in results} <= {"delivered", "queued"}
    accepted = {p["submissionId"] for p in plans[:read_up_to]}
    with Outbox(outbox) as box:
        assert {e.submission_id for e in box.list()} == accepted, "every accepted plan is in the outbox"
    capsys.readouterr()
    assert main(["outbox", "flush", "--outbox", str(outbox)]) == exitcodes.OK
    for submission in accepted:
        token = f"{SUBMISSION_SYSTEM}|{submission}"
        assert len(fhir.search("QuestionnaireResponse", identifier=token)) == 1
