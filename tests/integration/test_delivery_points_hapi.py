"""Delivery points found by fault testing (issue 9: 1, 2, 4, 5, 8), against the real HAPI FHIR server.

- a plan for a patient the server does not know is this plan's content problem, named by identifier system
  (never the number), and it does not block the plans queued behind it;
- two flushers on one outbox deliver every plan once and record every one delivered;
- one unreadable outbox row is set aside and the rest delivered;
- the summary after a partial flush counts what the outbox really holds.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import requests

from fhir_safetyplan.cli import main
from fhir_safetyplan.delivery.outbox import Outbox

from .conftest import Fhir
from .test_delivery_hapi import FNR, SUBMISSION_SYSTEM, fresh_plan, push, write
from .test_faults_hapi import FaultProxy
from .test_service_hapi import HEADERS, RunningService, settings

JSON = dict[str, Any]
ROOT = Path(__file__).resolve().parents[2]


def _flush(capsys: pytest.CaptureFixture[str], outbox: Path, *extra: str) -> tuple[int, list[JSON], str]:
    capsys.readouterr()
    code = main(["outbox", "flush", "--outbox", str(outbox), *extra])
    out, err = capsys.readouterr()
    return code, [json.loads(line) for line in out.splitlines()], err


def _queue(server: str, plans: list[tuple[JSON, bool]], outbox: Path) -> None:
    """Store each plan in the outbox as pending, as a push to an unreachable server would (nothing sent)."""
    from fhir_safetyplan.bundle import submission_of
    from fhir_safetyplan.client import check_base_url
    from fhir_safetyplan.document import DocumentContext
    from fhir_safetyplan.pipeline import build_bundle

    with Outbox(outbox) as box:
        for data, create in plans:
            bundle = build_bundle(data, DocumentContext(create_patient=create))
            box.put(submission_of(bundle), bundle, check_base_url(server))


def _queued(base_url: str, tmp_path: Path, n: int) -> tuple[Path, list[JSON]]:
    """An outbox holding ``n`` fresh pending plans for ``base_url`` (with --create-patient)."""
    outbox = tmp_path / "outbox.sqlite"
    plans = [fresh_plan("02-flere-mangler") for _ in range(n)]
    _queue(base_url, [(p, True) for p in plans], outbox)
    return outbox, plans


def _count(fhir: Fhir, rtype: str, submission: str) -> int:
    return len(fhir.search(rtype, identifier=f"{SUBMISSION_SYSTEM}|{submission}"))


def _each_on_the_server_once(base_url: str, plans: list[JSON]) -> None:
    fhir = Fhir(base_url)
    assert [_count(fhir, "CarePlan", p["submissionId"]) for p in plans] == [1] * len(plans)


# ---- 9.1 a plan for a patient the server does not know ------------------------------------------------


def test_a_plan_for_a_patient_the_server_does_not_know_is_rejected_for_content_naming_the_system_not_the_number(
    hapi_base_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = fresh_plan("01-alt-pa-plass")  # no --create-patient: HAPI answers 404 HAPI-1091
    number = data["patient"]["fnr"]
    outbox = tmp_path / "outbox.sqlite"
    code, out, err = push(
        capsys, str(write(tmp_path, data)), "--server", hapi_base_url, "--outbox", str(outbox)
    )
    assert code == 3, err  # a content problem of this plan, not the configuration (7)
    assert "no Patient on the server has the identifier" in err and FNR in err
    assert "--create-patient" in err and "requeue" in err
    assert "FHIR base URL" not in err
    assert number not in err and number not in json.dumps(out)
    assert out["resourceType"] == "OperationOutcome"
    with Outbox(outbox) as box:
        (entry,) = box.list()
    assert entry.status == "rejected" and entry.last_error == "UnknownPatient (HTTP 404)"


def test_the_service_answers_422_for_a_plan_whose_patient_the_upstream_does_not_know(
    hapi_base_url: str, tmp_path: Path
) -> None:
    data = fresh_plan("01-alt-pa-plass")
    number = data["patient"]["fnr"]
    without_patient = replace(
        settings(hapi_base_url, outbox=tmp_path / "svc.sqlite", flush_interval=0), create_patient=False
    )
    with RunningService(without_patient) as svc:
        r = requests.post(f"{svc.url}/QuestionnaireResponse", json=data, headers=HEADERS, timeout=60)
    assert r.status_code == 422, r.text
    assert "no Patient on the server has the identifier" in r.text and number not in r.text
    assert "upstream URL" not in r.text


# ---- 9.2 one plan's problem affects that plan only ----------------------------------------------------


def test_a_plan_for_an_unknown_patient_first_in_the_outbox_does_not_block_the_plans_behind_it(
    hapi_base_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    outbox = tmp_path / "outbox.sqlite"
    unknown = fresh_plan("01-alt-pa-plass")
    good = [fresh_plan("02-flere-mangler") for _ in range(3)]
    _queue(hapi_base_url, [(unknown, False), *[(g, True) for g in good]], outbox)

    code, results, err = _flush(capsys, outbox)
    assert [r["status"] for r in results] == ["rejected", "delivered", "delivered", "delivered"]
    assert code == 3, err
    assert "3 delivered, 0 still queued, 0 held, 1 rejected" in err
    _each_on_the_server_once(hapi_base_url, good)


def test_the_services_background_flusher_is_not_blocked_by_a_plan_for_an_unknown_patient(
    hapi_base_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from fhir_safetyplan.service.sender import Delivery

    outbox = tmp_path / "svc.sqlite"
    unknown, good = fresh_plan("01-alt-pa-plass"), fresh_plan("05-streng-kontakt")
    _queue(hapi_base_url, [(unknown, False), (good, True)], outbox)
    delivery = Delivery(settings(hapi_base_url, outbox=outbox, flush_interval=0))
    results = delivery.flush_once()
    assert [r.status for r in results] == ["rejected", "delivered"]
    assert _count(Fhir(hapi_base_url), "CarePlan", good["submissionId"]) == 1


# ---- 9.4 two flushers on one outbox ---------------------------------------------------------------------


def _cli(*args: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SAFETYPLAN_")}
    return subprocess.Popen(
        [sys.executable, "-m", "fhir_safetyplan", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_two_flushes_at_once_deliver_every_plan_once_and_record_every_one_delivered(
    hapi_base_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    outbox, plans = _queued(hapi_base_url, tmp_path, 8)

    flushers = [_cli("outbox", "flush", "--outbox", str(outbox)) for _ in range(2)]
    finished = [(f.wait(timeout=240), *f.communicate()) for f in flushers]
    assert [code for code, _, _ in finished] == [0, 0], [err for _, _, err in finished]
    delivered = [json.loads(line)["submissionId"] for _, out, _ in finished for line in out.splitlines()]
    assert sorted(delivered) == sorted(p["submissionId"] for p in plans)  # each sent by exactly one
    with Outbox(outbox) as box:
        assert {e.status for e in box.list()} == {"delivered"}
    _each_on_the_server_once(hapi_base_url, plans)


def test_an_entry_never_leaves_delivered_and_requeue_agrees_with_list(
    hapi_base_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = fresh_plan("01-alt-pa-plass")
    outbox = tmp_path / "outbox.sqlite"
    path = str(write(tmp_path, data))
    code, _, err = push(capsys, path, "--server", hapi_base_url, "--create-patient", "--outbox", str(outbox))
    assert code == 0, err
    with Outbox(outbox) as box:
        (entry,) = box.list()
        # A late answer for the same revision (a racing flusher's 409) must not overwrite "delivered".
        assert (
            box.mark_rejected(entry.submission_id, "WriteConflict (HTTP 409)", revision=entry.revision)
            is False
        )
        assert box.get(entry.submission_id).status == "delivered"  # type: ignore[union-attr]
    capsys.readouterr()
    assert main(["outbox", "requeue", entry.submission_id, "--outbox", str(outbox)]) == 1
    assert "is delivered, not rejected" in capsys.readouterr().err


# ---- 9.5 one damaged row ----------------------------------------------------------------------------------


def test_one_unreadable_row_is_set_aside_and_the_healthy_plans_are_delivered(
    hapi_base_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    outbox, plans = _queued(hapi_base_url, tmp_path, 3)
    with sqlite3.connect(outbox) as conn:
        conn.execute(
            "UPDATE outbox SET bundle = '{not json' WHERE submission_id = ?", (plans[0]["submissionId"],)
        )

    capsys.readouterr()
    assert main(["outbox", "list", "--outbox", str(outbox)]) == 0  # a listing never reads bundles
    assert len(capsys.readouterr().out.splitlines()) == 3
    code, results, err = _flush(capsys, outbox)
    assert code == 7, err
    assert [r["status"] for r in results] == ["damaged", "delivered", "delivered"]
    assert "1 damaged (set aside)" in err and "outbox export" in err
    with Outbox(outbox) as box:
        assert [e.status for e in box.list()] == ["damaged", "delivered", "delivered"]
    fhir = Fhir(hapi_base_url)
    assert [_count(fhir, "CarePlan", p["submissionId"]) for p in plans] == [0, 1, 1]


# ---- 9.8 the summary after a partial flush ---------------------------------------------------------------


def test_the_summary_after_a_flush_cut_short_by_the_server_going_down_counts_what_is_still_queued(
    hapi_base_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    port = int(hapi_base_url.rsplit(":", 1)[1].split("/")[0])
    proxy = FaultProxy(port)
    proxy.faults = [None, None, "down", "down", "down", "down"]  # the third plan and its three retries
    via_proxy = f"http://127.0.0.1:{proxy.port}/fhir"
    outbox = tmp_path / "outbox.sqlite"
    try:
        _queue(via_proxy, [(fresh_plan("02-flere-mangler"), True) for _ in range(8)], outbox)
        code, results, err = _flush(capsys, outbox)
    finally:
        proxy.close()
    assert code == 4, err
    assert [r["status"] for r in results] == ["delivered", "delivered", "queued"]
    assert "2 delivered, 6 still queued, 0 held, 0 rejected" in err
    with Outbox(outbox) as box:
        assert box.counts()["pending"] == 6
