"""The service's side of delivery: FHIR clients per thread, the outbox, and the background flusher.

Requests deliver on worker threads (the client is synchronous); the flusher runs one bounded round at a
time on a thread of its own, and never sends a plan that a request is sending at that moment. Both only
ever send idempotent bundles, so even a plan sent twice leaves one copy on the server.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from fhir_safetyplan.errors import JSON, ConfigError
from fhir_safetyplan.service.settings import ServiceSettings

if TYPE_CHECKING:
    from fhir_safetyplan.client import FhirClient
    from fhir_safetyplan.delivery.deliver import DeliveryResult
    from fhir_safetyplan.delivery.outbox_rules import OutboxStore

log = logging.getLogger("fhir_safetyplan.service.sender")


class Delivery:
    """Clients, outbox and flusher for one app; created at start-up, closed at shutdown."""

    def __init__(self, settings: ServiceSettings) -> None:
        self.settings = settings
        self._outbox: OutboxStore | None = None
        self._outbox_lock = threading.Lock()
        self._local = threading.local()
        self._clients: list[FhirClient] = []
        self._clients_lock = threading.Lock()
        self._busy: set[str] = set()
        self._busy_lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()

    @property
    def outbox(self) -> OutboxStore | None:
        """The outbox (opened on first use, so an app also works without its lifespan having run), or None."""
        if self.settings.outbox is None:
            return None
        with self._outbox_lock:
            if self._outbox is None:
                from fhir_safetyplan.delivery.store import open_outbox

                self._outbox = open_outbox(self.settings.outbox, lease_seconds=self.settings.outbox_lease)
            return self._outbox

    # ---- clients ---------------------------------------------------------------------------------

    def client(self, base_url: str) -> FhirClient:
        """This thread's client for ``base_url`` (a requests.Session is not meant to be shared by threads)."""
        clients: dict[str, FhirClient] | None = getattr(self._local, "clients", None)
        if clients is None:
            clients = self._local.clients = {}
        found = clients.get(base_url)
        if found is None:
            found = clients[base_url] = self.settings.new_client(base_url)
            with self._clients_lock:
                self._clients.append(found)
        return found

    # ---- delivering --------------------------------------------------------------------------------

    @contextmanager
    def sending(self, key: str) -> Iterator[None]:
        """Mark a plan (its outbox plan key) as being sent by a request, so the flusher leaves it alone."""
        with self._busy_lock:
            self._busy.add(key)
        try:
            yield
        finally:
            with self._busy_lock:
                self._busy.discard(key)

    def deliver(self, bundle: JSON, submission_id: str) -> DeliveryResult:
        """Deliver one bundle to the upstream (through the outbox when there is one): what became of it."""
        from fhir_safetyplan.delivery.deliver import attempt
        from fhir_safetyplan.delivery.outbox_keys import plan_key

        assert self.settings.upstream is not None
        with self.sending(plan_key(submission_id, bundle)), self._outbox_reachable():
            return attempt(
                bundle,
                self.client(self.settings.upstream),
                outbox=self.outbox,
                submission_id=submission_id,
                public_hosts=self.settings.public_hosts,
            )

    @contextmanager
    def _outbox_reachable(self) -> Iterator[None]:
        """A PostgreSQL outbox that cannot be reached now is the operator's to fix (told in the log) and the
        caller's to resend: 503 with Retry-After, naming neither the database nor its user."""
        from fhir_safetyplan.delivery.store import OutboxUnavailable

        try:
            yield
        except OutboxUnavailable as err:
            log.error("the outbox cannot be used: %s", err)
            from fhir_safetyplan.service.fhirio import HttpError

            raise HttpError(
                503,
                "This service's outbox cannot be reached now, so the plan could not be stored; the operator "
                "has been told in the log. Send it again later (the same submission never creates copies).",
                code="transient",
                headers={"Retry-After": "30"},
            ) from None

    def flush_once(self) -> list[DeliveryResult]:
        """One bounded round: send up to ``flush_batch`` of the upstream's queued plans, oldest first, leaving
        alone those a request is sending; skip the round if one is running."""
        outbox = self.outbox
        if outbox is None or not self._flush_lock.acquire(blocking=False):
            return []
        try:
            from fhir_safetyplan.delivery.deliver import flush

            with self._busy_lock:
                busy = frozenset(self._busy)
            started = time.monotonic()
            # Only the upstream's plans: its credentials must never go to another server in the outbox.
            results = flush(
                outbox,
                self.client,
                public_hosts=self.settings.public_hosts,
                server_url=self.settings.upstream,
                limit=self.settings.flush_batch,
                skip=busy,
                close_clients=False,
            )
            if results:
                counts: dict[str, int] = {}
                for r in results:
                    counts[r.status] = counts.get(r.status, 0) + 1
                log.info(
                    "flush round: %s in %.0f ms",
                    ", ".join(f"{n} {s}" for s, n in sorted(counts.items())),
                    1000 * (time.monotonic() - started),
                )
            return results
        finally:
            self._flush_lock.release()

    def depth(self) -> JSON:
        """How many plans the outbox holds, by status (delivered plans keep only ids, no bundle); for a
        damaged outbox file, a ``problem`` instead (``outbox check`` says more)."""
        from fhir_safetyplan.delivery.outbox import OutboxDamaged

        outbox = self.outbox
        if outbox is None:
            return {}
        try:
            return dict(outbox.counts())
        except OutboxDamaged:
            log.error("the outbox is damaged: run 'safetyplan outbox check' on it")
            return {"problem": "OutboxDamaged"}
        except ConfigError as err:  # a PostgreSQL outbox that cannot be reached now
            log.error("the outbox cannot be used: %s", err)
            return {"problem": type(err).__name__}

    # ---- the background flusher -----------------------------------------------------------------

    def start(self) -> None:
        """Start the background flusher (when there is an outbox, an upstream and a positive interval)."""
        if self.outbox is None or self.settings.flush_interval <= 0:
            return
        self._stopping = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._flusher(), name="safetyplan-flusher")

    async def _flusher(self) -> None:
        interval = self.settings.flush_interval
        while not self._stopping.is_set():
            try:
                await asyncio.wait_for(self._stopping.wait(), timeout=interval)
                return
            except TimeoutError:
                pass
            try:
                await asyncio.to_thread(self.flush_once)
            except Exception as exc:  # the flusher must outlive any one bad round; the plans stay queued
                log.error("flush round failed: %s", type(exc).__name__)

    async def stop(self, grace: float = 10.0) -> None:
        """Stop the flusher (letting a round in progress finish for up to ``grace`` s) and close everything."""
        self._stopping.set()
        if self._task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self._task), timeout=grace)
            except TimeoutError:
                log.warning(
                    "flusher still busy after %.0f s at shutdown; queued plans stay in the outbox", grace
                )
                self._task.cancel()
            self._task = None
        with self._clients_lock:
            for c in self._clients:
                c.close()
            self._clients.clear()
        with self._outbox_lock:
            if self._outbox is not None and not self._flush_lock.locked():
                self._outbox.close()
                self._outbox = None
