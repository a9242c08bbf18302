"""Delivery: 0 plans lost, 0 duplicated, rejections explained, real identity numbers kept off public hosts."""

from __future__ import annotations

import base64
import json
import logging
from datetime import date
from typing import Any

import pytest
import requests
import responses
from _searches import empty_searches

from fhir_safetyplan import exitcodes
from fhir_safetyplan.client import FhirClient, ServerConfigError, ServerRejected, ServerUnavailable
from fhir_safetyplan.delivery.deliver import DeliveryResult, deliver, flush
from fhir_safetyplan.delivery.guard import RefusedByPolicy, guard_public_server, host_list
from fhir_safetyplan.delivery.store import open_outbox
from fhir_safetyplan.errors import InputError

BASE = "http://127.0.0.1:8080/fhir"
SANDBOX = "https://hapi.fhir.org/baseR4"
FNR_SYSTEM = "urn:oid:2.16.578.1.12.4.1.4.1"
DNR_SYSTEM = "urn:oid:2.16.578.1.12.4.1.4.2"
NAME = "Kari Testesen"


def journal_bundle(sid: str, identity_number: str | None = None) -> dict[str, Any]:
    """A small idempotent journal bundle: PUTs with ids derived from the submission, conditional Patient."""
    patient: dict[str, Any] = {"resourceType": "Patient", "name": [{"text": NAME}]}
    if identity_number:
        patient["identifier"] = [{"system": FNR_SYSTEM, "value": identity_number}]
    return {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": "urn:uuid:11111111-1111-4111-8111-111111111111",
                "resource": patient,
                "request": {"method": "POST", "url": "Patient", "ifNoneExist": f"identifier=urn:test|{sid}"},
            },
            *(
                {
                    "resource": {"resourceType": t, "id": f"{t.lower()}-{sid}"},
                    "request": {"method": "PUT", "url": f"{t}/{t.lower()}-{sid}"},
                }
                for t in ("QuestionnaireResponse", "CarePlan", "DocumentReference")
            ),
        ],
    }


