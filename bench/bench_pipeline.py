"""Benchmark: the whole flow for one plan in-process, per example scenario, and the CLI cold start.

    python bench/bench_pipeline.py [--runs 300] [--npm-runs 100] [--no-npm]   # writes bench/results/pipeline.md

For each ``examples/*/`` scenario (its ``answers.json``, or ``input.json`` for a renderer's
QuestionnaireResponse) it measures, in this process:

- the whole flow (validate + extract + document + bundle + serialise: ``json.dumps(build_bundle(input))``
  the way the CLI writes it), warm: median, p10, p90 over ``--runs`` runs after a warm-up, with the native
  FHIRPath fast path on (the default) and off (fhirpathpy only: the numbers before the fast path);
- the stages one by one (prepare = answers → QuestionnaireResponse + Questionnaire lookup + validation;
  extract; document; bundle; serialise), warm medians;
- the cold first call: a fresh Python process imports the pipeline and runs the flow once (import time and
  first-call time reported separately; the first call includes compiling the Questionnaire's FHIRPath);
- our template extraction against the npm engine (@aehrc/sdc-template-extract) on the same
  QuestionnaireResponse and Questionnaire (``bench/bench_extract.py``'s Node runner).

And ``safetyplan --help`` cold start (hyperfine when installed, else a loop of subprocess runs) against the
0.3 s target. Nothing here is a test: the numbers are recorded, not asserted.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from _measure import node_version, npm_version  # noqa: E402

from fhir_safetyplan import _fhirpath, pipeline  # noqa: E402
from fhir_safetyplan.bundle import transaction  # noqa: E402
from fhir_safetyplan.document import document as make_documentation  # noqa: E402
from fhir_safetyplan.extract import extract  # noqa: E402

WARMUP = 20
TARGET_FLOW_MS = 5.0
TARGET_HELP_S = 0.3

COLD_SCRIPT = """
import json, sys, time
t0 = time.perf_counter()
from fhir_safetyplan import pipeline
t1 = time.perf_counter()
data = json.loads(open(sys.argv[1], encoding="utf-8").read())
t2 = time.perf_counter()
json.dumps(pipeline.build_bundle(data), ensure_ascii=False, indent=2)
t3 = time.perf_counter()
json.dumps(pipeline.build_bundle(data), ensure_ascii=False, indent=2)
t4 = time.perf_counter()
print(json.dumps({"import_ms": (t1 - t0) * 1e3, "first_ms": (t3 - t2) * 1e3, "second_ms": (t4 - t3) * 1e3}))
"""


def scenarios() -> list[tuple[str, Path]]:
    out = []
    for folder in sorted((ROOT / "examples").iterdir()):
        for name in ("answers.json", "input.json"):
            if (folder / name).is_file():
                out.append((folder.name, folder / name))
                break
    return out


def serialise(resource: Any) -> str:
    return json.dumps(resource, ensure_ascii=False, indent=2)  # as the CLI writes it


def flow(data: Any) -> str:
    return serialise(pipeline.build_bundle(data))


def timed(fn: Callable[[], Any], runs: int, cpu: list[float] | None = None) -> list[float]:
    """Wall-clock ms per run; with ``cpu``, also this thread's CPU ms per run (less sensitive to other load)."""
    for _ in range(WARMUP):
        fn()
    times = []
    for _ in range(runs):
        c0 = time.thread_time()
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
        if cpu is not None:
            cpu.append((time.thread_time() - c0) * 1000)
    return times


def spread(times: list[float]) -> tuple[float, float, float]:
    deciles = statistics.quantiles(times, n=10)
    return statistics.median(times), deciles[0], deciles[-1]


def stages(data: Any, runs: int) -> dict[str, float]:
    prepared = pipeline.prepare(data)
    r, q, c, s = prepared.response, prepared.questionnaire, prepared.context, prepared.submission
    extracted = extract(r, q, new_id=pipeline._ids(prepared))
    doc = make_documentation(r, q, extracted, c, s)
    bundle = transaction(doc)
    steps: dict[str, Callable[[], Any]] = {
        "prepare (answers→QR, validate)": lambda: pipeline.prepare(data),
        "extract": lambda: extract(r, q, new_id=pipeline._ids(prepared)),
        "document": lambda: make_documentation(r, q, extracted, c, s),
        "bundle": lambda: transaction(doc),
        "serialise": lambda: serialise(bundle),
    }
    out = {name: statistics.median(timed(fn, runs)) for name, fn in steps.items()}
    _fhirpath.set_fast_path(False)
    try:
        out["extract, fhirpathpy only"] = statistics.median(timed(steps["extract"], runs))
    finally:
        _fhirpath.set_fast_path(True)
    return out


