"""No personal data reaches a log: a canary person goes through the whole flow — library, command line with -vv,
error paths and delivery to a (mocked) FHIR server — with every logger at DEBUG, and none of the canary's name,
identity number or free texts may appear in any log record or on stderr.
"""

from __future__ import annotations

import copy
import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import responses
from _searches import active_plan, plan_searches, searchset, stored

from fhir_safetyplan import cli, pipeline
from fhir_safetyplan.answers import CHECKLIST_KEYS
from fhir_safetyplan.errors import InputError, SafetyPlanError
from fhir_safetyplan.identifiers import synthetic_fnr

NAME = "Kari Kanarifugl"
FNR = synthetic_fnr(date(1984, 7, 13))  # Tenor-style synthetic number, valid check digits
# the same number with its last digit changed: an invalid identity number that must not be echoed either
BAD_FNR = FNR[:-1] + str((int(FNR[-1]) + 1) % 10)
PHRASES = (
    "gul-fjaer-under-trappa",
    "Kanarifugl-hemmelighet-4711",
    "ring tante Gulnebb",
    "kodeordet er solsikkefrø",
)
CANARIES = (NAME, FNR, BAD_FNR, *PHRASES)
BASE = "http://fhir.test/fhir"


def canary_document(involvement: str = "yes") -> dict[str, Any]:
    """An answers document with the canary in every free text the schema has."""
    answers: dict[str, Any] = {
        "informed": True,
        "involvement": involvement,
        "safeContact": {
            "safe": ["telefonsamtale"],
            "unsafe": ["brev"],
            "times": f"Etter kl. 09, spør etter {NAME}",
            "note": f"Ikke legg igjen beskjed; {PHRASES[0]}",
        },
        "dependants": {
            "present": "yes",
            "childrenCount": 2,
            "plan": f"Barna til {NAME} vet at {PHRASES[2]}",
            "duty": "sendt",
        },
        "mental": {"present": "yes", "adaptation": f"{NAME} trenger korte samtaler"},
    }
    if involvement == "yes":
        answers |= {
            "existingMeasures": f"{NAME} har nøkkel hos naboen; {PHRASES[1]}",
            "checklist": {k: ("no" if k in ("kode", "bag") else "yes") for k in CHECKLIST_KEYS},
            "agreedActions": [f"Avtale kodeord med {NAME}: {PHRASES[3]}"],
            "behaviourAdviceGiven": True,
        }
    else:
        answers["refusalNote"] = f"{NAME} ønsker ikke hjelp nå; {PHRASES[1]}"
    return {
        "submissionId": "kanari-1",
        "language": "nb",
        "authored": "2026-11-20T10:15:00+01:00",
        "patient": {"fnr": FNR},
        "clinician": {"hpr": "99990001"},
        "organization": {"orgnr": "991000003"},
        "answers": answers,
    }


def error_inputs() -> dict[str, Any]:
    """Inputs that fail, each in a way whose message could be tempted to quote the canary."""
    bad_fnr = canary_document()
    bad_fnr["patient"] = {"fnr": BAD_FNR}
    markup = canary_document()
    markup["answers"]["existingMeasures"] = f"<b onclick=x>{NAME}</b> {PHRASES[1]}"
    control = canary_document()
    control["answers"]["dependants"]["plan"] = f"{NAME}\x07 {PHRASES[2]}"
    too_long = canary_document()
    too_long["answers"]["agreedActions"] = [f"{NAME} {PHRASES[3]} " * 20]
    extra = canary_document()
    extra["patient"]["name"] = NAME
    word = canary_document()
    word["answers"]["checklist"]["bag"] = NAME
    qr_bad = pipeline.respond(canary_document())
    qr_bad["subject"]["identifier"]["value"] = BAD_FNR
    qr_bad["item"][0]["item"][0]["text"] = NAME
    qr_markup = pipeline.respond(canary_document())
    qr_markup["item"][1]["item"][2]["answer"] = [{"valueString": f"<script>{NAME}</script>"}]
    qr_no_section = pipeline.respond(canary_document())  # a required section missing (sections.py)
    qr_no_section["item"] = [it for it in qr_no_section["item"] if it["linkId"] != "sarbare"]
    return {
        "bad-fnr": bad_fnr,
        "markup": markup,
        "control": control,
        "too-long": too_long,
        "extra-field": extra,
        "unknown-word": word,
        "qr-bad-fnr-and-text": qr_bad,
        "qr-markup": qr_markup,
        "qr-missing-section": qr_no_section,
    }


