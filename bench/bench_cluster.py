"""Benchmark: delivered plans per second with 1 and with 3 service replicas, against HAPI on PostgreSQL.

    python bench/bench_cluster.py [--plans 150] [--replicas 1,3] [--engine 6]   # writes bench/results/cluster.md

Everything runs on this machine over loopback: a temporary PostgreSQL cluster with PostgreSQL's durable
defaults (``fsync``, ``synchronous_commit``, ``full_page_writes`` on; ``tests/pg_cluster.py``), HAPI FHIR on one
database of it (``safetyplan server start --db``), and per scenario N ``safetyplan serve`` processes sharing one
outbox (a fresh PostgreSQL database per scenario when the PostgreSQL outbox is available, else one SQLite file).
An engine in this process posts ``--plans`` plans (synthetic patients, one plan each, fresh submission ids) with
``--engine`` threads spread over the replicas; each POST validates, documents and delivers the plan to HAPI as
one transaction through the outbox (201 when HAPI took it). The figure is plans delivered per second of wall
time, from the first POST until the outbox has nothing pending.

During each scenario the CPU seconds of each party are read from ``/proc`` (HAPI's JVM, the replicas, the
PostgreSQL server processes, this engine), which is what says what bounds the rate on this machine. Bounded:
a fixed number of plans per scenario. Not a test: results go to ``bench/results/cluster.md``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import random
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from importlib.metadata import version
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

import pg_cluster  # noqa: E402
from _measure import percentile  # noqa: E402
from _report import table, tally  # noqa: E402

from fhir_safetyplan import local_hapi  # noqa: E402
from fhir_safetyplan.identifiers import synthetic_fnr  # noqa: E402
from fhir_safetyplan.settings import hapi_toolchain  # noqa: E402

JSON = dict[str, Any]
EXAMPLE = ROOT / "examples" / "02-flere-mangler" / "answers.json"
TOKEN = "bench-cluster-token-0123456789abcdef"
HEADERS = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/fhir+json"}
TICKS = os.sysconf("SC_CLK_TCK")
TOOLCHAIN = hapi_toolchain(os.environ)
#: plans of the first, unrecorded scenario: HAPI's JIT keeps getting faster for about this many transactions
WARM_UP = 100


def postgres_outbox() -> bool:
    """Whether this checkout has the PostgreSQL outbox (``--outbox postgresql://…``)."""
    return (ROOT / "fhir_safetyplan" / "delivery" / "outbox_postgres.py").is_file()


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of ``pid`` so far (0 if it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICKS


def postgres_cpu(cluster: pg_cluster.Cluster) -> float:
    """CPU seconds of the whole PostgreSQL server so far: the postmaster, its ended backends (their time is
    added to the postmaster's children's time when it reaps them) and its live backends."""
    postmaster = int((cluster.data_dir / "postmaster.pid").read_text().split()[0])
    fields = Path(f"/proc/{postmaster}/stat").read_text().rsplit(")", 1)[1].split()
    total = sum(int(f) for f in fields[11:15]) / TICKS  # utime, stime, cutime, cstime
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == postmaster:
                total += cpu_seconds(int(stat.parent.name))
        except (OSError, ValueError, IndexError):
            continue
    return total


def machine_busy() -> tuple[float, float]:
    """(busy, all) CPU seconds of the whole machine so far, from /proc/stat (every process, ours or not)."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    return (sum(values) - idle) / TICKS, sum(values) / TICKS


def fresh_plans(count: int, tag: str) -> list[JSON]:
    """``count`` plans on as many synthetic patients (Tenor-style identity numbers), fresh submission ids."""
    template = json.loads(EXAMPLE.read_text(encoding="utf-8"))
    rng = random.Random(f"bench-cluster-{tag}")
    plans = []
    while len(plans) < count:
        born = date(rng.randint(1940, 2005), rng.randint(1, 12), rng.randint(1, 28))
        try:
            fnr = synthetic_fnr(born, rng.randint(0, 499))
        except ValueError:
            continue
        plans.append({**template, "submissionId": f"bench-{tag}-{len(plans)}", "patient": {"fnr": fnr}})
    return plans


class Replicas:
    """N ``safetyplan serve`` processes on one outbox, delivering to ``upstream``."""

    def __init__(self, n: int, upstream: str, outbox: str, log_dir: Path) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SAFETYPLAN_")}
        env["SAFETYPLAN_SERVICE_TOKENS"] = TOKEN
        self.urls: list[str] = []
        self.procs: list[subprocess.Popen[bytes]] = []
        for i in range(n):
            port = local_hapi.free_port()
            cmd = [
                sys.executable, "-m", "fhir_safetyplan", "serve", "--port", str(port), "--upstream", upstream,
                "--outbox", outbox, "--flush-interval", "2", "--create-patient",
            ]  # fmt: skip
            with (log_dir / f"replica-{n}-{i}.log").open("wb") as log:
                self.procs.append(
                    subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
                )
            self.urls.append(f"http://127.0.0.1:{port}")
        for url in self.urls:
            for _ in range(600):
                try:
                    if requests.get(f"{url}/healthz", timeout=5).status_code == 200:
                        break
                except requests.RequestException:
                    pass
                time.sleep(0.1)

    def pending(self) -> int:
        health: JSON = requests.get(f"{self.urls[0]}/healthz", timeout=30).json()
        return int((health.get("outbox") or {}).get("pending", 0))

    def close(self) -> None:
        for proc in self.procs:
            proc.terminate()
        for proc in self.procs:
            proc.wait(60)


def scenario(replicas: Replicas, plans: list[JSON], engine: int, parties: dict[str, Any]) -> JSON:
    """Post every plan (``engine`` threads, round-robin over the replicas) and wait until none is pending.
    ``parties`` maps a name to a function giving its CPU seconds so far."""
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    lock = threading.Lock()
    local = threading.local()

    def post(n: int, plan: JSON) -> None:
        session = getattr(local, "session", None) or requests.Session()
        local.session = session
        url = replicas.urls[n % len(replicas.urls)]
        t0 = time.perf_counter()
        r = session.post(f"{url}/QuestionnaireResponse", json=plan, headers=HEADERS, timeout=300)
        with lock:
            latencies.append((time.perf_counter() - t0) * 1000)
            statuses[r.status_code] += 1

    cpu_before = {name: seconds() for name, seconds in parties.items()}
    busy_before, all_before = machine_busy()
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=engine) as pool:
        list(pool.map(post, range(len(plans)), plans))
    while replicas.pending() > 0 and time.monotonic() - started < 600:
        time.sleep(0.2)
    wall = time.monotonic() - started
    busy_after, all_after = machine_busy()
    return {
        "plans": len(plans),
        "wall": wall,
        "rate": len(plans) / wall,
        "p50": percentile(latencies, 50),
        "p90": percentile(latencies, 90),
        "statuses": dict(sorted(statuses.items())),
        "cpu": {name: seconds() - cpu_before[name] for name, seconds in parties.items()},
        "machine_busy": (busy_after - busy_before) / max(all_after - all_before, 1e-9),
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--plans", type=int, default=150, help="plans per scenario")
    parser.add_argument("--replicas", default="1,3", help="replica counts, comma separated")
    parser.add_argument("--engine", type=int, default=6, help="engine threads posting at once")
    parser.add_argument(
        "--rounds", type=int, default=2, help="times each replica count is run, interleaved (1, 3, 1, 3)"
    )
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "cluster.md")
    args = parser.parse_args()
    counts = [int(n) for n in args.replicas.split(",")]

    tmp = Path(tempfile.mkdtemp(prefix="bench-cluster-"))
    load_before = os.getloadavg()
    print("starting PostgreSQL (durable) and HAPI on it ...", file=sys.stderr)
    cluster = pg_cluster.start(durable=True)
    results: list[tuple[int, JSON]] = []
    try:
        hapi = local_hapi.start(
            state_dir=tmp / "hapi", db=cluster.create_database("hapi"), timeout=600, toolchain=TOOLCHAIN
        )
        tag = dt.datetime.now().strftime("%H%M%S")
        # The first scenario, unrecorded, warms HAPI's JIT and caches up.
        for i, n in enumerate([0, *counts * args.rounds]):
            warm = i == 0
            outbox = (
                cluster.create_database(f"outbox_{i}")
                if postgres_outbox()
                else str(tmp / f"outbox-{i}.sqlite")
            )
            replicas = Replicas(max(n, 1), hapi.base_url, outbox, tmp)
            try:
                pids = [p.pid for p in replicas.procs]
                parties = {
                    "HAPI (JVM)": lambda: cpu_seconds(hapi.pid),
                    "PostgreSQL": lambda: postgres_cpu(cluster),
                    "replicas": lambda pids=pids: sum(cpu_seconds(p) for p in pids),
                    "engine (this process)": lambda: cpu_seconds(os.getpid()),
                }
                plans = fresh_plans(WARM_UP if warm else args.plans, f"{tag}-{i}")
                print(f"{'warm-up' if warm else n} replica(s), {len(plans)} plans ...", file=sys.stderr)
                outcome = scenario(replicas, plans, args.engine, parties)
                if not warm:
                    kind = "postgresql" if "://" in outbox else "sqlite"
                    results.append((n, {**outcome, "outbox": kind}))
            finally:
                replicas.close()
    finally:
        local_hapi.stop(tmp / "hapi")
        cluster.stop()
    write(args, results, load_before)
    return 0


def write(args: argparse.Namespace, results: list[tuple[int, JSON]], load_before: tuple[float, ...]) -> None:
    java = subprocess.run(["java", "-version"], capture_output=True, text=True).stderr.splitlines()
    pg = subprocess.run(
        [pg_cluster.binary("postgres"), "--version"], capture_output=True, text=True
    ).stdout.strip()
    cpus = os.cpu_count() or 1
    parties = list(results[0][1]["cpu"])
    per_plan = {
        i: {name: 1000 * v / r["plans"] for name, v in r["cpu"].items()} for i, (_, r) in enumerate(results)
    }
    lines = [
        "# Delivered plans per second: 1 and 3 service replicas, HAPI on PostgreSQL",
        "",
        f"Recorded {date.today().isoformat()} by `python bench/bench_cluster.py --plans {args.plans} "
        f"--replicas {args.replicas} --engine {args.engine} --rounds {args.rounds}`.",
        "",
        "One machine, loopback only: a durable PostgreSQL cluster (its defaults: fsync, synchronous_commit and "
        "full_page_writes on) holding HAPI FHIR's database and the shared outbox; HAPI FHIR on it "
        "(`safetyplan server start --db`); N `safetyplan serve` replicas on one outbox; an engine in the "
        f"benchmark process posting the plans with {args.engine} threads spread round-robin over the replicas. "
        "Every plan is a new synthetic patient with the answers of `examples/02-flere-mangler` (5 resources and "
        "a conditional create of the Patient in one transaction). The rate is plans delivered per second of "
        "wall time, from the first POST until the outbox has nothing pending. A first, unrecorded scenario of "
        f"{WARM_UP} plans warms HAPI up; the replica counts then take turns.",
        "",
        *table(
            "replicas | outbox | plans | seconds | delivered plans/s | POST p50 ms | POST p90 ms | statuses",
            (
                [
                    n,
                    r["outbox"],
                    r["plans"],
                    f"{r['wall']:.1f}",
                    f"{r['rate']:.1f}",
                    f"{r['p50']:.0f}",
                    f"{r['p90']:.0f}",
                    tally(r["statuses"]),
                ]
                for n, r in results
            ),
        ),
        "",
        "CPU seconds used by each party during the scenario (2 CPUs: at most twice the wall time in all):",
        "",
        *table(
            ["replicas", *parties, "ours, of the machine's CPU time", "machine busy (anyone's work)"],
            (
                [
                    n,
                    *(f"{v:.1f}" for v in r["cpu"].values()),
                    f"{100 * sum(r['cpu'].values()) / (cpus * r['wall']):.0f} %",
                    f"{100 * r['machine_busy']:.0f} %",
                ]
                for n, r in results
            ),
        ),
        "",
        "CPU milliseconds per delivered plan:",
        "",
        *table(
            ["replicas", *parties],
            ([results[i][0], *(f"{v:.0f}" for v in ms.values())] for i, ms in per_plan.items()),
        ),
        "",
        "## What bounds it",
        "",
        *bounds(results, per_plan),
        "",
        "## Machine and versions",
        "",
        f"- {platform.platform()}, {cpus} CPUs; load average {load_before[0]:.1f} / {load_before[1]:.1f} / "
        f"{load_before[2]:.1f} (1 / 5 / 15 min) when the run started: other work on the machine competes for "
        "the same CPUs",
        f"- Python {platform.python_version()}, fastapi {version('fastapi')}, uvicorn {version('uvicorn')}, "
        f"psycopg {version('psycopg')}, requests {version('requests')}",
        f"- {pg}; HAPI FHIR 8.8.0 JPA (our launcher in `hapi/`, PostgreSQL JDBC 42.7.7), "
        f"{java[0] if java else 'java'}",
        "",
    ]
    args.out.write_text("\n".join(lines), encoding="utf-8")
    print("\n".join(lines))


def bounds(results: list[tuple[int, JSON]], per_plan: dict[int, dict[str, float]]) -> list[str]:
    """What the figures say about the limit, in words computed from them."""
    cpus = os.cpu_count() or 1
    counts = sorted({n for n, _ in results})
    rates = {n: [r["rate"] for m, r in results if m == n] for n in counts}
    shares = [100 * sum(r["cpu"].values()) / (cpus * r["wall"]) for _, r in results]
    busy = [100 * r["machine_busy"] for _, r in results]
    # plans per CPU-second our processes used: the rate with the other work on the machine taken out
    per_cpu = {n: [r["plans"] / sum(r["cpu"].values()) for m, r in results if m == n] for n in counts}
    hapi_ms = sum(ms["HAPI (JVM)"] for ms in per_plan.values()) / len(per_plan)
    ours_ms = sum(ms["replicas"] for ms in per_plan.values()) / len(per_plan)
    pg_ms = sum(ms["PostgreSQL"] for ms in per_plan.values()) / len(per_plan)

    def listed(values: dict[int, list[float]]) -> str:
        return "; ".join(f"{n} replica(s) {', '.join(f'{v:.1f}' for v in vs)}" for n, vs in values.items())

    return [
        f"Delivered plans/s: {listed(rates)}. All parties share the same {cpus} CPUs, which were "
        f"{min(busy):.0f}–{max(busy):.0f} % busy throughout, and our processes got {min(shares):.0f}–"
        f"{max(shares):.0f} % of them (the rest went to other work on the machine). The rate follows that share: "
        f"per CPU-second our processes used, {listed(per_cpu)} plans. Extra replicas on the same CPUs add "
        "processes, not CPU time, so they change little; the CPU goes mostly to HAPI. Per plan, HAPI's "
        f"transaction costs about {hapi_ms:.0f} ms of CPU, PostgreSQL about {pg_ms:.0f} ms (HAPI's database and "
        "the outbox) and the replicas' own work (validate, document, outbox put and mark delivered, HTTP, the "
        f"background flushers) about {ours_ms:.0f} ms: HAPI is the bottleneck, roughly "
        f"{hapi_ms / max(ours_ms, 1e-9):.0f}× the service's cost per plan.",
        "",
        "What replicas are for is availability (any of them accepts and any delivers; a dead one's plans are "
        "taken over), and on machines of their own they add the service's share of capacity: about "
        f"{1000 / max(ours_ms, 1e-9):.0f} plans/s per CPU of replica. Delivered plans per second then depend on "
        f"HAPI and its database: about {1000 / max(hapi_ms, 1e-9):.0f} plans/s per CPU given to HAPI at these "
        "per-plan costs. This is a 2-CPU machine shared with other work, so treat the absolute rates as a floor.",
    ]


if __name__ == "__main__":
    raise SystemExit(main())
