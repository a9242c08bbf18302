"""``safetyplan push | outbox list | outbox flush | show`` with a scripted server (``responses``): every exit
code, the JSON summary, no tracebacks, secrets only from the environment."""

from __future__ import annotations

import copy
import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import responses
from _searches import empty_searches, refusing

from fhir_safetyplan import exitcodes
from fhir_safetyplan.cli import build_parser, main
from fhir_safetyplan.commands import LEASE_HELP
from fhir_safetyplan.delivery.outbox import Outbox
from fhir_safetyplan.delivery.store import LEASE_SECONDS
from fhir_safetyplan.settings import DEFAULT_OUTBOX

JSON = dict[str, Any]
BASE = "http://fhir.test/fhir"
SANDBOX = "https://hapi.fhir.org/baseR4"
EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
TYPES = ("QuestionnaireResponse", "CarePlan", "Flag", "DocumentReference", "Provenance")
TOKEN = "s3cr3t-token-value"


@pytest.fixture(autouse=True)
def quiet_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No waiting between retries, no inherited configuration, and a private working directory."""
    monkeypatch.setattr("fhir_safetyplan.client._retry.time.sleep", lambda s: None)
    for name in (
        "SAFETYPLAN_OUTBOX",
        "SAFETYPLAN_PUBLIC_HOSTS",
        "SAFETYPLAN_BEARER_TOKEN",
        "SAFETYPLAN_BEARER_TOKEN_FILE",
        "SAFETYPLAN_BASIC_USER",
        "SAFETYPLAN_BASIC_PASSWORD",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)


def capabilities(fhir_version: str = "4.0.1") -> JSON:
    return {
        "resourceType": "CapabilityStatement",
        "fhirVersion": fhir_version,
        "rest": [
            {
                "mode": "server",
                "resource": [
                    {
                        "type": t,
                        "interaction": [{"code": c} for c in ("read", "update", "search-type")],
                        "updateCreate": True,
                    }
                    for t in TYPES
                ],
            }
        ],
    }


def answered(request: Any) -> tuple[int, dict[str, str], str]:
    """A transaction-response for whatever transaction was posted: 201 per entry, version 1."""
    bundle = json.loads(request.body)
    searches = empty_searches(bundle)
    if searches is not None:  # the current-plan lookup: this fake holds no plans
        return 200, {"Content-Type": "application/fhir+json"}, json.dumps(searches)
    entries = []
    for e in bundle["entry"]:
        rtype = e["resource"]["resourceType"]
        rid = e["resource"].get("id", "p1")
        entries.append({"response": {"status": "201 Created", "location": f"{rtype}/{rid}/_history/1"}})
    body = {"resourceType": "Bundle", "type": "transaction-response", "entry": entries}
    return 200, {"Content-Type": "application/fhir+json"}, json.dumps(body)


def server_outcome(text: str) -> JSON:
    return {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": "processing", "diagnostics": text}],
    }


def example(name: str = "01-alt-pa-plass") -> JSON:
    data: JSON = json.loads((EXAMPLES / name / "answers.json").read_text(encoding="utf-8"))
    return data


def write(data: JSON, path: Path = Path("plan.json")) -> str:
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return str(path)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert "Traceback" not in err and "Traceback" not in out
    return code, out, err


def _check_digit(digits: str, weights: tuple[int, ...]) -> int | None:
    k = 11 - sum(int(d) * w for d, w in zip(digits, weights, strict=False)) % 11
    return 0 if k == 11 else None if k == 10 else k


def real_looking_fnr() -> str:
    """Valid check digits and an ordinary birth date: the shape of a real person's number (built, never real)."""
    for individual in range(499, 399, -1):
        nine = f"150385{individual}"
        k1 = _check_digit(nine, (3, 7, 6, 1, 8, 9, 4, 5, 2))
        if k1 is None:
            continue
        k2 = _check_digit(nine + str(k1), (5, 4, 3, 2, 7, 6, 5, 4, 3, 2))
        if k2 is not None:
            return f"{nine}{k1}{k2}"
    raise AssertionError("no valid number in the series")