def assert_no_canary(text: str, where: str) -> None:
    for canary in CANARIES:
        assert canary not in text, f"{where} contains the canary {canary!r}"


@pytest.fixture
def debug_logs(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """Every record at DEBUG, from the root and our own loggers (and the HTTP stack's)."""
    for name in (
        None,
        "fhir_safetyplan",
        "fhir_safetyplan.delivery.deliver",
        "urllib3",
        "requests",
        "psycopg",
    ):
        caplog.set_level(logging.DEBUG, logger=name)  # restored by caplog after the test
    yield caplog


def all_log_text(caplog: pytest.LogCaptureFixture) -> str:
    """Messages, arguments, and exception text of every captured record."""
    parts = []
    formatter = logging.Formatter("%(levelname)s %(name)s: %(message)s")
    for record in caplog.records:
        parts.append(formatter.format(record))
        parts.append(repr(record.args))
        if record.exc_info:
            parts.append(formatter.formatException(record.exc_info))
    return "\n".join(parts)


def test_the_canary_is_really_in_the_output_so_the_log_checks_mean_something() -> None:
    bundle = json.dumps(pipeline.build_bundle(canary_document()), ensure_ascii=False)
    assert NAME in bundle and FNR in bundle and all(p in bundle for p in PHRASES)


def test_library_flow_logs_no_personal_data(debug_logs: pytest.LogCaptureFixture) -> None:
    for involvement in ("yes", "no"):
        doc = canary_document(involvement)
        raw = json.dumps(doc, ensure_ascii=False).encode()
        data = pipeline.parse_json(raw, "canary.json")
        response = pipeline.respond(copy.deepcopy(data))
        assert pipeline.validate(copy.deepcopy(data))["issue"][0]["severity"] == "information"
        pipeline.extract(copy.deepcopy(data))
        pipeline.document(copy.deepcopy(data))
        pipeline.build_bundle(copy.deepcopy(data))
        pipeline.build_bundle(copy.deepcopy(response))
    assert debug_logs.records, "the flow should log something (counts, ids) at DEBUG/INFO"
    assert_no_canary(all_log_text(debug_logs), "a log record")


@pytest.mark.parametrize("name", sorted(error_inputs()))
def test_library_error_paths_log_and_say_no_personal_data(
    name: str, debug_logs: pytest.LogCaptureFixture
) -> None:
    data = error_inputs()[name]
    outcome = pipeline.validate(copy.deepcopy(data))
    assert any(i["severity"] == "error" for i in outcome["issue"])
    with pytest.raises(InputError) as info:
        pipeline.build_bundle(copy.deepcopy(data))
    assert_no_canary(json.dumps([outcome, info.value.outcome], ensure_ascii=False), "the OperationOutcome")
    assert_no_canary(str(info.value), "the error message")
    assert_no_canary(all_log_text(debug_logs), "a log record")


def test_unparseable_input_with_the_canary_is_not_echoed(debug_logs: pytest.LogCaptureFixture) -> None:
    raw = json.dumps(canary_document(), ensure_ascii=False).encode()[:-40]
    with pytest.raises(InputError) as info:
        pipeline.parse_json(raw, "canary.json")
    assert_no_canary(json.dumps(info.value.outcome, ensure_ascii=False) + str(info.value), "the parse error")
    assert_no_canary(all_log_text(debug_logs), "a log record")


def test_strict_json_refusals_do_not_echo_the_canary(debug_logs: pytest.LogCaptureFixture) -> None:
    text = json.dumps(canary_document(), ensure_ascii=True)
    duplicated = text.replace('"patient":', f'"patient": {{"fnr": "{FNR}"}}, "patient":', 1)
    surrogate = text.replace(json.dumps(NAME, ensure_ascii=True)[1:-1], "\\ud800" + NAME, 1)
    duplicated_canary_key = text[:-1] + f', "{FNR}": 1, "{FNR}": 2}}'
    for raw in (duplicated, surrogate, duplicated_canary_key):
        with pytest.raises(InputError) as info:
            pipeline.parse_json(raw, "canary.json")
        assert_no_canary(json.dumps(info.value.outcome, ensure_ascii=False) + str(info.value), "the refusal")
    assert_no_canary(all_log_text(debug_logs), "a log record")


def _cli(args: list[str]) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "SAFETYPLAN_DEBUG"}
    return subprocess.run(
        [sys.executable, "-m", "fhir_safetyplan", "-vv", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


def test_cli_with_vv_writes_no_personal_data_to_stderr(tmp_path: Path) -> None:
    good = tmp_path / "kanari.json"
    good.write_text(json.dumps(canary_document(), ensure_ascii=False), encoding="utf-8")
    refusal = tmp_path / "kanari-avslag.json"
    refusal.write_text(json.dumps(canary_document("no"), ensure_ascii=False), encoding="utf-8")
    qr = tmp_path / "kanari-qr.json"
    qr.write_text(json.dumps(pipeline.respond(canary_document()), ensure_ascii=False), encoding="utf-8")
    for path in (good, refusal, qr):
        for command in ("respond", "validate", "extract", "bundle"):
            result = _cli([command, str(path)])
            assert result.returncode == 0, result.stderr
            assert_no_canary(result.stderr, f"stderr of safetyplan -vv {command} {path.name}")
    result = _cli(["bundle", str(good)])
    assert NAME in result.stdout  # the output itself is the journal: the canary belongs there, not in logs


@pytest.mark.parametrize("name", sorted(error_inputs()))
def test_cli_error_paths_with_vv_write_no_personal_data(name: str, tmp_path: Path) -> None:
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(error_inputs()[name], ensure_ascii=False), encoding="utf-8")
    for command in ("validate", "bundle"):
        result = _cli([command, str(path)])
        assert result.returncode == 1, result.stderr
        assert "Traceback" not in result.stderr
        assert_no_canary(result.stderr, f"stderr of safetyplan -vv {command} ({name})")
        assert_no_canary(result.stdout, f"the OperationOutcome of safetyplan {command} ({name})")


def test_cli_in_process_logs_no_personal_data(
    tmp_path: Path, debug_logs: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    good = tmp_path / "kanari.json"
    good.write_text(json.dumps(canary_document(), ensure_ascii=False), encoding="utf-8")
    bad = tmp_path / "kanari-feil.json"
    bad.write_text(json.dumps(error_inputs()["bad-fnr"], ensure_ascii=False), encoding="utf-8")
    earlier = tmp_path / "kanari-tidligere.json"
    earlier.write_text(
        json.dumps(_earlier(canary_document(), "kanari-0"), ensure_ascii=False), encoding="utf-8"
    )
    assert cli.main(["-vv", "bundle", str(good)]) == 0
    assert cli.main(["-vv", "bundle", str(bad)]) == 1
    assert cli.main(["-vv", "changes", str(earlier), str(good)]) == 0
    assert cli.main(["-vv", "changes", str(earlier), str(bad)]) == 1
    captured = capsys.readouterr()
    assert_no_canary(captured.err, "stderr")
    assert_no_canary(all_log_text(debug_logs), "a log record")


# ---- delivery to a mocked FHIR server ---------------------------------------------------------------------------


def _transaction_response(bundle: dict[str, Any]) -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "type": "transaction-response",
        "entry": [
            {"response": {"status": "201 Created", "location": f"{e['request']['url']}/_history/1"}}
            for e in bundle["entry"]
        ],
    }


def _outcome_quoting_the_canary() -> dict[str, Any]:
    # Servers quote the data they complain about; that must not end up in our logs.
    return {
        "resourceType": "OperationOutcome",
        "issue": [
            {
                "severity": "error",
                "code": "processing",
                "diagnostics": f"HAPI-0450: cannot store Patient {NAME} ({FNR}): {PHRASES[0]}",
            }
        ],
    }


class _Upstream:
    """A mocked FHIR server: the batch of searches for the current plan finds ``current`` (none by default);
    every transaction gets ``answer`` (for a 200, a transaction-response to what was posted)."""

    def __init__(self) -> None:
        self.current: list[dict[str, Any]] = []
        self.answer: tuple[int, dict[str, Any]] = (200, {})
        self.transactions = 0

    def __call__(self, request: Any) -> tuple[int, dict[str, str], str]:
        bundle = json.loads(request.body)
        searches = plan_searches(bundle, self.current)
        if searches is not None:
            return 200, {}, json.dumps(searches)
        self.transactions += 1
        status, body = self.answer
        return status, {}, json.dumps(_transaction_response(bundle) if status == 200 else body)


def _earlier(document: dict[str, Any], submission: str) -> dict[str, Any]:
    earlier = {**document, "submissionId": submission, "authored": "2026-10-01T09:00:00+02:00"}
    earlier["answers"] = {
        **document["answers"],
        "safeContact": {"safe": ["brev"], "unsafe": ["telefonsamtale"]},
    }
    return earlier


def test_a_revision_and_a_lost_race_log_no_personal_data(
    tmp_path: Path, debug_logs: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fhir_safetyplan.client import FhirClient
    from fhir_safetyplan.delivery.deliver import deliver
    from fhir_safetyplan.delivery.outbox import Outbox

    monkeypatch.setattr("fhir_safetyplan.client._retry.time.sleep", lambda _seconds: None)
    document = canary_document()
    bundle = pipeline.build_bundle(document)
    upstream = _Upstream()
    upstream.current = stored(pipeline.build_bundle(_earlier(document, "kanari-0")))
    with (
        responses.RequestsMock(assert_all_requests_are_fired=True) as rsps,
        Outbox(tmp_path / "outbox.db") as outbox,
        FhirClient(BASE, retries=0) as client,
    ):
        rsps.add_callback(responses.POST, BASE, callback=upstream)
        # a revision: the note says what changed (the canary is in the changes), the old plan is retired
        upstream.answer = (200, _transaction_response(bundle))
        sent = deliver(bundle, client, outbox=outbox, submission_id="kanari-1")
        assert sent.status == "delivered"
        # a lost race: the versions read changed before the write; held for a person
        upstream.answer = (412, _outcome_quoting_the_canary())
        held = deliver(bundle, client, outbox=outbox, submission_id="kanari-1")
        assert held.status == "conflict"
        assert_no_canary(repr(held), "the DeliveryResult repr")
    assert upstream.transactions == 2
    assert_no_canary(all_log_text(debug_logs), "a log record")


class _FirstPlansAtOnce(_Upstream):
    """Every lookup finds ``current``; once the first transaction is applied, ``current`` also holds ``other``
    (another conversation's first plan for the patient, written at the same moment)."""

    def __init__(self, other: list[dict[str, Any]]) -> None:
        super().__init__()
        self.other = other

    def __call__(self, request: Any) -> tuple[int, dict[str, str], str]:
        bundle = json.loads(request.body)
        answer = super().__call__(request)
        if plan_searches(bundle, []) is None and self.transactions == 1:
            self.current = [*stored(bundle), *self.other]
        return answer


@pytest.mark.parametrize(
    ("other_authored", "status"), [("2099-01-01T09:00:00+01:00", "conflict"), (None, "delivered")]
)
def test_two_first_plans_at_once_log_no_personal_data(
    debug_logs: pytest.LogCaptureFixture, other_authored: str | None, status: str
) -> None:
    from fhir_safetyplan.client import FhirClient
    from fhir_safetyplan.delivery.deliver import deliver

    document = canary_document()
    other = _earlier(document, "kanari-other")
    if other_authored:  # the other conversation is the newer: ours retires itself and is held
        other["authored"] = other_authored
    upstream = _FirstPlansAtOnce(stored(pipeline.build_bundle(other)))
    with (
        responses.RequestsMock(assert_all_requests_are_fired=True) as rsps,
        FhirClient(BASE, retries=0) as client,
    ):
        rsps.add_callback(responses.POST, BASE, callback=upstream)
        result = deliver(pipeline.build_bundle(document), client, submission_id=document["submissionId"])
        assert result.status == status
        assert_no_canary(repr(result), "the DeliveryResult repr")
        assert_no_canary(str(result.reason), "the DeliveryResult reason")
    assert upstream.transactions == 2  # the first plan, then its retirement or its revision of the other
    assert_no_canary(all_log_text(debug_logs), "a log record")


def test_a_lookup_that_lost_a_race_inside_the_server_logs_and_keeps_no_personal_data(
    tmp_path: Path, debug_logs: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """HAPI answers an entry of the current-plan lookup 409 HAPI-0550 when requests race, quoting the key it broke
    (a conditional-create URL with the identity number): the plan waits in the outbox, and nothing says the number."""
    from fhir_safetyplan.client import FhirClient
    from fhir_safetyplan.delivery.deliver import deliver
    from fhir_safetyplan.delivery.outbox import Outbox

    monkeypatch.setattr("fhir_safetyplan.client._retry.time.sleep", lambda _seconds: None)
    bundle = pipeline.build_bundle(canary_document())
    diagnostics = f"HAPI-0550: HAPI-0826: version constraint failure (Patient?identifier=urn:oid:2.16.578.1.12.4.1.4.1|{FNR})"
    raced = {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": "processing", "diagnostics": diagnostics}],
    }

    def lookup(request: Any) -> tuple[int, dict[str, str], str]:
        body = json.loads(request.body)
        assert body["type"] == "batch"  # only the lookup is sent: the plan is not written
        empty = {"resourceType": "Bundle", "type": "searchset", "entry": []}
        entries = [{"response": {"status": "409 Conflict", "outcome": raced}}]
        entries += [{"resource": empty, "response": {"status": "200 OK"}} for _ in body["entry"][1:]]
        return 200, {}, json.dumps({"resourceType": "Bundle", "type": "batch-response", "entry": entries})

    with (
        responses.RequestsMock(assert_all_requests_are_fired=True) as rsps,
        Outbox(tmp_path / "outbox.db") as outbox,
        FhirClient(BASE, retries=0) as client,
    ):
        rsps.add_callback(responses.POST, BASE, callback=lookup)
        result = deliver(bundle, client, outbox=outbox, submission_id="kanari-1")
        assert result.status == "queued"
        assert_no_canary(repr(result), "the DeliveryResult repr")
        (entry,) = outbox.list()
        assert entry.status == "pending"
        assert_no_canary(str(entry.last_error), "the outbox entry's reason")
    assert_no_canary(all_log_text(debug_logs), "a log record")


def test_delivery_logs_no_personal_data_when_delivered_rejected_or_queued(
    outbox_at: str, debug_logs: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Through either outbox: an SQLite file, then PostgreSQL (whose driver logs are captured too)."""
    pytest.importorskip("fhir_safetyplan.delivery.deliver")
    from fhir_safetyplan.client import FhirClient
    from fhir_safetyplan.delivery.deliver import deliver, flush
    from fhir_safetyplan.delivery.store import open_outbox

    monkeypatch.setattr("fhir_safetyplan.client._retry.time.sleep", lambda _seconds: None)
    bundle = pipeline.build_bundle(canary_document())
    refusal = pipeline.build_bundle(canary_document("no"))
    client = FhirClient(BASE, retries=2)
    upstream = _Upstream()
    with (
        responses.RequestsMock(assert_all_requests_are_fired=True) as rsps,
        open_outbox(outbox_at) as outbox,
    ):
        rsps.add_callback(responses.POST, BASE, callback=upstream)
        # delivered
        upstream.answer = (200, _transaction_response(bundle))
        result = deliver(bundle, client, outbox=outbox, submission_id="kanari-1")
        assert result.status == "delivered"
        # rejected, with a server message that quotes the canary
        upstream.answer = (400, _outcome_quoting_the_canary())
        with pytest.raises(SafetyPlanError) as info:
            deliver(refusal, client, outbox=outbox, submission_id="kanari-2")
        assert_no_canary(str(info.value), "the rejection message")
        # queued: the server is unavailable, the plan waits in the outbox, then flush delivers it
        upstream.answer = (503, _outcome_quoting_the_canary())
        queued = deliver(bundle, client, outbox=outbox, submission_id="kanari-3")
        assert queued.status == "queued"
        assert_no_canary(repr(queued), "the DeliveryResult repr")
        upstream.answer = (200, _transaction_response(bundle))
        flushed = flush(outbox, lambda _url: client)
        assert [r.status for r in flushed] == ["delivered"]
        # a search by identity number: the number is in the query string, never in the log
        rsps.add(
            responses.GET,
            f"{BASE}/Patient",
            json={"resourceType": "Bundle", "type": "searchset", "entry": []},
            status=200,
        )
        client.search("Patient", {"identifier": f"urn:oid:2.16.578.1.12.4.1.4.1|{FNR}"})
    assert debug_logs.records
    assert_no_canary(all_log_text(debug_logs), "a log record")


def canary_document_v110() -> dict[str, Any]:
    """A content 1.1.0 answers document with the canary in the free texts 1.1.0 adds (code word, review,
    the duty to avert, the risk performer and conclusion)."""
    doc = canary_document("no")
    answers = doc["answers"]
    doc["version"] = "1.1.0"
    answers.pop("informed")
    dependants = answers.pop("dependants")
    answers |= {
        "conversationType": "oppfolging",
        "withoutPartner": True,
        "hideFromPortal": True,
        "safeContact": {**answers["safeContact"], "codeWord": PHRASES[3], "reviewBy": "2027-01-01"},
        "dependants": {
            "children": "yes",
            "perpetratorChildren": "not-asked",
            "others": "no",
            "plan": dependants["plan"],
            "duty": "skal-sendes",
            "dutyNote": f"Melding om barna til {NAME} sendes i dag",
        },
        "risk": {
            "done": True,
            "instrument": "sara-sv",
            "date": "2026-11-19",
            "level": "hoy",
            "conclusion": f"Høy risiko fra partneren til {NAME}",
            "performedBy": f"Psykolog, ikke {NAME}",
        },
        "dutyToAvert": {"status": "politiet-varslet", "note": f"Politiet varslet om {NAME}; {PHRASES[2]}"},
    }
    return doc


def test_content_1_1_0_flow_and_its_errors_log_no_personal_data(debug_logs: pytest.LogCaptureFixture) -> None:
    doc = canary_document_v110()
    bundle = json.dumps(pipeline.build_bundle(copy.deepcopy(doc)), ensure_ascii=False)
    assert NAME in bundle and PHRASES[3] in bundle  # the canary is really there
    response = pipeline.respond(copy.deepcopy(doc))
    pipeline.build_bundle(copy.deepcopy(response))
    broken = copy.deepcopy(doc)
    del broken["answers"]["dutyToAvert"]
    broken["answers"]["safeContact"]["codeWord"] = f"<i>{NAME}</i>"
    outcome = pipeline.validate(broken)
    assert has_errors_in(outcome)
    assert_no_canary(json.dumps(outcome, ensure_ascii=False), "the OperationOutcome")
    assert_no_canary(all_log_text(debug_logs), "a log record")


def has_errors_in(outcome: dict[str, Any]) -> bool:
    return any(i["severity"] in ("error", "fatal") for i in outcome["issue"])


def test_unknown_patient_conflict_damaged_row_and_outbox_repair_say_no_personal_data(
    tmp_path: Path, debug_logs: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    import sqlite3

    from fhir_safetyplan.client import FhirClient, check_base_url
    from fhir_safetyplan.delivery.deliver import attempt
    from fhir_safetyplan.delivery.outbox import Outbox

    unknown = {  # HAPI quotes the whole conditional reference, number included
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": "processing", "diagnostics": (
            f'HAPI-1091: Invalid match URL "Patient?identifier=urn:oid:2.16.578.1.12.4.1.4.1|{FNR}" - No resources'
        )}],
    }  # fmt: skip
    conflict = _outcome_quoting_the_canary()
    conflict["issue"][0]["diagnostics"] = f"HAPI-0550: version constraint failure for {NAME} ({FNR})"
    bundle = pipeline.build_bundle(canary_document())
    path = tmp_path / "outbox.sqlite"
    client = FhirClient(BASE, retries=0)
    upstream = _Upstream()  # the batch read of the current plan finds nothing; the writes get ``answer``
    with responses.RequestsMock() as rsps, Outbox(path) as outbox:
        rsps.add_callback(responses.POST, BASE, callback=upstream)
        upstream.answer = (404, unknown)
        rejected = attempt(bundle, client, outbox=outbox, submission_id="kanari-unknown")
        upstream.answer = (409, conflict)
        queued = attempt(bundle, client, outbox=outbox, submission_id="kanari-conflict")
        outbox.put("kanari-damaged", bundle, check_base_url(BASE))
    assert (rejected.status, queued.status) == ("rejected", "queued")
    for result in (rejected, queued):
        assert_no_canary(f"{result.reason} {json.dumps(result.outcome, ensure_ascii=False)}", "the result")
    with sqlite3.connect(path) as conn:
        conn.execute(
            "UPDATE outbox SET bundle = ? WHERE submission_id = 'kanari-damaged'", (f'{{"broken": "{NAME}',)
        )
    upstream.answer = (200, {})
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        rsps.add_callback(responses.POST, BASE, callback=upstream)
        assert cli.main(["-vv", "outbox", "flush", "--outbox", str(path)]) == 7
    assert cli.main(["-vv", "outbox", "check", "--outbox", str(path)]) == 7
    assert (
        cli.main(["-vv", "outbox", "export", "--outbox", str(path), "--to", str(tmp_path / "new.sqlite")])
        == 0
    )
    captured = capsys.readouterr()
    assert_no_canary(captured.out + captured.err, "the output of outbox flush / check / export")
    assert_no_canary(all_log_text(debug_logs), "a log record")


# ---- populate: pre-filling from the last plan -------------------------------------------------------------------


def test_populate_from_a_file_with_vv_writes_no_personal_data_to_stderr(tmp_path: Path) -> None:
    qr = pipeline.respond(canary_document())
    # answers that no longer fit (a misfit type, a withdrawn code, a removed item) make the issues list long
    misfit = copy.deepcopy(qr)
    misfit["item"].append({"linkId": "fjernet-punkt", "answer": [{"valueString": PHRASES[1]}]})
    for item in misfit["item"]:
        for child in item.get("item", []):
            if child["linkId"] == "trygg-kontakt.tidspunkt":
                child["answer"] = [{"valueBoolean": True}]
            if child["linkId"] == "trygg-kontakt.merknad":
                child["answer"].append({"valueString": PHRASES[3]})
    for name, data in (("answers", canary_document()), ("qr", qr), ("misfit", misfit)):
        path = tmp_path / f"kanari-{name}.json"
        path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
        result = _cli(["populate", "--from", str(path), "--lang", "nn"])
        assert result.returncode == 0, result.stderr
        assert "populate:" in result.stderr  # the issues are there, and say nothing personal
        assert_no_canary(result.stderr, f"stderr of safetyplan -vv populate --from ({name})")
    assert PHRASES[0] in result.stdout  # the carried answers are the output itself


def test_populate_from_a_server_logs_no_personal_data(
    debug_logs: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    qr = {
        **pipeline.respond(canary_document()),
        "id": "qr-kanari",
        "subject": {"reference": "Patient/p-kanari"},
    }
    plan = active_plan("cp-kanari", "qr-kanari", qr["identifier"])
    with responses.RequestsMock() as rsps:
        rsps.get(f"{BASE}/Patient", json=searchset({"resourceType": "Patient", "id": "p-kanari"}))
        rsps.get(f"{BASE}/CarePlan", json=searchset(plan, {**plan, "id": "cp-kanari-2"}))
        rsps.get(f"{BASE}/QuestionnaireResponse", json=searchset(qr))
        code = cli.main(
            [
                "-vv",
                "populate",
                "--server",
                BASE,
                "--patient-identifier",
                f"urn:oid:2.16.578.1.12.4.1.4.1|{FNR}",
            ]
        )
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "2 active safety plans" in captured.err
    assert_no_canary(captured.err, "stderr of populate --server")


# ---- the form page's check (safetyplan preview, /form of safetyplan serve) --------------------------------------


@pytest.mark.filterwarnings("ignore:Using `httpx`:DeprecationWarning")
def test_form_check_logs_no_personal_data(debug_logs: pytest.LogCaptureFixture) -> None:
    from fastapi.testclient import TestClient

    from fhir_safetyplan.service import ServiceSettings, Tokens, create_app

    token = "canary-form-token-0123456789abcdef"
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/fhir+json"}
    app = create_app(ServiceSettings(tokens=Tokens([token]), flush_interval=0))
    with TestClient(app) as client:
        valid = client.post(
            "/form/check", content=json.dumps(pipeline.respond(canary_document())), headers=headers
        )
        assert valid.status_code == 200 and valid.json()["ok"] is True
        assert NAME in valid.json()["note"]  # the answer is the caller's own plan; the log is not
        for name, data in error_inputs().items():
            answer = client.post("/form/check", content=json.dumps(data), headers=headers)
            assert answer.status_code in (400, 422), name
    assert debug_logs.records
    assert_no_canary(all_log_text(debug_logs), "a log record")


def test_one_submission_for_two_patients_in_the_outbox_logs_and_says_no_personal_data(
    tmp_path: Path, debug_logs: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    """Queued, listed, and refused as ambiguous on requeue: the plan keys and the submission id are named,
    never the patients; and an old outbox migrated to plan keys logs nothing of its plans either."""
    import sqlite3

    from fhir_safetyplan.delivery.outbox import Outbox

    other = canary_document()
    other["patient"] = {"fnr": synthetic_fnr(date(1979, 2, 21))}
    path = tmp_path / "outbox.sqlite"
    with Outbox(path) as outbox:
        for doc in (canary_document(), other):
            entry = outbox.put("kanari-1", pipeline.build_bundle(doc), BASE)
            outbox.mark_rejected(entry.plan_key, "ServerRejected (HTTP 422)", server_url=BASE)
    capsys.readouterr()
    assert cli.main(["-vv", "outbox", "list", "--outbox", str(path)]) == 0
    assert cli.main(["-vv", "outbox", "requeue", "--outbox", str(path), "kanari-1"]) == 1
    captured = capsys.readouterr()
    assert "different patients" in captured.err
    assert_no_canary(captured.out + captured.err, "the output of outbox list / requeue")
    # an outbox of schema 3 holding the canary's plan, migrated to plan keys when opened
    old = tmp_path / "v3.sqlite"
    conn = sqlite3.connect(old)
    conn.executescript(
        """
        CREATE TABLE outbox (seq INTEGER PRIMARY KEY AUTOINCREMENT, submission_id TEXT NOT NULL,
            server_url TEXT NOT NULL, revision INTEGER NOT NULL DEFAULT 1, status TEXT NOT NULL, bundle TEXT,
            attempts INTEGER NOT NULL DEFAULT 0, last_error TEXT, created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL, delivered_at TEXT, response_summary TEXT, lease_owner TEXT,
            lease_until TEXT, UNIQUE (server_url, submission_id));
        PRAGMA user_version = 3;
        """
    )
    conn.execute(
        "INSERT INTO outbox (submission_id, server_url, status, bundle, created_at, updated_at) "
        "VALUES ('kanari-1', ?, 'pending', ?, 't', 't')",
        (BASE, json.dumps(pipeline.build_bundle(canary_document()), ensure_ascii=False)),
    )
    conn.commit()
    conn.close()
    old.chmod(0o600)
    with Outbox(old) as migrated:
        assert [e.submission_id for e in migrated.pending()] == ["kanari-1"]
    assert debug_logs.records
    assert_no_canary(all_log_text(debug_logs), "a log record")


# ---- batch mode (--ndjson) --------------------------------------------------------------------------------------


def _canary_lines() -> list[str]:
    """The canary's plans, its error inputs, and lines that break off, repeat or overflow holding it."""
    text = json.dumps(canary_document(), ensure_ascii=False)
    lines = [text, json.dumps(canary_document("no"), ensure_ascii=False), ""]
    lines += [json.dumps(data, ensure_ascii=False) for data in error_inputs().values()]
    lines += [
        text[: len(text) // 2],  # cut off in the middle of the canary's free text
        text[:-1] + f', "{FNR}": 1, "{FNR}": 2}}',  # the identity number as a repeated key
        text.replace(NAME, "\\ud800" + NAME, 1),
        '{"answers": "' + NAME * (pipeline.MAX_INPUT_BYTES // len(NAME) + 1) + '"}',  # over the size limit
    ]
    return lines


def test_batch_mode_logs_and_says_no_personal_data(
    tmp_path: Path,
    debug_logs: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("fhir_safetyplan.client._retry.time.sleep", lambda _seconds: None)
    path = tmp_path / "kanari.ndjson"
    path.write_text("\n".join(_canary_lines()) + "\n", encoding="utf-8")
    assert cli.main(["-vv", "validate", "--ndjson", str(path)]) == 9
    assert cli.main(["-vv", "bundle", "--ndjson", str(path)]) == 9
    captured = capsys.readouterr()
    assert NAME in captured.out  # the bundles are the journal: the canary belongs there
    assert_no_canary(captured.err, "stderr of validate/bundle --ndjson")
    outcomes = [json.loads(x) for x in captured.out.splitlines() if '"OperationOutcome"' in x[:40]]
    assert_no_canary(json.dumps(outcomes, ensure_ascii=False), "the OperationOutcomes of bad lines")

    outbox = str(tmp_path / "outbox.sqlite")
    push = ["-vv", "push", "--ndjson", str(path), "--server", BASE, "--outbox", outbox, "--no-check"]
    upstream = _Upstream()
    with responses.RequestsMock(assert_all_requests_are_fired=True) as rsps:
        rsps.add_callback(responses.POST, BASE, callback=upstream)
        upstream.answer = (400, _outcome_quoting_the_canary())  # rejected, the server quoting the canary
        assert cli.main([*push, "--workers", "2"]) == 9
        upstream.answer = (503, _outcome_quoting_the_canary())  # queued, and the batch stops sending
        assert cli.main(push) == 9
    assert upstream.transactions >= 2
    captured = capsys.readouterr()
    assert '"status":"queued"' in captured.out
    assert_no_canary(captured.err, "stderr of push --ndjson")
    assert_no_canary(all_log_text(debug_logs), "a log record")
