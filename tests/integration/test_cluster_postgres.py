"""The service as a cluster: three ``safetyplan serve`` replicas and two ``safetyplan outbox flush`` loops on one
PostgreSQL outbox, 100 plans (synthetic, one patient each), while replicas are SIGKILLed and restarted and the
upstream HAPI server is stopped for a while and started again. Every plan must end up on the server exactly
once, on its own patient, and every outbox entry delivered.

Two runs at once, each with an outbox database of its own in the session's PostgreSQL cluster: one against HAPI
on H2 (in a file), one against HAPI on PostgreSQL. A run:

1. the replicas and flush loops start; an engine posts the plans to any replica, four at a time, and sends a
   plan again to another replica when its replica died under it (it never heard an answer);
2. after the first third of the plans HAPI is stopped; the replicas go on accepting (202: queued in the
   shared outbox) while it is down; after the second third it is started again (on the same port: its data
   is in its database and survives);
3. meanwhile a chaos thread SIGKILLs a replica every few seconds and starts a new one, including while the
   queued plans are being delivered after HAPI is back. On PostgreSQL a killed replica's leases only expire
   (``serve --outbox-lease``, short here), then the others deliver what it held. While HAPI is down and while
   the queue is being delivered, every other ``outbox flush --lease`` (as short) is SIGKILLed too, a moment
   after it starts;
4. once the outbox has nothing pending, the server is searched patient by patient.

Figures are printed like the fault matrix's; every figure but ``plans`` must be 0.
"""

from __future__ import annotations

import json
import random
import re
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol

import requests

from fhir_safetyplan import local_hapi
from fhir_safetyplan.delivery.store import OutboxEntry, open_outbox

from .conftest import TOOLCHAIN, Fhir, HapiOnPostgres, fresh_identifier
from .test_delivery_hapi import fresh_fnr, fresh_plan
from .test_fault_matrix_hapi import EXAMPLES, FAILURES, check_plans, cli, post_answers, serve
from .test_service_hapi import wait_for

JSON = dict[str, Any]
SEED = 12_2026
PLANS = 100
REPLICAS = 3
FLUSH_LOOPS = 2
ENGINE_THREADS = 4
#: seconds between two replica kills (drawn from this range)
KILL_EVERY = (2.0, 4.0)
#: seconds a replica's claim lasts (``serve --outbox-lease``): how soon a killed replica's plans are taken over;
#: longer than one send takes here, so a living replica's plan is not taken from it
LEASE = 10.0


class Upstream(Protocol):
    """A HAPI server that can be stopped and started again with its data."""

    @property
    def base_url(self) -> str: ...

    def stop(self) -> None: ...

    def start(self) -> None: ...

    def ready(self) -> str: ...


class HapiOnH2File:
    """The fault tests' HAPI (``faulty_server``: H2 in a file, so its data survives a restart)."""

    def __init__(self, faulty: JSON) -> None:
        self.faulty = faulty

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.faulty['port']}/fhir"

    def stop(self) -> None:
        local_hapi.stop(self.faulty["state"])

    def start(self) -> None:
        port = self.faulty["port"]
        local_hapi.start(
            port=port,
            state_dir=self.faulty["state"],
            server_args=self.faulty["args"],
            timeout=300,
            toolchain=TOOLCHAIN,
        )

    def ready(self) -> str:
        wait_for(lambda: local_hapi.metadata_ok(self.base_url), 300, "HAPI on H2")
        return self.base_url


