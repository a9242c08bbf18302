"""Two first plans for one patient at the same moment, against the real HAPI FHIR server: from two threads and
from two processes on one outbox, both lookups done before either write (a barrier in the client, the server
is not mocked). The patient ends with one active CarePlan and one active safety Flag, the newer conversation's;
the older is retired or held as a conflict; both responses are on the server; resends change nothing.
"""

from __future__ import annotations

import multiprocessing
import threading
from pathlib import Path
from typing import Any, Protocol

import pytest

from fhir_safetyplan import pipeline, simultaneous
from fhir_safetyplan.client import FhirClient
from fhir_safetyplan.content import load
from fhir_safetyplan.delivery.deliver import deliver, flush
from fhir_safetyplan.delivery.outbox import Outbox

from .conftest import Fhir
from .test_delivery_hapi import FNR, fresh_fnr
from .test_revision_hapi import CONTACTS, DATES, by_submission, conversation, ours, versions

JSON = dict[str, Any]


class Waits(Protocol):
    def wait(self, timeout: float | None = None) -> int: ...


class RacingClient(FhirClient):
    """A real client that waits at a barrier before its first write (a transaction, not a lookup's batch) and
    at another after it: both senders have read "no plan" before either writes, and both plans are on the
    server before either checks again, so both checks see both plans. ``turn``: (wait for this before the
    second write, set this after it), to choose which sender's second write reaches the server first."""

    def __init__(
        self, base_url: str, barriers: tuple[Waits, Waits], turn: tuple[Any, Any] | None = None
    ) -> None:
        super().__init__(base_url)
        self._barriers = barriers
        self._writes = 0
        self._turn = turn or (None, None)

    def transaction(self, bundle: JSON, **kwargs: Any) -> JSON:
        if bundle.get("type") != "transaction":
            return super().transaction(bundle, **kwargs)
        self._writes += 1
        if self._writes == 1:
            self._barriers[0].wait(timeout=30)
        elif self._writes == 2 and self._turn[0] is not None:
            self._turn[0].wait(timeout=30)
        try:
            return super().transaction(bundle, **kwargs)
        finally:
            if self._writes == 1:
                self._barriers[1].wait(timeout=30)
            elif self._writes == 2 and self._turn[1] is not None:
                self._turn[1].set()


def _two_conversations(fhir: Fhir) -> tuple[JSON, JSON]:
    """(older, newer) conversations of a fresh patient who is on the server and has no plan yet."""
    fnr = fresh_fnr()
    older, newer = conversation(fnr, DATES[0], CONTACTS[0]), conversation(fnr, DATES[1], CONTACTS[1])
    with_patient = pipeline.build_bundle(older, pipeline.DocumentContext(create_patient=True))
    patient = [e for e in with_patient["entry"] if e["resource"]["resourceType"] == "Patient"]
    assert fhir.transaction({"resourceType": "Bundle", "type": "transaction", "entry": patient}).ok
    return older, newer


def _send(
    base_url: str,
    data: JSON,
    outbox: Path,
    barriers: tuple[Waits, Waits],
    turn: tuple[Any, Any] | None = None,
) -> str:
    with RacingClient(base_url, barriers, turn) as client, Outbox(outbox) as box:
        bundle = pipeline.build_bundle(data)
        return deliver(bundle, client, outbox=box, submission_id=data["submissionId"]).status


def _send_in_process(base_url: str, data: JSON, outbox: Path, barriers: Any, results: Any) -> None:
    results.put((data["submissionId"], _send(base_url, data, outbox, barriers)))


def _flushed(base_url: str, outbox: Path, statuses: dict[str, str]) -> dict[str, str]:
    """The statuses once a plan queued in the race (HAPI can answer one of two concurrent first writes on a
    fresh database with a 500) has been sent by a flush, as the service's sender would."""
    with FhirClient(base_url) as client, Outbox(outbox) as box:
        for result in flush(box, lambda _url: client, close_clients=False):
            statuses[result.submission_id] = result.status
    return statuses


def _one_current_plan_the_newer(fhir: Fhir, older: JSON, newer: JSON, statuses: dict[str, str]) -> None:
    fnr = older["patient"]["fnr"]
    old_id, new_id = older["submissionId"], newer["submissionId"]
    careplans, flags = by_submission(ours(fhir, "CarePlan", fnr)), by_submission(ours(fhir, "Flag", fnr))
    assert [s for s, r in careplans.items() if r["status"] == "active"] == [new_id]
    assert [s for s, r in flags.items() if r["status"] == "active"] == [new_id]
    assert careplans[old_id]["status"] == "revoked" and flags[old_id]["status"] == "inactive"
    responses = fhir.search("QuestionnaireResponse", **{"subject:Patient.identifier": f"{FNR}|{fnr}"})
    assert {r["identifier"]["value"] for r in responses} == {old_id, new_id}  # nothing lost
    assert statuses[new_id] == "delivered"
    if statuses[old_id] == "conflict":  # the older saw the newer and retired itself: held for a person
        reason = load().text("revision", field=simultaneous.REASON).get("nb")
        assert careplans[old_id]["note"][-1]["text"] == reason
    else:  # the newer's revision retired the older first: the order "older, then newer"
        assert statuses[old_id] == "delivered"
        assert {"reference": f"CarePlan/{careplans[old_id]['id']}"} in careplans[new_id]["replaces"]


