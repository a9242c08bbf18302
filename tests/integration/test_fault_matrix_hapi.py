"""The fault matrix: many plans through ``push``, ``outbox flush`` and the service while everything that can
go wrong does, on a seeded random schedule, against the real HAPI server. Nothing may be lost, duplicated,
filed on the wrong patient, or left in a wrong state.

One outbox file is shared by every client: ``push`` processes, two ``outbox flush`` processes and two
service processes (``safetyplan serve``, each with its background flusher). All reach HAPI through the fault
proxy, which, per transaction: passes it, cuts the connection after the server committed, drops it unsent,
answers 429 or 503 itself, or once kills the server mid-transaction (it is restarted while the clients go
on). Client processes (``push``, ``flush``) are killed with SIGKILL at random moments; an engine whose push
was killed sends the plan again, as it never heard an answer.

Figures are printed; every figure but ``plans`` and ``faults injected`` must be 0.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import requests

from fhir_safetyplan.delivery.outbox import Outbox, OutboxEntry

from .conftest import TOOLCHAIN, Fhir, fresh_identifier
from .test_delivery_hapi import FNR, SUBMISSION_SYSTEM, fresh_fnr, fresh_plan, write
from .test_service_hapi import free_port, wait_for

JSON = dict[str, Any]
ROOT = Path(__file__).resolve().parents[2]
SEED = 90_2026
# One plan per patient. Several conversations for one patient sent at once by concurrent senders race by design:
# one revision wins and the other is held for a person (tests/integration/test_revision_hapi.py proves that).
# This matrix is about delivery faults, where every plan must arrive.
PATIENTS = 54
PLANS_PER_PATIENT = 1  # 54 plans
TYPES = ("QuestionnaireResponse", "CarePlan", "Flag", "DocumentReference")
TOKEN = "fault-matrix-token-0123456789abcdef"
FAULTS = [None] * 10 + ["cut"] * 3 + ["down"] * 3 + ["429"] * 2 + ["503"] * 2
#: the figures of a run (check_plans and the engine's own) that must all be 0
FAILURES = (
    "lost",
    "duplicated",
    "filed on the wrong patient",
    "entries in a wrong state",
    "unexpected answers",
)
EXAMPLES = ("01-alt-pa-plass", "02-flere-mangler", "05-streng-kontakt", "06-nynorsk")


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SAFETYPLAN_")}
    env["SAFETYPLAN_SERVICE_TOKENS"] = TOKEN
    return env


def cli(*args: str) -> subprocess.Popen[str]:
    """``safetyplan ARGS`` as a process of its own (stderr kept, stdout dropped), with the service token set."""
    return subprocess.Popen(
        [sys.executable, "-m", "fhir_safetyplan", *args],
        cwd=ROOT,
        env=_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def post_answers(
    url_for: Callable[[int], str],
    data: JSON,
    *,
    tries: int,
    pause: float,
    dropped: Callable[[], None] = lambda: None,
) -> requests.Response | None:
    """POST the answers ``data`` to the service at ``url_for(try)`` until one answers: a dropped connection (the
    service died under it, or is not up) means send them again after ``pause`` s (``url_for`` may pick another
    replica), and is told to ``dropped``. The answer, or None when ``tries`` tries got none."""
    for attempt in range(tries):
        try:
            return requests.post(
                f"{url_for(attempt)}/QuestionnaireResponse",
                json=data,
                headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/fhir+json"},
                timeout=120,
            )
        except requests.ConnectionError:
            dropped()
            time.sleep(pause)
    return None


class Matrix:
    """The shared state of one run: its figures, and the clients' view of what was accepted."""

    def __init__(self, faulty: JSON, tmp_path: Path) -> None:
        self.faulty = faulty
        self.proxy = faulty["proxy"]
        self.via_proxy = f"http://127.0.0.1:{self.proxy.port}/fhir"
        self.outbox = tmp_path / "shared-outbox.sqlite"
        self.tmp = tmp_path
        self.rng = random.Random(SEED)
        self.lock = threading.Lock()
        self.clients_killed = 0
        self.server_kills = 0
        self.unexpected: list[str] = []  # exit codes / statuses no fault should cause

    def chance(self, p: float) -> bool:
        with self.lock:
            return self.rng.random() < p

    def uniform(self, a: float, b: float) -> float:
        with self.lock:
            return self.rng.uniform(a, b)

    def maybe_kill(self, proc: subprocess.Popen[str], p: float, within: float) -> None:
        """With probability ``p``, SIGKILL the client process at a random moment in its first ``within`` s."""
        if self.chance(p):
            time.sleep(self.uniform(0.05, within))
            proc.send_signal(signal.SIGKILL)
            with self.lock:
                self.clients_killed += 1

    def push(self, data: JSON) -> None:
        """``safetyplan push`` until the engine hears an answer (a killed push is sent again)."""
        path = write(self.tmp, data, f"{data['submissionId']}.json")
        while True:
            proc = cli(
                "push",
                str(path),
                "--server",
                self.via_proxy,
                "--create-patient",
                "--outbox",
                str(self.outbox),
            )
            if self.chance(0.25):
                time.sleep(self.uniform(0.05, 1.2))
                proc.send_signal(signal.SIGKILL)
                with self.lock:
                    self.clients_killed += 1
            _, err = proc.communicate(timeout=180)
            if proc.returncode == -signal.SIGKILL:
                continue
            if proc.returncode not in (0, 4):  # delivered, or queued in the outbox
                self.unexpected.append(f"push exit {proc.returncode}: {err[-300:]}")
            return

    def post(self, service: str, data: JSON) -> None:
        r = post_answers(lambda _: service, data, tries=5, pause=0.5)
        if r is None:
            self.unexpected.append("service unreachable")
        elif r.status_code not in (201, 202):
            self.unexpected.append(f"service {r.status_code}: {r.text[:300]}")

    def flush(self) -> None:
        proc = cli("outbox", "flush", "--outbox", str(self.outbox))
        self.maybe_kill(proc, 0.3, 1.5)
        _, err = proc.communicate(timeout=180)
        if proc.returncode not in (0, 4, -signal.SIGKILL):
            self.unexpected.append(f"flush exit {proc.returncode}: {err[-300:]}")

    def kill_and_restart_server(self) -> None:
        """The proxy's ``kill`` fault: SIGKILL HAPI mid-transaction, restart it on a new port meanwhile."""
        from fhir_safetyplan import local_hapi

        state = self.faulty["state"]
        info = local_hapi.status(state)
        assert info is not None
        os.kill(info.pid, signal.SIGKILL)
        self.server_kills += 1

        def restart() -> None:
            for _ in range(100):
                if local_hapi.status(state) is None:
                    break
                time.sleep(0.1)
            started = local_hapi.start(
                state_dir=state, server_args=self.faulty["args"], timeout=300, toolchain=TOOLCHAIN
            )
            self.faulty["port"] = self.proxy.upstream_port = started.port

        threading.Thread(target=restart, daemon=True).start()


