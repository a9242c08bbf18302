"""Every bad file in tests/bad_inputs/ is rejected with a clear OperationOutcome, by the library and by the CLI;
every file that only looks hostile (exit 0) is accepted with a warning, and its text reaches the narratives as
text.

The expectations (exit code, issue code, expression) come from the tables in tests/bad_inputs/README.md, which
are the manifest: one row per file. A row with a "known bug" is an open defect, tested as ``xfail(strict=True)``.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from fhir_safetyplan import exitcodes, pipeline
from fhir_safetyplan.errors import InputError

CORPUS = Path(__file__).parent / "bad_inputs"
MANIFEST = CORPUS / "README.md"
COMMANDS = ("validate", "bundle")
# Keys whose string values are free text (answers document fields and QuestionnaireResponse answers).
FREE_TEXT_KEYS = frozenset(
    {"valueString", "times", "note", "existingMeasures", "refusalNote", "agreedActions", "plan", "adaptation"}
)


@dataclass(frozen=True)
class Case:
    """One row of the manifest."""

    file: str
    what: str
    exit: int
    codes: tuple[str, ...]
    expression: str
    bug: str

    @property
    def path(self) -> Path:
        return CORPUS / self.file

    @property
    def accepted(self) -> bool:
        """A row of the second table: input that looks hostile but is data (exit 0, a warning at most)."""
        return self.exit == exitcodes.OK


def load_manifest() -> list[Case]:
    """The rows of the README table whose first cell is a file name."""
    cases = []
    for line in MANIFEST.read_text(encoding="utf-8").splitlines():
        if not line.startswith("| `"):
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        assert len(cells) == 6, f"manifest row has {len(cells)} cells, expected 6: {line}"
        file, what, exit_code, codes, expression, bug = cells
        cases.append(
            Case(
                file=file.strip("`"),
                what=what,
                exit=int(exit_code),
                codes=tuple(c.strip() for c in codes.split(" or ")),
                expression=expression.strip("`"),
                bug=bug,
            )
        )
    return cases


CASES = load_manifest()


def _params(accepted: bool = False) -> list[Any]:
    return [
        pytest.param(
            case,
            id=case.file,
            marks=[pytest.mark.xfail(strict=True, reason=f"BUG: {case.bug}")] if case.bug else [],
        )
        for case in CASES
        if case.accepted == accepted
    ]


def _walk_strings(node: Any, key: str | None = None) -> Iterator[tuple[str | None, str]]:
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _walk_strings(v, k)
    elif isinstance(node, list):
        for v in node:
            yield from _walk_strings(v, key)
    elif isinstance(node, str):
        yield key, node


def secrets_of(raw: bytes) -> list[str]:
    """What must never be echoed: every 11-digit run (identity numbers) and the free texts of the input."""
    text = raw.decode("utf-8", "replace")
    found = set(re.findall(r"(?<!\d)\d{11}(?!\d)", text))
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        return sorted(found)
    for key, value in _walk_strings(data):
        if key in FREE_TEXT_KEYS and len(value) >= 10:
            found.add(value)
    return sorted(found)


def errors_of(outcome: Any) -> list[dict[str, Any]]:
    assert isinstance(outcome, dict) and outcome.get("resourceType") == "OperationOutcome", outcome
    return [i for i in outcome.get("issue", []) if i.get("severity") in ("error", "fatal")]


def assert_rejected(outcome: Any, case: Case, where: str) -> None:
    """``outcome`` has ≥1 error, every error has a clear message, and one matches the manifest's expectation."""
    errors = errors_of(outcome)
    assert errors, f"{where}: {case.file} ({case.what}) was accepted: {outcome}"
    for e in errors:
        diagnostics = e.get("diagnostics")
        assert isinstance(diagnostics, str) and len(diagnostics) >= 20, f"{where}: unclear message {e}"
        assert "Traceback" not in diagnostics
    matching = [
        e
        for e in errors
        if e.get("code") in case.codes
        and (not case.expression or any(case.expression in x for x in e.get("expression", [])))
    ]
    got = [(e.get("code"), e.get("expression")) for e in errors]
    assert matching, f"{where}: expected code {case.codes} at {case.expression!r}; got {got}"


def assert_nothing_echoed(text: str, case: Case) -> None:
    for secret in secrets_of(case.path.read_bytes()):
        shown = secret if len(secret) < 40 else secret[:40] + "…"
        assert secret not in text, f"{case.file}: output echoes {shown!r}"


def test_manifest_lists_every_corpus_file_once_and_there_are_at_least_45() -> None:
    files = sorted(p.name for p in CORPUS.iterdir() if p.name != "README.md")
    listed = [c.file for c in CASES]
    assert len(listed) == len(set(listed)), "a file is listed twice"
    assert sorted(listed) == files
    assert len([c for c in CASES if not c.accepted]) >= 45
    # bad input: exit 1 as documented; accepted input: exit 0
    assert all(c.exit in (exitcodes.INVALID, exitcodes.OK) for c in CASES)


@pytest.mark.parametrize("case", _params())
def test_library_rejects_bad_input_with_an_operation_outcome(case: Case) -> None:
    raw = case.path.read_bytes()
    try:
        data = pipeline.parse_json(raw, case.file)
    except InputError as exc:
        assert_rejected(exc.outcome, case, "parse_json")
        assert_nothing_echoed(json.dumps(exc.outcome, ensure_ascii=False) + str(exc), case)
        return
    outcome = pipeline.validate(data)
    assert_rejected(outcome, case, "validate")
    with pytest.raises(InputError) as info:
        pipeline.build_bundle(data)
    assert_rejected(info.value.outcome, case, "build_bundle")
    shown = json.dumps([outcome, info.value.outcome], ensure_ascii=False) + str(info.value)
    assert_nothing_echoed(shown, case)


