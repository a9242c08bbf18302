"""Node scripts the tests run (the npm oracle runners, the renderers' harness, the form driver)."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def run_node(
    script: Path, *args: str, input: str | None = None, cwd: Path | None = None, timeout: float = 300
) -> str:
    """What ``node SCRIPT ARGS`` printed to stdout; the test fails with the end of its stderr unless it exits 0."""
    done = subprocess.run(
        ["node", str(script), *args],
        input=input,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    return done.stdout


def run_jsonl(runner: Path, inputs: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """An npm oracle runner's ``--jsonl`` mode (``tools/npm-oracle-cli.js``): all inputs in one Node process,
    one result each, in order."""
    lines = "".join(json.dumps(one) + "\n" for one in inputs)
    out = run_node(runner, "--jsonl", input=lines)
    results = [json.loads(line) for line in out.splitlines() if line.strip()]
    assert len(results) == len(inputs)
    return results
