"""Two patients' plans queued under one submission id, against the real HAPI FHIR server: both are kept in
the outbox while the server is down, and once it is back each patient has their own plan, exactly once.

Senders number their messages themselves; two engines (or one that reuses a number) can give plans for two
patients the same submission id. The server ids are scoped by the patient; so is the outbox's key.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests

from fhir_safetyplan.cli import main
from fhir_safetyplan.delivery.outbox import Outbox

from .conftest import Fhir, fresh_identifier
from .test_delivery_hapi import FNR, SUBMISSION_SYSTEM, WRITTEN, fresh_fnr, fresh_plan, push, write
from .test_service_hapi import HEADERS, Proxy, RunningService, free_port, settings


def _proxy(hapi_base_url: str) -> tuple[Proxy, str]:
    """A loopback proxy to HAPI, not yet listening (the server is "down" until it is started)."""
    hapi = urlsplit(hapi_base_url)
    proxy = Proxy(free_port(), (hapi.hostname or "127.0.0.1", hapi.port or 80))
    return proxy, f"http://127.0.0.1:{proxy.port}{hapi.path}"


def _each_patient_has_their_own_plan_once(fhir: Fhir, submission: str, fnrs: list[str]) -> None:
    from fhir_safetyplan.ids import plan_scope, resource_id

    for fnr in fnrs:
        scope = plan_scope(submission, {"identifier": {"system": FNR, "value": fnr}})
        for rtype in WRITTEN:
            assert len(fhir.search(rtype, _id=resource_id(scope, rtype))) == 1, rtype
            if rtype != "Provenance":  # the others name the patient: this one, and only this plan
                found = fhir.search(rtype, **{"subject:Patient.identifier": f"{FNR}|{fnr}"})
                assert [r["id"] for r in found] == [resource_id(scope, rtype)], rtype
    responses = fhir.search("QuestionnaireResponse", identifier=f"{SUBMISSION_SYSTEM}|{submission}")
    assert len(responses) == 2  # one per patient, both under the sender's submission id


def test_push_of_one_submission_for_two_patients_while_the_server_is_down_delivers_both_once(
    hapi_base_url: str, fhir: Fhir, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    proxy, upstream = _proxy(hapi_base_url)
    submission, fnrs = fresh_identifier("shared"), [fresh_fnr(), fresh_fnr()]
    outbox = str(tmp_path / "outbox.sqlite")
    for fnr in fnrs:
        data: dict[str, Any] = fresh_plan("01-alt-pa-plass", fnr) | {"submissionId": submission}
        path = write(tmp_path, data, f"{fnr[:4]}.json")
        code, summary, err = push(
            capsys, str(path), "--server", upstream, "--create-patient", "--outbox", outbox
        )
        assert code == 4, err  # queued
        assert summary["submissionId"] == submission and summary["planKey"]
    with Outbox(outbox) as box:
        listed = [e.as_dict() for e in box.list()]
    assert [(e["submissionId"], e["status"]) for e in listed] == [(submission, "pending")] * 2
    assert len({e["planKey"] for e in listed}) == 2

    proxy.start()
    try:
        capsys.readouterr()
        assert main(["outbox", "flush", "--outbox", outbox]) == 0
        lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
        assert [(r["status"], r["submissionId"]) for r in lines] == [("delivered", submission)] * 2
        assert main(["outbox", "flush", "--outbox", outbox]) == 0  # nothing left to send again
    finally:
        proxy.stop()
    _each_patient_has_their_own_plan_once(fhir, submission, fnrs)


def test_the_service_keeps_one_submission_for_two_patients_apart_while_the_server_is_down(
    hapi_base_url: str, fhir: Fhir, tmp_path: Path
) -> None:
    proxy, upstream = _proxy(hapi_base_url)
    submission, fnrs = fresh_identifier("shared"), [fresh_fnr(), fresh_fnr()]
    with RunningService(settings(upstream, outbox=tmp_path / "outbox.sqlite", flush_interval=0.5)) as svc:
        for fnr in fnrs:
            data = fresh_plan("01-alt-pa-plass", fnr) | {"submissionId": submission}
            r = requests.post(
                f"{svc.url}/QuestionnaireResponse", data=json.dumps(data), headers=HEADERS, timeout=60
            )
            assert r.status_code == 202, r.text
            assert r.headers["X-Submission-Id"] == submission
        assert requests.get(f"{svc.url}/healthz", timeout=30).json()["outbox"]["pending"] == 2
        proxy.start()
        try:
            svc.wait_until_delivered(2, "the flusher to deliver both queued plans")
        finally:
            proxy.stop()
    _each_patient_has_their_own_plan_once(fhir, submission, fnrs)