class FakeHapi:
    """Just enough of a FHIR server to count copies: PUT upserts by id, conditional POST matches by condition.

    ``faults`` are applied to the next requests in order: an exception to raise *after* the transaction was
    committed (a lost answer), or a status to answer *without* committing.
    """

    def __init__(self) -> None:
        self.store: dict[str, dict[str, Any]] = {}
        self.conditions: dict[str, str] = {}
        self.faults: list[Any] = []
        self.requests = 0
        self.searches = 0
        self.next_id = 0

    def copies(self, resource_type: str) -> int:
        return sum(1 for key in self.store if key.startswith(resource_type + "/"))

    def __call__(self, request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
        bundle = json.loads(request.body or b"{}")
        searches = empty_searches(bundle)
        if searches is not None:  # the current-plan lookup before a journal bundle: no plans here
            self.searches += 1
            return 200, {}, json.dumps(searches)
        self.requests += 1
        fault = self.faults.pop(0) if self.faults else None
        if isinstance(fault, int):
            return fault, {"Retry-After": "1"}, json.dumps({"resourceType": "OperationOutcome", "issue": []})
        out = []
        for entry in bundle["entry"]:
            req, res = entry["request"], entry["resource"]
            if req["method"] == "PUT":
                key = req["url"]
                status = "200 OK" if key in self.store else "201 Created"
            elif req.get("ifNoneExist") and req["ifNoneExist"] in self.conditions:
                key, status = self.conditions[req["ifNoneExist"]], "200 OK"
            else:
                self.next_id += 1
                key, status = f"{res['resourceType']}/{self.next_id}", "201 Created"
                if req.get("ifNoneExist"):
                    self.conditions[req["ifNoneExist"]] = key
            self.store[key] = res
            out.append({"response": {"status": status, "location": f"{key}/_history/1"}})
        if isinstance(fault, BaseException):
            raise fault  # committed, but the answer never reaches the client
        return 200, {}, json.dumps({"resourceType": "Bundle", "type": "transaction-response", "entry": out})


@pytest.fixture
def server():
    fake = FakeHapi()
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        rsps.add_callback(responses.POST, BASE, callback=fake)
        rsps.add_callback(responses.POST, SANDBOX, callback=fake)
        yield fake


@pytest.fixture(autouse=True)
def no_waiting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("fhir_safetyplan.client._retry.time.sleep", lambda s: None)
    monkeypatch.delenv("SAFETYPLAN_PUBLIC_HOSTS", raising=False)


@pytest.fixture
def box(outbox_at: str):
    """An outbox of each store: SQLite, then PostgreSQL (the ``outbox_at`` fixture)."""
    with open_outbox(outbox_at) as ob:
        yield ob


@pytest.fixture
def client() -> FhirClient:
    return FhirClient(BASE)


# ---- the happy path and the outbox contract ----------------------------------------------------------


def test_delivered_plan_reports_locations_and_leaves_the_outbox_clean(server, client, box):
    result = deliver(journal_bundle("s1"), client, outbox=box, submission_id="s1")
    assert result.status == "delivered" and result.exit_code == exitcodes.OK
    assert [e.resource_type for e in result.entries] == [
        "Patient",
        "QuestionnaireResponse",
        "CarePlan",
        "DocumentReference",
    ]
    assert result.entries[2].location == "CarePlan/careplan-s1/_history/1"
    entry = box.get("s1")
    assert entry is not None and entry.status == "delivered" and entry.bundle is None
    assert entry.response_summary is not None and entry.response_summary[2]["id"] == "careplan-s1"


def test_the_plan_is_in_the_outbox_before_the_request_leaves(client, box):
    fake = FakeHapi()
    seen: list[str | None] = []

    def spy(request: requests.PreparedRequest) -> Any:
        entry = box.get("s1")
        seen.append(entry.status if entry else None)
        return fake(request)

    with responses.RequestsMock() as rsps:
        rsps.add_callback(responses.POST, BASE, callback=spy)
        deliver(journal_bundle("s1"), client, outbox=box, submission_id="s1")
    assert seen == ["pending"]


def test_without_an_outbox_an_unreachable_server_raises(server, client):
    server.faults = [503] * 4
    with pytest.raises(ServerUnavailable) as info:
        deliver(journal_bundle("s1"), client, submission_id="s1")
    assert info.value.exit_code == exitcodes.UNAVAILABLE


def test_with_an_outbox_an_unreachable_server_queues_the_plan(server, client, box):
    server.faults = [503] * 4
    result = deliver(journal_bundle("s1"), client, outbox=box, submission_id="s1")
    assert result.status == "queued" and result.exit_code == exitcodes.QUEUED
    (entry,) = box.pending()
    assert entry.attempts == 1 and entry.last_error == "ServerUnavailable (HTTP 503)"
    assert server.copies("CarePlan") == 0


def test_rejection_raises_with_the_servers_outcome_and_leaves_the_queue(client, box):
    outcome = {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": "processing", "diagnostics": "HAPI-1821: bad code"}],
    }
    with responses.RequestsMock() as rsps:
        rsps.post(BASE, status=422, json=outcome)
        with pytest.raises(ServerRejected) as info:
            deliver(journal_bundle("s1"), client, outbox=box, submission_id="s1")
    assert info.value.outcome == outcome
    assert box.pending() == []
    (entry,) = box.list("rejected")
    assert entry.last_error == "ServerRejected (HTTP 422)"


def test_a_bundle_that_could_duplicate_is_not_accepted_into_the_outbox(server, client, box):
    bundle = journal_bundle("s1")
    bundle["entry"][0]["request"].pop("ifNoneExist")
    with pytest.raises(InputError, match="duplicates"):
        deliver(bundle, client, outbox=box, submission_id="s1")
    assert box.list() == [] and server.requests == 0


def test_a_submission_id_is_required(client):
    with pytest.raises(InputError):
        deliver(journal_bundle("s1"), client, submission_id="")


# ---- faults: 0 lost, 0 duplicated ---------------------------------------------------------------------


def test_retry_after_timeout_creates_no_duplicate(server, client, box):
    server.faults = [requests.exceptions.ReadTimeout("read timed out")]  # committed, answer lost
    result = deliver(journal_bundle("s1"), client, outbox=box, submission_id="s1")
    assert result.status == "delivered"
    assert server.requests == 2
    assert (server.copies("Patient"), server.copies("CarePlan"), server.copies("DocumentReference")) == (
        1,
        1,
        1,
    )


def test_connection_reset_after_commit_creates_no_duplicate(server, client, box):
    server.faults = [requests.ConnectionError("Connection reset by peer")]
    deliver(journal_bundle("s1"), client, outbox=box, submission_id="s1")
    assert (server.copies("Patient"), server.copies("CarePlan")) == (1, 1)


def test_429_then_success_delivers_once(server, client, box):
    server.faults = [429, 429]
    assert deliver(journal_bundle("s1"), client, outbox=box, submission_id="s1").status == "delivered"
    assert server.copies("CarePlan") == 1 and server.requests == 3


def test_pushing_the_same_submission_three_times_leaves_one_of_each(server, client, box):
    for _ in range(3):
        deliver(journal_bundle("s1"), client, outbox=box, submission_id="s1")
    assert len(server.store) == 4  # Patient, QuestionnaireResponse, CarePlan, DocumentReference
    assert len(box.list()) == 1


def test_server_down_then_flush_delivers_exactly_once_in_order(server, client, box):
    # Every try fails with the answer lost after commit: the worst case for duplicates.
    server.faults = [requests.ConnectionError("reset")] * 4 + [503] * 4
    assert deliver(journal_bundle("s1"), client, outbox=box, submission_id="s1").status == "queued"
    assert deliver(journal_bundle("s2"), client, outbox=box, submission_id="s2").status == "queued"
    assert [e.submission_id for e in box.pending()] == ["s1", "s2"]

    results = flush(box, lambda url: FhirClient(url))
    assert [(r.submission_id, r.status) for r in results] == [("s1", "delivered"), ("s2", "delivered")]
    assert box.pending() == []
    assert server.copies("CarePlan") == 2 and server.copies("Patient") == 2
    assert flush(box, lambda url: FhirClient(url)) == []


def test_flush_stops_at_the_first_plan_the_server_cannot_take(server, box):
    for sid in ("s1", "s2", "s3"):
        box.put(sid, journal_bundle(sid), BASE)
    server.faults = [None, 503, 503, 503, 503]
    results = flush(box, lambda url: FhirClient(url))
    assert [(r.submission_id, r.status) for r in results] == [("s1", "delivered"), ("s2", "queued")]
    assert [e.submission_id for e in box.pending()] == ["s2", "s3"]


def test_flush_reports_a_rejected_plan_and_goes_on(box):
    for sid in ("s1", "s2"):
        box.put(sid, journal_bundle(sid), BASE)
    fake = FakeHapi()
    with responses.RequestsMock(registry=responses.registries.OrderedRegistry) as rsps:
        rsps.post(BASE, status=400, json={"resourceType": "OperationOutcome", "issue": []})
        rsps.add_callback(responses.POST, BASE, callback=fake)
        results = flush(box, lambda url: FhirClient(url))
    assert [(r.status, r.exit_code) for r in results] == [
        ("rejected", exitcodes.REJECTED),
        ("delivered", exitcodes.OK),
    ]
    assert box.list("rejected")[0].submission_id == "s1"


def test_flush_makes_one_client_per_server(server, box):
    made: list[str] = []
    for sid in ("s1", "s2"):
        box.put(sid, journal_bundle(sid), BASE)

    def factory(url: str) -> FhirClient:
        made.append(url)
        return FhirClient(url)

    flush(box, factory)
    assert made == [BASE]


# ---- the public-sandbox guard -------------------------------------------------------------------------


def _check_digit(digits: str, weights: tuple[int, ...]) -> int | None:
    k = (11 - sum(int(d) * w for d, w in zip(digits, weights, strict=True)) % 11) % 11
    return None if k == 10 else k


def _with_check_digits(first9: str) -> str | None:
    """The 11-digit number with mod-11 check digits (computed here, independently of identifiers.py)."""
    k1 = _check_digit(first9, (3, 7, 6, 1, 8, 9, 4, 5, 2))
    if k1 is None:
        return None
    k2 = _check_digit(f"{first9}{k1}", (5, 4, 3, 2, 7, 6, 5, 4, 3, 2))
    return None if k2 is None else f"{first9}{k1}{k2}"


def real_looking(day_offset: int = 0) -> str:
    """Valid check digits and an ordinary date: the shape of a real person's number (never sent anywhere).

    Built at test time rather than written down; ``day_offset=40`` gives a D-number.
    """
    for individual in range(499, 399, -1):
        number = _with_check_digits(f"{15 + day_offset:02d}0385{individual}")
        if number:
            return number
    raise AssertionError("no valid number in the series")


@pytest.fixture
def identifiers():
    return pytest.importorskip("fhir_safetyplan.identifiers")


def test_a_real_looking_number_is_refused_for_the_public_sandbox(identifiers, server, box):
    number = real_looking()
    assert identifiers.is_real_looking(number)
    client = FhirClient(SANDBOX)
    with pytest.raises(RefusedByPolicy) as info:
        deliver(journal_bundle("s1", number), client, outbox=box, submission_id="s1")
    err = info.value
    assert err.exit_code == exitcodes.REFUSED
    assert "hapi.fhir.org" in str(err) and "Bundle.entry[0].resource.identifier[0].value" in str(err)
    assert number not in str(err) and number not in json.dumps(err.outcome)
    assert server.requests == 0 and box.list() == []  # neither sent nor stored


@pytest.mark.parametrize("style", ["tenor", "nav"])
def test_synthetic_numbers_may_go_to_the_public_sandbox(identifiers, server, style):
    number = identifiers.synthetic_fnr(date(1985, 3, 15), style=style)
    result = deliver(journal_bundle("s1", number), FhirClient(SANDBOX), submission_id="s1")
    assert result.status == "delivered"


def test_a_real_looking_number_may_go_to_our_own_server(identifiers, server, client):
    assert deliver(journal_bundle("s1", real_looking()), client, submission_id="s1").status == "delivered"


def test_listed_hosts_and_their_subdomains_count_as_public(identifiers):
    bundle = journal_bundle("s1", real_looking())
    with pytest.raises(RefusedByPolicy):
        guard_public_server(bundle, "https://eu.hapi.fhir.org/baseR4")
    with pytest.raises(RefusedByPolicy):
        guard_public_server(
            bundle, "https://sandbox.example.org/fhir", extra_public_hosts=["sandbox.example.org"]
        )
    configured = host_list("demo.test, other.test\tthird.test")  # as SAFETYPLAN_PUBLIC_HOSTS is read
    assert configured == ("demo.test", "other.test", "third.test")
    with pytest.raises(RefusedByPolicy):
        guard_public_server(bundle, "http://demo.test:8080/fhir", configured)
    guard_public_server(bundle, "http://demo.test:8080/fhir")  # a library caller names its hosts itself
    guard_public_server(bundle, "https://nothapi.fhir.org.example/fhir")  # not a subdomain: allowed


def test_a_d_number_identifier_is_checked_too(identifiers):
    value = real_looking(day_offset=40)
    bundle = journal_bundle("s1")
    bundle["entry"][0]["resource"]["identifier"] = [{"system": DNR_SYSTEM, "value": value}]
    assert identifiers.is_real_looking(value)
    with pytest.raises(RefusedByPolicy):
        guard_public_server(bundle, SANDBOX)


def test_a_number_in_free_text_or_a_journal_attachment_is_found(identifiers):
    number = real_looking()
    note = f"Samtale med {NAME}, fnr {number[:6]} {number[6:]}.".encode()
    bundle = journal_bundle("s1")
    bundle["entry"][3]["resource"]["content"] = [
        {"attachment": {"contentType": "text/plain; charset=utf-8", "data": base64.b64encode(note).decode()}}
    ]
    with pytest.raises(RefusedByPolicy, match=r"content\[0\]\.attachment\.data"):
        guard_public_server(bundle, SANDBOX)
    plain = journal_bundle("s1")
    plain["entry"][1]["resource"]["text"] = {"status": "generated", "div": f"<div>{number}</div>"}
    with pytest.raises(RefusedByPolicy, match=r"text\.div"):
        guard_public_server(plain, SANDBOX)


def test_refusals_are_logged_without_the_number(identifiers, caplog):
    caplog.set_level(logging.DEBUG)
    number = real_looking()
    with pytest.raises(RefusedByPolicy):
        guard_public_server(journal_bundle("s1", number), SANDBOX)
    assert "refused delivery to public host hapi.fhir.org" in caplog.text
    assert number not in caplog.text


def test_flush_refuses_an_entry_bound_for_a_public_server(identifiers, server, box):
    box.put("s1", journal_bundle("s1", real_looking()), SANDBOX)
    results = flush(box, lambda url: FhirClient(url))
    assert [(r.status, r.exit_code) for r in results] == [("refused", exitcodes.REFUSED)]
    assert server.requests == 0 and box.pending() == []


# ---- results and logs -----------------------------------------------------------------------------------


def test_delivery_result_repr_and_logs_hold_no_personal_data(server, client, box, caplog):
    caplog.set_level(logging.DEBUG)
    result = deliver(journal_bundle("s1"), client, outbox=box, submission_id="s1")
    assert NAME not in repr(result) and NAME not in caplog.text
    assert json.loads(json.dumps(result.as_dict()))["status"] == "delivered"


def test_delivery_result_exit_codes():
    codes = {
        s: DeliveryResult("s", s, BASE).exit_code for s in ("delivered", "queued", "rejected", "refused")
    }
    assert codes == {"delivered": 0, "queued": 4, "rejected": 3, "refused": 6}


# ---- compare-and-set, configuration problems, per-server queues ----------------------------------------

OTHER = "http://127.0.0.2:8080/fhir"


def test_a_plan_requeued_while_its_older_version_is_in_flight_is_sent_next(box):
    fake = FakeHapi()
    v1, v2 = journal_bundle("s1"), journal_bundle("s1")
    v2["entry"][1]["resource"]["status"] = "amended"
    sent: list[Any] = []

    def server(request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
        sent.append(json.loads(request.body or b"{}"))
        if len(sent) == 1:
            box.put("s1", v2, BASE)  # a corrected plan arrives while v1 is being sent
        return fake(request)

    box.put("s1", v1, BASE)
    with responses.RequestsMock() as rsps:
        rsps.add_callback(responses.POST, BASE, callback=server)
        results = flush(box, lambda url: FhirClient(url))
    assert sent == [v1, v2]
    assert [r.status for r in results] == ["delivered", "delivered"]
    entry = box.get("s1", BASE)
    assert entry is not None and entry.status == "delivered" and entry.revision == 2
    assert fake.store["QuestionnaireResponse/questionnaireresponse-s1"]["status"] == "amended"


def test_refused_credentials_keep_the_plan_pending_and_flush_says_held(box):
    box.put("s1", journal_bundle("s1"), BASE)
    with responses.RequestsMock() as rsps:
        rsps.post(BASE, status=401, json={"resourceType": "OperationOutcome", "issue": []})
        results = flush(box, lambda url: FhirClient(url))
    assert [(r.status, r.exit_code) for r in results] == [("held", exitcodes.CONFIG)]
    entry = box.get("s1")
    assert (
        entry is not None and entry.status == "pending" and entry.last_error == "ServerConfigError (HTTP 401)"
    )


@pytest.mark.parametrize("status", [301, 403, 404, 405, 503])
def test_answers_that_are_not_a_verdict_on_the_content_never_reject(box, status):
    box.put("s1", journal_bundle("s1"), BASE)
    with responses.RequestsMock() as rsps:
        rsps.post(BASE, status=status, json={"resourceType": "OperationOutcome", "issue": []})
        flush(box, lambda url: FhirClient(url, retries=0))
    assert [e.submission_id for e in box.pending()] == ["s1"]


def test_a_content_status_without_an_operation_outcome_is_not_a_rejection(box):
    box.put("s1", journal_bundle("s1"), BASE)
    with responses.RequestsMock() as rsps:
        rsps.post(BASE, status=400, body="<html>bad request</html>")
        results = flush(box, lambda url: FhirClient(url))
    assert [r.status for r in results] == ["queued"]
    assert box.list("rejected") == []


def test_flush_goes_on_with_other_servers_when_one_is_down(box):
    fake = FakeHapi()
    box.put("s1", journal_bundle("s1"), OTHER)
    box.put("s2", journal_bundle("s2"), BASE)
    with responses.RequestsMock() as rsps:
        rsps.post(OTHER, body=requests.ConnectionError("refused"))
        rsps.add_callback(responses.POST, BASE, callback=fake)
        results = flush(box, lambda url: FhirClient(url, retries=0))
    assert [(r.server_url, r.status) for r in results] == [(OTHER, "queued"), (BASE, "delivered")]


def test_flush_for_one_server_leaves_the_others_entries_alone(server, box):
    box.put("s1", journal_bundle("s1"), OTHER)
    box.put("s2", journal_bundle("s2"), BASE)
    made: list[str] = []
    results = flush(box, lambda url: made.append(url) or FhirClient(url), server_url=BASE)
    assert made == [BASE] and [r.submission_id for r in results] == ["s2"]
    assert [e.server_url for e in box.pending()] == [OTHER]


def test_flush_closes_the_clients_it_made(server, box):
    box.put("s1", journal_bundle("s1"), BASE)
    closed: list[str] = []

    class Closing(FhirClient):
        def close(self) -> None:
            closed.append(self.base_url)
            super().close()

    flush(box, lambda url: Closing(url))
    assert closed == [BASE]


def test_an_entry_answered_without_2xx_is_not_delivered(box):
    box.put("s1", journal_bundle("s1"), BASE)
    answer = {
        "resourceType": "Bundle",
        "type": "transaction-response",
        "entry": [{"response": {"status": "201 Created"}}] * 3 + [{"response": {"status": "400 Bad"}}],
    }
    with responses.RequestsMock() as rsps:
        rsps.post(BASE, json=answer)
        result = deliver(journal_bundle("s1"), FhirClient(BASE, retries=0), outbox=box, submission_id="s1")
    assert result.status == "queued"
    assert [e.submission_id for e in box.pending()] == ["s1"]


@pytest.mark.parametrize(
    "answer",
    [
        {"resourceType": "Bundle", "type": "transaction-response", "entry": ["x", None, 1, 2]},
        {"resourceType": "Bundle", "type": "transaction-response", "entry": [{"response": "x"}] * 4},
        {"resourceType": "Bundle", "type": "transaction-response", "entry": []},
    ],
)
def test_a_malformed_transaction_response_keeps_the_plan_queued(box, answer):
    with responses.RequestsMock() as rsps:
        rsps.post(BASE, json=answer)
        result = deliver(journal_bundle("s1"), FhirClient(BASE, retries=0), outbox=box, submission_id="s1")
    assert result.status == "queued"
    entry = box.get("s1")
    assert entry is not None and entry.attempts == 1


def test_a_batch_does_not_go_through_the_outbox(box, client):
    bundle = journal_bundle("s1")
    bundle["type"] = "batch"
    with pytest.raises(InputError, match="transaction"):
        deliver(bundle, client, outbox=box, submission_id="s1")


@pytest.mark.parametrize("written", ["{n}", "{a}-{b}", "{a} {b}", "{d}.{m}.{y} {b}", "{a} {b3} {b2}"])
def test_the_guard_finds_numbers_written_with_separators(identifiers, written):
    number = real_looking()
    parts = {
        "n": number, "a": number[:6], "b": number[6:], "d": number[:2], "m": number[2:4], "y": number[4:6],
        "b3": number[6:9], "b2": number[9:],
    }  # fmt: skip
    bundle = journal_bundle("s1")
    bundle["entry"][1]["resource"]["text"] = {"div": f"<div>FNR {written.format(**parts)}</div>"}
    with pytest.raises(RefusedByPolicy):
        guard_public_server(bundle, SANDBOX)


@pytest.mark.parametrize("where", ["valueBase64Binary", "attachment-without-content-type"])
def test_the_guard_decodes_any_base64_data(identifiers, where):
    data = base64.b64encode(f"Pasient {real_looking()}".encode()).decode()
    bundle = journal_bundle("s1")
    resource = bundle["entry"][1]["resource"]
    if where == "valueBase64Binary":
        resource["extension"] = [{"url": "urn:x", "valueBase64Binary": data}]
    else:
        resource["extension"] = [{"url": "urn:x", "valueAttachment": {"data": data}}]
    with pytest.raises(RefusedByPolicy):
        guard_public_server(bundle, SANDBOX)


def test_deliver_checks_capabilities_after_storing_and_a_wrong_base_is_config(box):
    with responses.RequestsMock() as rsps:
        rsps.get(f"{BASE}/metadata", status=404)
        with pytest.raises(ServerConfigError, match="FHIR base URL"):
            deliver(
                journal_bundle("s1"),
                FhirClient(BASE),
                outbox=box,
                submission_id="s1",
                check_capabilities=True,
            )
    assert [e.submission_id for e in box.pending()] == ["s1"]  # kept, sent once the URL is fixed