def serve(upstream: str, outbox: Path | str, *options: str) -> tuple[subprocess.Popen[str], str]:
    """A ``safetyplan serve`` process on a free port (flushing every second, with ``options``), once its
    /healthz answers."""
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "fhir_safetyplan",
            "serve",
            "--port",
            str(port),
            "--upstream",
            upstream,
            "--outbox",
            str(outbox),
            "--flush-interval",
            "1",
            "--create-patient",
            *options,
        ],
        cwd=ROOT,
        env=_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"

    def up() -> bool:
        try:
            return requests.get(f"{url}/healthz", timeout=2).status_code == 200
        except requests.RequestException:  # not listening yet, or too busy starting to answer in time
            return False

    wait_for(up, 60, "the service to start")
    return proc, url


def check_plans(fhir: Fhir, patients: dict[str, list[str]], entries: list[OutboxEntry]) -> dict[str, int]:
    """lost / duplicated / wrong patient (per resource type and plan) and outbox entries not delivered.

    ``patients`` maps each synthetic identity number to its plans' submission ids; ``entries`` is the outbox.
    """
    owner = {sub: fnr for fnr, subs in patients.items() for sub in subs}
    seen: Counter[tuple[str, str]] = Counter()
    wrong_patient = 0
    for fnr in patients:
        found = fhir.search("Patient", identifier=f"{FNR}|{fnr}")
        seen[("Patient", fnr)] += len(found)  # a second Patient for one number is a duplicate too
        for patient, rtype in [(p, t) for p in found for t in TYPES]:
            for resource in fhir.search(rtype, subject=f"Patient/{patient['id']}"):
                sub = next(i["value"] for i in _identifiers(resource) if i.get("system") == SUBMISSION_SYSTEM)
                seen[(rtype, sub)] += 1
                wrong_patient += owner.get(sub) != fnr
    expected = {(t, s) for t in TYPES for s in owner} | {("Patient", fnr) for fnr in patients}
    return {
        "lost": len(expected - set(seen)),
        "duplicated": sum(n - 1 for n in seen.values() if n > 1),
        "filed on the wrong patient": wrong_patient,
        "entries in a wrong state": sum(e.status != "delivered" for e in entries)
        + abs(len(entries) - len(owner)),
    }


