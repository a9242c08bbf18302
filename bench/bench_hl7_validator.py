"""How long the HL7 validator step of the test suite takes: one JVM, load once, validate everything.

``python bench/bench_hl7_validator.py`` runs the same job as ``tests/integration/test_hl7_validator.py`` and prints
the runner's own load and validation times and the wall time (JVM start included), with the machine's load.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "integration"))

import test_hl7_validator as t  # noqa: E402


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="bench-hl7-") as tmp_name:
        tmp = Path(tmp_name)
        tasks = t._tasks(t._planted(tmp), tmp)
        job = {
            "tho": t.prepare.THO[1],
            "extensions": t.prepare.EXTENSIONS[1],
            "igs": [f"{t.prepare.SDC[0]}#{t.prepare.SDC[1]}", str(t.PROFILES)],
            "tasks": tasks,
        }
        (tmp / "job.json").write_text(json.dumps(job), encoding="utf-8")
        load_before = os.getloadavg()[0]
        start = time.perf_counter()
        subprocess.run(
            t.prepare.java_command("validate", str(tmp / "job.json"), str(tmp / "result.json")),
            check=True,
            capture_output=True,
        )
        wall = time.perf_counter() - start
        result = json.loads((tmp / "result.json").read_text(encoding="utf-8"))
    print(f"| {len(tasks)} files | {result['loadSeconds']:.1f} s | {result['validateSeconds']:.1f} s | {wall:.1f} s "
          f"| {load_before:.1f} | {os.cpu_count()} cores, {platform.platform()} |")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
