"""Benchmark: pushing plans to the local HAPI FHIR server, one transaction each vs one request per resource.

    python bench/bench_push.py [--plans 40] [--max-seconds 90]     # writes bench/results/push.md

Starts its own local server (loopback, in-memory H2, its own state directory; stopped at the end), creates one
synthetic Patient, builds N distinct plans from ``examples/02-flere-mangler`` (fresh submission ids, so every push
creates new resources) before timing, then measures:

- transaction, 1 worker: ``FhirClient.transaction`` per plan, sequentially;
- transaction, 4 workers: the same from 4 threads (one client each);
- naive, 1 worker: the same plans as one ``PUT Type/id`` per resource (5 requests per plan), references rewritten
  from ``urn:uuid:`` to ``Type/id``.

Reported per mode: plans/s, median and p90 latency per plan, and the client's CPU share of the wall time
(process CPU time / wall time: how much of the elapsed time this Python process spent computing, across threads).
Each mode is bounded by ``--plans`` and ``--max-seconds``. Not a test: results go to ``bench/results/push.md``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from importlib.metadata import version
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from fhir_safetyplan import local_hapi, pipeline  # noqa: E402
from fhir_safetyplan.client import FhirClient  # noqa: E402
from fhir_safetyplan.document import DocumentContext  # noqa: E402
from fhir_safetyplan.settings import hapi_toolchain  # noqa: E402

#: the local HAPI launcher and Java, configured as for ``safetyplan server``
TOOLCHAIN = hapi_toolchain(os.environ)

JSON = dict[str, Any]
EXAMPLE = ROOT / "examples" / "02-flere-mangler" / "answers.json"
WARMUP = 5


def plans(n: int, tag: str, patient: str) -> list[JSON]:
    """N distinct journal bundles (fresh submission ids) for one existing Patient."""
    data = json.loads(EXAMPLE.read_text(encoding="utf-8"))
    data["patient"] = {"reference": patient}
    out = []
    for i in range(n):
        data["submissionId"] = f"bench-{tag}-{i}"
        out.append(pipeline.build_bundle(data, DocumentContext()))
    return out


def naive_requests(bundle: JSON) -> list[JSON]:
    """The bundle's resources as separate PUTs, urn:uuid references replaced by Type/id."""
    text = json.dumps(bundle)
    for e in bundle["entry"]:
        r = e["resource"]
        text = text.replace(e["fullUrl"], f"{r['resourceType']}/{r['id']}")
    return [e["resource"] for e in json.loads(text)["entry"]]


def run(
    bundles: list[JSON], workers: int, push: Callable[[FhirClient, JSON], None], base: str, max_s: float
) -> JSON:
    local = threading.local()
    latencies: list[float] = []
    deadline = time.monotonic() + max_s
    lock = threading.Lock()

    def one(bundle: JSON) -> None:
        if time.monotonic() > deadline:
            return
        client = getattr(local, "client", None)
        if client is None:
            client = local.client = FhirClient(base, timeout=(5.0, 120.0))
        started = time.perf_counter()
        push(client, bundle)
        with lock:
            latencies.append(time.perf_counter() - started)

    cpu0, wall0 = time.process_time(), time.perf_counter()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(one, bundles))
    wall = time.perf_counter() - wall0
    cpu = time.process_time() - cpu0
    latencies.sort()
    return {
        "plans": len(latencies),
        "wall": wall,
        "plans_per_s": len(latencies) / wall,
        "median_ms": statistics.median(latencies) * 1000,
        "p90_ms": latencies[int(0.9 * (len(latencies) - 1))] * 1000,
        "cpu_share": cpu / wall,
    }


def transaction(client: FhirClient, bundle: JSON) -> None:
    client.transaction(bundle)


def naive(client: FhirClient, bundle: JSON) -> None:
    for resource in naive_requests(bundle):
        client.update(resource)


def java_version() -> str:
    out = subprocess.run(
        [local_hapi.java_executable(TOOLCHAIN), "-version"], capture_output=True, text=True, check=False
    )
    return out.stderr.splitlines()[0] if out.stderr else "?"


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--plans", type=int, default=40, help="plans per mode (default 40)")
    ap.add_argument("--max-seconds", type=float, default=90.0, help="time bound per mode (default 90)")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "push.md")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        print("starting the local HAPI FHIR server ...", file=sys.stderr)
        info = local_hapi.start(state_dir=Path(tmp), toolchain=TOOLCHAIN)
        try:
            base = info.base_url
            with FhirClient(base) as c:
                c.update({"resourceType": "Patient", "id": "bench-patient", "name": [{"family": "Testesen"}]})
                # Warm the server (JIT, caches) with both shapes before measuring.
                for b in plans(WARMUP, "warm-tx", "Patient/bench-patient"):
                    transaction(c, b)
                for b in plans(WARMUP, "warm-naive", "Patient/bench-patient"):
                    naive(c, b)
            results = {}
            for name, workers, push in (
                ("transaction, 1 worker", 1, transaction),
                ("transaction, 4 workers", 4, transaction),
                ("one request per resource, 1 worker", 1, naive),
                ("one request per resource, 4 workers", 4, naive),
            ):
                bundles = plans(args.plans, name.replace(" ", "").replace(",", "-"), "Patient/bench-patient")
                print(f"{name}: {len(bundles)} plans ...", file=sys.stderr)
                results[name] = run(bundles, workers, push, base, args.max_seconds)
        finally:
            local_hapi.stop(Path(tmp))

    rows = "\n".join(
        f"| {name} | {r['plans']} | {r['wall']:.1f} | {r['plans_per_s']:.1f} | {r['median_ms']:.0f} | "
        f"{r['p90_ms']:.0f} | {r['cpu_share'] * 100:.0f} % |"
        for name, r in results.items()
    )
    tx1 = results["transaction, 1 worker"]["plans_per_s"]
    nv1 = results["one request per resource, 1 worker"]["plans_per_s"]
    text = f"""# Pushing plans to the local HAPI FHIR server

Recorded {dt.date.today().isoformat()} by `python bench/bench_push.py --plans {args.plans}`.

Each plan is the journal bundle of `examples/02-flere-mangler` with a fresh submission id (5 resources:
QuestionnaireResponse, CarePlan, Flag, DocumentReference, Provenance), for one existing Patient, so every push
creates new resources. Bundles are built before timing; {WARMUP} plans of each shape warm the server first.
"One request per resource" sends the same resources as 5 separate `PUT Type/id` (not atomic, not how we deliver).
CPU share = this Python process's CPU time / wall time (all threads): the rest is waiting for the server.

| mode | plans | wall s | plans/s | median ms/plan | p90 ms/plan | client CPU share |
|---|---|---|---|---|---|---|
{rows}

One transaction per plan is {tx1 / nv1:.1f}× the plans/s of one request per resource with one worker.

## Machine and versions

- {platform.platform()}, {cpu_model()}, {len(os.sched_getaffinity(0))} CPUs available
- Python {platform.python_version()}, requests {version("requests")}, urllib3 {version("urllib3")}
- HAPI FHIR 8.8.0 JPA (our launcher in `hapi/`, H2 in memory), {java_version()}
- Client and server on the same machine over loopback: they compete for the same CPUs.
"""
    args.out.write_text(text, encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