@responses.activate
def test_push_delivers_and_prints_a_summary_with_each_entry(capsys: pytest.CaptureFixture[str]) -> None:
    responses.get(f"{BASE}/metadata", json=capabilities())
    responses.add_callback(responses.POST, BASE, callback=answered)
    code, out, err = run(capsys, "push", write(example()), "--server", BASE)
    assert code == exitcodes.OK, err
    summary = json.loads(out)
    assert summary["status"] == "delivered"
    assert summary["submissionId"] == "example-01-alt-pa-plass"
    assert summary["server"] == BASE
    assert summary["outbox"] == str(Path(".safetyplan") / "outbox.sqlite")
    assert [e["resourceType"] for e in summary["entries"]] == list(TYPES)
    first = summary["entries"][0]
    assert first["id"].startswith("sp-") and first["versionId"] == "1"
    assert first["location"] == f"QuestionnaireResponse/{first['id']}/_history/1"
    # The plan went through the default outbox and is marked delivered there (no bundle kept).
    code, out, _ = run(capsys, "outbox", "list")
    (line,) = [json.loads(x) for x in out.splitlines()]
    assert line["status"] == "delivered" and line["submissionId"] == "example-01-alt-pa-plass"


@responses.activate
def test_push_uses_the_outbox_named_by_the_environment(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("SAFETYPLAN_OUTBOX", str(tmp_path / "elsewhere.sqlite"))
    responses.add_callback(responses.POST, BASE, callback=answered)
    code, out, _ = run(capsys, "push", write(example()), "--server", BASE, "--no-check")
    assert code == exitcodes.OK
    assert json.loads(out)["outbox"] == str(tmp_path / "elsewhere.sqlite")
    assert (tmp_path / "elsewhere.sqlite").exists() and not Path(".safetyplan").exists()


@responses.activate
def test_push_with_create_patient_adds_a_conditional_create(capsys: pytest.CaptureFixture[str]) -> None:
    responses.add_callback(responses.POST, BASE, callback=answered)
    code, _, _ = run(capsys, "push", write(example()), "--server", BASE, "--no-check", "--create-patient")
    assert code == exitcodes.OK
    sent = next(
        b for c in responses.calls if (b := json.loads(c.request.body or b"{}"))["type"] == "transaction"
    )
    assert sent["entry"][0]["request"]["method"] == "POST"
    assert sent["entry"][0]["request"]["ifNoneExist"].startswith("identifier=")
    assert not any(c.request.method == "GET" for c in responses.calls)  # --no-check: no metadata request


@responses.activate
def test_invalid_input_exits_1_with_our_outcome_and_sends_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    data = example()
    data["answers"]["existingMeasures"] = "Bor hos søster <script>alert(1)</script>"
    code, out, _ = run(capsys, "push", write(data), "--server", BASE)
    assert code == exitcodes.INVALID
    outcome = json.loads(out)
    assert outcome["resourceType"] == "OperationOutcome"
    assert "markup" in outcome["issue"][0]["diagnostics"]
    assert len(responses.calls) == 0
    assert not Path(".safetyplan").exists()  # nothing queued either


@responses.activate
def test_rejected_by_the_server_exits_3_with_the_server_outcome(capsys: pytest.CaptureFixture[str]) -> None:
    responses.get(f"{BASE}/metadata", json=capabilities())
    responses.add_callback(
        responses.POST, BASE, callback=refusing(422, server_outcome("HAPI-0931: Invalid reference"))
    )
    code, out, err = run(capsys, "push", write(example()), "--server", BASE)
    assert code == exitcodes.REJECTED
    assert json.loads(out) == server_outcome("HAPI-0931: Invalid reference")
    assert "422" in err and "HAPI-0931" in err
    _, listed, _ = run(capsys, "outbox", "list")
    assert json.loads(listed)["status"] == "rejected"


@responses.activate
def test_unavailable_server_queues_the_plan_exit_4_and_flush_delivers_it(
    capsys: pytest.CaptureFixture[str],
) -> None:
    responses.get(f"{BASE}/metadata", json=capabilities())
    responses.post(BASE, status=503, json=server_outcome("down"))
    code, out, err = run(capsys, "push", write(example()), "--server", BASE)
    assert code == exitcodes.QUEUED
    assert json.loads(out)["status"] == "queued"
    assert "outbox flush" in err
    assert len([c for c in responses.calls if c.request.method == "POST"]) == 4  # first try + 3 retries

    _, listed, _ = run(capsys, "outbox", "list")
    entry = json.loads(listed)
    assert entry["status"] == "pending" and entry["attempts"] == 1 and "503" in entry["lastError"]
    assert "bundle" not in entry and "Kari" not in listed and "15838540063" not in listed  # no personal data

    responses.reset()
    responses.add_callback(responses.POST, BASE, callback=answered)
    code, out, err = run(capsys, "outbox", "flush")
    assert code == exitcodes.OK, err
    (result,) = [json.loads(x) for x in out.splitlines()]
    assert result["status"] == "delivered" and len(result["entries"]) == 5
    assert "1 delivered, 0 still queued" in err
    code, out, _ = run(capsys, "outbox", "flush")
    assert code == exitcodes.OK and out == ""  # delivered once: nothing is sent again


@responses.activate
def test_flush_that_still_cannot_deliver_exits_4(capsys: pytest.CaptureFixture[str]) -> None:
    responses.post(BASE, status=503)
    assert run(capsys, "push", write(example()), "--server", BASE, "--no-check")[0] == exitcodes.QUEUED
    code, out, _ = run(capsys, "outbox", "flush")
    assert code == exitcodes.QUEUED
    assert json.loads(out)["status"] == "queued"


@responses.activate
def test_flush_claims_each_plan_for_the_lease_it_is_given(capsys: pytest.CaptureFixture[str]) -> None:
    """``outbox flush --lease S``: while a plan is being sent, its claim runs out S seconds from now (so a
    flush that dies mid-send holds it that long, not the default five minutes); the outcome ends the claim."""
    responses.post(BASE, status=503)
    assert run(capsys, "push", write(example()), "--server", BASE, "--no-check")[0] == exitcodes.QUEUED
    seen: list[float] = []

    def sending(request: Any) -> tuple[int, dict[str, str], str]:
        (entry,) = Outbox(DEFAULT_OUTBOX).list()
        assert entry.lease_until is not None
        seen.append((datetime.fromisoformat(entry.lease_until) - datetime.now(UTC)).total_seconds())
        return answered(request)

    responses.reset()
    responses.add_callback(responses.POST, BASE, callback=sending)
    code, _, err = run(capsys, "outbox", "flush", "--lease", "42")
    assert code == exitcodes.OK, err
    assert seen and all(30 < left <= 42 for left in seen), seen
    (entry,) = Outbox(DEFAULT_OUTBOX).list()
    assert entry.status == "delivered" and entry.lease_owner is None


@pytest.mark.parametrize("value", ["0", "-5", "nan", "inf", "soon"])
def test_a_lease_must_be_a_positive_number_of_seconds(capsys: pytest.CaptureFixture[str], value: str) -> None:
    for argv in (("outbox", "flush", "--lease", value), ("serve", "--outbox-lease", value)):
        with pytest.raises(SystemExit) as stopped:
            main(list(argv))
        assert stopped.value.code == exitcodes.USAGE
        assert "positive number of seconds" in capsys.readouterr().err


def test_the_lease_the_help_states_is_the_outboxs_default() -> None:
    assert float(LEASE_HELP) == LEASE_SECONDS


@pytest.mark.parametrize("word", ["none", "None", "off", "false", "0"])
@pytest.mark.parametrize("command", [("push", "plan.json", "--server", BASE), ("outbox", "list"), ("serve",)])
def test_a_word_for_no_outbox_is_refused_instead_of_becoming_a_file_of_that_name(
    word: str, command: tuple[str, ...], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    write(example())
    assert main([*command, "--outbox", word]) == exitcodes.CONFIG
    err = capsys.readouterr().err
    assert "not a way to turn the outbox off" in err and "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plan.json"]  # no outbox file, no folder


@responses.activate
def test_a_file_really_named_none_is_given_as_a_path(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    responses.post(BASE, status=503)
    plan = write(example())
    assert main(["push", plan, "--server", BASE, "--no-check", "--outbox", "./none"]) == exitcodes.QUEUED
    assert (tmp_path / "none").is_file()


@responses.activate
def test_unreachable_metadata_with_an_outbox_still_keeps_the_plan(capsys: pytest.CaptureFixture[str]) -> None:
    responses.get(f"{BASE}/metadata", status=503)
    code, out, _ = run(capsys, "push", write(example()), "--server", BASE)
    assert code == exitcodes.QUEUED
    assert json.loads(out)["status"] == "queued"
    assert not any(c.request.method == "POST" for c in responses.calls)
    _, listed, _ = run(capsys, "outbox", "list", "--status", "pending")
    assert json.loads(listed)["submissionId"] == "example-01-alt-pa-plass"


@responses.activate
def test_unavailable_without_outbox_exits_5_and_keeps_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    responses.post(BASE, status=503)
    code, out, err = run(capsys, "push", write(example()), "--server", BASE, "--no-check", "--no-outbox")
    assert code == exitcodes.UNAVAILABLE
    assert json.loads(out)["resourceType"] == "OperationOutcome"
    assert "503" in err
    assert not Path(".safetyplan").exists()


@responses.activate
def test_real_looking_number_to_the_public_sandbox_exits_6_and_sends_nothing(
    capsys: pytest.CaptureFixture[str],
) -> None:
    data = example()
    number = real_looking_fnr()
    data["patient"] = {"fnr": number}
    code, out, err = run(capsys, "push", write(data), "--server", SANDBOX)
    assert code == exitcodes.REFUSED
    assert json.loads(out)["issue"][0]["code"] == "security"
    assert "hapi.fhir.org" in err and number not in out + err
    assert len(responses.calls) == 0 and not Path(".safetyplan").exists()


@responses.activate
def test_hosts_given_with_public_host_are_guarded_too(capsys: pytest.CaptureFixture[str]) -> None:
    data = example()
    data["patient"] = {"fnr": real_looking_fnr()}
    code, _, _ = run(capsys, "push", write(data), "--server", BASE, "--public-host", "fhir.test")
    assert code == exitcodes.REFUSED
    assert len(responses.calls) == 0


@responses.activate
def test_hosts_listed_in_safetyplan_public_hosts_are_guarded_too(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    data = example()
    data["patient"] = {"fnr": real_looking_fnr()}
    monkeypatch.setenv("SAFETYPLAN_PUBLIC_HOSTS", "demo.test, fhir.test")
    code, _, _ = run(capsys, "push", write(data), "--server", BASE)
    assert code == exitcodes.REFUSED
    assert len(responses.calls) == 0


@responses.activate
def test_server_without_r4_is_a_configuration_error_exit_7(capsys: pytest.CaptureFixture[str]) -> None:
    responses.get(f"{BASE}/metadata", json=capabilities("5.0.0"))
    code, _, err = run(capsys, "push", write(example()), "--server", BASE)
    assert code == exitcodes.CONFIG
    assert "FHIR 5.0.0" in err and "R4" in err
    assert not any(c.request.method == "POST" for c in responses.calls)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--auth", "bearer"], "SAFETYPLAN_BEARER_TOKEN"),
        (["--auth", "basic"], "SAFETYPLAN_BASIC_USER"),
        (["--auth", "smart"], "SAFETYPLAN_SMART_TOKEN_URL"),
    ],
)
def test_missing_credentials_are_a_configuration_error_exit_7(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, "push", write(example()), "--server", BASE, *argv)
    assert code == exitcodes.CONFIG
    assert message in err


def test_a_server_url_that_is_not_http_is_a_configuration_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "push", write(example()), "--server", "ftp://fhir.test/fhir")
    assert code == exitcodes.CONFIG
    assert "http://" in err