def cold(path: Path) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, "-c", COLD_SCRIPT, str(path)],
        capture_output=True,
        text=True,
        check=True,
        env=env,
        cwd=ROOT,
    )
    result: dict[str, float] = json.loads(proc.stdout)
    return result


def npm_extract(data: Any, runs: int) -> tuple[float, float]:
    """(ours, npm) warm median ms for extracting this scenario's QuestionnaireResponse."""
    import bench_extract

    prepared = pipeline.prepare(data)
    r, q = prepared.response, prepared.questionnaire
    ours = statistics.median(timed(lambda: extract(r, q), runs))
    theirs = statistics.median(bench_extract.npm(q, r, runs))
    return ours, theirs


def help_cold_start(runs: int) -> tuple[str, float, float, float]:
    """(method, median s, min s, max s) of ``safetyplan --help`` in a fresh process."""
    exe = shutil.which("safetyplan")
    command = [exe, "--help"] if exe else [sys.executable, "-m", "fhir_safetyplan", "--help"]
    hyperfine = shutil.which("hyperfine")
    if hyperfine:
        out = ROOT / "bench" / "results" / ".hyperfine.json"
        subprocess.run(
            [
                hyperfine,
                "--warmup",
                "3",
                "--runs",
                str(runs),
                "--export-json",
                str(out),
                "-N",
                " ".join(command),
            ],
            capture_output=True,
            check=True,
        )
        result = json.loads(out.read_text(encoding="utf-8"))["results"][0]
        out.unlink()
        return (
            f"hyperfine {runs} runs (3 warm-up), `{' '.join(command)}`",
            result["median"],
            result["min"],
            result["max"],
        )
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run(command, capture_output=True, check=True)
        times.append(time.perf_counter() - t0)
    return f"subprocess loop, {runs} runs", statistics.median(times), min(times), max(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--npm-runs", type=int, default=100)
    parser.add_argument("--no-npm", action="store_true", help="skip the npm engine comparison")
    parser.add_argument("--help-runs", type=int, default=20)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "pipeline.md")
    args = parser.parse_args()

    load_before = os.getloadavg()[0]
    flow_rows, stage_rows, cold_rows, npm_rows = [], [], [], []
    stage_names: list[str] = []
    for name, path in scenarios():
        data = json.loads(path.read_text(encoding="utf-8"))
        cpu_before: list[float] = []
        cpu_after: list[float] = []
        _fhirpath.set_fast_path(False)
        before = spread(timed(lambda: flow(data), args.runs, cpu_before))  # noqa: B023 (called in the loop)
        _fhirpath.set_fast_path(True)
        after = spread(timed(lambda: flow(data), args.runs, cpu_after))  # noqa: B023
        cb, ca = statistics.median(cpu_before), statistics.median(cpu_after)
        ok = "yes" if after[0] <= TARGET_FLOW_MS else "**no**"
        flow_rows.append(
            f"| {name} | {after[0]:.2f} | {after[1]:.2f} | {after[2]:.2f} | {ca:.2f} | {before[0]:.2f} | "
            f"{before[1]:.2f} | {before[2]:.2f} | {cb:.2f} | {before[0] / after[0]:.1f}× | {ok} |"
        )
        print(flow_rows[-1], flush=True)
        by_stage = stages(data, args.runs)
        stage_names = list(by_stage)
        stage_rows.append(f"| {name} | " + " | ".join(f"{v:.3f}" for v in by_stage.values()) + " |")
        c = cold(path)
        cold_rows.append(f"| {name} | {c['import_ms']:.0f} | {c['first_ms']:.1f} | {c['second_ms']:.2f} |")
        if not args.no_npm:
            ours, theirs = npm_extract(data, args.npm_runs)
            npm_rows.append(f"| {name} | {ours:.3f} | {theirs:.3f} | {theirs / ours:.1f}× |")
            print(npm_rows[-1], flush=True)

    method, median_s, min_s, max_s = help_cold_start(args.help_runs)
    load_after = os.getloadavg()[0]
    help_ok = "yes" if median_s <= TARGET_HELP_S else "**no**"
    node_line = ""
    if npm_rows:
        runner = ROOT / "tools" / "sdc-extract-npm" / "extract.js"
        node_line = (
            f"- Node {node_version()}, @aehrc/sdc-template-extract "
            f"{npm_version(runner, '@aehrc/sdc-template-extract')} (fhirpath.js {npm_version(runner, 'fhirpath')})"
        )
    cmd = f"python bench/bench_pipeline.py --runs {args.runs}" + (
        " --no-npm" if args.no_npm else f" --npm-runs {args.npm_runs}"
    )
    lines = [
        "# Whole pipeline for one plan, in-process",
        "",
        f"Recorded {dt.date.today().isoformat()} by `{cmd}`. Target (README, Performance): the whole flow "
        f"≤ {TARGET_FLOW_MS:g} ms median; `safetyplan --help` cold start ≤ {TARGET_HELP_S} s; our "
        "template extraction at least as fast as the npm engine.",
        "",
        "## Whole flow (validate + extract + document + bundle + serialise), warm",
        "",
        "`json.dumps(pipeline.build_bundle(input), ensure_ascii=False, indent=2)` per example scenario; "
        f"{WARMUP} warm-up runs, then N = {args.runs} measured runs. *fast path* = the native FHIRPath fast "
        "path (`fhir_safetyplan/_fastpath.py`, the default); *fhirpathpy only* = the same code with the fast "
        "path switched off (`_fhirpath.set_fast_path(False)`): the numbers before it.",
        "",
        "| scenario | median ms | p10 | p90 | CPU median ms | fhirpathpy only: median ms | p10 | p90 | "
        "CPU median ms | speed-up | median ≤ 5 ms |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
        *flow_rows,
        "",
        "## Stage breakdown (fast path on), warm medians in ms",
        "",
        "Each stage alone on prepared inputs; the last column is the extract stage with the fast path off.",
        "",
        "| scenario | " + " | ".join(stage_names) + " |",
        "|---|" + "---|" * len(stage_names),
        *stage_rows,
        "",
        "## Cold first call (fresh process)",
        "",
        "A new Python process imports `fhir_safetyplan.pipeline`, then runs the whole flow twice. The first "
        "call pays the lazy imports (validation, answers, document) and parsing + compiling the "
        "Questionnaire's FHIRPath expressions (ANTLR); the second is warm.",
        "",
        "| scenario | import ms | first call ms | second call ms |",
        "|---|---|---|---|",
        *cold_rows,
        "",
    ]
    if npm_rows:
        lines += [
            "## Template extraction: ours vs the npm engine, warm medians in ms",
            "",
            "Same QuestionnaireResponse (after answers → QR) and Questionnaire; ours in this process, npm in "
            f"one Node process (`bench/bench_extract.py`'s runner); N = {args.npm_runs} after warm-up. "
            "Ratio = npm / ours.",
            "",
            "| scenario | ours ms | npm ms | ratio |",
            "|---|---|---|---|",
            *npm_rows,
            "",
        ]
    lines += [
        "## `safetyplan --help` cold start",
        "",
        f"{method}: median {median_s:.3f} s (min {min_s:.3f}, max {max_s:.3f}); target ≤ {TARGET_HELP_S} s: "
        f"{help_ok}.",
        "",
        "## Machine and versions",
        "",
        f"- {platform.platform()}, {platform.machine()}, {os.cpu_count()} cores; 1-minute load average "
        f"{load_before:.1f} at the start and {load_after:.1f} at the end (other work shared the machine: "
        "wall-clock numbers include waiting for a core; the CPU column is this thread's own time)",
        f"- Python {platform.python_version()}; fhirpathpy {version('fhirpathpy')}, fhir.resources "
        f"{version('fhir.resources')}, pydantic {version('pydantic')}, antlr4-python3-runtime "
        f"{version('antlr4-python3-runtime')}",
    ]
    if node_line:
        lines.append(node_line)
    lines.append("")
    args.out.write_text("\n".join(lines), encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
