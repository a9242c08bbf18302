"""Benchmark: batch mode (``bundle --ndjson``) against one ``safetyplan bundle`` process per plan, on one core.

    python bench/bench_batch.py [--lines 2000] [--processes 20] [--memory 1000,10000] [--push URL [--push-lines 200,2000]]
                                                                      # writes bench/results/batch.md

Everything runs pinned to CPU 0 (``taskset -c 0``; this process with ``os.sched_setaffinity``), so the numbers
are what one core gives:

- **one process per plan**: ``safetyplan bundle FILE`` run ``--processes`` times, one example input each (the
  way an integration engine calls the CLI per message today): median wall time and CPU time per plan;
- **batch**: ``safetyplan bundle --ndjson FILE`` over ``--lines`` lines (the examples' inputs in turn, each with
  its own submission id), three runs: plans/s by wall clock and by CPU time (the machine is shared: the CPU
  figure is what the core would give unshared);
- **in-process flow**: the same lines through ``json.dumps(build_bundle(parse_json(line)))`` in this process,
  warm — what the batch is compared with ("near the in-process flow");
- **memory**: peak RSS of ``bundle --ndjson`` (and ``validate --ndjson``) over each line count of ``--memory``:
  flat means the same peak for 10× the lines;
- with ``--push URL`` (a HAPI server you started, e.g. ``safetyplan server start``): ``push --ndjson
  --create-patient --workers 4`` of ``--push-lines`` fresh plans each into a fresh outbox: plans/s and peak RSS.

Nothing here is a test: the numbers are recorded, not asserted.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from fhir_safetyplan import pipeline  # noqa: E402
from fhir_safetyplan.identifiers import synthetic_fnr  # noqa: E402

EXAMPLES = ROOT / "examples"
SAFETYPLAN = Path(sys.executable).parent / "safetyplan"
PIN = ["taskset", "-c", "0"] if shutil.which("taskset") else []

# Runs a command and prints its CPU seconds and peak RSS (kB): RUSAGE_CHILDREN of a fresh process is its one
# child's alone.
_MEASURE = """
import resource, subprocess, sys, time
t0 = time.perf_counter()
with open(sys.argv[1], "wb") as out:
    code = subprocess.run(sys.argv[2:], stdout=out, stderr=subprocess.DEVNULL).returncode
wall = time.perf_counter() - t0
u = resource.getrusage(resource.RUSAGE_CHILDREN)
print(code, wall, u.ru_utime + u.ru_stime, u.ru_maxrss)
"""


def inputs() -> list[tuple[str, Any]]:
    """Every example's input (answers document, or the renderer's QuestionnaireResponse)."""
    out = []
    for folder in sorted(p for p in EXAMPLES.iterdir() if p.is_dir()):
        for name in ("answers.json", "input.json"):
            if (folder / name).exists():
                out.append((folder.name, json.loads((folder / name).read_text(encoding="utf-8"))))
                break
    return out


def write_lines(path: Path, n: int, *, fresh_patients: bool = False) -> None:
    """``n`` lines: the examples' inputs in turn, each with its own submission id (and patient)."""
    examples = inputs()
    rng = random.Random()  # fresh patients on every run: a server keeps the plans of earlier runs
    patients = _fnrs(rng)
    with path.open("w", encoding="utf-8") as f:
        for i in range(n):
            data = json.loads(json.dumps(examples[i % len(examples)][1]))
            if "answers" in data:
                data["submissionId"] = f"bench-{i}-{rng.getrandbits(32):08x}"
                if fresh_patients:
                    data["patient"] = {"fnr": next(patients)}
            elif fresh_patients:
                continue
            f.write(json.dumps(data, ensure_ascii=False) + "\n")


def _fnrs(rng: random.Random) -> Iterator[str]:
    """Synthetic identity numbers, each once: consecutive birth dates from a random one (a patient given two
    plans would be a revision, not the first plan this benchmark means)."""
    born = dt.date(1940, 1, 1) + dt.timedelta(days=rng.randint(0, 20000))
    while True:
        for individual in range(100, 500):
            try:
                yield synthetic_fnr(born, individual)
            except ValueError:  # no valid check digit for this individual number
                continue
        born += dt.timedelta(days=1)


def measure(cmd: list[str], out: Path) -> tuple[int, float, float, int]:
    """(exit code, wall s, CPU s, peak RSS kB) of ``cmd`` pinned to CPU 0, stdout to ``out``."""
    probe = subprocess.run(
        [sys.executable, "-c", _MEASURE, str(out), *PIN, *cmd], capture_output=True, text=True, check=True
    )
    code, wall, cpu, rss = probe.stdout.split()
    return int(code), float(wall), float(cpu), int(rss)


