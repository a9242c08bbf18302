"""Batch mode (``validate | bundle | push --ndjson``): one input per line in, one result per line out, in input
order; a bad line gets an OperationOutcome naming its line and never stops the good ones; blank lines are
skipped and said; the exit code summarises; a line over the size limit is refused without being read into
memory; Ctrl-C / SIGTERM ends the batch cleanly, saying up to which line it read.

``push --ndjson`` against the real HAPI server is in ``tests/integration/test_batch_hapi.py``; here it meets a
server that is down (a port nobody listens on), which needs no server at all.
"""

from __future__ import annotations

import io
import json
import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from fhir_safetyplan import exitcodes, pipeline
from fhir_safetyplan.batch import Line, Tally, parse_line, read_lines
from fhir_safetyplan.cli import main
from fhir_safetyplan.delivery.outbox import Outbox
from fhir_safetyplan.delivery.store import open_outbox
from fhir_safetyplan.errors import InputError
from fhir_safetyplan.jsoninput import MAX_INPUT_BYTES

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
GOOD = [
    json.loads((EXAMPLES / name / "answers.json").read_text(encoding="utf-8"))
    for name in ("01-alt-pa-plass", "02-flere-mangler", "03-barn-og-psykisk")
]
RENDERED_QR = json.loads((EXAMPLES / "08-skjema-fra-renderer" / "input.json").read_text(encoding="utf-8"))


def one_line(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False)


def invalid_answers() -> dict[str, Any]:
    doc = json.loads(json.dumps(GOOD[0]))
    doc["patient"] = {"fnr": "12345678901"}  # fails the check digits
    return doc


#: every way a line can be bad, each on its own line between good ones
BAD_LINES = {
    "not JSON": "{not json",
    "duplicate key": '{"answers": {}, "answers": {}}',
    "huge integer": '{"answers": ' + "9" * 1200 + "}",
    "lone surrogate": '{"answers": {"x": "\\ud800"}, "patient": {}}',
    "not an object": "[1, 2, 3]",
    "invalid answers": one_line(invalid_answers()),
    "not a plan": '{"resourceType": "Patient"}',
}


def mixed_file(tmp_path: Path) -> tuple[Path, list[str]]:
    """Good, bad and blank lines mixed; returns the file and, per line, what it is."""
    kinds: list[str] = []
    lines: list[str] = []
    for i, (what, text) in enumerate(BAD_LINES.items()):
        lines.append(one_line(GOOD[i % 3]))
        kinds.append("good")
        lines.append(text)
        kinds.append(what)
        if i % 3 == 1:
            lines.append("   ")
            kinds.append("blank")
    lines.append(one_line(RENDERED_QR))
    kinds.append("good")
    path = tmp_path / "mixed.ndjson"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path, kinds


def results(out: str) -> list[dict[str, Any]]:
    lines = out.splitlines()
    assert all(line.strip() for line in lines), "every output line holds one result"
    return [json.loads(line) for line in lines]


def diagnostics(outcome: dict[str, Any]) -> list[str]:
    assert outcome["resourceType"] == "OperationOutcome"
    return [str(i["diagnostics"]) for i in outcome["issue"]]