@dataclass
class Cluster:
    """One run: the replicas, the figures, and what the engine was told."""

    upstream: Upstream
    outbox: str
    rng: random.Random = field(default_factory=lambda: random.Random(SEED))
    lock: threading.Lock = field(default_factory=threading.Lock)
    replicas: list[tuple[subprocess.Popen[str], str]] = field(default_factory=list)
    replacing: set[int] = field(default_factory=set)  # slots whose replica is being killed and replaced
    done: threading.Event = field(default_factory=threading.Event)
    accepted: dict[int, int] = field(default_factory=dict)  # HTTP status -> how many
    kills: dict[str, int] = field(default_factory=lambda: dict.fromkeys(("up", "down", "delivering"), 0))
    resent: int = 0
    flush_kills: int = 0
    unexpected: list[str] = field(default_factory=list)
    phase: str = "up"
    seconds: dict[str, float] = field(default_factory=dict)  # how long each phase took
    clock: float = field(default_factory=time.monotonic)

    def draw(self, a: float, b: float) -> float:
        with self.lock:
            return self.rng.uniform(a, b)

    def replica_urls(self) -> list[str]:
        with self.lock:
            return [url for _, url in self.replicas]

    # ---- the engine ----------------------------------------------------------------------------------

    def post(self, n: int, data: JSON) -> None:
        """POST plan ``n`` to a replica until one answers; a dropped connection means: send it again (to the
        next replica)."""

        def replica(attempt: int) -> str:
            urls = self.replica_urls()
            return urls[(n + attempt) % len(urls)]

        def resent() -> None:
            with self.lock:
                self.resent += 1

        r = post_answers(replica, data, tries=60, pause=0.2, dropped=resent)
        if r is None:
            self.unexpected.append("no replica took a plan in 60 tries")
            return
        with self.lock:
            self.accepted[r.status_code] = self.accepted.get(r.status_code, 0) + 1
            if r.status_code not in (201, 202):
                self.unexpected.append(f"replica answered {r.status_code}: {_gist(r)}")

    # ---- chaos ---------------------------------------------------------------------------------------

    def kill_replicas(self) -> None:
        """SIGKILL a replica every few seconds and start a new one in its place, until the run is done."""
        while not self.done.wait(self.draw(*KILL_EVERY)):
            self.kill_one()

    def kill_one(self) -> None:
        """SIGKILL one replica (not one being replaced already) and start a new one in its slot."""
        with self.lock:
            free = [i for i in range(len(self.replicas)) if i not in self.replacing]
            if not free:
                return
            slot = self.rng.choice(free)
            self.replacing.add(slot)
            proc, _ = self.replicas[slot]
            self.kills[self.phase] += 1
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        replacement = self.replica()
        with self.lock:
            self.replicas[slot] = replacement
            self.replacing.discard(slot)

    def restart_upstream(self) -> None:
        """Start HAPI again; from its first answer on, the queued plans are being delivered, and a replica is
        killed amid that (the replicas' flushers start within a second)."""
        self.upstream.start()
        self.phase = "delivering"
        self.lap("HAPI down")
        time.sleep(self.draw(0.3, 1.0))
        self.kill_one()

    def lap(self, what: str) -> None:
        now = time.monotonic()
        self.seconds[what] = round(now - self.clock)
        self.clock = now

    def guarded(self, target: Callable[[], None]) -> Callable[[], None]:
        """``target`` for a thread: an exception in it is an unexpected answer, not a silent thread death."""

        def run() -> None:
            try:
                target()
            except Exception as exc:  # reported in the figures and the assertion
                self.unexpected.append(f"{target.__name__}: {exc!r}")
                self.done.set()

        return run

    def flush_loop(self) -> None:
        """``safetyplan outbox flush --lease`` again and again until the run is done. While HAPI is down and while
        the queued plans are being delivered, every other flush is SIGKILLed a moment after it starts: what it
        held is then sent by another process once its lease (``--lease``, short here) has run out."""
        runs = 0
        while not self.done.is_set():
            proc = cli("outbox", "flush", "--outbox", self.outbox, "--lease", str(LEASE))
            runs += 1
            if self.phase in ("down", "delivering") and runs % 2 == 0:
                try:
                    proc.wait(timeout=self.draw(0.3, 1.5))
                except subprocess.TimeoutExpired:
                    proc.send_signal(signal.SIGKILL)
                    proc.communicate(timeout=30)
                    with self.lock:
                        self.flush_kills += 1
                    continue
            _, err = proc.communicate(timeout=180)
            if proc.returncode not in (0, 4):  # delivered all, or some still queued
                self.unexpected.append(f"flush exit {proc.returncode}: {err[-300:]}")
            self.done.wait(0.5)

    def replica(self) -> tuple[subprocess.Popen[str], str]:
        return serve(self.upstream.base_url, self.outbox, "--outbox-lease", str(LEASE))


def _gist(r: requests.Response) -> str:
    """Our first diagnostic and the HAPI message codes of an answer: the upstream's diagnostics can quote the
    patient's identity number (HAPI's unique-key messages name the conditional-create URL)."""
    try:
        issues = r.json().get("issue", [])
    except ValueError:
        return r.text[:100]
    ours = str(issues[0].get("diagnostics", ""))[:300] if issues else ""
    return f"{ours} {sorted(set(re.findall(r'HAPI-[0-9]{4}', r.text)))}"


def _entries(outbox: str) -> list[OutboxEntry]:
    with open_outbox(outbox) as box:
        return box.list()


def _pending(outbox: str) -> int:
    with open_outbox(outbox) as box:
        return box.counts()["pending"]