def per_process(runs: int, tmp: Path) -> dict[str, float]:
    examples = inputs()
    walls, cpus = [], []
    for i in range(runs):
        name, data = examples[i % len(examples)]
        path = tmp / f"{name}.json"
        path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
        code, wall, cpu, _ = measure([str(SAFETYPLAN), "bundle", str(path)], tmp / "out.json")
        assert code == 0, name
        walls.append(wall)
        cpus.append(cpu)
    return {"wall": statistics.median(walls), "cpu": statistics.median(cpus)}


def batch(lines: int, tmp: Path, command: str = "bundle") -> dict[str, float]:
    path = tmp / f"batch-{lines}.ndjson"
    write_lines(path, lines)
    best: dict[str, float] = {}
    for _ in range(3):
        code, wall, cpu, rss = measure([str(SAFETYPLAN), command, "--ndjson", str(path)], tmp / "out.ndjson")
        assert code == 0, code
        got = sum(1 for _ in (tmp / "out.ndjson").open(encoding="utf-8"))
        assert got == lines, (got, lines)
        if not best or wall < best["wall"]:
            best = {"wall": wall, "cpu": cpu, "rss": rss}
    return best


def in_process(lines: int, tmp: Path) -> dict[str, float]:
    path = tmp / f"batch-{lines}.ndjson"
    raw = path.read_bytes().splitlines()
    for line in raw[:50]:  # warm-up: imports and compiled FHIRPath
        json.dumps(pipeline.build_bundle(pipeline.parse_json(line)), ensure_ascii=False)
    w0, c0 = time.perf_counter(), time.process_time()
    for line in raw:
        json.dumps(
            pipeline.build_bundle(pipeline.parse_json(line)), ensure_ascii=False, separators=(",", ":")
        )
    return {"wall": time.perf_counter() - w0, "cpu": time.process_time() - c0}


def memory(counts: list[int], tmp: Path) -> list[tuple[int, str, int, float]]:
    rows = []
    for n in counts:
        path = tmp / f"batch-{n}.ndjson"
        if not path.exists():
            write_lines(path, n)
        for command in ("bundle", "validate"):
            code, wall, _, rss = measure(
                [str(SAFETYPLAN), command, "--ndjson", str(path)], tmp / "mem.ndjson"
            )
            assert code == 0, (command, n, code)
            rows.append((n, command, rss, wall))
    return rows


def push(url: str, tmp: Path, counts: list[int]) -> list[dict[str, float]]:
    rows = []
    for n in counts:
        path = tmp / f"push-{n}.ndjson"
        write_lines(path, n, fresh_patients=True)
        lines = sum(1 for _ in path.open(encoding="utf-8"))
        cmd = [str(SAFETYPLAN), "push", "--ndjson", str(path), "--server", url, "--create-patient"]
        cmd += ["--outbox", str(tmp / f"push-outbox-{n}.sqlite"), "--workers", "4"]
        code, wall, cpu, rss = measure(cmd, tmp / "push-out.ndjson")
        statuses = [json.loads(x).get("status") for x in (tmp / "push-out.ndjson").open(encoding="utf-8")]
        assert code == 0 and statuses.count("delivered") == lines, (code, set(statuses))
        rows.append({"lines": lines, "wall": wall, "cpu": cpu, "rss": rss})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=2000)
    parser.add_argument("--processes", type=int, default=20)
    parser.add_argument("--memory", default="1000,10000")
    parser.add_argument("--push", metavar="URL")
    parser.add_argument("--push-lines", default="200,2000")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "batch.md")
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {0})
    load_start = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="bench-batch-") as name:
        tmp = Path(name)
        proc = per_process(args.processes, tmp)
        bat = batch(args.lines, tmp)
        flow = in_process(args.lines, tmp)
        mem = memory([int(x) for x in args.memory.split(",")], tmp)
        pushed = push(args.push, tmp, [int(x) for x in args.push_lines.split(",")]) if args.push else None
    load_end = os.getloadavg()[0]
    report(args, proc, bat, flow, mem, pushed, (load_start, load_end))