@responses.activate
def test_bearer_token_comes_from_the_environment_and_is_never_printed(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SAFETYPLAN_BEARER_TOKEN", TOKEN)
    responses.get(f"{BASE}/metadata", json=capabilities())
    responses.post(BASE, status=401, json=server_outcome("no"))
    code, out, err = run(capsys, "push", write(example()), "--server", BASE, "--auth", "bearer")
    assert code == exitcodes.CONFIG  # refused credentials: configuration, the plan stays pending
    assert responses.calls[-1].request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert TOKEN not in out + err


@pytest.mark.parametrize("option", ["--token", "--password", "--bearer-token", "--client-secret"])
def test_no_option_takes_a_secret_on_the_command_line(
    option: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        main(["push", "plan.json", "--server", BASE, option, TOKEN])
    assert info.value.code == exitcodes.USAGE
    capsys.readouterr()
    # And no command defines an option that looks like one. An option naming a file that holds one (e.g.
    # server start --db-password-file) takes a path, which is how a secret should be given.
    parser = build_parser()
    text = json.dumps([a.option_strings for a in _all_actions(parser)])
    assert not re.search(r"(token|password|secret)(?!-file\b)", text, re.IGNORECASE)


def _all_actions(parser: Any) -> list[Any]:
    out = []
    for action in parser._actions:
        out.append(action)
        choices = getattr(action, "choices", None)
        for sub in choices.values() if isinstance(choices, dict) else ():
            if hasattr(sub, "_actions"):
                out += _all_actions(sub)
    return out


def test_outbox_list_without_an_outbox_says_so(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "outbox", "list")
    assert code == exitcodes.OK and out == ""
    assert "no outbox" in err


def test_unreadable_input_file_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["push", "missing.json", "--server", BASE])
    assert info.value.code == exitcodes.USAGE
    assert "cannot read missing.json" in capsys.readouterr().err


@responses.activate
def test_a_plan_rejected_then_fixed_is_queued_again_under_the_same_submission(
    capsys: pytest.CaptureFixture[str],
) -> None:
    responses.add_callback(responses.POST, BASE, callback=refusing(400, server_outcome("HAPI-0450: bad")))
    assert run(capsys, "push", write(example()), "--server", BASE, "--no-check")[0] == exitcodes.REJECTED
    responses.reset()
    responses.add_callback(responses.POST, BASE, callback=answered)
    code, _, _ = run(capsys, "push", write(copy.deepcopy(example())), "--server", BASE, "--no-check")
    assert code == exitcodes.OK
    _, listed, _ = run(capsys, "outbox", "list")
    assert [json.loads(x)["status"] for x in listed.splitlines()] == ["delivered"]


# ---- configuration problems are exit 7, credentials stay with one server, requeue and purge -------------

OTHER = "http://other.test/fhir"


@responses.activate
@pytest.mark.parametrize(
    ("status", "words"), [(401, "credentials"), (403, "permission"), (404, "FHIR base URL")]
)
def test_push_with_metadata_refused_or_not_found_is_a_configuration_error(
    capsys: pytest.CaptureFixture[str], status: int, words: str
) -> None:
    responses.get(f"{BASE}/metadata", status=status)
    code, out, err = run(capsys, "push", write(example()), "--server", BASE)
    assert code == exitcodes.CONFIG
    assert words in out + err
    assert not any(c.request.method == "POST" for c in responses.calls)


@responses.activate
def test_flush_after_refused_credentials_keeps_the_plan_pending_and_exits_7(
    capsys: pytest.CaptureFixture[str],
) -> None:
    responses.post(BASE, status=503)
    run(capsys, "push", write(example()), "--server", BASE, "--no-check")
    responses.replace(responses.POST, BASE, status=401)
    code, _, err = run(capsys, "outbox", "flush")
    assert code == exitcodes.CONFIG and "credentials" in err
    code, _, _ = run(capsys, "outbox", "flush")
    assert code == exitcodes.CONFIG  # still pending: tried again, not dropped
    _, listed, _ = run(capsys, "outbox", "list", "--status", "pending")
    assert json.loads(listed)["submissionId"] == "example-01-alt-pa-plass"


def _queue_for(capsys: pytest.CaptureFixture[str], server: str) -> None:
    with responses.RequestsMock() as rsps:
        rsps.post(server, status=503)
        assert run(capsys, "push", write(example()), "--server", server, "--no-check")[0] == exitcodes.QUEUED


@pytest.fixture
def queued_for_two_servers(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """One plan queued for BASE and one for OTHER, and a bearer token in the environment."""
    _queue_for(capsys, BASE)
    _queue_for(capsys, OTHER)
    monkeypatch.setenv("SAFETYPLAN_BEARER_TOKEN", TOKEN)


@pytest.mark.usefixtures("queued_for_two_servers")
def test_flush_with_credentials_needs_the_server_when_the_outbox_holds_several(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with responses.RequestsMock() as rsps:  # no request may leave
        code, _, err = run(capsys, "outbox", "flush", "--auth", "bearer")
        assert len(rsps.calls) == 0
    assert code == exitcodes.CONFIG and "--server" in err


@pytest.mark.usefixtures("queued_for_two_servers")
def test_flush_with_credentials_sends_them_only_to_the_named_server(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with responses.RequestsMock() as rsps:
        rsps.add_callback(responses.POST, BASE, callback=answered)
        code, _, _ = run(capsys, "outbox", "flush", "--auth", "bearer", "--server", BASE)
        assert {c.request.url.rstrip("/") for c in rsps.calls} == {BASE}
    assert code == exitcodes.OK
    _, listed, _ = run(capsys, "outbox", "list", "--status", "pending")
    assert json.loads(listed)["server"] == OTHER


def test_a_rejected_plan_can_be_requeued_and_purged(capsys: pytest.CaptureFixture[str]) -> None:
    with responses.RequestsMock() as rsps:
        rsps.add_callback(
            responses.POST, BASE, callback=refusing(422, server_outcome("HAPI-0931: Invalid reference"))
        )
        assert run(capsys, "push", write(example()), "--server", BASE, "--no-check")[0] == exitcodes.REJECTED
    sid = "example-01-alt-pa-plass"
    assert run(capsys, "outbox", "requeue", sid)[0] == exitcodes.OK
    _, listed, _ = run(capsys, "outbox", "list", "--status", "pending")
    assert json.loads(listed)["submissionId"] == sid
    assert run(capsys, "outbox", "requeue", sid)[0] == exitcodes.INVALID  # nothing rejected any more
    with responses.RequestsMock() as rsps:
        rsps.add_callback(
            responses.POST, BASE, callback=refusing(422, server_outcome("HAPI-0931: Invalid reference"))
        )
        run(capsys, "outbox", "flush")
    assert run(capsys, "outbox", "purge", "--rejected")[0] == exitcodes.OK
    _, listed, _ = run(capsys, "outbox", "list")
    assert listed == ""


def test_a_server_url_with_a_password_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "push", write(example()), "--server", "https://user:pw@fhir.test/fhir")
    assert code == exitcodes.CONFIG
    assert "user name or password" in out + err and ":pw@" not in out + err
