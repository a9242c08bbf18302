"""A PostgreSQL outbox in front of the real HAPI server: ``push --outbox postgresql://…`` delivers, and two
``outbox flush`` processes emptying one queue at the same time put every plan on the server exactly once.

(Service replicas, killed flushers and HAPI itself on PostgreSQL are the cluster tests' part.)
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from fhir_safetyplan import pipeline
from fhir_safetyplan.client import FhirClient
from fhir_safetyplan.delivery.store import open_outbox
from fhir_safetyplan.document import DocumentContext

from .conftest import Fhir
from .test_delivery_hapi import SUBMISSION_SYSTEM, fresh_plan, push, write


def test_push_through_a_postgresql_outbox_delivers_and_keeps_only_the_servers_ids(
    hapi_base_url: str, postgres_db: str, fhir: Fhir, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = fresh_plan("01-alt-pa-plass")
    path = write(tmp_path, data)
    code, summary, err = push(
        capsys, str(path), "--server", hapi_base_url, "--create-patient", "--outbox", postgres_db
    )
    assert code == 0, err
    assert summary["status"] == "delivered" and summary["outbox"].startswith("postgresql://")
    token = f"{SUBMISSION_SYSTEM}|{data['submissionId']}"
    assert len(fhir.search("QuestionnaireResponse", identifier=token)) == 1
    with open_outbox(postgres_db) as box:
        (entry,) = box.list()
        assert entry.status == "delivered" and box.get(entry.plan_key).bundle is None  # type: ignore[union-attr]


def test_two_flush_processes_on_one_postgresql_outbox_deliver_every_plan_exactly_once(
    hapi_base_url: str, postgres_db: str, fhir: Fhir
) -> None:
    with FhirClient(hapi_base_url) as client:
        server = client.base_url  # as push keeps it on the entry
    plans = [fresh_plan("02-flere-mangler") for _ in range(8)]
    with open_outbox(postgres_db) as box:  # queued while the server was away
        for data in plans:
            bundle = pipeline.build_bundle(data, DocumentContext(create_patient=True))
            box.put(data["submissionId"], bundle, server)
    flushers = [
        subprocess.Popen(
            [sys.executable, "-m", "fhir_safetyplan", "outbox", "flush", "--outbox", postgres_db],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [f.communicate(timeout=300) for f in flushers]
    assert [f.returncode for f in flushers] == [0, 0], [err for _, err in outputs]
    sent = [json.loads(line)["submissionId"] for out, _ in outputs for line in out.splitlines()]
    assert sorted(sent) == sorted(d["submissionId"] for d in plans)  # each plan sent by one flusher only
    for data in plans:
        token = f"{SUBMISSION_SYSTEM}|{data['submissionId']}"
        assert len(fhir.search("QuestionnaireResponse", identifier=token)) == 1
        assert len(fhir.search("CarePlan", identifier=token)) == 1
    with open_outbox(postgres_db) as box:
        assert box.counts() == {"pending": 0, "delivered": 8, "rejected": 0, "damaged": 0}
