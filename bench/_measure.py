"""What the benchmarks share when they measure: a warm in-process timing loop, an npm oracle runner's
``--bench`` mode (one Node process, a loop of in-process calls) and percentiles."""

from __future__ import annotations

import json
import statistics
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


def warm_ms(call: Callable[[], object], runs: int, warmup: int) -> list[float]:
    """Wall-clock ms of each of ``runs`` calls, after ``warmup`` calls that are not measured."""
    for _ in range(warmup):
        call()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        call()
        times.append((time.perf_counter() - t0) * 1000)
    return times


def node_bench(runner: Path, payload: dict[str, Any], runs: int, warmup: int) -> list[float]:
    """ms per call the Node script ``runner`` reports for ``runs`` calls on ``payload``, its first ``warmup``
    calls dropped."""
    proc = subprocess.run(
        ["node", str(runner), "--bench", str(runs + warmup)],
        input=json.dumps(payload),
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    )
    times: list[float] = json.loads(proc.stdout)["times_ms"]
    return times[warmup:]


def npm_version(runner: Path, package: str) -> str:
    """The version of ``package`` the runner's ``package-lock.json`` pins."""
    lock = json.loads((runner.parent / "package-lock.json").read_text(encoding="utf-8"))
    version: str = lock["packages"][f"node_modules/{package}"]["version"]
    return version


def node_version() -> str:
    return subprocess.run(["node", "--version"], capture_output=True, text=True, check=True).stdout.strip()


def p90(values: list[float]) -> float:
    """The 90th percentile, interpolated (``statistics.quantiles``)."""
    return statistics.quantiles(values, n=10)[-1]


def percentile(values: list[float], p: float) -> float:
    """The ``p``-th percentile as the nearest measured value (0 when nothing was measured)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))] if ordered else 0.0
