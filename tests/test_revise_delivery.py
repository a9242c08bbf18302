"""Delivering a revision through deliver(): the answer to a guarded write that got lost, and a write that lost a
race, against a scripted server that keeps versions and honours ifMatch (the real one: tests/integration)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import responses
from _searches import stored
from test_revise import FIRST, SECOND, after, conversation

from fhir_safetyplan import exitcodes
from fhir_safetyplan.client import FhirClient
from fhir_safetyplan.delivery.deliver import deliver
from fhir_safetyplan.delivery.outbox import Outbox
from fhir_safetyplan.errors import ConfigError

JSON = dict[str, Any]
BASE = "http://fhir.test/fhir"


class VersionedServer:
    """Keeps resources with versions; a batch of searches finds all of them (one patient); a transaction fails
    with 412 when an ifMatch names an old version, else it is applied. ``before_write`` runs just before a
    transaction is applied; ``lose_answer`` drops the answer of the next applied transaction."""

    def __init__(self) -> None:
        self.state: dict[tuple[str, str], JSON] = {}
        self.before_write: Callable[[], None] = lambda: None
        self.lose_answer = False
        self.writes = 0

    def __call__(self, request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
        bundle = json.loads(request.body or b"{}")
        if bundle["type"] == "batch":
            found = {"resourceType": "Bundle", "type": "searchset", "entry": []}
            found["entry"] = [{"resource": r} for r in self.state.values()]
            entries = [{"resource": found, "response": {"status": "200 OK"}} for _ in bundle["entry"]]
            return 200, {}, json.dumps({"resourceType": "Bundle", "type": "batch-response", "entry": entries})
        self.before_write()
        self.before_write = lambda: None
        for e in bundle["entry"]:
            match = e["request"].get("ifMatch")
            held = self.state.get((e["resource"]["resourceType"], e["resource"].get("id", "")))
            if match and (held is None or match != f'W/"{held["meta"]["versionId"]}"'):
                outcome = {
                    "resourceType": "OperationOutcome",
                    "issue": [{"severity": "error", "code": "conflict"}],
                }
                return 412, {}, json.dumps(outcome)
        self.write(bundle)
        if self.lose_answer:
            self.lose_answer = False
            raise requests.ConnectionError("connection reset after the server committed")
        answer = [
            {"response": {"status": "200 OK", "location": e["request"]["url"]}} for e in bundle["entry"]
        ]
        return (
            200,
            {},
            json.dumps({"resourceType": "Bundle", "type": "transaction-response", "entry": answer}),
        )

    def write(self, bundle: JSON) -> None:
        self.writes += 1
        self.state = after(self.state, bundle)

    def active(self, rtype: str) -> list[str]:
        return [
            r["identifier"][0]["value"]
            for (t, _), r in self.state.items()
            if t == rtype and r["status"] == "active"
        ]

    def version(self, rtype: str, submission: str) -> str:
        (r,) = [
            r for (t, _), r in self.state.items() if t == rtype and r["identifier"][0]["value"] == submission
        ]
        return str(r["meta"]["versionId"])


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[VersionedServer]:
    monkeypatch.setattr("fhir_safetyplan.client._retry.time.sleep", lambda s: None)
    fake = VersionedServer()
    fake.state = {(r["resourceType"], r["id"]): r for r in stored(conversation("c1", FIRST))}
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        rsps.add_callback(responses.POST, BASE, callback=fake)
        yield fake


def test_a_revision_whose_answer_was_lost_is_delivered_once_when_its_retry_meets_the_conflict(
    server: VersionedServer, tmp_path: Path
) -> None:
    server.lose_answer = True
    with FhirClient(BASE) as client, Outbox(tmp_path / "outbox.sqlite") as box:
        result = deliver(conversation("c2", SECOND), client, outbox=box, submission_id="c2")
        entry = box.get("c2")
    assert result.status == "delivered" and entry is not None and entry.status == "delivered"
    assert server.active("CarePlan") == ["c2"] and server.active("Flag") == ["c2"]
    assert server.version("CarePlan", "c1") == "2"  # retired once: the resend retired nothing again


def test_a_revision_that_lost_the_race_writes_nothing_and_is_held_for_a_person(
    server: VersionedServer, tmp_path: Path
) -> None:
    rival = conversation("r", SECOND)
    # Someone else's revision of the same plan lands between our read and our write.
    server.before_write = lambda: server.write(revise_against(server, rival))
    with FhirClient(BASE) as client, Outbox(tmp_path / "outbox.sqlite") as box:
        result = deliver(conversation("c2", SECOND), client, outbox=box, submission_id="c2")
        entry = box.get("c2")
    assert result.status == "conflict" and result.exit_code == exitcodes.CONFLICT
    assert "revised by someone else" in str(result.reason) and "submission r" in str(result.reason)
    assert entry is not None and entry.status == "rejected" and entry.last_error == "RevisionConflict"
    assert server.writes == 1 and server.active("CarePlan") == ["r"]


def revise_against(server: VersionedServer, bundle: JSON) -> JSON:
    from fhir_safetyplan import current_plan, revise

    plans = current_plan.group(list(server.state.values()), str(bundle["identifier"]["system"]), "r")
    revised = revise.revise(bundle, plans).bundle
    assert revised is not None
    return revised


def test_a_server_that_refuses_the_searches_for_the_current_plan_keeps_the_plan_pending(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    outcome = {"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "not-supported"}]}
    with (
        responses.RequestsMock() as rsps,
        FhirClient(BASE) as client,
        Outbox(tmp_path / "outbox.sqlite") as box,
    ):
        rsps.add(responses.POST, BASE, json=outcome, status=400)
        with pytest.raises(ConfigError, match="searches for the patient's current plan") as info:
            deliver(conversation("c2", SECOND), client, outbox=box, submission_id="c2")
        entry = box.get("c2")
    assert info.value.exit_code == exitcodes.CONFIG
    assert entry is not None and entry.status == "pending" and entry.bundle is not None
