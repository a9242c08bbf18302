"""Sending stored plans on a few threads for ``push --ndjson``, one patient's plans in their input order.

The command stores every plan in the outbox (leased to this process) in input order before it hands it here;
:class:`Sender` sends them on ``workers`` threads. Plans are spread over the threads by patient (the Bundle's
subject), and each thread sends its plans one after the other, so two plans for one patient are never sent
at once and reach the server in the order of the input: each is a revision of the plan before it
(:mod:`fhir_safetyplan.revise`).

The first plan is sent alone, before the threads send at once: a server that is down then costs one attempt
(with its retries), not one per thread, and a fresh HAPI server gets its first write in peace (HAPI 8 fills its
resource-type table on first use, and concurrent first writes of a type fail there with HAPI-2223, a 500).

As in a flush, a failure that is the server's (unavailable, configuration: :attr:`DeliveryResult.stops_queue`)
stops the sending: the plans after it stay pending in the outbox (their lease given back, so the next
``outbox flush`` takes them at once) and are reported as queued (or held). A stop signal does the same for
what was not sent yet; a plan being sent is finished first.

Each result is handed to ``report(line number, DeliveryResult | BaseException)`` on the sending thread, in the
order they finish; the command puts them back in input order.
"""

from __future__ import annotations

import logging
import queue
import signal
import threading
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fhir_safetyplan.client import FhirClient
from fhir_safetyplan.delivery.deliver import DeliveryResult, send_stored
from fhir_safetyplan.delivery.outbox_keys import bundle_subject
from fhir_safetyplan.delivery.outbox_rules import OutboxStore
from fhir_safetyplan.delivery.store import OutboxEntry
from fhir_safetyplan.errors import JSON, SafetyPlanError
from fhir_safetyplan.ids import patient_key
from fhir_safetyplan.outcomes import Kind, Outcome, outcome_of

__all__ = ["Job", "Sender"]

log = logging.getLogger("fhir_safetyplan.delivery.batch_send")


@dataclass(frozen=True)
class Job:
    """One stored plan to send: its input line, its outbox entry (leased to us) and its bundle."""

    number: int
    entry: OutboxEntry
    bundle: JSON


def lane_of(bundle: JSON, lanes: int) -> int:
    """The thread for ``bundle``'s patient: the same patient (by :func:`~fhir_safetyplan.ids.patient_key`: the
    identity number when the plan has it, else the reference) always gets the same one."""
    return zlib.crc32(patient_key(bundle_subject(bundle)).encode("utf-8", "surrogatepass")) % lanes


class Sender:
    """``workers`` threads sending :class:`Job` s; see the module docstring. Use as a context manager: leaving
    it waits for the threads (what was not sent is given back to the outbox as pending)."""

    def __init__(
        self,
        outbox: OutboxStore,
        client_factory: Callable[[], FhirClient],
        workers: int,
        stopped: threading.Event,
        report: Callable[[int, DeliveryResult | BaseException], None],
    ) -> None:
        self.outbox = outbox
        self._report = report
        self._factory = client_factory
        self._stopped = stopped
        self._halt: tuple[Outcome, str] | None = None
        self._lock = threading.Lock()
        self._first = threading.Lock()
        self._warm = threading.Event()
        self._lanes: list[queue.Queue[Job | None]] = [queue.Queue() for _ in range(workers)]
        self._threads = [
            threading.Thread(target=self._run, args=(lane,), name=f"safetyplan-send-{i}", daemon=True)
            for i, lane in enumerate(self._lanes)
        ]
        for thread in self._threads:
            thread.start()

    def __enter__(self) -> Sender:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def halt(self, err: SafetyPlanError) -> None:
        """Send nothing more: the server cannot take plans now (``err``: unavailable, configuration)."""
        self._halt_with(outcome_of(err.kind), f"{type(err).__name__}: {err}")

    def _halt_with(self, status: Outcome, reason: str) -> None:
        with self._lock:
            if self._halt is None:
                self._halt = (status, reason)
                log.warning("batch: sending stopped (%s); the rest waits in the outbox", status)

    def submit(self, job: Job) -> None:
        """Queue ``job`` on its patient's thread."""
        self._lanes[lane_of(job.bundle, len(self._lanes))].put(job)

    def close(self) -> None:
        """Let every thread finish its queue, and wait for them."""
        for lane in self._lanes:
            lane.put(None)
        for thread in self._threads:
            thread.join()

    def _run(self, lane: queue.Queue[Job | None]) -> None:
        # Ctrl-C and SIGTERM are for the main thread: delivered to a sending thread they would not wake the
        # main thread from reading its input, and the batch would not stop.
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
        client: FhirClient | None = None
        try:
            while (job := lane.get()) is not None:
                try:
                    if self._halt is None and not self._stopped.is_set() and client is None:
                        client = self._factory()
                    result: DeliveryResult | BaseException = self._one(job, client)
                except BaseException as exc:  # every job gets a result, or the command waits
                    self._give_back(job)
                    result = exc
                self._report(job.number, result)
        finally:
            if client is not None:
                client.close()

    def _one(self, job: Job, client: FhirClient | None) -> DeliveryResult:
        halt = self._halt
        if halt is not None or self._stopped.is_set() or client is None:
            return self._not_sent(job, halt)
        if not self._warm.is_set():
            with self._first:  # the first plan alone (see the module docstring); the others wait for it
                if not self._warm.is_set():
                    try:
                        return self._sent(job, client)
                    finally:
                        self._warm.set()
            return self._one(job, client)  # the halt may have come meanwhile
        return self._sent(job, client)

    def _sent(self, job: Job, client: FhirClient) -> DeliveryResult:
        result = send_stored(job.bundle, client, self.outbox, job.entry)
        if result.stops_queue:
            self._halt_with(Outcome(result.status), f"{result.reason} (line {job.number})")
        return result

    def _not_sent(self, job: Job, halt: tuple[Outcome, str] | None) -> DeliveryResult:
        self._give_back(job)
        entry = job.entry
        if halt is None:
            status, why = Outcome.QUEUED, "interrupted before it was sent"
        else:
            status, why = halt[0], f"not sent, because sending stopped earlier in this batch: {halt[1]}"
        kind: Any = Kind.CONFIG if status is Outcome.HELD else Kind.UNAVAILABLE
        return DeliveryResult(
            entry.submission_id,
            status,
            entry.server_url,
            reason=f"{why}; it waits in the outbox for 'safetyplan outbox flush'",
            kind=kind,
            plan_key=entry.plan_key,
        )

    def _give_back(self, job: Job) -> None:
        try:
            self.outbox.release(job.entry.plan_key, job.entry.server_url)
        except Exception:  # the lease then ends with this process or expires
            log.warning("batch: could not release an outbox lease (line %d)", job.number)