def _resends_change_nothing(
    base_url: str, fhir: Fhir, older: JSON, newer: JSON, statuses: dict[str, str], outbox: Path
) -> None:
    fnr = older["patient"]["fnr"]
    written = versions(fhir, fnr)
    with FhirClient(base_url) as client, Outbox(outbox) as box:
        for data in (older, newer):
            entry = box.get(
                next(e.plan_key for e in box.list() if e.submission_id == data["submissionId"]), base_url
            )
            assert entry is not None and entry.status == (
                "rejected" if statuses[data["submissionId"]] == "conflict" else "delivered"
            )
            again = deliver(pipeline.build_bundle(data), client, submission_id=data["submissionId"])
            assert again.status == statuses[data["submissionId"]]
    assert versions(fhir, fnr) == written


@pytest.mark.parametrize("retires_first", ["older", "newer"])
def test_two_first_plans_from_two_threads_leave_the_newer_conversations_plan_current(
    hapi_base_url: str, fhir: Fhir, tmp_path: Path, retires_first: str
) -> None:
    # Both read "no plan", both write, both check and see both; then the older's retirement of itself and the
    # newer's revision (which retires the older too) go to the server in the order given.
    older, newer = _two_conversations(fhir)
    outbox = tmp_path / "outbox.sqlite"
    Outbox(outbox).close()  # the replicas share an outbox that exists already
    barriers = (threading.Barrier(2), threading.Barrier(2))
    first_done = threading.Event()
    turns = {"older": (None, first_done), "newer": (first_done, None)}
    if retires_first == "newer":
        turns = {"older": (first_done, None), "newer": (None, first_done)}
    statuses: dict[str, str] = {}

    def run(data: JSON, turn: tuple[Any, Any]) -> None:
        statuses[data["submissionId"]] = _send(hapi_base_url, data, outbox, barriers, turn)

    threads = [
        threading.Thread(target=run, args=(older, turns["older"])),
        threading.Thread(target=run, args=(newer, turns["newer"])),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert len(statuses) == 2, statuses
    raced = dict(statuses)
    statuses = _flushed(hapi_base_url, outbox, statuses)
    _one_current_plan_the_newer(fhir, older, newer, statuses)
    if "queued" not in raced.values():  # (HAPI can refuse one of two concurrent writes on a fresh database)
        # the older retired itself first: held for a person; the newer's revision first: the older delivered
        assert raced[older["submissionId"]] == ("conflict" if retires_first == "older" else "delivered")
    _resends_change_nothing(hapi_base_url, fhir, older, newer, statuses, outbox)


def test_two_first_plans_from_two_processes_on_one_outbox_leave_the_newer_conversations_plan_current(
    hapi_base_url: str, fhir: Fhir, tmp_path: Path
) -> None:
    ctx = multiprocessing.get_context("fork")
    older, newer = _two_conversations(fhir)
    outbox = tmp_path / "outbox.sqlite"
    Outbox(outbox).close()
    barriers = (ctx.Barrier(2), ctx.Barrier(2))
    results = ctx.Queue()
    procs = [
        ctx.Process(target=_send_in_process, args=(hapi_base_url, d, outbox, barriers, results))
        for d in (newer, older)
    ]
    for p in procs:
        p.start()
    statuses = dict(results.get(timeout=120) for _ in procs)
    for p in procs:
        p.join(timeout=30)
        assert p.exitcode == 0
    statuses = _flushed(hapi_base_url, outbox, statuses)
    _one_current_plan_the_newer(fhir, older, newer, statuses)
    _resends_change_nothing(hapi_base_url, fhir, older, newer, statuses, outbox)


def test_a_resend_of_the_older_plan_whose_check_never_ran_retires_it(
    hapi_base_url: str, fhir: Fhir, tmp_path: Path
) -> None:
    # Both were written as first plans and neither checked (the senders stopped): two active plans. The
    # next delivery of the older converges.
    older, newer = _two_conversations(fhir)
    with FhirClient(hapi_base_url) as client:
        for data in (older, newer):
            client.transaction(pipeline.build_bundle(data))
        held = deliver(pipeline.build_bundle(older), client, submission_id=older["submissionId"])
        assert held.status == "conflict" and "arrived at the same time" in (held.reason or "")
        statuses = {older["submissionId"]: "conflict", newer["submissionId"]: "delivered"}
    _one_current_plan_the_newer(fhir, older, newer, statuses)