def report(
    args: argparse.Namespace,
    proc: dict[str, float],
    bat: dict[str, float],
    flow: dict[str, float],
    mem: list[tuple[int, str, int, float]],
    pushed: list[dict[str, float]] | None,
    load: tuple[float, float],
) -> None:
    n = args.lines
    rate = {
        "per process": (1 / proc["wall"], 1 / proc["cpu"]),
        "bundle --ndjson": (n / bat["wall"], n / bat["cpu"]),
        "in-process flow": (n / flow["wall"], n / flow["cpu"]),
    }
    base_wall, base_cpu = rate["per process"]
    lines = [
        "# Batch mode: `bundle --ndjson` against one process per plan, one core",
        "",
        f"Recorded {dt.date.today().isoformat()} by `python bench/bench_batch.py --lines {n} --processes "
        f"{args.processes} --memory {args.memory}"
        + (f" --push URL --push-lines {args.push_lines}" if pushed else "")
        + "`. Everything pinned "
        "to CPU 0 (`taskset -c 0`). Target (issue 12): `bundle --ndjson` at least 100× the plans/s of one "
        "`safetyplan bundle` process per plan, near the in-process flow; memory flat over 10,000 lines.",
        "",
        "## Plans per second",
        "",
        f"*per process*: `safetyplan bundle FILE`, {args.processes} runs over the examples' inputs, median. "
        f"*bundle --ndjson*: one run over {n} lines (the examples' inputs in turn, each its own submission id), "
        "best of 3. *in-process flow*: the same lines through `json.dumps(build_bundle(parse_json(line)))` in "
        "one warm process. *wall* is the clock (the machine is shared); *CPU* is the process's own CPU time.",
        "",
        "| how | s per plan (wall) | plans/s (wall) | × per process (wall) | plans/s (CPU) | × per process (CPU) |",
        "|---|---|---|---|---|---|",
    ]
    for how, (wall, cpu) in rate.items():
        lines.append(
            f"| {how} | {1 / wall:.4f} | {wall:.1f} | {wall / base_wall:.0f}× | {cpu:.1f} | {cpu / base_cpu:.0f}× |"
        )
    lines += [
        "",
        f"`bundle --ndjson` reaches {rate['bundle --ndjson'][1] / rate['in-process flow'][1]:.0%} of the in-process "
        f"flow by CPU time ({rate['bundle --ndjson'][0] / rate['in-process flow'][0]:.0%} by the clock); "
        f"the target of 100× the per-process rate is {'met' if rate['bundle --ndjson'][0] / base_wall >= 100 else 'NOT met'} "
        f"by the clock and {'met' if rate['bundle --ndjson'][1] / base_cpu >= 100 else 'NOT met'} by CPU time.",
        "",
        "## Peak memory (RSS) against input length",
        "",
        "| lines | command | peak RSS MB | wall s |",
        "|---|---|---|---|",
    ]
    lines += [f"| {n_:,} | {cmd} --ndjson | {rss / 1024:.1f} | {wall:.1f} |" for n_, cmd, rss, wall in mem]
    by_cmd: dict[str, list[int]] = {}
    for _, cmd, rss, _ in mem:
        by_cmd.setdefault(cmd, []).append(rss)
    lines += [""] + [
        f"- {cmd} --ndjson: {max(v) / min(v):.2f}× the peak RSS for {max(int(x) for x in args.memory.split(',')) // min(int(x) for x in args.memory.split(','))}× the lines"
        for cmd, v in by_cmd.items()
    ]
    if pushed:
        lines += [
            "",
            "## push --ndjson against a local HAPI server",
            "",
            "Fresh plans (each its own synthetic patient; the examples' answers documents in turn), "
            "`--create-patient --workers 4`, into a fresh outbox; HAPI (H2) on the same 2 shared cores, the "
            "command pinned to CPU 0. Every line delivered.",
            "",
            "| lines | plans/s (wall) | CPU ms per plan (command) | peak RSS MB |",
            "|---|---|---|---|",
        ]
        lines += [
            f"| {p['lines']:,.0f} | {p['lines'] / p['wall']:.1f} | {p['cpu'] / p['lines'] * 1000:.1f} | "
            f"{p['rss'] / 1024:.1f} |"
            for p in pushed
        ]
    lines += [
        "",
        "## Machine and versions",
        "",
        f"- {platform.platform()}, {platform.machine()}, {os.cpu_count()} cores; 1-minute load average "
        f"{load[0]:.1f} at the start and {load[1]:.1f} at the end (other work shared the machine)",
        f"- Python {platform.python_version()}",
        "",
    ]
    args.out.write_text("\n".join(lines), encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