def _run(c: Cluster, plans: list[JSON]) -> None:
    """Steps 1-3 of the module docstring; returns once the outbox has nothing pending."""
    c.clock = time.monotonic()
    c.replicas = [c.replica() for _ in range(REPLICAS)]
    helpers = [threading.Thread(target=c.guarded(c.kill_replicas))]
    helpers += [threading.Thread(target=c.guarded(c.flush_loop)) for _ in range(FLUSH_LOOPS)]
    for thread in helpers:
        thread.start()
    c.lap("replicas started")
    try:
        with ThreadPoolExecutor(max_workers=ENGINE_THREADS) as engine:
            jobs = [engine.submit(c.post, n, data) for n, data in enumerate(plans)]
            wait_for(lambda: sum(j.done() for j in jobs) >= len(plans) // 3, 300, "a third of the plans")
            c.lap("first third delivered")
            c.upstream.stop()
            c.phase = "down"
            wait_for(
                lambda: sum(j.done() for j in jobs) >= 2 * len(plans) // 3, 300, "two thirds of the plans"
            )
            restart = threading.Thread(target=c.guarded(c.restart_upstream))
            restart.start()
            for job in jobs:
                job.result()
            restart.join()
        c.upstream.ready()
        wait_for(lambda: c.done.is_set() or _pending(c.outbox) == 0, 240, "the outbox to be delivered")
        c.lap("queue delivered")
    finally:
        c.done.set()
        for thread in helpers:
            thread.join(timeout=240)
        for proc, _ in c.replicas:
            proc.send_signal(signal.SIGTERM)
        for proc, _ in c.replicas:
            proc.wait(timeout=60)


def _plans(tag: str) -> tuple[dict[str, list[str]], list[JSON]]:
    """``PLANS`` plans, one per fresh synthetic patient: identity number -> submission ids, and the plans."""
    patients = {fresh_fnr(): [fresh_identifier(tag)] for _ in range(PLANS)}
    plans = []
    for i, (fnr, (sub,)) in enumerate(patients.items()):
        data = fresh_plan(EXAMPLES[i % len(EXAMPLES)], fnr)
        data["submissionId"] = sub
        plans.append(data)
    return patients, plans


def _figures(c: Cluster, patients: dict[str, list[str]], took: float) -> dict[str, int]:
    """Step 4: the server searched patient by patient, and the outbox read; printed like the fault matrix."""
    entries = _entries(c.outbox)
    figures = {
        "plans": sum(len(subs) for subs in patients.values()),
        **check_plans(Fhir(c.upstream.ready()), patients, entries),
        "unexpected answers": len(c.unexpected),
    }
    # Our own words about each entry not delivered (status, HAPI codes; never personal data).
    c.unexpected += [
        f"entry {e.plan_key}: {e.status}, {e.last_error}" for e in entries if e.status != "delivered"
    ]
    c.lap("server searched")
    print(
        f"cluster ({type(c.upstream).__name__}, outbox {c.outbox.split(':')[0] if '://' in c.outbox else 'sqlite'}):",
        json.dumps(figures),
        f"(answers {c.accepted}, killed {c.kills} replicas and {c.flush_kills} flushes, plans sent again "
        f"{c.resent}, {took:.0f} s: {c.seconds})",
    )
    return figures


def test_replicas_and_flushers_on_one_postgresql_outbox_deliver_every_plan_once_through_kills_and_an_outage(
    faulty_server: JSON, hapi_on_postgres: HapiOnPostgres, postgres: Any
) -> None:
    """Both runs at once, one against HAPI on H2 and one against HAPI on PostgreSQL, each with its own outbox:
    most of a run is HAPI starting again, and two JVMs start nearly as fast as one on two cores."""
    tag = uuid.uuid4().hex[:8]
    clusters = [
        Cluster(HapiOnH2File(faulty_server), postgres.create_database(f"cluster_h2_{tag}")),
        Cluster(hapi_on_postgres, postgres.create_database(f"cluster_pg_{tag}")),
    ]
    for c in clusters:
        c.upstream.ready()
    runs = [(c, *_plans(f"cl{i}")) for i, c in enumerate(clusters)]
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=len(runs)) as pool:
        for done in [pool.submit(_run, c, plans) for c, _, plans in runs]:
            done.result()
    took = time.monotonic() - started

    for c, patients, _ in runs:
        figures = _figures(c, patients, took)
        assert c.accepted.get(202, 0) > 0, "no plan was queued while HAPI was down"
        assert c.kills["down"] > 0 and c.kills["delivering"] > 0, c.kills
        assert c.flush_kills > 0, "no flush was killed mid-way"
        assert {k: v for k, v in figures.items() if k != "plans"} == dict.fromkeys(FAILURES, 0), c.unexpected