def _entries(outbox: Path) -> list[OutboxEntry]:
    with Outbox(outbox) as box:
        return box.list()


def _answers(faulty: JSON) -> bool:
    try:
        return requests.get(f"http://127.0.0.1:{faulty['port']}/fhir/metadata", timeout=5).ok
    except requests.RequestException:
        return False


def _identifiers(resource: JSON) -> list[JSON]:
    """identifier (a list, or one for a QuestionnaireResponse) and masterIdentifier (a DocumentReference)."""
    found = resource.get("identifier", [])
    return [*(found if isinstance(found, list) else [found]), resource.get("masterIdentifier", {})]


def test_fault_matrix_nothing_lost_duplicated_misfiled_or_in_a_wrong_state(
    faulty_server: JSON, tmp_path: Path
) -> None:
    m = Matrix(faulty_server, tmp_path)
    patients = {
        fresh_fnr(): [fresh_identifier("fm") for _ in range(PLANS_PER_PATIENT)] for _ in range(PATIENTS)
    }
    plans = []
    for i, (fnr, subs) in enumerate(patients.items()):
        for j, sub in enumerate(subs):
            data = fresh_plan(EXAMPLES[(i + j) % len(EXAMPLES)], fnr)
            data["submissionId"] = sub
            plans.append(data)
    m.rng.shuffle(plans)
    schedule = [m.rng.choice(FAULTS) for _ in range(70)]
    schedule.insert(3, "kill")  # early: the restart (tens of seconds) overlaps the rest of the traffic
    m.proxy.faults = list(schedule)
    injected_before = m.proxy.faults_injected
    m.proxy.on_kill = m.kill_and_restart_server

    services = [serve(m.via_proxy, m.outbox), serve(m.via_proxy, m.outbox)]
    try:
        with ThreadPoolExecutor(max_workers=4) as pool:
            jobs = []
            for n, data in enumerate(plans):
                if n % 2 == 0:
                    jobs.append(pool.submit(m.push, data))
                else:
                    jobs.append(pool.submit(m.post, services[n // 2 % 2][1], data))
                if n % 9 == 4:
                    jobs.append(pool.submit(m.flush))
            for job in jobs:
                job.result()
        m.proxy.faults = []
        wait_for(lambda: _answers(faulty_server), 300, "HAPI to be back")
        # Two flushers at once, until the outbox is empty (the services' flushers are at it too).
        for _ in range(20):
            with Outbox(m.outbox) as box:
                if box.counts()["pending"] == 0:
                    break
            for proc in [cli("outbox", "flush", "--outbox", str(m.outbox)) for _ in range(2)]:
                _, err = proc.communicate(timeout=180)
                if proc.returncode not in (0, 4):
                    m.unexpected.append(f"final flush exit {proc.returncode}: {err[-300:]}")
    finally:
        for proc, _ in services:
            proc.send_signal(signal.SIGTERM)
        for proc, _ in services:
            proc.wait(timeout=60)

    fhir = Fhir(f"http://127.0.0.1:{faulty_server['port']}/fhir")
    figures = {
        "plans": len(plans),
        "faults injected": m.proxy.faults_injected - injected_before + m.clients_killed,
        **check_plans(fhir, patients, _entries(m.outbox)),
        "unexpected answers": len(m.unexpected),
    }
    print(
        "fault matrix:",
        json.dumps(figures),
        f"(server kills {m.server_kills}, clients killed {m.clients_killed})",
    )
    assert m.server_kills == 1 and m.clients_killed > 0
    assert {k: v for k, v in figures.items() if k not in ("plans", "faults injected")} == dict.fromkeys(
        FAILURES, 0
    ), m.unexpected