def test_bundle_ndjson_writes_each_lines_bundle_in_input_order_exactly_as_bundle_does(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    inputs = [*GOOD, RENDERED_QR, GOOD[0]]
    path = tmp_path / "plans.ndjson"
    path.write_text("".join(one_line(d) + "\n" for d in inputs), encoding="utf-8")
    assert main(["bundle", "--ndjson", str(path)]) == exitcodes.OK
    captured = capsys.readouterr()
    assert results(captured.out) == [pipeline.build_bundle(d) for d in inputs]
    assert "5 line(s) with a result (5 bundled)" in captured.err
    assert captured.err.count("\n") == 1, "one summary line on stderr"


def test_bad_lines_get_an_outcome_naming_their_line_and_never_stop_the_good_ones(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path, kinds = mixed_file(tmp_path)
    assert main(["bundle", "--ndjson", str(path)]) == exitcodes.PARTIAL
    out = results(capsys.readouterr().out)
    numbered = [(n, kind) for n, kind in enumerate(kinds, start=1) if kind != "blank"]
    assert len(out) == len(numbered)
    for (number, kind), result in zip(numbered, out, strict=True):
        if kind == "good":
            assert result["resourceType"] == "Bundle", number
        else:
            texts = diagnostics(result)
            assert all(t.startswith(f"line {number}") for t in texts), (kind, texts)
            assert all(i["severity"] in ("error", "fatal") for i in result["issue"]), kind


def test_a_bad_line_says_what_is_wrong_as_the_single_input_path_does(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "bad.ndjson"
    path.write_text("\n".join(BAD_LINES.values()) + "\n", encoding="utf-8")
    main(["bundle", "--ndjson", str(path)])
    out = dict(zip(BAD_LINES, results(capsys.readouterr().out), strict=True))
    said = {what: " ".join(diagnostics(outcome)) for what, outcome in out.items()}
    assert "line 1 is not valid JSON" in said["not JSON"] and "at column 2" in said["not JSON"]
    assert 'the key "answers" appears more than once' in said["duplicate key"]
    assert "integer of 1200 digits" in said["huge integer"]
    assert "lone UTF-16 surrogate" in said["lone surrogate"]
    assert "expected a JSON object" in said["not an object"]
    assert "Patient" in said["not a plan"]
    single = tmp_path / "one.json"
    single.write_text(BAD_LINES["invalid answers"], encoding="utf-8")
    main(["bundle", str(single)])
    alone = json.loads(capsys.readouterr().out)
    assert diagnostics(out["invalid answers"]) == [f"line 6: {d}" for d in diagnostics(alone)]


def test_blank_lines_are_skipped_and_the_summary_says_which(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "blanks.ndjson"
    path.write_bytes(b"\n" + one_line(GOOD[0]).encode() + b"\r\n \t\n\n" + one_line(GOOD[1]).encode())
    assert main(["validate", "--ndjson", str(path)]) == exitcodes.OK
    captured = capsys.readouterr()
    out = results(captured.out)
    assert [diagnostics(o) for o in out] == [["line 2: No problems found."], ["line 5: No problems found."]]
    assert "3 blank line(s) skipped (line 1, 3, 4" in captured.err


def test_validate_ndjson_gives_every_line_its_outcome_and_exit_1_when_all_are_invalid(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "invalid.ndjson"
    path.write_text(one_line(invalid_answers()) + "\n" + BAD_LINES["not JSON"] + "\n", encoding="utf-8")
    assert main(["validate", "--ndjson", str(path)]) == exitcodes.INVALID
    first, second = results(capsys.readouterr().out)
    assert all(d.startswith("line 1: ") for d in diagnostics(first))
    assert any("fnr" in d or "identity" in d.lower() for d in diagnostics(first))
    assert diagnostics(second)[0].startswith("line 2 is not valid JSON")


@pytest.mark.parametrize(
    ("lines", "code"),
    [
        ([], exitcodes.OK),
        (["", "  "], exitcodes.OK),
        ([one_line(GOOD[0]), one_line(GOOD[1])], exitcodes.OK),
        ([BAD_LINES["not JSON"], BAD_LINES["invalid answers"]], exitcodes.INVALID),
        ([one_line(GOOD[0]), BAD_LINES["not JSON"]], exitcodes.PARTIAL),
    ],
    ids=["empty", "only-blank", "all-good", "all-invalid", "mixed"],
)
def test_the_exit_code_summarises_the_lines(
    lines: list[str], code: int, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "in.ndjson"
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    assert main(["bundle", "--ndjson", str(path)]) == code
    assert capsys.readouterr().err.rstrip().endswith(f"exit {code}")


def test_lines_failing_in_different_ways_exit_partial_and_alike_the_single_input_code() -> None:
    tally = Tally("push")
    for n in (1, 2):
        tally.add(n, "queued", exitcodes.QUEUED)
    assert tally.exit_code() == exitcodes.QUEUED
    tally.add(3, "invalid", exitcodes.INVALID)
    assert tally.exit_code() == exitcodes.PARTIAL


def test_stdin_is_read_with_a_dash(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    data = (one_line(GOOD[2]) + "\n").encode()
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data), encoding="utf-8"))
    assert main(["bundle", "--ndjson", "-"]) == exitcodes.OK
    assert results(capsys.readouterr().out) == [pipeline.build_bundle(GOOD[2])]


class _Counting(io.BytesIO):
    """A stream that remembers the largest read it was asked for."""

    largest = 0

    def readline(self, size: int | None = -1) -> bytes:
        got = super().readline(size)
        self.largest = max(self.largest, len(got))
        return got


def test_a_line_over_the_limit_is_refused_without_holding_it_in_memory() -> None:
    limit = 1000
    stream = _Counting(b'{"a": 1}\n' + b"x" * (50 * limit) + b"\n" + b'{"b": 2}')
    lines = list(read_lines(stream, limit))
    assert [(line.number, line.too_long, line.data) for line in lines] == [
        (1, False, b'{"a": 1}'),
        (2, True, b""),
        (3, False, b'{"b": 2}'),
    ]
    assert stream.largest <= 64 * 1024
    with pytest.raises(InputError) as info:
        parse_line(lines[1])
    assert (
        "line 2 is longer than" in str(info.value) and info.value.outcome["issue"][0]["code"] == "too-costly"
    )


def test_a_line_at_the_limit_is_read_and_one_byte_more_is_refused() -> None:
    exact = b'"' + b"a" * (MAX_INPUT_BYTES - 2) + b'"'
    lines = list(read_lines(io.BytesIO(exact + b"\n" + exact + b"a")))
    assert [line.too_long for line in lines] == [False, True]
    assert parse_line(lines[0]) == "a" * (MAX_INPUT_BYTES - 2)
    assert parse_line(Line(1, b'{"ok": true}')) == {"ok": True}


def test_a_huge_line_among_good_ones_gets_its_outcome_and_the_rest_go_on(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "huge.ndjson"
    with path.open("w", encoding="utf-8") as f:
        f.write(one_line(GOOD[0]) + "\n")
        f.write('{"answers": "' + "x" * (3 * MAX_INPUT_BYTES) + '"}\n')
        f.write(one_line(GOOD[1]) + "\n")
    assert main(["bundle", "--ndjson", str(path)]) == exitcodes.PARTIAL
    first, huge, last = results(capsys.readouterr().out)
    assert first["resourceType"] == last["resourceType"] == "Bundle"
    assert diagnostics(huge)[0].startswith(f"line 2 is longer than {MAX_INPUT_BYTES} bytes")


def test_usage_errors_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as missing:  # as for one input: argparse-style usage exit
        main(["bundle", "--ndjson", str(tmp_path / "missing.ndjson")])
    assert missing.value.code == exitcodes.USAGE
    path = tmp_path / "in.ndjson"
    path.write_text(one_line(GOOD[0]) + "\n", encoding="utf-8")
    server = "http://127.0.0.1:9/fhir"
    assert main(["push", "--ndjson", str(path), "--server", server, "--no-outbox"]) == exitcodes.USAGE
    with pytest.raises(SystemExit) as info:
        main(["push", "--ndjson", str(path), "--server", server, "--workers", "0"])
    assert info.value.code == exitcodes.USAGE
    assert "Traceback" not in capsys.readouterr().err


def _unused_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_push_ndjson_to_a_server_that_is_down_keeps_every_good_plan_in_the_outbox(
    outbox_at: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("fhir_safetyplan.client._retry.time.sleep", lambda s: None)
    path = tmp_path / "plans.ndjson"
    path.write_text(
        "\n".join([one_line(GOOD[0]), BAD_LINES["not JSON"], "", one_line(GOOD[1]), one_line(RENDERED_QR)]),
        encoding="utf-8",
    )
    outbox = outbox_at  # an SQLite file, then a PostgreSQL database
    server = f"http://127.0.0.1:{_unused_port()}/fhir"
    code = main(["push", "--ndjson", str(path), "--server", server, "--outbox", outbox])
    assert code == exitcodes.PARTIAL  # queued and invalid lines
    out = results(capsys.readouterr().out)
    assert [o.get("line") for o in out] == [1, None, 4, 5]
    assert [o.get("status") for o in out] == ["queued", None, "queued", "queued"]
    assert diagnostics(out[1])[0].startswith("line 2 is not valid JSON")
    with open_outbox(outbox) as box:
        pending = box.list("pending")
        assert [e.submission_id for e in pending] == [o["submissionId"] for o in out if "line" in o]
        assert all(e.lease_owner is None for e in pending), "given back: the next flush takes them at once"

    path.write_text(one_line(GOOD[2]) + "\n", encoding="utf-8")
    code = main(["push", "--ndjson", str(path), "--server", server, "--outbox", outbox, "--no-check"])
    assert code == exitcodes.QUEUED  # every line ended alike: the single-input code
    assert [o["status"] for o in results(capsys.readouterr().out)] == ["queued"]


def _cli(*args: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, "-m", "fhir_safetyplan", *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_stop_signal_mid_batch_ends_it_saying_up_to_which_line_it_read(signum: int) -> None:
    proc = _cli("bundle", "--ndjson", "-")
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
    for doc in GOOD[:2]:
        proc.stdin.write((one_line(doc) + "\n").encode())
    proc.stdin.flush()
    got = [json.loads(proc.stdout.readline()) for _ in range(2)]  # written and flushed line by line
    assert [b["resourceType"] for b in got] == ["Bundle", "Bundle"]
    proc.send_signal(signum)  # while it waits for line 3
    assert proc.wait(timeout=60) == exitcodes.INTERRUPTED
    out, err = proc.stdout.read(), proc.stderr.read()  # (communicate would miss what stdout has buffered)
    proc.stdin.close()
    last = json.loads(out.decode())
    assert "interrupted: the input was read up to line 2" in diagnostics(last)[0]
    assert "interrupted" in err.decode() and "Traceback" not in err.decode()


def _read_one_result_then_close_stdout(proc: subprocess.Popen[bytes]) -> tuple[int, str]:
    """What ``| head -1`` does: one result line, then the reader goes away. The exit code and stderr."""
    assert proc.stdout is not None and proc.stderr is not None
    assert json.loads(proc.stdout.readline())
    proc.stdout.close()
    code = proc.wait(timeout=120)
    return code, proc.stderr.read().decode()


def _read_up_to(err: str) -> int:
    found = re.search(r"the input was read up to line (\d+), nothing after it", err)
    assert found, err
    return int(found.group(1))


def test_a_reader_that_stops_reading_ends_the_batch_as_interrupted_saying_where(tmp_path: Path) -> None:
    path = tmp_path / "many.ndjson"
    path.write_text("\n".join(one_line(GOOD[i % 3]) for i in range(300)) + "\n", encoding="utf-8")
    code, err = _read_one_result_then_close_stdout(_cli("validate", "--ndjson", str(path)))
    assert code == exitcodes.INTERRUPTED, err  # not 0: most lines were never looked at
    assert "stdout was closed" in err and _read_up_to(err) < 300
    assert "Traceback" not in err and "Exception ignored" not in err and "BrokenPipe" not in err


def test_push_ndjson_whose_reader_stops_reading_keeps_exactly_the_lines_it_read(tmp_path: Path) -> None:
    path, outbox = tmp_path / "plans.ndjson", tmp_path / "outbox.sqlite"
    lines = [one_line({**GOOD[0], "submissionId": f"pipe-{i}"}) for i in range(200)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    server = f"http://127.0.0.1:{_unused_port()}/fhir"
    proc = _cli("push", "--ndjson", str(path), "--server", server, "--outbox", str(outbox), "--no-check")
    code, err = _read_one_result_then_close_stdout(proc)
    assert code == exitcodes.INTERRUPTED, err
    read = _read_up_to(err)
    assert "stdout was closed" in err and read < 200
    assert "Traceback" not in err and "Exception ignored" not in err
    with Outbox(outbox) as box:  # every line read is kept (queued: the server is down), none after it
        assert sorted(e.submission_id for e in box.list("pending")) == sorted(
            f"pipe-{i}" for i in range(read)
        )


def test_one_patients_plans_always_go_to_the_same_sending_thread() -> None:
    from fhir_safetyplan.delivery.batch_send import lane_of
    from fhir_safetyplan.document import DocumentContext

    first, second = json.loads(json.dumps(GOOD[0])), json.loads(json.dumps(GOOD[1]))
    second["patient"] = first["patient"]
    for context in (DocumentContext(), DocumentContext(create_patient=True)):  # urn:uuid subjects differ
        a, b = (pipeline.build_bundle(d, context) for d in (first, second))
        assert a["identifier"] != b["identifier"]
        assert all(lane_of(a, n) == lane_of(b, n) for n in range(1, 33))


def test_push_ndjson_refuses_a_real_looking_number_for_a_public_server_and_stores_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from test_delivery_cli import real_looking_fnr

    plan = json.loads(json.dumps(GOOD[0]))
    plan["patient"] = {"fnr": real_looking_fnr()}
    path = tmp_path / "plans.ndjson"
    path.write_text(one_line(plan) + "\n", encoding="utf-8")
    outbox = tmp_path / "outbox.sqlite"
    server = ["--server", "http://fhir.test/fhir", "--public-host", "fhir.test", "--no-check"]
    code = main(["push", "--ndjson", str(path), *server, "--outbox", str(outbox)])
    assert code == exitcodes.REFUSED  # the one line's code: nothing was sent, nothing stored
    (refused,) = results(capsys.readouterr().out)
    assert diagnostics(refused)[0].startswith("line 1: ")
    with Outbox(outbox) as box:
        assert box.list() == []


def test_credentials_refused_stop_the_sending_and_every_plan_stays_pending(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import responses

    monkeypatch.setattr("fhir_safetyplan.client._retry.time.sleep", lambda s: None)
    path = tmp_path / "plans.ndjson"
    path.write_text("".join(one_line(d) + "\n" for d in GOOD), encoding="utf-8")
    outbox = tmp_path / "outbox.sqlite"
    base = "http://fhir.test/fhir"
    with responses.RequestsMock() as rsps:  # a 401 a local HAPI without authentication never gives
        rsps.post(base, status=401, json={"resourceType": "OperationOutcome", "issue": []})
        code = main(["push", "--ndjson", str(path), "--server", base, "--outbox", str(outbox), "--no-check"])
        sent = len(rsps.calls)
    assert code == exitcodes.CONFIG  # every line held alike
    out = results(capsys.readouterr().out)
    assert len(out) == 3 and sent == 1, "the first plan went alone; after its 401 nothing more was sent"
    first, *rest = out
    assert diagnostics(first)[0].startswith("line 1: ")  # the server's refusal, as push prints it
    assert [(o["line"], o["status"]) for o in rest] == [(2, "held"), (3, "held")]
    assert all("not sent" in o["reason"] for o in rest)
    with Outbox(outbox) as box:
        assert [e.status for e in box.list()] == ["pending"] * 3
