"""One patient's failed current-plan lookup is that plan's problem: the outbox goes on with the next plan."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import responses
from test_revise import FIRST, SECOND, conversation
from test_revise_delivery import BASE, VersionedServer

from fhir_safetyplan.client import FhirClient
from fhir_safetyplan.delivery.deliver import flush
from fhir_safetyplan.delivery.outbox import Outbox

JSON = dict[str, Any]


def _failing_lookup_of(submission: str, fake: VersionedServer, answer: Callable[[JSON], JSON]) -> Any:
    def callback(request: Any) -> tuple[int, dict[str, str], str]:
        body = json.loads(request.body)
        urls = [e["request"]["url"] for e in body["entry"]]
        if body["type"] == "batch" and any(f"|{submission}" in u or f"%7C{submission}" in u for u in urls):
            return (
                200,
                {},
                json.dumps({"resourceType": "Bundle", "type": "batch-response", "entry": answer(body)}),
            )
        result: tuple[int, dict[str, str], str] = fake(request)
        return result

    return callback


def _search_refused(body: JSON) -> list[JSON]:
    outcome = {"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "invalid"}]}
    return [{"response": {"status": "400 Bad Request", "outcome": outcome}} for _ in body["entry"]]


def _search_raced(body: JSON) -> list[JSON]:
    """HAPI's answer when its storage lost a race with another request (seen under load, not on demand): a 409
    entry whose diagnostics quote the conflicting key, here a conditional-create URL with an identity number."""
    diagnostics = (
        "HAPI-0550: HAPI-0826: The operation has failed with a version constraint failure. This generally means "
        "that two clients/threads were trying to update the same resource at the same time (Patient?identifier="
        "urn:oid:2.16.578.1.12.4.1.4.1|13098412345)"
    )
    outcome = {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": "processing", "diagnostics": diagnostics}],
    }
    return [
        {"response": {"status": "409 Conflict", "outcome": outcome}},
        *[{"response": {"status": "200 OK"}} for _ in body["entry"][1:]],
    ]


def _more_than_one_page(body: JSON) -> list[JSON]:
    page = {"resourceType": "Bundle", "type": "searchset", "link": [{"relation": "next", "url": BASE}]}
    return [{"resource": page, "response": {"status": "200 OK"}} for _ in body["entry"]]


@pytest.mark.parametrize(
    ("answer", "status"),
    [(_search_refused, "rejected"), (_more_than_one_page, "rejected"), (_search_raced, "pending")],
)
def test_a_plan_whose_lookup_fails_for_its_patient_does_not_stop_the_next_plan(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, answer: Callable[[JSON], list[JSON]], status: str
) -> None:
    monkeypatch.setattr("fhir_safetyplan.client._retry.time.sleep", lambda s: None)
    fake = VersionedServer()
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        rsps.add_callback(responses.POST, BASE, callback=_failing_lookup_of("cA", fake, answer))
        with Outbox(tmp_path / "outbox.sqlite") as box:
            box.put("cA", conversation("cA", FIRST), BASE)
            box.put("cB", conversation("cB", SECOND), BASE)
            results = flush(box, lambda url: FhirClient(url))
            held, delivered = box.get("cA"), box.get("cB")
    assert [r.submission_id for r in results] == ["cA", "cB"]
    assert delivered is not None and delivered.status == "delivered"
    assert held is not None and held.status == status and held.bundle is not None
    assert "13098412345" not in (held.last_error or "")  # the server's diagnostics are not kept