def assert_warned(outcome: Any, case: Case, where: str) -> None:
    """``outcome`` has no error and a warning of the manifest's code at its expression."""
    assert not errors_of(outcome), f"{where}: {case.file} ({case.what}) was refused: {outcome}"
    warnings = [
        i
        for i in outcome.get("issue", [])
        if i.get("severity") == "warning"
        and i.get("code") in case.codes
        and any(case.expression in x for x in i.get("expression", []))
    ]
    assert warnings, f"{where}: expected a warning {case.codes} at {case.expression!r}: {outcome}"


def free_texts(raw: bytes) -> list[str]:
    return [v for k, v in _walk_strings(json.loads(raw)) if k in FREE_TEXT_KEYS and "<" in v]


def assert_narratives_hold_the_text_as_text(bundle: Any, case: Case) -> None:
    """Every narrative is well-formed XHTML made only of our own elements, and the text is in it as text."""
    texts = free_texts(case.path.read_bytes())
    assert texts, f"{case.file}: no free text with '<' to follow"
    shown = ""
    for entry in bundle["entry"]:
        div = entry["resource"].get("text", {}).get("div")
        if not div:
            continue
        root = ET.fromstring(div)
        tags = {el.tag.rsplit("}", 1)[-1] for el in root.iter()}
        assert tags <= {"div", "h3", "p"}, f"{case.file}: the narrative has elements {tags}"
        shown += "".join(root.itertext())
    for text in texts:
        assert text in shown, f"{case.file}: the text is not in any narrative as text"


@pytest.mark.parametrize("case", _params(accepted=True))
def test_library_accepts_text_that_only_looks_like_markup_and_escapes_it(case: Case) -> None:
    data = pipeline.parse_json(case.path.read_bytes(), case.file)
    assert_warned(pipeline.validate(data), case, "validate")
    assert_narratives_hold_the_text_as_text(pipeline.build_bundle(data), case)


def _run_cli(args: list[str], stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    env = {k: v for k, v in os.environ.items() if k != "SAFETYPLAN_DEBUG"}
    return subprocess.run(
        [sys.executable, "-m", "fhir_safetyplan", *args],
        input=stdin,
        capture_output=True,
        env=env,
        timeout=120,
        check=False,
    )


@pytest.fixture(scope="module")
def cli_results() -> dict[tuple[str, str], subprocess.CompletedProcess[bytes]]:
    """Both commands on every corpus file, run in parallel once (each run is a fresh interpreter)."""
    jobs = [(case.file, command) for case in CASES for command in COMMANDS]
    with ThreadPoolExecutor(max_workers=max(4, (os.cpu_count() or 2) * 2)) as pool:
        done = pool.map(lambda job: _run_cli([job[1], str(CORPUS / job[0])]), jobs)
        return dict(zip(jobs, done, strict=True))


def assert_cli_rejected(result: subprocess.CompletedProcess[bytes], case: Case, where: str) -> None:
    stdout = result.stdout.decode("utf-8")
    stderr = result.stderr.decode("utf-8")
    assert "Traceback" not in stderr, f"{where}: traceback on stderr:\n{stderr}"
    assert result.returncode == case.exit, (
        f"{where}: exit {result.returncode}, expected {case.exit}; {stderr}"
    )
    try:
        outcome = json.loads(stdout)
    except ValueError:
        pytest.fail(f"{where}: stdout is not an OperationOutcome: {stdout[:300]!r}")
    assert_rejected(outcome, case, where)
    assert_nothing_echoed(stdout + stderr, case)


@pytest.mark.parametrize("case", _params())
def test_cli_validate_and_bundle_reject_bad_input_with_exit_1_and_an_operation_outcome(
    case: Case, cli_results: dict[tuple[str, str], subprocess.CompletedProcess[bytes]]
) -> None:
    for command in COMMANDS:
        assert_cli_rejected(cli_results[(case.file, command)], case, f"safetyplan {command} {case.file}")


@pytest.mark.parametrize("case", _params(accepted=True))
def test_cli_validate_and_bundle_accept_text_that_only_looks_like_markup(
    case: Case, cli_results: dict[tuple[str, str], subprocess.CompletedProcess[bytes]]
) -> None:
    validated, bundled = (cli_results[(case.file, command)] for command in COMMANDS)
    assert validated.returncode == bundled.returncode == exitcodes.OK, validated.stderr + bundled.stderr
    assert_warned(json.loads(validated.stdout), case, f"safetyplan validate {case.file}")
    assert_nothing_echoed(validated.stdout.decode("utf-8") + validated.stderr.decode("utf-8"), case)
    assert_narratives_hold_the_text_as_text(json.loads(bundled.stdout), case)


@pytest.mark.parametrize(
    "name", ["json-truncated.json", "qr-html-script.json", "answers-fnr-bad-check-digit.json"]
)
def test_cli_rejects_bad_input_on_stdin_as_it_does_a_file(name: str) -> None:
    case = next(c for c in CASES if c.file == name)
    result = _run_cli(["bundle", "-"], stdin=case.path.read_bytes())
    assert_cli_rejected(result, case, f"safetyplan bundle - < {name}")


def test_cli_missing_file_is_a_usage_error_without_traceback(tmp_path: Path) -> None:
    result = _run_cli(["validate", str(tmp_path / "finnes-ikke.json")])
    assert result.returncode == exitcodes.USAGE
    assert b"Traceback" not in result.stderr
    assert b"cannot read" in result.stderr
