"""Delivering journal Bundles: never lose a plan, never send one twice, never to the wrong kind of server.

:func:`deliver` sends one transaction Bundle. With an outbox the bundle is stored *before* it is sent and
marked delivered only after the server's 2xx, so at every moment a plan is either in the outbox or
acknowledged by the server. :func:`flush` sends what is still pending, oldest first; a server that cannot
take a plan now stops only that server's queue. Resends are harmless because only idempotent bundles (PUT
with ids derived from the submission, conditional creates) go through the outbox.

Outcomes are recorded compare-and-set on the outbox entry's revision: a plan re-queued while an older
version was in flight stays pending and is sent next.

What is final: only the server's verdict on the *content* (400/409/412/422 with an OperationOutcome) marks a
plan rejected. Credentials, redirects and a wrong base URL (:class:`~fhir_safetyplan.client.ServerConfigError`)
keep it pending ("held", exit 7) until the configuration is fixed.

Every journal bundle is sent as a revision of the patient's current plan, computed at send time
(:mod:`fhir_safetyplan.revise`). One that lost a race, or is older than the current plan, is "conflict" (exit 8):
not current on the server (nothing of it written; or, the older of two first plans sent at the same moment,
written and at once retired: :mod:`fhir_safetyplan.simultaneous`), kept as rejected so that only a person's
``outbox requeue`` sends it again.

The public-sandbox guard is :mod:`fhir_safetyplan.delivery.guard`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Container, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypedDict, Unpack

from fhir_safetyplan import exitcodes, outcomes, revise
from fhir_safetyplan.client import EntryResult, FhirClient, entry_results, is_idempotent_transaction
from fhir_safetyplan.delivery.guard import RefusedByPolicy, guard_public_server
from fhir_safetyplan.delivery.outbox_rules import OutboxStore
from fhir_safetyplan.delivery.outbox_sqlite import OutboxDamaged
from fhir_safetyplan.delivery.store import OutboxEntry
from fhir_safetyplan.errors import JSON, InputError, SafetyPlanError
from fhir_safetyplan.outcomes import Kind, Outcome

log = logging.getLogger("fhir_safetyplan.delivery.deliver")


#: what became of a plan: one of :class:`fhir_safetyplan.outcomes.Outcome` (a str)
Status = Outcome


@dataclass(frozen=True)
class DeliveryResult:
    """What became of one submission. ``outcome`` (the server's OperationOutcome) stays out of the repr."""

    submission_id: str
    status: Status
    server_url: str
    #: the server's answer per Bundle entry (statuses, locations, ids), when delivered
    entries: tuple[EntryResult, ...] = ()
    #: why it was not delivered (our message: kind, status, what to do; no personal data)
    reason: str | None = None
    outcome: JSON | None = field(default=None, repr=False)
    #: the kind of failure, and the error itself (for a caller that re-raises it), when not delivered
    kind: Kind | None = None
    error: SafetyPlanError | None = field(default=None, repr=False, compare=False)
    #: its outbox entry's key (the submission scoped by the patient), when it went through an outbox
    plan_key: str | None = None

    @property
    def exit_code(self) -> int:
        """The ``safetyplan`` exit code for this result (:data:`fhir_safetyplan.exitcodes.EXIT_CODES`)."""
        return exitcodes.EXIT_CODES[Outcome(self.status)]

    @property
    def stops_queue(self) -> bool:
        """True when this was the server's condition, so a flush sends nothing more to it now."""
        return self.kind is not None and outcomes.stops_queue(self.kind)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form for printing."""
        out: dict[str, Any] = {
            "submissionId": self.submission_id,
            "status": self.status,
            "server": self.server_url,
            "entries": [e.as_dict() for e in self.entries],
        }
        if self.reason:
            out["reason"] = self.reason
        if self.outcome is not None:
            out["outcome"] = self.outcome
        return out


# ---- delivery -----------------------------------------------------------------------------------


def reason_of(err: SafetyPlanError) -> str:
    """``Kind (HTTP n)``: what went wrong without personal data (server diagnostics may quote the data)."""
    status = getattr(err, "status", None)
    return f"{type(err).__name__}" + (f" (HTTP {status})" if status else "")


def settle(
    err: SafetyPlanError,
    server: str,
    submission_id: str,
    outbox: OutboxStore | None,
    entry: OutboxEntry | None,
) -> DeliveryResult:
    """The one place a failure becomes an outcome: classify ``err`` and record it on the outbox ``entry``
    (only if it is still the revision that was sent, and still pending)."""
    status = outcomes.outcome_of(err.kind, outbox=outbox is not None)
    if outbox is not None and entry is not None:
        server_url, revision, key = entry.server_url, entry.revision, entry.plan_key
        becomes = outcomes.KINDS[err.kind].entry
        if becomes == "rejected":
            recorded = outbox.mark_rejected(key, reason_of(err), server_url=server_url, revision=revision)
        elif becomes == "damaged":
            recorded = outbox.mark_damaged(key, server_url)
        else:
            recorded = outbox.record_failure(key, reason_of(err), server_url=server_url, revision=revision)
        if not recorded:
            log.info("submission %s: a newer revision is queued, or another sender settled it", submission_id)
    log.warning("submission %s %s: %s", submission_id, status, reason_of(err))
    return DeliveryResult(
        submission_id,
        status,
        server,
        reason=str(err),
        outcome=err.outcome,
        kind=err.kind,
        error=err,
        plan_key=None if entry is None else entry.plan_key,
    )


def _send(
    bundle: JSON,
    client: FhirClient,
    outbox: OutboxStore | None,
    entry: OutboxEntry | None,
    submission_id: str,
    check_capabilities: bool = False,
) -> DeliveryResult:
    """Send once and record what became of it; every failure goes through :func:`settle`."""
    try:
        if check_capabilities:
            client.check_capabilities()
        response = revise.send(bundle, client)  # a revision of the patient's current plan, read right now
    except SafetyPlanError as err:
        return settle(err, client.base_url, submission_id, outbox, entry)
    entries = tuple(entry_results(response))
    if (
        outbox is not None
        and entry is not None
        and not outbox.mark_delivered(
            entry.plan_key,
            [e.as_dict() for e in entries],
            server_url=entry.server_url,
            revision=entry.revision,
        )
    ):
        # The server has the revision we sent; the newer one stays pending and goes next.
        log.info("submission %s: delivered, but a newer revision is queued and stays pending", submission_id)
    log.info("submission %s delivered: %d entries", submission_id, len(entries))
    plan = None if entry is None else entry.plan_key
    return DeliveryResult(submission_id, Outcome.DELIVERED, client.base_url, entries=entries, plan_key=plan)


def attempt(
    bundle: JSON,
    client: FhirClient,
    *,
    outbox: OutboxStore | None = None,
    submission_id: str,
    public_hosts: Iterable[str] = (),
    check_capabilities: bool = False,
) -> DeliveryResult:
    """Deliver ``bundle`` as one transaction and say what became of it, as a :class:`DeliveryResult` whose
    ``status`` is an :class:`~fhir_safetyplan.outcomes.Outcome` (delivered, queued, held, rejected, refused,
    unavailable); ``push`` and the service print it and take their exit code / HTTP status from it.

    With an outbox the bundle is stored first (claimed by this process, so a flusher leaves it alone while it
    is sent) and must be idempotent (every entry PUT, or POST with ``ifNoneExist``), because a later resend
    must not create a second copy. Raises only :class:`~fhir_safetyplan.errors.InputError` (no submission id,
    a bundle that cannot go through the outbox). With ``check_capabilities`` the server's CapabilityStatement
    is checked first (after the plan is stored).
    """
    if not submission_id:
        raise InputError("deliver needs a submission id (stable for the same plan) to avoid duplicates.")
    try:
        guard_public_server(bundle, client.base_url, public_hosts)
    except RefusedByPolicy as err:
        return settle(err, client.base_url, submission_id, None, None)
    entry = None
    if outbox is not None:
        if not is_idempotent_transaction(bundle) or bundle.get("type") != "transaction":
            raise InputError(
                "This bundle cannot go through the outbox: resending it could create duplicates, or (a batch) "
                "deliver only part of it. It must be a transaction whose every entry is a PUT with a stable "
                "id, or a POST with ifNoneExist (as build_bundle makes them)."
            )
        try:
            entry = outbox.put(submission_id, bundle, client.base_url, lease_seconds=outbox.lease_seconds)
        except OutboxDamaged as err:  # nothing sent: a plan that cannot be stored is not sent either
            return settle(err, client.base_url, submission_id, None, None)
    return _send(bundle, client, outbox, entry, submission_id, check_capabilities)


def send_stored(bundle: JSON, client: FhirClient, outbox: OutboxStore, entry: OutboxEntry) -> DeliveryResult:
    """Send ``bundle``, already stored in ``outbox`` as ``entry`` (and leased to this process, as
    :meth:`OutboxStore.put` with ``lease_seconds`` does), and record what became of it; as :func:`attempt` does
    after storing (``push --ndjson`` stores each line in input order and sends on several threads)."""
    return _send(bundle, client, outbox, entry, entry.submission_id)


class Options(TypedDict, total=False):
    """The keyword options of :func:`attempt` and :func:`deliver` besides ``submission_id``."""

    outbox: OutboxStore | None
    public_hosts: Iterable[str]
    check_capabilities: bool


def deliver(
    bundle: JSON, client: FhirClient, *, submission_id: str, **options: Unpack[Options]
) -> DeliveryResult:
    """Like :func:`attempt`, for library callers who catch errors: returns a delivered, queued or conflict
    (held for a person) result, and
    raises the error of any other outcome (its ``kind`` says what it means): :class:`RefusedByPolicy`,
    :class:`~fhir_safetyplan.client.ServerRejected` (the entry is kept as rejected), a configuration error
    (the entry stays pending), :class:`~fhir_safetyplan.client.ServerUnavailable` without an outbox.
    """
    result = attempt(bundle, client, submission_id=submission_id, **options)
    if result.error is not None and result.status not in (Outcome.QUEUED, Outcome.CONFLICT):
        raise result.error
    return result


#: how often flush resends one submission that was re-queued while it was being sent
_MAX_RESENDS = 3


def flush(
    outbox: OutboxStore,
    client_factory: Callable[[str], FhirClient],
    *,
    public_hosts: Iterable[str] = (),
    server_url: str | None = None,
    limit: int | None = None,
    skip: Container[str] = (),
    close_clients: bool = True,
    lease_seconds: float | None = None,
) -> list[DeliveryResult]:
    """Deliver pending outbox entries oldest first; per server, stop at the first failure that is the
    server's (unavailable, configuration); one plan's problem (content, policy, a damaged row, a racing
    write) affects that plan only and the next one is sent.

    ``client_factory(server_url)`` gives the client for an entry's server (called once per server; the
    clients are closed at the end unless ``close_clients`` is False, for a factory that hands out clients it
    keeps). ``server_url``: only that server's entries. ``limit``: at most that many sends. ``skip``:
    plan keys (:func:`~fhir_safetyplan.delivery.outbox_keys.plan_key`) to leave alone (being sent elsewhere in this
    process). ``lease_seconds``: how long each claim lasts (default: the outbox's own
    ``lease_seconds``). Each entry is claimed
    (:meth:`OutboxStore.claim`) before it is sent: an entry another flusher holds is left to it.
    """
    results: list[DeliveryResult] = []
    lease = outbox.lease_seconds if lease_seconds is None else lease_seconds
    run = _Round(outbox, client_factory, tuple(public_hosts), lease)
    stopped: set[str] = set()
    try:
        for snapshot in outbox.queue(server_url):
            if limit is not None and len(results) >= limit:
                break
            if snapshot.server_url in stopped or snapshot.plan_key in skip:
                continue
            for result in run.send(snapshot):
                results.append(result)
                if result.stops_queue:
                    stopped.add(snapshot.server_url)
    finally:
        if close_clients:
            for client in run.clients.values():
                client.close()
    return results


@dataclass
class _Round:
    """One flush: the outbox, a client per server, and how each entry is claimed and sent."""

    outbox: OutboxStore
    client_factory: Callable[[str], FhirClient]
    public_hosts: tuple[str, ...]
    lease_seconds: float
    clients: dict[str, FhirClient] = field(default_factory=dict)

    def send(self, snapshot: OutboxEntry) -> Iterator[DeliveryResult]:
        """Send one entry (again, up to :data:`_MAX_RESENDS`, when a newer revision was queued meanwhile)."""
        sid, key, server = snapshot.submission_id, snapshot.plan_key, snapshot.server_url
        for _ in range(_MAX_RESENDS):
            try:
                entry = self.outbox.claim(key, server, self.lease_seconds)
            except OutboxDamaged as err:
                yield settle(err, server, sid, self.outbox, snapshot)
                return
            if entry is None or entry.bundle is None:
                return  # settled meanwhile, or another flusher holds it
            result = self._send_claimed(entry, entry.bundle)
            yield result
            if result.stops_queue or result.status is not Outcome.DELIVERED:
                return
            latest = self.outbox.get(key, server)
            if latest is None or latest.revision == entry.revision or latest.status != "pending":
                return

    def _send_claimed(self, entry: OutboxEntry, bundle: JSON) -> DeliveryResult:
        sid, server = entry.submission_id, entry.server_url
        try:
            guard_public_server(bundle, server, self.public_hosts)
            client = self.clients.get(server)
            if client is None:
                client = self.clients[server] = self.client_factory(server)
        except SafetyPlanError as err:
            return settle(err, server, sid, self.outbox, entry)
        return _send(bundle, client, self.outbox, entry, sid)
